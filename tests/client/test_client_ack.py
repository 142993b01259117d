"""The ack extension against a lost reply: a proxy between client and server drops the first
response that carries messages and breaks the connection. With ack, the next connect tells
the server the client never got that batch, and it comes again; without, it is lost."""

from __future__ import annotations

import asyncio
import time

import pytest

from bayeux import Settings
from bayeux.client import AckExtension, Client, ClientExtension
from bayeux.testing import ServerThread, free_port


class LosingProxy:
    """Forwards 127.0.0.1:port to the server, except the first chunk from the server that
    carries a message on `channel`: that one is dropped and the connection broken."""

    def __init__(self, upstream_port: int, channel: bytes) -> None:
        self.upstream_port = upstream_port
        self.marker = b'"channel":"' + channel + b'"'
        self.port = free_port()
        self.dropped = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.serving: set[asyncio.Task[None]] = set()

    async def start(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self, listening: asyncio.Server) -> None:
        listening.close()
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*self.serving, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.serving.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers += [writer, up_writer]

        async def pipe(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, down: bool
        ) -> None:
            try:
                while chunk := await source.read(65536):
                    if down and not self.dropped and self.marker in chunk.replace(b" ", b""):
                        self.dropped += 1
                        break  # the reply is lost, the connection broken
                    sink.write(chunk)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()
                up_writer.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
@pytest.mark.parametrize("with_ack", [True, False])
def test_a_lost_reply_is_sent_again_only_with_ack(transport: str, with_ack: bool) -> None:
    with ServerThread(Settings(timeout=1500, max_interval=5000)) as server:

        async def scenario() -> list[int]:
            proxy = LosingProxy(server.port, b"/lossy")
            listening = await proxy.start()
            received: list[int] = []
            extensions: list[ClientExtension] = [AckExtension()] if with_ack else []
            url = f"http://127.0.0.1:{proxy.port}/cometd"
            client = Client(
                url, transports=[transport], extensions=extensions, backoff=0.05, msgpack=False
            )
            try:
                async with client:
                    await client.subscribe("/lossy", lambda m: received.append(m["data"]))
                    await asyncio.sleep(0.2)  # a connect held
                    for n in range(3):
                        server.call(server.endpoint.server.publish, "/lossy", n)
                    await asyncio.sleep(0.3)
                    for n in range(3, 6):
                        server.call(server.endpoint.server.publish, "/lossy", n)
                    deadline = time.monotonic() + 5
                    while len(received) < 6 and time.monotonic() < deadline:
                        await asyncio.sleep(0.05)
                    await asyncio.sleep(0.3)
            finally:
                await proxy.stop(listening)
            assert proxy.dropped == 1
            return received

        received = asyncio.run(asyncio.wait_for(scenario(), 30))
        if with_ack:
            assert received == [0, 1, 2, 3, 4, 5]
        else:
            # What the lost reply carried (0 at least) is gone; the rest came in order.
            assert 0 not in received and received == sorted(received) and 5 in received
