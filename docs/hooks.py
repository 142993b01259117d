"""mkdocs hooks: pages generated from the code at build time, so that they cannot drift.

`<!-- options -->` in a page becomes the table of every option of `python -m bayeux`, read
from its argument parser (which is generated from `Settings`): the option, its default, the
CometD name where there is one, and what it does, including what a client sees at the bound.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from bayeux.__main__ import build_parser

MARKER = "<!-- options -->"
COMETD = re.compile(r"\s*\(CometD: ([^)]+)\)")


def options_table() -> str:
    parser = build_parser()
    rows = ["| option | default | CometD | what it does |", "|---|---|---|---|"]
    # argparse keeps its options in _actions; it has no public list of them.
    for action in parser._actions:
        if not action.option_strings or action.help in (None, argparse.SUPPRESS):
            continue
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
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
