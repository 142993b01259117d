"""The side-by-side run: the suite against bayeux, Faye and cometd-nodejs-server for real.

It must tell the servers apart: bayeux passes every rule it can be checked against, and each
peer fails some core rule, named with the reply that broke it."""

from __future__ import annotations

import json
from pathlib import Path

from spec_tests.peers import main

ROOT = Path(__file__).resolve().parent.parent


def test_peer_run_finds_real_differences(tmp_path) -> None:
    # The table regenerates into (a copy of) the docs page that shows it.
    page = tmp_path / "conformance.md"
    page.write_text((ROOT / "docs" / "conformance.md").read_text())
    assert main(["--out", str(tmp_path), "--page", str(page)]) == 0
    regenerated = page.read_text()
    assert (tmp_path / "peers.md").read_text() in regenerated
    assert "<!-- peers:begin -->" in regenerated and "<!-- peers:end -->" in regenerated
    runs = json.loads((tmp_path / "peers.json").read_text())
    assert set(runs) == {"bayeux", "Faye", "cometd-nodejs-server"}

    ours = runs["bayeux"]["results"]
    assert ours and all(r["outcome"] in ("pass", "n/a") for r in ours), [
        (r["rule"], r["transport"], r["detail"])
        for r in ours
        if r["outcome"] not in ("pass", "n/a")
    ]
    for peer in ("Faye", "cometd-nodejs-server"):
        results = runs[peer]["results"]
        core_failures = [r for r in results if r["profile"] == "core" and r["outcome"] == "fail"]
        assert core_failures, f"{peer} passed every core rule: the suite tells nothing apart"
        assert any(r["outcome"] == "pass" for r in results if r["profile"] == "core"), (
            f"{peer} failed every core rule: the suite measures our quirks, not the spec"
        )
    # cometd-nodejs-server offers long-polling only: reported as such, not as failures.
    nodejs = runs["cometd-nodejs-server"]["results"]
    assert all(r["outcome"] == "unsupported" for r in nodejs if r["transport"] == "websocket")
    table = (tmp_path / "peers.md").read_text()
    assert "| Faye " in table and "Core rules the peers fail" in table
