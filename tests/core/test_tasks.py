"""TaskSet: work that runs on its own is held until done and its failures are not lost."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from bayeux.core.tasks import TaskSet


class Expected(Exception):
    pass


def test_a_task_is_held_until_done_and_its_failure_logged(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.tasks")

    async def main() -> None:
        tasks = TaskSet("the work", log)

        async def fail() -> None:
            await asyncio.sleep(0.01)
            raise RuntimeError("boom")

        tasks.spawn(fail())
        gc.collect()  # only the set holds the task
        assert len(tasks) == 1
        await asyncio.sleep(0.05)
        assert len(tasks) == 0

    with caplog.at_level(logging.ERROR, "test.tasks"):
        asyncio.run(main())
    assert [r.getMessage() for r in caplog.records] == ["the work failed"]
    assert "never retrieved" not in caplog.text


def test_expected_failures_and_done_callbacks(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> list[str]:
        tasks = TaskSet("the work", logging.getLogger("test.tasks"), expected=(Expected,))
        seen: list[str] = []

        async def raise_expected() -> None:
            raise Expected()

        async def answer() -> str:
            return "done"

        tasks.spawn(raise_expected())
        tasks.spawn(answer(), lambda t: seen.append(t.result()))
        blocked = tasks.spawn(asyncio.sleep(10))
        await asyncio.sleep(0.01)
        await tasks.cancel()
        assert blocked.cancelled() and len(tasks) == 0
        return seen

    with caplog.at_level(logging.DEBUG, "test.tasks"):
        assert asyncio.run(main()) == ["done"]
    assert caplog.records == []
