"""The documentation site as a reader sees it: built with mkdocs (warnings are errors), served,
and looked at in Debian's Chromium (screenshots of the home page and an API page, every
internal link followed)."""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bayeux.testing import free_port

from .conftest import ROOT, run_node

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_site_reads_well_in_chromium(tmp_path: Path) -> None:
    site = tmp_path / "site"
    mkdocs = Path(sys.executable).parent / "mkdocs"
    built = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shots = tmp_path / "shots"
    shots.mkdir()
    try:
        results = run_node("docs_site.mjs", f"http://127.0.0.1:{port}", str(shots))
    finally:
        server.shutdown()
        server.server_close()
    failed = [r for r in results if not r["ok"]]
    assert not failed, failed
    names = {r["name"] for r in results}
    assert {"home_page_renders", "api_page_renders", "internal_links_resolve"} <= names
    crawl = next(r for r in results if r["name"] == "pages_crawled")
    assert crawl["pages"] >= 20 and crawl["anchors"] > 0
    for shot in ("home.png", "api.png"):
        # A rendered page, not a blank one: a blank 1280x900 PNG is a few KiB.
        assert (shots / shot).stat().st_size > 40_000, shot
