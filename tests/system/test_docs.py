"""The documentation: every public class, function and method of the package has a docstring,
each class and function says the version it appeared in, the API reference lists all of them,
and the configuration page lists every option of `python -m bayeux`."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"

# docs/hooks.py: what the mkdocs build runs (and fails on), imported as the build does.
sys.path.insert(0, str(DOCS))
try:
    hooks = importlib.import_module("hooks")
finally:
    sys.path.remove(str(DOCS))


def test_every_public_class_function_and_method_is_documented() -> None:
    missing, unversioned = hooks.undocumented()
    assert not missing, f"no docstring: {missing}"
    assert not unversioned, f"no 'Added in version X.Y.Z.' of a known version: {unversioned}"
    assert len(hooks.public_objects()) > 40


def test_the_api_reference_lists_every_public_object() -> None:
    listed = set()
    for page in (DOCS / "reference").glob("*.md"):
        listed |= set(re.findall(r"^::: ([\w.]+)", page.read_text(), re.M))
    names = {name for name, _ in hooks.public_objects()}
    assert not names - listed, f"missing from docs/reference: {sorted(names - listed)}"
    for target in listed:  # and every entry names something that exists
        module_name, _, attribute = target.rpartition(".")
        assert hasattr(importlib.import_module(module_name), attribute), target


def test_the_configuration_page_lists_every_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one option a line in the help text
    page = hooks.on_page_markdown((DOCS / "configuration.md").read_text())
    from bayeux.__main__ import build_parser

    help_text = build_parser().format_help()
    options = set(re.findall(r"(--[a-z][a-z0-9-]+)", help_text)) - {"--help", "--version"}
    shown = set(re.findall(r"`(--[a-z][a-z0-9-]+)", page))
    shown |= {"--" + o for o in re.findall(r"`--\[no-\]([a-z0-9-]+)", page)}
    shown |= {"--no-" + o for o in re.findall(r"`--\[no-\]([a-z0-9-]+)", page)}
    missing = sorted(o for o in options if o not in shown)
    assert not missing, f"options missing from the configuration page: {missing}"
    # The CometD names come from the help texts, in their own column.
    assert "| `--max-interval` | `10000` | `maxInterval` |" in page
