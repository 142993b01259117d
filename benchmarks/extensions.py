"""What the extensions of issue 36 cost: the Z85 codec against a loop per group (the standard
library's base-85, the same arithmetic), the data filters per message and per megabyte, and a
broadcast to many subscribers with and without the timestamp and binary extensions (each
stamps or encodes a broadcast once, whatever the number of subscribers).

.venv/bin/python benchmarks/extensions.py
"""

from __future__ import annotations

import base64
import functools
import random
import time
from collections.abc import Callable
from typing import Any

from bayeux import (
    BayeuxServer,
    BinaryExtension,
    DataFilter,
    DataFilterListener,
    NoMarkup,
    NormalizeText,
    NoScripts,
    RegexFilter,
    TimestampExtension,
)
from bayeux.core import z85

MB = 1 << 20
SUBSCRIBERS = 1000
CHAT = {"user": "alice", "text": "hello <b>everyone</b>, how is it going? ünïcödé", "n": 42}


def best_of(runs: int, action: Callable[[], Any]) -> float:
    """The shortest CPU time of `runs` calls, in seconds."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


def codec() -> None:
    data = random.Random(1).randbytes(MB)
    text = z85.encode(data)
    b85 = base64.b85encode(data)
    ours_encode = best_of(5, lambda: z85.encode(data))
    ours_decode = best_of(5, lambda: z85.decode(text))
    loop_encode = best_of(3, lambda: base64.b85encode(data))
    loop_decode = best_of(3, lambda: base64.b85decode(b85))
    small = random.Random(2).randbytes(1024)
    small_text = z85.encode(small)
    per_kb = best_of(5, lambda: [z85.decode(small_text) for _ in range(1000)]) / 1000
    print(
        f"Z85 encode 1 MB:  {ours_encode * 1e3:6.1f} ms (a loop per group: {loop_encode * 1e3:.0f})"
    )
    print(
        f"Z85 decode 1 MB:  {ours_decode * 1e3:6.1f} ms (a loop per group: {loop_decode * 1e3:.0f})"
    )
    print(f"Z85 decode 1 KB:  {per_kb * 1e6:6.1f} us")


def filters() -> None:
    chat = DataFilterListener(
        NormalizeText(), NoScripts(), NoMarkup(), RegexFilter(r"(?i)\bspam\b")
    )
    per_message = best_of(5, lambda: [chat(None, "/chat", {"data": CHAT}) for _ in range(10_000)])
    print(f"four filters, a chat message: {per_message / 10_000 * 1e6:.1f} us")
    text = ("hello <b>world</b> & friends, ünïcödé text " * (MB // 40))[:MB]
    ready: list[DataFilter] = [
        NoMarkup(),
        NoScripts(),
        NormalizeText(),
        RegexFilter(r"(?i)\bspam\b"),
    ]
    for data_filter in ready:
        seconds = best_of(3, functools.partial(data_filter, None, "/chat", text))
        print(f"{type(data_filter).__name__:>14}, 1 MB of text: {seconds * 1e3:6.1f} ms")


def fan_out(*extensions: Any, data: Any) -> float:
    """CPU seconds per publish to SUBSCRIBERS sessions (queues drained between publishes)."""
    server = BayeuxServer()
    for extension in extensions:
        server.add_extension(extension)
    sessions = [server.create_session() for _ in range(SUBSCRIBERS)]
    for session in sessions:
        server.subscribe(session, "/ticks")

    def publish_100() -> None:
        for _ in range(100):
            server.publish("/ticks", data)
        for session in sessions:
            session.drain()

    return best_of(5, publish_100) / 100


def broadcasts() -> None:
    plain = fan_out(data={"price": 1.5})
    stamped = fan_out(TimestampExtension(), data={"price": 1.5})
    binary = fan_out(BinaryExtension(), data={"data": random.Random(3).randbytes(1024)})
    print(f"a publish to {SUBSCRIBERS} sessions: {plain * 1e6:.0f} us")
    print(f"  with the timestamp extension: {stamped * 1e6:.0f} us")
    print(f"  1 KB of bytes with the binary extension: {binary * 1e6:.0f} us")


if __name__ == "__main__":
    codec()
    filters()
    broadcasts()
