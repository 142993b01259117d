"""The examples run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


def test_api_tour_prints_what_the_readme_says() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "api_tour.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "refused: local session refused: 403::Handshake denied",
        "bob subscribing to /chat/admin: 403:/chat/admin:Subscription denied",
        "alice got {'user': 'bob', 'text': 'hi'}",
        "alice got {'user': 'server', 'text': 'server-side publish'}",
        "members: {'channel': '/service/members', 'successful': True, 'data': ['alice', 'bob']}",
        "members: {'channel': '/service/members', 'successful': False, "
        "'error': '400:/service/members:Asked to fail', 'data': {'reason': 'demo'}}",
        "broadcasts seen by the extension: 2",
        "removed bob: disconnected",
    ]


def test_readme_shows_the_tour_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Server-side API") :]
    snippet = section[section.index("```python\n") + len("```python\n") :]
    snippet = snippet[: snippet.index("\n```")]
    assert len(snippet) > 500
    assert snippet in (ROOT / "examples" / "api_tour.py").read_text()


def test_conformance_report_lists_rules_with_sections_and_failures() -> None:
    from spec_tests.runner import FAIL, NOT_APPLICABLE, PASS, Result, json_report, markdown_report

    results = [
        Result("a.rule", "long-polling", "core", "_bayeux_meta_connect", PASS),
        Result(
            "a.rule", "websocket", "core", "_bayeux_meta_connect", FAIL, "SpecFailure: bad reply"
        ),
        Result(
            "b.rule",
            "long-polling",
            "cometd",
            "_extensions_timesync",
            NOT_APPLICABLE,
            "not offered",
        ),
    ]
    text = markdown_report("http://x/cometd", results)
    assert "| `a.rule` | core | [_bayeux_meta_connect](" in text
    assert "| pass | fail |" in text
    assert "- `a.rule` over websocket: SpecFailure: bad reply" in text
    assert "- `b.rule` over long-polling: not offered" in text
    import json

    report = json.loads(json_report("http://x/cometd", results))
    assert report["summary"]["core/websocket"] == {"fail": 1}
