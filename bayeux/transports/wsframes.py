"""Server-to-client WebSocket frames (RFC 6455) as bytes, for every host that carries the
websocket transport: built in one piece per payload, and made once for all the sockets a
broadcast goes to (a large payload's frame, a compressed payload within a loop turn).

Compression is permessage-deflate (RFC 7692) without server context takeover: every message
is compressed on its own, so its bytes are the same for every socket that negotiated the same
window (connection/deflate.py negotiates it and inflates what clients send).
"""

from __future__ import annotations

import asyncio
import zlib

from .shared import LARGE, DerivedBytes

# What a sync flush ends with, and RFC 7692 leaves out of every compressed message.
DEFLATE_TAIL = b"\x00\x00\xff\xff"
_LEVEL = 6
# Frames compressed in the current loop turn, by window bits then payload.
_compressed: dict[int, dict[bytes, bytes]] = {}
_CACHED = 256  # payloads remembered per loop turn
_CACHED_SIZE = 16 * 1024  # the largest payload remembered: the cache stays under ~8 MiB


def compress(payload: bytes, window_bits: int = 15) -> bytes:
    """`payload` deflated as one message; identical payloads within a loop turn are compressed
    once (the cache is emptied at the end of the turn)."""
    by_payload = _compressed.get(window_bits)
    if by_payload is None:
        if not _compressed:
            asyncio.get_running_loop().call_soon(_compressed.clear)
        by_payload = _compressed[window_bits] = {}
    out = by_payload.get(payload)
    if out is None:
        deflater = zlib.compressobj(_LEVEL, zlib.DEFLATED, -window_bits)
        out = deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)
        out = out[: -len(DEFLATE_TAIL)] if out.endswith(DEFLATE_TAIL) else out
        if len(by_payload) < _CACHED and len(payload) <= _CACHED_SIZE:
            by_payload[payload] = out
    return out


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
