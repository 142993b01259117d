"""mkdocs hooks: pages generated from the code at build time, so that they cannot drift, and a
build that fails when a public object has no docstring or no version.

`<!-- options -->` in a page becomes the table of every option of `python -m bayeux`, read
from its argument parser (which is generated from `Settings`): the option, its default, the
CometD name where there is one, and what it does, including what a client sees at the bound.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

from bayeux.__main__ import build_parser

ROOT = Path(__file__).resolve().parent.parent

MARKER = "<!-- options -->"
COMETD = re.compile(r"\s*\(CometD: ([^)]+)\)")


# What the reference documents: the names each module offers its users.
PUBLIC = {
    "bayeux": None,  # its __all__
    "bayeux.client": None,
    "bayeux.publisher": ["Publisher", "SyncPublisher"],
    "bayeux.admin": ["Admin", "AdminAuthorizer"],
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


def undocumented() -> tuple[list[str], list[str]]:
    """The public objects without a docstring, and the classes and functions without an
    "Added in version X.Y.Z." of a known version (a released one, or the next)."""
    versions = released_versions()
    missing, unversioned = [], []
    for name, obj in public_objects():
        doc = own_doc(obj)
        if doc is None:
            missing.append(name)
            continue
        match = ADDED.search(doc)
        if match is None or match.group(1) not in versions:
            unversioned.append(name)
        if not inspect.isclass(obj):
            continue
        # Its own members and those it inherits from the package's classes (BayeuxServer
        # is made of several: core/state.py up to core/server.py).
        inherited = [k for k in obj.__mro__ if k.__module__.startswith("bayeux")]
        members = {m: v for k in reversed(inherited) for m, v in vars(k).items()}
        for member, value in members.items():
            if member.startswith("_"):
                continue
            function = value.fget if isinstance(value, property) else value
            if isinstance(function, staticmethod | classmethod):
                function = function.__func__
            # Inherited docstrings count: an override documents what its base says.
            if inspect.isfunction(function) and not inspect.getdoc(getattr(obj, member)):
                missing.append(f"{name}.{member}")
    return missing, unversioned


def on_pre_build(**_: Any) -> None:
    missing, unversioned = undocumented()
    if missing or unversioned:
        raise PluginError(f"no docstring: {missing}; no 'Added in version': {unversioned}")


def options_table() -> str:
    parser = build_parser()
    rows = ["| option | default | CometD | what it does |", "|---|---|---|---|"]
    # argparse keeps its options in _actions; it has no public list of them.
    for action in parser._actions:
        if not action.option_strings or action.help in (None, argparse.SUPPRESS):
            continue
        if action.dest in ("help", "version"):
            continue
        names = ", ".join(f"`{o}`" for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse.BooleanOptionalAction):
            names = f"`--[no-]{action.option_strings[0].removeprefix('--')}`"
        help_text = str(action.help).replace("%%", "%").replace("|", "\\|")
        cometd_match = COMETD.search(help_text)
        cometd = f"`{cometd_match.group(1)}`" if cometd_match else ""
        help_text = COMETD.sub("", help_text)
        default = action.default
        shown = "" if default is None or default is False else f"`{default}`"
        if isinstance(default, str) and not default:
            shown = '`""`'
        rows.append(f"| {names} | {shown} | {cometd} | {help_text} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, options_table())
    return markdown
