"""Prometheus metrics of one service, in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
STAGE_BUCKETS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
ENDPOINTS = ("/recommend", "/predict", "/embed", "/health", "/metadata", "/metrics", "/admin/reload")


class ServiceMetrics:
    """Request counts and latencies, batch sizes, per-stage model time, the bundle served and reloads.

    ``imputed``: returns the current per-feature counts of imputed values (or None); they are exported as
    ``recstack_imputed_values_total`` when the registry is scraped.
    """

    def __init__(self, name: str, imputed: Callable[[], Mapping[str, int] | None] | None = None) -> None:
        self.name = name
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "recstack_requests", "HTTP requests answered, by endpoint and status code", ["endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "recstack_request_seconds", "time from request to answer, by endpoint", ["endpoint"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.batch_requests = Histogram(
            "recstack_batch_requests", "requests run together in one model batch, by kind", ["kind"],
            buckets=SIZE_BUCKETS, registry=r,
        )
        self.batch_rows = Histogram(
            "recstack_batch_rows", "rows (users or predict rows) in one model batch, by kind", ["kind"],
            buckets=SIZE_BUCKETS, registry=r,
        )
        self.queue_wait = Histogram(
            "recstack_queue_wait_seconds", "time a request waited in the batching queue", buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "recstack_stage_seconds", "model time of one /recommend batch, by stage", ["stage"],
            buckets=STAGE_BUCKETS, registry=r,
        )
        self.bundle = Gauge(
            "recstack_bundle_info", "the bundle being served (value 1; its version and service name as labels)",
            ["service", "version"], registry=r,
        )
        self.ready = Gauge("recstack_ready", "1 once a bundle is loaded and warmed, else 0", registry=r)
        self.reloads = Counter(
            "recstack_reloads", "bundle reloads, by outcome (ok or refused)", ["outcome"], registry=r
        )
        self._version: str | None = None
        if imputed is not None:
            r.register(_ImputedCollector(imputed))

    def endpoint_label(self, path: str) -> str:
        """The endpoint label of a request path (``other`` for paths the service does not serve)."""
        return path if path in ENDPOINTS else "other"

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        endpoint = self.endpoint_label(path)
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_batch(self, kind: str, requests: int, rows: int, waits: list[float]) -> None:
        self.batch_requests.labels(kind).observe(requests)
        self.batch_rows.labels(kind).observe(rows)
        for w in waits:
            self.queue_wait.observe(w)

    def observe_stages(self, timings: Mapping[str, float]) -> None:
        for stage, seconds in timings.items():
            self.stage.labels(stage).observe(seconds)

    def set_bundle(self, version: str) -> None:
        if self._version is not None:
            self.bundle.remove(self.name, self._version)
        self.bundle.labels(self.name, version).set(1)
        self._version = version
        self.ready.set(1)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _ImputedCollector(Collector):
    def __init__(self, counts: Callable[[], Mapping[str, int] | None]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "recstack_imputed_values",
            "feature values the model imputed (absent, null or NaN), by feature, since the bundle was loaded",
            labels=["feature"],
        )
        for feature, n in sorted((self._counts() or {}).items()):
            family.add_metric([feature], float(n))
        yield family
