"""Prometheus metrics of the server, in a registry of its own (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

registry = CollectorRegistry(auto_describe=True)

propagation = Histogram(
    "ringfence_propagation_seconds",
    "From the moment an instance was assigned a revision (the push for canaries, the promotion "
    "or rollback for the rest) to the moment the instance reported it applied it.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=registry,
)
streams = Gauge("ringfence_open_streams", "Streams currently open to this server.", registry=registry)
reports = Counter("ringfence_metric_reports", "Health reports accepted from instances (POST /v1/metrics).",
                  registry=registry)
reports_dropped = Counter("ringfence_metric_reports_dropped",
                          "Accepted health reports dropped because the write queue was full.", registry=registry)
verdicts = Gauge("ringfence_canary_verdict",
                 "The latest canary analysis of a running rollout per metric: 1 fail, 0 pass, -1 undecided.",
                 ["config", "rollout", "service", "metric"], registry=registry)
effect = Gauge("ringfence_canary_effect",
               "Canary / baseline ratio of a metric in the latest analysis of a running rollout.",
               ["config", "rollout", "service", "metric"], registry=registry)
