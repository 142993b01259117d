"""A deliberately crude WebSocket client on a plain socket, for tests that need what a real client
library would not do: stop reading, shrink its receive buffer, send frames without waiting."""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from bayeux.testing import client_frame


def masked_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client-to-server frame (clients must mask)."""
    return client_frame(payload, opcode)


class RawWebSocket:
    def __init__(self, url: str, *, rcvbuf: int | None = None, headers: str = "") -> None:
        parts = urlsplit(url)
        self.sock = socket.socket()
        if rcvbuf is not None:
            # Before connect(), so that the kernel does not grow the window past it.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect((parts.hostname, parts.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n".encode()
        )
        self.reader = self.sock.makefile("rb")
        self.status_line = self.reader.readline()
        while self.reader.readline() not in (b"\r\n", b""):
            pass

    def send(self, messages: Any) -> None:
        self.sock.sendall(masked_frame(json.dumps(messages).encode()))

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame."""
        first = self.reader.read(2)
        if len(first) < 2:
            raise EOFError("connection closed")
        length = first[1] & 0x7F
        if length == 126:
            length = int.from_bytes(self.reader.read(2), "big")
        elif length == 127:
            length = int.from_bytes(self.reader.read(8), "big")
        return first[0] & 0x0F, self.reader.read(length)

    def read(self) -> list:
        """The messages of the next data frame (skipping pings)."""
        while True:
            opcode, payload = self.read_frame()
            if opcode in (0x1, 0x2):
                return json.loads(payload)
            if opcode == 0x8:
                raise EOFError(f"closed: {payload[:2].hex()}")

    def close(self) -> None:
        self.sock.close()
