"""What the server counts as it works: refusals, drops and errors by reason, messages and
deliveries. Plain integers bumped on the way (never a call per delivery); metrics and logs read
them when asked."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

# Upper bounds, in seconds, of the publish-to-write latency histogram.
LATENCY_BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0)


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
    # Publish-to-write latency of the oldest message of each write: counts per bucket of
    # LATENCY_BOUNDS (the last one past all of them), their sum and number.
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    latency_sum: float = 0.0
    latency_count: int = 0

    def observe_latency(self, seconds: float) -> None:
        self.latency_buckets[bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self.latency_sum += seconds
        self.latency_count += 1
