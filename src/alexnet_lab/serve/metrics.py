"""`/metrics`: the server's Prometheus metrics (prometheus_client, one registry per app).

Requests by endpoint and status, latency histograms by endpoint, forward-pass batch sizes and
queue depth per framework, worker restarts. Endpoints are labelled by their route template
(`/api/predict`), never by the raw path, so a scan of random URLs cannot grow the label set.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServeMetrics:
    """The metrics of one server; `exposition()` is the /metrics body."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("alexnet_serve_requests", "HTTP requests answered, by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("alexnet_serve_request_seconds", "time from request to response, by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("alexnet_serve_batch_size", "images in one forward pass, by framework",
                                    ["framework"], buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("alexnet_serve_queue_depth", "images waiting for a forward pass, by framework",
                                 ["framework"], registry=self.registry)
        self.restarts = Counter("alexnet_serve_worker_restarts", "framework workers restarted after dying or "
                                "missing their deadline", ["framework"], registry=self.registry)
        self.ready = Gauge("alexnet_serve_worker_ready", "1 while the framework's worker is loaded and answering",
                           ["framework"], registry=self.registry)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
