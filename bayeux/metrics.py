"""Prometheus metrics (prometheus-client): read from the server's own counters and state when
scraped, so the hot path pays nothing but the plain integers of core/stats.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from .core.engine import Engine
from .core.server import BayeuxServer
from .core.stats import LATENCY_BOUNDS
from .transports.http import HttpResponse

QUEUE_BUCKETS = (0, 1, 10, 100, 1000, 10000)


class Observed(Protocol):
    """What the metrics read of an endpoint (bayeux.Endpoint is one)."""

    server: BayeuxServer
    connections: int
    engine: Engine | None


class BayeuxCollector(Collector):
    def __init__(self, endpoint: Observed) -> None:
        self.endpoint = endpoint

    def collect(self) -> Iterator[Metric]:
        endpoint = self.endpoint
        server = endpoint.server
        stats = server.stats
        sessions = list(server.sessions.values())

        by_transport = Counter(s.connection_type or "none" for s in sessions)
        gauge = GaugeMetricFamily(
            "bayeux_sessions",
            "Sessions, by the connection type of their last connect",
            labels=["transport"],
        )
        for transport, count in sorted(by_transport.items()):
            gauge.add_metric([transport], count)
        yield gauge
        yield GaugeMetricFamily(
            "bayeux_held_connects", "Connects held", value=sum(s.held is not None for s in sessions)
        )
        yield GaugeMetricFamily(
            "bayeux_connections",
            "Open TCP connections (HTTP and WebSocket)",
            value=endpoint.connections,
        )
        depth = GaugeHistogramMetricFamily(
            "bayeux_session_queue_messages", "Messages waiting per session"
        )
        lengths = [len(s.queue) for s in sessions]
        buckets = [(str(b), sum(1 for n in lengths if n <= b)) for b in QUEUE_BUCKETS]
        depth.add_metric([], [*buckets, ("+Inf", len(lengths))], gsum_value=sum(lengths))
        yield depth
        yield GaugeMetricFamily(
            "bayeux_queued_bytes",
            "Bytes waiting for delivery, in all sessions",
            value=sum(s.queued_bytes() for s in sessions),
        )

        yield _by("bayeux_messages_in", "Messages received, by kind", "kind", stats.messages_in)
        yield CounterMetricFamily(
            "bayeux_deliveries",
            "Messages queued for delivery to a session",
            value=stats.deliveries,
        )
        yield CounterMetricFamily(
            "bayeux_delivery_bytes",
            "JSON bytes of the messages queued for delivery",
            value=stats.delivery_bytes,
        )
        yield _by(
            "bayeux_deliveries_dropped", "Deliveries dropped, by reason", "reason", stats.dropped
        )
        yield _by(
            "bayeux_handshakes_refused", "Handshakes refused, by reason", "reason", stats.refused
        )
        yield _by(
            "bayeux_error_replies",
            "Unsuccessful replies, by Bayeux error code",
            "code",
            stats.error_replies,
        )
        yield _by(
            "bayeux_internal_errors",
            "Failures inside the server or its hooks, by where",
            "where",
            stats.errors,
        )
        latency = HistogramMetricFamily(
            "bayeux_delivery_latency_seconds",
            "From publish to the write that carries it, for the oldest message of each write",
        )
        cumulative, buckets = 0, []
        bounds = (*LATENCY_BOUNDS, float("inf"))
        for bound, count in zip(bounds, stats.latency_buckets, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
        latency.add_metric([], buckets, sum_value=stats.latency_sum)
        yield latency
        yield CounterMetricFamily(
            "bayeux_sweeps", "Sweeps for expired sessions", value=stats.sweeps
        )
        yield CounterMetricFamily(
            "bayeux_sweep_seconds", "Time spent sweeping", value=stats.sweep_seconds
        )
        engine = endpoint.engine
        if engine is not None:
            counts = engine.stats()
            yield CounterMetricFamily(
                "bayeux_engine_appended",
                "Entries written to the message log",
                value=counts.appended,
            )
            yield CounterMetricFamily(
                "bayeux_engine_applied", "Log entries applied in this process", value=counts.applied
            )
            yield CounterMetricFamily(
                "bayeux_engine_handoffs",
                "Sessions taken over from another live process",
                value=counts.handoffs,
            )
            yield CounterMetricFamily(
                "bayeux_engine_claims",
                "Sessions this process took over (handoffs included)",
                value=counts.claims,
            )
            yield CounterMetricFamily(
                "bayeux_engine_dropped",
                "Publishes lost to the outbox bound while Redis was away",
                value=counts.dropped,
            )
            yield GaugeMetricFamily(
                "bayeux_engine_outbox_bytes",
                "Bytes published while Redis was away, waiting for the log",
                value=counts.outbox_bytes,
            )
            yield GaugeMetricFamily(
                "bayeux_engine_read_lag_seconds",
                "How long the last log entry read here had waited in the log",
                value=counts.read_lag,
            )
            yield GaugeMetricFamily(
                "bayeux_engine_connected",
                "1 while the engine reaches Redis and follows the log",
                value=1 if engine.available and engine.ready.is_set() else 0,
            )


def _by(name: str, documentation: str, label: str, counts: Counter[str]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family


def metrics_answer(registry: CollectorRegistry) -> HttpResponse:
    """The registry's metrics in Prometheus' text format."""
    return HttpResponse(200, [("Content-Type", CONTENT_TYPE_LATEST)], generate_latest(registry))


def registry_for(endpoint: Observed) -> CollectorRegistry:
    """A registry of the endpoint's metrics alone (add it to yours, or serve it)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BayeuxCollector(endpoint))
    return registry
