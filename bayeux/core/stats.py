"""What the server counts as it works: refusals, drops and errors by reason, messages and
deliveries. Plain integers bumped on the way (never a call per delivery); metrics and logs read
them when asked."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Stats:
    refused: Counter[str] = field(default_factory=Counter)  # handshakes, by reason
    dropped: Counter[str] = field(default_factory=Counter)  # deliveries, by reason
    errors: Counter[str] = field(default_factory=Counter)  # internal errors, by where
    messages_in: Counter[str] = field(default_factory=Counter)  # by kind: meta, service, broadcast
    error_replies: Counter[str] = field(default_factory=Counter)  # unsuccessful replies, by code
    deliveries: int = 0  # messages queued for a session
    delivery_bytes: int = 0  # their JSON bytes
    sweeps: int = 0
    sweep_seconds: float = 0.0  # time spent sweeping, in all
