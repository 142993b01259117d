"""A client's byte stream on an asyncio transport, with the part of Tornado's IOStream interface
the connection layer uses: `read_bytes(n, partial=True)`, `write`, `writing`, `closed`, `close`
and a close callback.

Why not IOStream itself: per long-polling request it makes three `recv` calls (it reads until
the socket is empty, and tries a read before waiting) and runs its event handling in Python; an
asyncio protocol is handed each read as it comes, one `recv` a request. Measured with no Bayeux
work at all (benchmarks/http_floor.py): 26 us of CPU a request through IOStream, 16 us through
a Protocol; with the connection layer on top, 30-36% more requests per CPU-second than on
IOStream (benchmarks/requests.py). Tornado's IOLoop is asyncio's loop: this runs on it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from tornado.iostream import StreamClosedError


class ReadBuffer:
    """Where every connection of a listener receives into (a BufferedProtocol's buffer).
    asyncio's plain Protocol path allocates 256 KiB for each `recv` and shrinks it to what
    came: glibc serves that with mmap, mremap and munmap, three system calls and a page fault
    a read (measured with strace under benchmarks/requests.py). One buffer serves all
    connections: each read is copied out (its own length only) before the next is made."""

    def __init__(self, size: int) -> None:
        self.view = memoryview(bytearray(size))


# Writes larger than this go to the transport a slice at a time, each once the socket took the
# one before: what a client that does not read holds in our memory is then a slice, while the
# rest stays in the caller's bytes (a broadcast's frame, shared by every socket). asyncio
# copies into its own buffer whatever the socket does not take at once (benchmarks/attacks.py,
# stalled readers of a big broadcast).
WRITE_SLICE = 64 * 1024
# How long a connection closing after its last writes may take to have them read.
CLOSE_GRACE_SECONDS = 5.0


class TransportStream(asyncio.BufferedProtocol):
    """One accepted connection. Reads are buffered up to `max_buffer_size` bytes while nobody
    reads them (a client pipelining past its answers is cut off rather than buffered), and the
    socket is not read meanwhile."""

    def __init__(self, max_buffer_size: int, read_buffer: ReadBuffer) -> None:
        self.max_buffer_size = max_buffer_size
        self.read_buffer = read_buffer
        self.transport: asyncio.Transport | None = None
        # Bytes, not a bytearray: one emptied from the front keeps its allocation, and an
        # idle connection would hold its last burst's worth (rare: only what came unasked).
        self._buffer = b""
        self._reading: asyncio.Future[bytes] | None = None
        # Set while writing waits: the transport paused us, or the outbox is not empty.
        self._drained: asyncio.Future[None] | None = None
        self._paused = False
        # What waits to be handed to the transport (see WRITE_SLICE), in order.
        self._outbox: list[memoryview] = []
        self._outbox_bytes = 0
        self._close_when_written = False
        self._close_callback: Callable[[], None] | None = None
        self._closed = False

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # Told to pause as soon as anything is left unsent: a write's future resolves when
        # the socket took everything (as IOStream's does).
        transport.set_write_buffer_limits(high=0)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.read_buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.read_buffer.view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        reading = self._reading
        if reading is not None and not reading.done() and not self._buffer:
            self._reading = None
            reading.set_result(data)
            return
        self._buffer += data
        if len(self._buffer) > self.max_buffer_size:
            self.close()
        elif self.transport is not None:
            self.transport.pause_reading()  # read again once what is here has been taken

    def eof_received(self) -> bool:
        return False  # half-closed: close, as IOStream does

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        for future in (self._reading, self._drained):
            if future is not None and not future.done():
                future.set_exception(StreamClosedError())
        self._reading = self._drained = None
        self._outbox.clear()
        self._outbox_bytes = 0
        callback, self._close_callback = self._close_callback, None
        if callback is not None:
            callback()

    def pause_writing(self) -> None:
        self._paused = True
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._paused = False
        self._feed()
        if self._paused or self._outbox:
            return
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _feed(self) -> None:
        """Hands the outbox to the transport a slice at a time, while the socket takes it."""
        transport = self.transport
        outbox = self._outbox
        while outbox and not self._paused and transport is not None:
            view = outbox[0]
            if len(view) > WRITE_SLICE:
                chunk, outbox[0] = view[:WRITE_SLICE], view[WRITE_SLICE:]
            else:
                chunk = outbox.pop(0)
            self._outbox_bytes -= len(chunk)
            transport.write(chunk)  # may pause us at once
        if outbox:
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
        elif self._close_when_written and transport is not None:
            transport.close()

    # ------------------------------------------------------------ the IOStream interface

    def read_bytes(self, num_bytes: int, partial: bool = False) -> asyncio.Future[bytes]:
        """The next bytes read (at most `num_bytes`; only `partial=True` is supported)."""
        assert partial, "only partial reads"
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if self._buffer:
            data, self._buffer = self._buffer[:num_bytes], self._buffer[num_bytes:]
            future.set_result(data)
            if not self._buffer and self.transport is not None and not self._closed:
                self.transport.resume_reading()
        elif self._closed:
            future.set_exception(StreamClosedError())
        else:
            self._reading = future
        return future

    def local_ip(self) -> str | None:
        """Our address on this connection."""
        name = self.transport.get_extra_info("sockname") if self.transport is not None else None
        return str(name[0]) if isinstance(name, tuple) and name else None

    def peer_certificate(self) -> dict[str, Any] | None:
        """The client's TLS certificate, when it presented one (the server asks for one with
        --ca-file), as ssl.SSLSocket.getpeercert() gives it."""
        if self.transport is None:
            return None
        certificate = self.transport.get_extra_info("peercert")
        return certificate if isinstance(certificate, dict) and certificate else None

    def write_now(self, data: bytes) -> asyncio.Future[None] | None:
        """Writes `data`; None when the socket took all of it, else a future resolved once it
        has (failed with StreamClosedError if the connection breaks first)."""
        if self._closed or self.transport is None or self.transport.is_closing():
            raise StreamClosedError()
        if self._outbox or len(data) > WRITE_SLICE:
            self._outbox.append(memoryview(data))
            self._outbox_bytes += len(data)
            self._feed()
        else:
            self.transport.write(data)
        drained = self._drained
        if drained is None:
            return None
        # A future of its own: a caller cancelled while waiting must not cancel the others'.
        return asyncio.shield(drained)

    def write(self, data: bytes) -> asyncio.Future[None]:
        written = self.write_now(data)
        if written is not None:
            return written
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def writing(self) -> bool:
        return self._drained is not None

    def unsent(self) -> int:
        """Bytes written that the socket has not taken yet."""
        buffered = self.transport.get_write_buffer_size() if self.transport is not None else 0
        return buffered + self._outbox_bytes

    def closed(self) -> bool:
        return (
            self._closed
            or self._close_when_written
            or self.transport is None
            or self.transport.is_closing()
        )

    def close_after_writing(self) -> None:
        """Closes once what was written has been sent (reading nothing more meanwhile)."""
        if self.transport is None or self.transport.is_closing():
            return
        if self._outbox:
            self._close_when_written = True
            self.transport.pause_reading()
            # A client that never reads does not keep it open: dropped after a grace period.
            asyncio.get_running_loop().call_later(CLOSE_GRACE_SECONDS, self.close)
        else:
            self.transport.close()

    def close(self) -> None:
        """Closes now, dropping whatever was not sent (as IOStream does)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        self._close_callback = callback

    def set_nodelay(self, value: bool) -> None:
        sock: Any = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(value))


def retrieve(future: asyncio.Future[Any]) -> None:
    """A done callback for a write nobody awaits (a control frame): takes its failure, which
    would otherwise be logged as "Future exception was never retrieved" when the connection
    breaks, once per write."""
    if not future.cancelled():
        future.exception()
