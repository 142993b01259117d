"""permessage-deflate (RFC 7692) as the standalone server speaks it.

- Server to client, no context takeover, always (a server may say so whatever the offer):
  every message is compressed on its own, so a frame's compressed bytes are the same for every
  socket that negotiated the same window, and a broadcast written to many subscribers in one
  loop turn is compressed once (`transports/wsframes.py` compresses).
- Client to server, no context takeover when the client offers it (then no socket keeps an
  inflate window between messages); otherwise the client keeps its context and the socket an
  inflater, with the window cut to 4 KiB when the client lets the server choose it (Tornado's
  client, for one, does not understand a bare `client_no_context_takeover` in the answer).
- Either way an inbound message is inflated no further than max_message_size: a few KiB of
  compressed zeros cannot make gigabytes (`InboundDeflate`, a wsproto extension).
"""

from __future__ import annotations

import zlib
from typing import Any

from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

from ..transports.wsframes import DEFLATE_TAIL

NAME = "permessage-deflate"
# The inflate window asked of clients that keep their compression context (and let us choose).
CLIENT_WINDOW_BITS = 12


class InboundDeflate(Extension):
    """The wsproto side of the extension: negotiation, and inflating what clients send."""

    name = NAME

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        # The window our frames must fit (a client may ask for less than 15 bits).
        self.server_window_bits = 15
        # The client's: what our inflater needs; and whether it keeps context across messages.
        self.client_window_bits = 15
        self.client_takeover = True
        self._enabled = False
        self._control = False
        self._compressed = False
        self._inflater: Any = None  # a zlib decompressor while a compressed message arrives
        self._inflated = 0

    def enabled(self) -> bool:
        return self._enabled

    def inflating(self) -> bool:
        """Whether the data message arriving now is compressed."""
        return self._compressed

    def offer(self) -> bool | str:
        return False  # a server answers offers, it makes none

    def accept(self, offer: str) -> bool | str | None:
        answer = ["server_no_context_takeover"]
        for parameter in (p.strip() for p in offer.split(";")[1:]):
            name, _, value = parameter.partition("=")
            name, value = name.strip(), value.strip().strip('"')
            if name == "server_max_window_bits":
                if not value.isdigit() or not 8 <= int(value) <= 15:
                    return None  # an offer we cannot honour: decline it
                self.server_window_bits = int(value)
                answer.append(f"server_max_window_bits={value}")
            elif name == "client_max_window_bits":
                if value and (not value.isdigit() or not 8 <= int(value) <= 15):
                    return None
                # The client lets us choose (a bare parameter) or names its own window.
                self.client_window_bits = min(int(value) if value else 15, CLIENT_WINDOW_BITS)
                answer.append(f"client_max_window_bits={self.client_window_bits}")
            elif name == "client_no_context_takeover":
                self.client_takeover = False
                answer.append("client_no_context_takeover")
            elif name != "server_no_context_takeover":
                return None
        self._enabled = True
        return "; ".join(answer)

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        self._control = opcode.iscontrol()
        if self._control:
            return RsvBits(False, False, False)
        if opcode is Opcode.CONTINUATION:
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR
        else:
            self._compressed = rsv.rsv1
            self._inflated = 0
            if rsv.rsv1 and self._inflater is None:
                self._inflater = zlib.decompressobj(-self.client_window_bits)
        return RsvBits(True, False, False)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if self._control or not self._compressed:
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if self._control or not self._compressed or not fin:
            return None
        out = self._inflate(DEFLATE_TAIL, tail=True)
        if not self.client_takeover or (self._inflater is not None and self._inflater.eof):
            # The next message starts afresh: no window kept meanwhile (and a stream that
            # ended with a final block cannot go on).
            self._inflater = None
        self._compressed = False
        return out

    def _inflate(self, data: bytes, *, tail: bool = False) -> bytes | CloseReason:
        inflater = self._inflater
        assert inflater is not None
        if inflater.eof:
            # The message's deflate stream ended with a final block: only our own tail may
            # follow. zlib kept anything else as `unused_data`, growing it at every frame
            # (benchmarks/attacks.py).
            return b"" if tail else CloseReason.INVALID_FRAME_PAYLOAD_DATA
        budget = self.max_size - self._inflated + 1
        try:
            out = inflater.decompress(data, budget)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if inflater.unused_data and not tail:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self.max_size or inflater.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        inflated: bytes = out
        return inflated
