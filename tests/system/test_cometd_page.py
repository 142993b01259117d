"""docs/cometd.md, the CometD side-by-side page: every Python block runs as it is (each in a
fresh namespace), and every public name its table gives exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bayeux
from bayeux import BayeuxServer, ServerChannel, ServerSession

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cometd.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)


def test_the_page_has_its_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_example_runs(index: int) -> None:
    exec(compile(BLOCKS[index], f"docs/cometd.md block {index + 1}", "exec"), {})


def test_the_names_in_the_table_exist() -> None:
    owners = {
        "server": BayeuxServer,
        "channel": ServerChannel,
        "session": ServerSession,
        "bayeux": bayeux,
    }
    named = re.findall(r"`(?:await )?(server|channel|session|bayeux)\.(\w+)", PAGE.read_text())
    assert len(named) > 30
    missing = [f"{o}.{n}" for o, n in named if not hasattr(owners[o], n)]
    assert not missing


def test_the_server_api_pages_channel_example_runs() -> None:
    page = (PAGE.parent / "server-api.md").read_text()
    section = page[page.index("## Channels as objects") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    exec(compile(block.group(1), "docs/server-api.md channels", "exec"), {})


def flow_blocks() -> list[str]:
    page = (PAGE.parent / "server-api.md").read_text()
    section = page[page.index("## Flow control per session") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_flow_control_examples_run() -> None:
    blocks = flow_blocks()
    assert len(blocks) == 2
    for index, block in enumerate(blocks):
        exec(compile(block, f"docs/server-api.md flow control {index + 1}", "exec"), {})
