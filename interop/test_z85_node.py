"""The server's Z85 codec (core/z85.py) against CometD's own, the JavaScript one its
BinaryExtension uses (npm `cometd`, Z85.js), run in Node: on random bytes of every length up to
a few groups and beyond, each side decodes what the other encoded to the same bytes, and both
encode the same bytes to the same text."""

from __future__ import annotations

import json
import random
from pathlib import Path

from bayeux.core import z85

from .conftest import run_node

LENGTHS = [*range(0, 33), 63, 64, 65, 1021, 1024, 65_539]


def test_python_and_cometd_js_agree_on_random_bytes(tmp_path: Path) -> None:
    rng = random.Random(85)
    samples = [rng.randbytes(n) for n in LENGTHS for _ in range(4)]
    # Runs of the extreme bytes: the largest group, and the smallest.
    samples += [b"\xff" * n for n in range(1, 9)] + [b"\x00" * n for n in range(1, 9)]
    ours = [z85.encode(sample) for sample in samples]
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"bytes": [s.hex() for s in samples], "texts": ours}))
    (result,) = run_node("z85_check.mjs", str(cases))
    assert result["ok"], result.get("error")
    assert result["alike"]
    assert result["encoded"] == ours
    assert [bytes.fromhex(h) for h in result["decoded"]] == samples
    assert [z85.decode(text) for text in result["encoded"]] == samples
