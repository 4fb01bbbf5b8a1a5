"""How a simulated instance's health follows the config it runs. Pure and seeded: no clock, no I/O.

Each request opens a database connection, whose connect time varies (log-normal, median 20 ms
from a typical host), then does the service's work. A connection slower than the config's
`db.connect_timeout_ms` times out and the request fails at the timeout; a few requests fail
anyway (the service's background error rate). The instance's memory is its base plus its cache,
which fills towards `cache.size_mb` as traffic flows and shrinks at once when the size is lowered.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from ringfence.demo.scenario import InstanceSpec

CONNECT_MEDIAN_MS: Final = 20.0
CONNECT_SIGMA: Final = 0.45
WORK_MEDIAN_MS: Final = {"checkout": 60.0, "search": 25.0}
WORK_SIGMA: Final = 0.35
BACKGROUND_ERRORS: Final = {"checkout": 0.0001, "search": 0.0001}  # healthy services: 99.99% succeed
CACHE_FILL_MB_PER_S: Final = 150.0
CACHE_OVERHEAD: Final = 0.9  # a cache of N MB holds about 0.9 N MB of resident memory
DEFAULT_TIMEOUT_MS: Final = 250
DEFAULT_CACHE_MB: Final = 256


@dataclass(frozen=True)
class Served:
    """What one instance served over a short interval."""

    requests: int
    errors: int
    latency_ms: list[float]
    heap_mb: float


def _setting(value: Any, section: str, key: str, default: int) -> float:
    node = value.get(section) if isinstance(value, Mapping) else None
    found = node.get(key) if isinstance(node, Mapping) else None
    return float(found) if isinstance(found, int | float) and not isinstance(found, bool) else float(default)


def timeout_share(timeout_ms: float, connect_factor: float = 1.0) -> float:
    """The share of connections slower than the timeout, for a host with this connect factor."""
    if timeout_ms <= 0:
        return 1.0
    z = math.log(timeout_ms / (CONNECT_MEDIAN_MS * connect_factor)) / CONNECT_SIGMA
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _seed(*parts: object) -> int:
    """A seed from text: the same on every run and in every process (unlike `hash()`)."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


class SimulatedInstance:
    """One instance's traffic, drawn from its own seeded random stream (NumPy, so thousands of
    requests a second per instance cost little)."""

    def __init__(self, spec: InstanceSpec, seed: int) -> None:
        self.spec = spec
        self.random = np.random.default_rng(_seed("ringfence-demo-traffic", seed, spec.id))
        self.cache_mb = 0.0
        self._carry = 0.0  # fractions of a request, so low rates and short steps still add up

    def serve(self, config: Any, seconds: float) -> Served:
        """The requests of the next `seconds`, under `config` (None: the config is not there yet)."""
        spec, draw = self.spec, self.random
        timeout = _setting(config, "db", "connect_timeout_ms", DEFAULT_TIMEOUT_MS)
        target_cache = _setting(config, "cache", "size_mb", DEFAULT_CACHE_MB) * CACHE_OVERHEAD
        expected = spec.rps * seconds + self._carry
        count = int(expected)
        self._carry = expected - count
        connect = draw.lognormal(math.log(CONNECT_MEDIAN_MS * spec.connect_factor), CONNECT_SIGMA, count)
        work = draw.lognormal(math.log(WORK_MEDIAN_MS[spec.service] * spec.latency_factor), WORK_SIGMA, count)
        timed_out = connect > timeout
        failed = timed_out | (draw.random(count) < BACKGROUND_ERRORS[spec.service] * spec.error_factor)
        # A timed-out request fails at the timeout; the others take their connect and their work.
        latency = np.where(timed_out, timeout, connect + work)
        # The cache fills with traffic up to its size; a smaller size evicts at once.
        self.cache_mb = min(target_cache, self.cache_mb + CACHE_FILL_MB_PER_S * seconds)
        heap = (spec.heap_base_mb + self.cache_mb) * draw.normal(1.0, 0.01)
        return Served(count, int(failed.sum()), latency.tolist(), round(float(heap), 1))
