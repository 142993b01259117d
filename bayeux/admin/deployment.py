"""Asking every process of a deployment on Redis, and gathering their answers: what the admin
page shows of the whole deployment, and what a scrape of `/metrics` reads of every worker.

Each process subscribes (Redis pub/sub, on a connection of its own, apart from the engine's)
to the deployment's ask channel, to its worker group's (the workers `--workers` started
together, on one host: one scrape target), and to its own reply channel. An ask is one
PUBLISH, whose count of receivers says how many answers to wait for; each process answers
with what its handler for that kind of ask returns, bounded by the handler (a page of rows, its
metric families), on the asker's reply channel. The asker waits for them all, or `timeout`,
and says how many it got of how many it asked. Nothing is written to a key, so nothing is left
behind, and a process that nobody asks pays one idle connection.

A process answers its own asks directly, not through Redis: with Redis away, the page still
shows this process (and says that the others could not be asked).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..core.engine import Engine
from ..core.tasks import TaskSet
from .snapshot import Observed, Process, this_process

log = logging.getLogger("bayeux.admin")

# An answer to one ask, from this process's state: a JSON value (ValueError: a bad ask).
Handler = Callable[[dict[str, Any]], Any]

ASK_TIMEOUT = 1.0
# Asks of this process in flight at once: more are refused rather than queued.
MAX_ASKING = 8
# What one answer (or ask) may weigh: a page of rows or one worker's metric families.
MAX_MESSAGE = 4 * 1024 * 1024


_deployments: weakref.WeakKeyDictionary[Observed, Deployment] = weakref.WeakKeyDictionary()


class DeploymentUnavailable(Exception):
    """Redis cannot be reached (or this process is asking too much at once)."""


@dataclass
class Gathered:
    """The answers to one ask: this process's first; `asked` processes were asked."""

    answers: list[Any]
    asked: int
    processes: list[str] = field(default_factory=list)
    # Whether other processes could be asked at all (False: Redis is away).
    reached: bool = True

    @property
    def answered(self) -> int:
        return len(self.answers)


class _Gathering:
    __slots__ = ("answers", "processes", "expected", "complete")

    def __init__(self) -> None:
        self.answers: list[Any] = []
        self.processes: list[str] = []
        self.expected: int | None = None
        self.complete = asyncio.Event()

    def add(self, process: str, answer: Any) -> None:
        if process in self.processes:
            return
        self.processes.append(process)
        self.answers.append(answer)
        if self.expected is not None and len(self.answers) >= self.expected:
            self.complete.set()


def deployment_of(endpoint: Observed) -> Deployment:
    """The one `Deployment` of an endpoint whose engine is Redis's (the admin page and the
    workers' metrics share it)."""
    found = _deployments.get(endpoint)
    if found is None:
        assert endpoint.engine is not None
        found = _deployments[endpoint] = Deployment(endpoint.engine, this_process(endpoint.engine))
    return found


class Deployment:
    """The processes sharing this process's Redis engine (its URL and key prefix)."""

    def __init__(self, engine: Engine, process: Process, group: str | None = None) -> None:
        url = getattr(engine, "url", None)
        keys = getattr(engine, "keys", None)
        if not engine.shared or not isinstance(url, str) or keys is None:
            raise ValueError("a deployment needs the Redis engine")
        self.url = url
        self.keys = keys
        prefix: str = keys.prefix  # ends with ":"
        self.process = process
        # The worker group (the workers of one `--workers`), set before `start`.
        self.group = group
        self.ask_channel = f"{prefix}admin:ask"
        self.reply_channel = f"{prefix}admin:reply:{process.id}"
        self.handlers: dict[str, Handler] = {}
        self.subscribed = False
        self._gathering: dict[str, _Gathering] = {}
        self._asking = 0
        self._commands: Any = None
        self._listening: asyncio.Task[None] | None = None
        self._replies = TaskSet("an admin reply", log)

    @property
    def group_channel(self) -> str | None:
        return f"{self.keys.prefix}admin:ask:{self.group}" if self.group else None

    # ------------------------------------------------------------------------------- life

    def start(self) -> None:
        """Starts listening (on the running loop); again after `stop`, a no-op while on."""
        if self._listening is not None and not self._listening.done():
            return
        from ..engines.redis.client import redis_client

        self._commands = redis_client(self.url, socket_connect_timeout=2, socket_timeout=2)
        self._listening = asyncio.ensure_future(self._listen())

    async def stop(self) -> None:
        listening, self._listening = self._listening, None
        if listening is not None:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
        commands, self._commands = self._commands, None
        if commands is not None:
            await commands.aclose()
        self.subscribed = False

    async def _listen(self) -> None:
        from ..engines.redis.client import redis_client

        channels = [self.ask_channel, self.reply_channel]
        if self.group_channel is not None:
            channels.append(self.group_channel)
        warned = False
        while True:
            client = redis_client(self.url, socket_connect_timeout=2)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(*channels)
                self.subscribed = True
                warned = False
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
                    if message is not None:
                        self._received(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: listened to again once it is back
                if not warned:
                    log.warning("admin: cannot listen to the deployment's asks: %s", exc)
                    warned = True
            finally:
                self.subscribed = False
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:  # closing what is already broken
                    pass
            await asyncio.sleep(1)

    # ------------------------------------------------------------------------- answering

    def _received(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        raw = data.encode() if isinstance(data, str) else data
        if len(raw) > MAX_MESSAGE:
            return
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if not isinstance(message, dict) or not isinstance(message.get("id"), str):
            return
        if name == self.reply_channel:
            gathering = self._gathering.get(message["id"])
            process = message.get("process")
            if gathering is not None and isinstance(process, str) and "answer" in message:
                gathering.add(process, message["answer"])
            return
        asker, kind, params = message.get("from"), message.get("kind"), message.get("params")
        if asker == self.process.id or not isinstance(asker, str) or len(asker) > 64:
            return  # its own ask: answered directly
        if not isinstance(kind, str) or not isinstance(params, dict):
            return
        try:
            answer = self.answer(kind, params)
        except Exception:  # a bad ask, or a handler's failure: no answer, the asker times out
            log.exception("admin: answering a %r ask failed", kind)
            return
        reply = orjson.dumps({"id": message["id"], "process": self.process.id, "answer": answer})
        if self._commands is not None and len(reply) <= MAX_MESSAGE:
            self._replies.spawn(self._reply(f"{self.keys.prefix}admin:reply:{asker}", reply))

    async def _reply(self, channel: str, reply: bytes) -> None:
        try:
            await self._commands.publish(channel, reply)
        except Exception as exc:  # the asker sees one answer fewer
            log.debug("admin: an answer was lost: %s", exc)

    def answer(self, kind: str, params: dict[str, Any]) -> Any:
        handler = self.handlers.get(kind)
        if handler is None:
            raise ValueError(f"no handler for {kind!r}")
        return handler(params)

    # --------------------------------------------------------------------------- asking

    async def ask(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        group: bool = False,
        timeout: float = ASK_TIMEOUT,
    ) -> Gathered:
        """This process's answer, then those of the others (of its worker group only, with
        `group`) that came within `timeout`. Raises ValueError when this process's own
        handler refuses `params`."""
        own = self.answer(kind, params)
        gathered = Gathered([own], 1, [self.process.id])
        channel = self.group_channel if group else self.ask_channel
        if channel is None or self._commands is None or self._asking >= MAX_ASKING:
            gathered.reached = False
            return gathered
        nonce = secrets.token_hex(8)
        gathering = self._gathering[nonce] = _Gathering()
        gathering.add(self.process.id, own)
        self._asking += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            payload = orjson.dumps(
                {"id": nonce, "from": self.process.id, "kind": kind, "params": params}
            )
            receivers = await asyncio.wait_for(self._commands.publish(channel, payload), timeout)
            # Those that heard it, and this process, which answered already.
            gathering.expected = int(receivers) + (0 if self.subscribed else 1)
            if len(gathering.answers) >= gathering.expected:
                gathering.complete.set()
            try:
                await asyncio.wait_for(gathering.complete.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                pass
            gathered.asked = max(gathering.expected, len(gathering.answers))
        except Exception as exc:  # Redis away: this process alone
            log.debug("admin: cannot ask the deployment: %s", exc)
            gathered.reached = False
            return gathered
        finally:
            self._asking -= 1
            del self._gathering[nonce]
        gathered.answers = list(gathering.answers)
        gathered.processes = list(gathering.processes)
        return gathered

    async def users_online(self) -> int:
        """How many users have a session in the deployment."""
        if self._commands is None:
            raise DeploymentUnavailable("not started")
        try:
            count = await self._commands.scard(self.keys.online)
        except Exception as exc:
            raise DeploymentUnavailable(str(exc)) from exc
        return int(count)
