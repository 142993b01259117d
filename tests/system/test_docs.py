"""The documentation: every public class, function and method of the package has a docstring,
each class and function says the version it appeared in, the API reference lists all of them,
and the configuration page lists every option of `python -m bayeux`."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"

# What the reference documents: the names each module offers its users.
PUBLIC = {
    "bayeux": None,  # its __all__
    "bayeux.client": None,
    "bayeux.client.sync": ["SyncClient"],
    "bayeux.publisher": ["Publisher", "SyncPublisher"],
    "bayeux.testing": [
        "ServerThread",
        "AsgiThread",
        "AiohttpThread",
        "GranianProcess",
        "ManualClock",
        "free_port",
        "wait_for_port",
        "start_cli",
        "stop_process",
    ],
}
ADDED = re.compile(r"Added in version (\d+\.\d+\.\d+)\.")


def public_objects() -> list[tuple[str, Any]]:
    found = []
    for module_name, names in PUBLIC.items():
        module = importlib.import_module(module_name)
        for name in names or module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.append((f"{module_name}.{name}", obj))
    return found


def own_doc(obj: Any) -> str | None:
    doc = obj.__doc__
    # A dataclass without a docstring gets its signature as one: that documents nothing.
    if doc is None or (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")):
        return None
    return inspect.cleandoc(doc)


def released_versions() -> set[str]:
    from bayeux import __version__

    listed = set(re.findall(r"^## (\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), re.M))
    major, minor, _ = (int(n) for n in __version__.split("."))
    return listed | {__version__, f"{major}.{minor + 1}.0"}  # the next: "Unreleased"


def test_every_public_class_function_and_method_is_documented() -> None:
    versions = released_versions()
    undocumented, unversioned = [], []
    for name, obj in public_objects():
        doc = own_doc(obj)
        if doc is None:
            undocumented.append(name)
            continue
        match = ADDED.search(doc)
        if match is None or match.group(1) not in versions:
            unversioned.append(name)
        if not inspect.isclass(obj):
            continue
        for member, value in vars(obj).items():
            if member.startswith("_"):
                continue
            function = value.fget if isinstance(value, property) else value
            if isinstance(function, staticmethod | classmethod):
                function = function.__func__
            # Inherited docstrings count: an override documents what its base says.
            if inspect.isfunction(function) and not inspect.getdoc(getattr(obj, member)):
                undocumented.append(f"{name}.{member}")
    assert not undocumented, f"no docstring: {undocumented}"
    assert not unversioned, f"no 'Added in version X.Y.Z.' of a known version: {unversioned}"
    assert len(public_objects()) > 40


def test_the_api_reference_lists_every_public_object() -> None:
    listed = set()
    for page in (DOCS / "reference").glob("*.md"):
        listed |= set(re.findall(r"^::: ([\w.]+)", page.read_text(), re.M))
    names = {name for name, _ in public_objects()}
    assert not names - listed, f"missing from docs/reference: {sorted(names - listed)}"
    for target in listed:  # and every entry names something that exists
        module_name, _, attribute = target.rpartition(".")
        assert hasattr(importlib.import_module(module_name), attribute), target


def test_the_configuration_page_lists_every_option(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setenv("COLUMNS", "1000")  # one option a line in the help text

    sys.path.insert(0, str(DOCS))
    try:
        hooks = importlib.import_module("hooks")
    finally:
        sys.path.remove(str(DOCS))
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
