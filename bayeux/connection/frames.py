"""Writing to a stream without the per-write bookkeeping of the general path: server-to-client
WebSocket frames built in one piece, and bytes sent straight to an idle socket."""

from __future__ import annotations

import asyncio
from typing import Any

import tornado.iostream

from ..transports.shared import LARGE, DerivedBytes
from .deflate import compress
from .stream import TransportStream

# A connection's bytes: the standalone server's TransportStream, or a Tornado IOStream (the
# embedded path's WebSocketHandler).
Stream = TransportStream | tornado.iostream.IOStream

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
RSV1 = 0x40  # "compressed", with permessage-deflate


def frame_header(opcode: int, length: int) -> bytes:
    """RFC 6455 header of a final, unmasked (server-to-client) frame."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 1 << 16:
        return bytes((0x80 | opcode, 126)) + length.to_bytes(2, "big")
    return bytes((0x80 | opcode, 127)) + length.to_bytes(8, "big")


# Frames of large payloads, made once for all the sockets a broadcast goes to.
_large_frames = DerivedBytes(4 * 1024 * 1024)


def _frame(payload: bytes, opcode: int, deflate_bits: int | None) -> bytes:
    if deflate_bits is None:
        return frame_header(opcode, len(payload)) + payload
    compressed = compress(payload, deflate_bits)
    return frame_header(opcode | RSV1, len(compressed)) + compressed


def data_frames(payloads: list[bytes], binary: bool, deflate_bits: int | None = None) -> bytes:
    """One frame per payload, concatenated for a single write; with `deflate_bits`, each
    compressed (permessage-deflate with that window, RSV1 set). A large payload's frame is
    made once for every socket that sends that same payload object."""
    opcode = OPCODE_BINARY if binary else OPCODE_TEXT
    out = []
    for payload in payloads:
        if len(payload) >= LARGE:
            out.append(
                _large_frames.get(
                    payload, (opcode, deflate_bits), lambda p: _frame(p, opcode, deflate_bits)
                )
            )
        else:
            out.append(_frame(payload, opcode, deflate_bits))
    return out[0] if len(out) == 1 else b"".join(out)


def write_now(stream: Stream, data: bytes) -> asyncio.Future[Any] | None:
    """Writes `data`; None when the socket took all of it at once, else a future resolved once
    it has been (the standalone server's TransportStream does this itself).

    With nothing buffered, a plain TCP stream's socket is sent to directly: IOStream.write would
    make a future and bookkeeping per write for the same single send() (measured: 2-3x slower
    fan-out, benchmarks/fanout.py). Whatever the socket does not take (or any error) goes
    through IOStream.write, which keeps its usual semantics."""
    if isinstance(stream, TransportStream):
        return stream.write_now(data)
    if type(stream) is tornado.iostream.IOStream and not stream.writing() and not stream.closed():
        try:
            sent = stream.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # let IOStream see the error and close the stream its own way
        if sent == len(data):
            return None
        data = data[sent:]
    return stream.write(data)
