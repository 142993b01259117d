"""Accepting connections on a listening socket, and what to do when the process is out of files.

Tornado's accept handler (netutil.add_accept_handler) lets an `accept` failing with EMFILE
(the open-file limit reached) escape into the loop: the error was logged with its traceback
each time the listening socket was readable (96 in 3 s), and a client arriving after the
connections holding the files had closed got no answer (tests/system/test_open_files.py).
Here the listening socket is left unwatched for `PAUSE_SECONDS` instead (the clients wait in
the kernel's listen queue, which refuses past its backlog), and the shortage is counted and
logged by the caller.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

log = logging.getLogger("bayeux.listener")

# Connections accepted per readiness of the socket at most, so that a storm of them does not
# keep the loop from the connections already open (Tornado's figure, its listen backlog).
ACCEPTS_PER_TURN = 128
# How long accepting pauses once the process (or the system) is out of files or memory.
PAUSE_SECONDS = 0.25
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def accept_handler(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    callback: Callable[[socket.socket, Any], None],
    exhausted: Callable[[OSError], None] | None = None,
) -> Callable[[], None]:
    """Calls `callback(connection, address)` on `loop` for each connection accepted on `sock`
    (a bound, listening, non-blocking socket); `exhausted(error)` when an accept failed for
    want of files or memory (accepting pauses). Returns the function that stops accepting."""
    fd = sock.fileno()
    state = {"stopped": False, "paused": False}

    def resume() -> None:
        if not state["stopped"] and state["paused"]:
            state["paused"] = False
            loop.add_reader(fd, ready)

    def ready() -> None:
        for _ in range(ACCEPTS_PER_TURN):
            if state["stopped"]:
                return
            try:
                connection, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # every waiting connection taken
            except ConnectionAbortedError:
                continue  # closed while it waited in the queue
            except OSError as exc:
                if exc.errno not in _EXHAUSTED:
                    log.error("accepting a connection failed: %s", exc)
                    return
                state["paused"] = True
                loop.remove_reader(fd)
                loop.call_later(PAUSE_SECONDS, resume)
                if exhausted is not None:
                    exhausted(exc)
                return
            callback(connection, address)

    def stop() -> None:
        state["stopped"] = True
        if not state["paused"]:
            loop.remove_reader(fd)

    loop.add_reader(fd, ready)
    return stop
