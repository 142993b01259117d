"""Giving freed memory back to the system after a large input.

A megabyte body is read in 64 KiB pieces and joined; glibc keeps the pieces' memory in its heap
once they are freed, among smaller objects, and the process's resident size stays at its high
water mark. Under a flood of large bodies from one address (issue 32's slow-hook attack: 150
connections of 1 MiB) that left the server 190 MiB larger although its budget held what was
live to 128 MiB; trimming the heap after each large input, at most every `MIN_INTERVAL`
seconds, brought the peak to about 165 MiB (tests/system/test_hook_backlog.py).

Only where the C library has `malloc_trim` (glibc); elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

# Inputs at least this large are followed by a trim; smaller ones leave nothing to give back.
LARGE_INPUT = 64 * 1024
# A trim walks the heap: at most this often, whatever the rate of large inputs.
MIN_INTERVAL = 0.05


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


_TRIM = _malloc_trim()
_last = 0.0


def large_input_done(size: int) -> None:
    """A request body or WebSocket message of `size` bytes was handled and let go."""
    global _last
    if size < LARGE_INPUT or _TRIM is None:
        return
    now = time.monotonic()
    if now - _last >= MIN_INTERVAL:
        _last = now
        _TRIM(0)
