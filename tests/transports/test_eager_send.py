"""bayeux.adapters.eager: frames sent through a host's async send without a task when the send
does not suspend, in order and with the host's failures reported when it does."""

from __future__ import annotations

import asyncio

import pytest

from bayeux.adapters.eager import send_eagerly


class Host:
    """A host's send: writes at once unless `paused` (a future the send waits on)."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.paused: asyncio.Future[None] | None = None
        self.yield_first = False
        self.broken = False

    async def send(self, payload: bytes, binary: bool) -> None:
        if self.broken:
            raise ConnectionResetError("gone")
        if self.yield_first:
            await asyncio.sleep(0)  # a bare yield to the loop
        if self.paused is not None:
            await self.paused
        self.written.append(payload)


def test_sends_that_do_not_suspend_are_written_before_it_returns() -> None:
    async def scenario() -> None:
        host = Host()
        tasks_before = len(asyncio.all_tasks())
        assert send_eagerly(host.send, [b"1", b"2", b"3"], False) is None
        assert host.written == [b"1", b"2", b"3"]
        assert len(asyncio.all_tasks()) == tasks_before  # no task was made

    asyncio.run(scenario())


@pytest.mark.parametrize("suspension", ["paused transport", "bare yield"])
def test_a_suspended_send_finishes_in_order_and_resolves_the_future(suspension: str) -> None:
    async def scenario() -> None:
        host = Host()
        loop = asyncio.get_running_loop()
        if suspension == "paused transport":
            host.paused = loop.create_future()
        else:
            host.yield_first = True
        written = send_eagerly(host.send, [b"1", b"2", b"3"], True)
        assert written is not None and host.written == []
        if host.paused is not None:
            await asyncio.sleep(0.01)
            assert not written.done() and host.written == []
            host.paused.set_result(None)
        await asyncio.wait_for(written, 1)
        assert host.written == [b"1", b"2", b"3"]

    asyncio.run(scenario())


def test_a_failing_send_gives_a_failed_future_not_an_exception() -> None:
    async def scenario() -> None:
        host = Host()
        host.broken = True
        written = send_eagerly(host.send, [b"1"], False)
        assert written is not None
        with pytest.raises(ConnectionResetError):
            await written
        # A failure after a suspension reaches the future too.
        host.broken = False
        host.paused = asyncio.get_running_loop().create_future()
        written = send_eagerly(host.send, [b"1"], False)
        assert written is not None
        host.paused.set_exception(BrokenPipeError("gone"))
        with pytest.raises(BrokenPipeError):
            await written

    asyncio.run(scenario())


def test_start_returns_what_finished_at_once_and_finishes_what_waits() -> None:
    from bayeux.adapters.eager import Finished, start

    async def at_once() -> str:
        return "answered"

    async def waits(future: asyncio.Future[str]) -> str:
        return "held, then " + await future

    async def main() -> None:
        finished = start(at_once())
        assert isinstance(finished, Finished) and finished.value == "answered"
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        started = start(waits(future))
        assert not isinstance(started, Finished)
        task = asyncio.ensure_future(started.finish())
        await asyncio.sleep(0)
        assert not task.done()
        future.set_result("released")
        assert await task == "held, then released"

    asyncio.run(main())


def test_start_raises_what_the_first_step_raised() -> None:
    from bayeux.adapters.eager import start

    async def fails() -> None:
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        start(fails())
