"""The names of a deployment's Redis keys, all under one prefix (`--redis-prefix`)."""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix + ":"
        # The message log: one Stream for the whole deployment.
        self.log = self.prefix + "log"
        # Processes that own sessions, and sessions no live process owns (scored by when
        # they were left, so that they expire maxInterval later).
        self.processes = self.prefix + "processes"
        # What a process outside the servers needs to publish (bayeux.publisher): the replay
        # channels and the log's length, written by every server as it connects.
        self.config = self.prefix + "config"
        self.orphans = self.prefix + "orphans"
        # Users with a session in the deployment; each user's sessions are user:<id>.
        self.online = self.prefix + "online"

    def session(self, client_id: str) -> str:
        """A hash: owner, pos, ack, batch, batches, and a claim in progress."""
        return f"{self.prefix}session:{client_id}"

    def subscriptions(self, client_id: str) -> str:
        return f"{self.prefix}subs:{client_id}"

    def members(self, channel: str) -> str:
        """A set: the clientIds subscribed to exactly `channel` (or pattern), deployment-wide
        (written by the subscribe, end and reap scripts)."""
        return f"{self.prefix}members:{channel}"

    def owned(self, process: str) -> str:
        return f"{self.prefix}owned:{process}"

    def alive(self, process: str) -> str:
        """Set with a short expiry, renewed while the process runs."""
        return f"{self.prefix}alive:{process}"

    def floor(self, process: str) -> str:
        """The log position through which every session the process serves whose record
        `follows` it has had its messages (engine._save; read by scripts.CLAIM)."""
        return f"{self.prefix}floor:{process}"

    def control(self, process: str) -> str:
        """The pub/sub channel a process hears claims, releases and ends on."""
        return f"{self.prefix}control:{process}"

    def replay(self, channel: str) -> str:
        return f"{self.prefix}replay:{channel}"

    def replay_floor(self, channel: str) -> str:
        return f"{self.prefix}replay-floor:{channel}"
