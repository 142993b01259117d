"""`/metrics` under `--workers`: each scrape answers for every worker of the port.

Prometheus scrapes one of the workers (the kernel picks it); that worker asks the others of its
group (the workers one `--workers` started, on this host) for their metric families through
Redis (deployment.py), and answers with all of them, each series labelled with its worker's
pid (`worker`). Sum them in queries: `sum without (worker) (bayeux_sessions)`. Two more gauges
say what the scrape holds: `bayeux_workers` (workers whose figures it has) and
`bayeux_workers_asked` (workers asked): a worker that did not answer within the scrape's wait
is missing from it, and counted there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..metrics import BayeuxCollector, Observed, metrics_answer
from ..transports.http import HttpRequest, HttpResponse
from .deployment import Deployment

WORKER_LABEL = "worker"
# How long a scrape waits for the other workers' figures.
SCRAPE_WAIT = 2.0


class WorkerMetrics:
    """This worker's families, answered when another worker asks, and every worker's, when
    Prometheus scrapes this one."""

    def __init__(self, endpoint: Observed, deployment: Deployment) -> None:
        self.collector = BayeuxCollector(endpoint)
        self.deployment = deployment
        self.worker = str(os.getpid())
        deployment.handlers["metrics"] = self.families

    def families(self, params: dict[str, Any]) -> dict[str, Any]:
        """This worker's metric families, as JSON values."""
        return {
            "worker": self.worker,
            "families": [
                [
                    m.name,
                    m.documentation,
                    m.type,
                    m.unit,
                    [[s.name, s.labels, s.value] for s in m.samples],
                ]
                for m in self.collector.collect()
            ],
        }

    async def answer(self, request: HttpRequest) -> HttpResponse:
        gathered = await self.deployment.ask("metrics", {}, group=True, timeout=SCRAPE_WAIT)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Gathered(gathered.answers, gathered.asked))
        return metrics_answer(registry)


class _Gathered(Collector):
    def __init__(self, answers: list[Any], asked: int) -> None:
        self.answers = answers
        self.asked = asked

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for answer in self.answers:
            worker = str(answer["worker"])
            for name, documentation, kind, unit, samples in answer["families"]:
                family = merged.get(name)
                if family is None:
                    family = merged[name] = Metric(name, documentation, kind, unit)
                for sample_name, labels, value in samples:
                    family.add_sample(sample_name, {**labels, WORKER_LABEL: worker}, value)
        yield from merged.values()
        yield GaugeMetricFamily(
            "bayeux_workers", "Workers whose figures this scrape holds", value=len(self.answers)
        )
        yield GaugeMetricFamily(
            "bayeux_workers_asked", "Workers asked for their figures", value=self.asked
        )
