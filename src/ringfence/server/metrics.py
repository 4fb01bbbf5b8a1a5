"""Prometheus metrics of the server, in a registry of its own (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram

registry = CollectorRegistry(auto_describe=True)

propagation = Histogram(
    "ringfence_propagation_seconds",
    "From the moment an instance was assigned a revision (the push for canaries, the promotion "
    "or rollback for the rest) to the moment the instance reported it applied it.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=registry,
)
streams = Gauge("ringfence_open_streams", "Streams currently open to this server.", registry=registry)
