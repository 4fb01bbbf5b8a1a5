"""The story's data: one config two services read, its schema, the rollout policy, the three
changes (a first version, a healthy one, a bad one) and where the simulated instances run."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Final

CONFIG: Final = "shop/backend"
PATTERN: Final = "shop/*"
SERVICES: Final = ("checkout", "search")
REGIONS: Final = ("eu-west", "us-east", "ap-south")
FIRST_REGION: Final = REGIONS[0]
CANARY_SHARE: Final = 0.1  # of each service's instances, at least one
# Each simulated instance reports its own memory as this gauge. The SDK's own `rss_mb` measures the
# whole process, which here holds ~20 simulated instances, so it cannot tell one instance from another.
MEMORY_GAUGE: Final = "heap_mb"

SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["db", "cache"],
    "additionalProperties": False,
    "properties": {
        "db": {"type": "object", "required": ["connect_timeout_ms"], "additionalProperties": False,
               "properties": {"connect_timeout_ms": {"type": "integer", "minimum": 1, "maximum": 60000},
                              "pool_size": {"type": "integer", "minimum": 1, "maximum": 1000}}},
        "cache": {"type": "object", "required": ["size_mb"], "additionalProperties": False,
                  "properties": {"size_mb": {"type": "integer", "minimum": 0, "maximum": 65536}}},
    },
}

# Bakes of seconds rather than minutes, so the whole story fits in a few minutes. A stage passes no
# earlier than its min bake and half its max bake (the analysis' `settle`), and fails as soon as the
# evidence is clear. Windows are 1 s, so `warmup` and `recent` are seconds too.
POLICY: Final[dict[str, Any]] = {
    "stages": [
        {"name": "canary", "select": {"labels": {"canary": "true"}}, "bake": {"min": "10s", "max": "30s"}},
        {"name": FIRST_REGION, "select": {"region": [FIRST_REGION]}, "bake": {"min": "10s", "max": "30s"}},
        {"name": "global", "bake": {"min": "5s", "max": "30s"}},
    ],
    "on_failure": "rollback",
    "analysis": {
        "error_rate": {"max_ratio": 1.2, "min_increase_pp": 0.1},
        "latency_p99": {"max_ratio": 1.1},
        "gauges": {MEMORY_GAUGE: {"max_ratio": 1.3}},
        "warmup": "2s",
        "recent": "5s",
    },
}


@dataclass(frozen=True)
class Change:
    value: dict[str, Any]
    message: str


FIRST: Final = Change({"db": {"connect_timeout_ms": 250, "pool_size": 20}, "cache": {"size_mb": 256}},
                      "first version of the shop backend settings")
TYPO: Final = Change({"db": {"connect_timeout_ms": "250ms", "pool_size": 20}, "cache": {"size_mb": 256}},
                     "timeout with its unit")
HEALTHY: Final = Change({"db": {"connect_timeout_ms": 300, "pool_size": 24}, "cache": {"size_mb": 288}},
                        "a little more slack for the database under the sale traffic")
BAD: Final = Change({"db": {"connect_timeout_ms": 40, "pool_size": 24}, "cache": {"size_mb": 1536}},
                    "fail fast on slow connections and cache more")


@dataclass(frozen=True)
class InstanceSpec:
    """One simulated instance: where it runs, and how its host differs from the others."""

    id: str
    service: str
    region: str
    canary: bool
    rps: float            # requests per second it serves
    error_factor: float   # x the service's background error rate
    latency_factor: float  # x the service's processing time
    connect_factor: float  # x the database's connect time seen from this host
    heap_base_mb: float   # memory before the cache

    @property
    def labels(self) -> dict[str, str]:
        return {"canary": "true"} if self.canary else {}


def layout(count: int, seed: int) -> list[InstanceSpec]:
    """`count` instances, the services alternating, each service's spread evenly over the regions;
    a tenth of each service (at least one, across the regions) is labelled canary. Hosts differ a
    little from one another, as real ones do, by a seeded draw."""
    if count < 2 * len(SERVICES):
        raise ValueError(f"the demo needs at least {2 * len(SERVICES)} instances, not {count}")
    draw = random.Random(f"ringfence-demo-hosts:{seed}")
    per_service = {service: 0 for service in SERVICES}
    for index in range(count):
        per_service[SERVICES[index % len(SERVICES)]] += 1
    specs = []
    for index in range(count):
        service = SERVICES[index % len(SERVICES)]
        slot = index // len(SERVICES)
        region = REGIONS[slot % len(REGIONS)]
        canaries = max(1, math.floor(per_service[service] * CANARY_SHARE + 0.5))
        specs.append(InstanceSpec(
            id=f"{service}-{region}-{slot:02d}", service=service, region=region, canary=slot < canaries,
            rps=draw.uniform(1500.0, 2500.0), error_factor=draw.lognormvariate(0.0, 0.15),
            latency_factor=draw.lognormvariate(0.0, 0.02), connect_factor=draw.lognormvariate(0.0, 0.05),
            heap_base_mb=draw.uniform(150.0, 190.0)))
    return specs
