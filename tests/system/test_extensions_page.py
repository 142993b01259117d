"""docs/extensions.md, the page of the extensions and data filters: every Python block runs as
it is (each in a fresh namespace), and its tables name settings and classes that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bayeux
from bayeux import Settings

PAGE = Path(__file__).resolve().parents[2] / "docs" / "extensions.md"
TEXT = PAGE.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.S)


def test_each_concept_has_its_example() -> None:
    sections = re.split(r"^## ", TEXT, flags=re.M)[1:]
    assert [s.splitlines()[0] for s in sections] == [
        "Timestamp",
        "Binary data",
        "Activity",
        "Data filters",
    ]
    assert all("```python" in section for section in sections)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_example_runs(index: int) -> None:
    exec(compile(BLOCKS[index], f"docs/extensions.md block {index + 1}", "exec"), {})


def test_the_settings_and_classes_it_names_exist() -> None:
    options = set(re.findall(r"`--([a-z-]+)`", TEXT))
    assert options >= {
        "timestamp-extension",
        "binary-extension",
        "max-binary-bytes",
        "activity-max-inactivity",
        "activity-mode",
    }
    fields = {f.replace("_", "-") for f in Settings.__dataclass_fields__}
    assert options - {"timeout", "max-interval", "redis"} <= fields
    for name in ("NoMarkup", "NoScripts", "RegexFilter", "NormalizeText", "DataFilter"):
        assert f"`{name}" in TEXT and hasattr(bayeux, name)
