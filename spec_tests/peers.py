"""Side-by-side conformance: bayeux, Faye and cometd-nodejs-server under the same suite.

    .venv/bin/python -m spec_tests.peers --page docs/conformance.md

Starts each server on 127.0.0.1 with the same timeouts (the peers at the versions pinned in
interop/package-lock.json, installed with `npm ci` when missing), runs every rule against each in
turn, writes reports/peers.md and reports/peers.json, and with --page replaces the section
between the `<!-- peers:begin -->` and `<!-- peers:end -->` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from bayeux.testing import free_port, stop_process, wait_for_port

from .runner import FAIL, INCOMPLETE, NOT_APPLICABLE, PASS, UNSUPPORTED, Result, run_suite
from .wire import TRANSPORTS

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "interop"
BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"
TIMEOUT_MS, MAX_INTERVAL_MS = 3000, 2000
SYMBOL = {PASS: "✓", FAIL: "✗", NOT_APPLICABLE: "–", UNSUPPORTED: "·", INCOMPLETE: "?"}
SHORT = {"long-polling": "LP", "callback-polling": "JSONP", "websocket": "WS"}


@dataclass
class Peer:
    name: str
    version: str
    command: list[str]


def npm_version(package: str) -> str:
    manifest = json.loads((INTEROP / "node_modules" / package / "package.json").read_text())
    return str(manifest["version"])


def ensure_npm_packages() -> None:
    if not all((INTEROP / "node_modules" / p).exists() for p in ("faye", "cometd-nodejs-server")):
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=INTEROP, check=True
        )


def peers(port_of: dict[str, int]) -> list[Peer]:
    from bayeux import __version__

    return [
        Peer(
            "bayeux",
            __version__,
            [
                sys.executable,
                "-m",
                "bayeux",
                "--port",
                str(port_of["bayeux"]),
                "--timeout",
                str(TIMEOUT_MS),
                "--max-interval",
                str(MAX_INTERVAL_MS),
                # Salesforce-style replay on the channels the replay profile uses.
                "--replay-channels",
                "/event/**",
                "--log-level",
                "error",
            ],
        ),
        Peer(
            "Faye",
            npm_version("faye"),
            [
                "node",
                str(INTEROP / "peers" / "faye_server.cjs"),
                str(port_of["Faye"]),
                str(TIMEOUT_MS // 1000),
            ],
        ),
        Peer(
            "cometd-nodejs-server",
            npm_version("cometd-nodejs-server"),
            [
                "node",
                str(INTEROP / "peers" / "cometd_nodejs_server.cjs"),
                str(port_of["cometd-nodejs-server"]),
                str(TIMEOUT_MS),
                str(MAX_INTERVAL_MS),
            ],
        ),
    ]


def run_against(peer: Peer, port: int) -> list[Result]:
    process = subprocess.Popen(
        peer.command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, process)
        return asyncio.run(run_suite(f"http://127.0.0.1:{port}/cometd"))
    finally:
        stop_process(process)


def markdown(runs: list[tuple[Peer, list[Result]]]) -> str:
    lines = [
        f"Same suite, same settings (timeout {TIMEOUT_MS} ms, maxInterval {MAX_INTERVAL_MS} ms"
        " where the server has one), each server alone on 127.0.0.1. Per cell, the transports"
        " LP / JSONP / WS: ✓ pass, ✗ fail, – not applicable, · transport not offered,"
        " ? could not be checked."
        " Reproduce with `.venv/bin/python -m spec_tests.peers --page docs/conformance.md`.",
        "",
        "| server | profile | " + " | ".join(SHORT[t] for t in TRANSPORTS) + " |",
        "|---|---|" + "---|" * len(TRANSPORTS),
    ]
    for peer, results in runs:
        for profile in ("core", "cometd", "robustness"):
            cells = []
            for transport in TRANSPORTS:
                mine = [r for r in results if r.profile == profile and r.transport == transport]
                if all(r.outcome == UNSUPPORTED for r in mine):
                    cells.append("not offered")
                    continue
                passed = sum(r.outcome == PASS for r in mine)
                failed = sum(r.outcome == FAIL for r in mine)
                applicable = passed + failed
                cells.append(f"{passed}/{applicable}" + (f" ({failed} ✗)" if failed else ""))
            lines.append(f"| {peer.name} {peer.version} | {profile} | " + " | ".join(cells) + " |")
    rules = list(dict.fromkeys(r.rule for _, results in runs for r in results))
    lines += [
        "",
        "<details><summary>Every rule</summary>",
        "",
        "| rule | profile | " + " | ".join(p.name for p, _ in runs) + " |",
        "|---|---|" + "---|" * len(runs),
    ]
    for rule_id in rules:
        profile = next(r.profile for _, rs in runs for r in rs if r.rule == rule_id)
        cells = []
        for _, results in runs:
            by_transport = {r.transport: r.outcome for r in results if r.rule == rule_id}
            cells.append("".join(SYMBOL[by_transport.get(t, UNSUPPORTED)] for t in TRANSPORTS))
        lines.append(f"| `{rule_id}` | {profile} | " + " | ".join(cells) + " |")
    lines += ["", "</details>", "", "Core rules the peers fail, with what broke them:", ""]
    for peer, results in runs[1:]:
        failures = [r for r in results if r.outcome == FAIL and r.profile == "core"]
        seen = set()
        for r in failures:
            if r.rule in seen:
                continue
            seen.add(r.rule)
            where = ", ".join(SHORT[x.transport] for x in failures if x.rule == r.rule)
            detail = " ".join(r.detail.split())[:220].replace("|", "\\|")
            lines.append(f"- {peer.name}: `{r.rule}` ({where}): {detail}")
    return "\n".join(lines) + "\n"


def write_page(page: Path, table: str) -> None:
    text = page.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{page} has no {BEGIN} ... {END} section")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    page.write_text(head + BEGIN + "\n" + table + END + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spec_tests.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--page", type=Path, help="docs page to update between the markers (docs/conformance.md)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports", help="report directory")
    args = parser.parse_args(argv)
    ensure_npm_packages()
    names = ("bayeux", "Faye", "cometd-nodejs-server")
    port_of = {name: free_port() for name in names}
    runs = []
    for peer in peers(port_of):
        print(f"running the suite against {peer.name} {peer.version} ...", file=sys.stderr)
        runs.append((peer, run_against(peer, port_of[peer.name])))
    table = markdown(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.md").write_text(table)
    (args.out / "peers.json").write_text(
        json.dumps(
            {p.name: {"version": p.version, "results": [asdict(r) for r in rs]} for p, rs in runs},
            indent=2,
        )
    )
    if args.page:
        write_page(args.page, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
