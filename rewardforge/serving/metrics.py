"""The Prometheus metrics of one server (`GET /metrics`): requests, batches and latency."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Prometheus counters and histograms of one server, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rewardforge_requests",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "rewardforge_requests_in_progress",
            "Scoring requests received and not yet answered.",
            registry=self.registry,
        )
        self.items = Counter("rewardforge_items", "Responses scored.", registry=self.registry)
        self.batch_size = Histogram(
            "rewardforge_batch_size",
            "Responses per model call.",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.batch_seconds = Histogram(
            "rewardforge_batch_seconds", "Seconds per model call.", registry=self.registry
        )
        self.latency = Histogram(
            "rewardforge_request_seconds",
            "Seconds per request, by route.",
            ["route"],
            registry=self.registry,
        )

    def record_batch(self, size: int, seconds: float) -> None:
        self.items.inc(size)
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
