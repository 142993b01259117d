"""JSON encoding of a Bayeux delivery: standard library vs orjson (why orjson is a dependency).

.venv/bin/python benchmarks/codec.py
"""

from __future__ import annotations

import json
import time

import orjson

MESSAGE = {
    "channel": "/chat/room/42",
    "data": {
        "user": "alice",
        "text": "hello everyone, how is it going?",
        "ts": 1764140000123,
        "tags": ["a", "b"],
        "reply_to": None,
    },
    "ext": {"seq": 123456},
}
ROUNDS = 200_000


def per_call_us(encode, rounds: int = ROUNDS) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            encode(MESSAGE)
        best = min(best, time.perf_counter() - started)
    return best / rounds * 1e6


def main() -> None:
    stdlib = per_call_us(
        lambda m: json.dumps(m, separators=(",", ":"), ensure_ascii=False).encode()
    )
    fast = per_call_us(orjson.dumps)
    assert orjson.loads(orjson.dumps(MESSAGE)) == json.loads(json.dumps(MESSAGE))
    print(f"json.dumps + encode: {stdlib:.2f} us per message")
    print(f"orjson.dumps:        {fast:.2f} us per message")
    print(f"orjson is {stdlib / fast:.1f}x faster (best of 5 runs of {ROUNDS} encodings)")


if __name__ == "__main__":
    main()
