"""The latency model behind the fleet simulator: a lognormal body with a slow tail, as histograms and quantiles.

A request's latency is drawn from a two-part mixture:

- the **body**, lognormal with median `median` and log-sd `sigma`, holding `1 - tail_frac` of the requests;
- the **slow tail**, holding `tail_frac` of them, either lognormal with median `median * tail_mult` and the
  same `sigma` (`tail="lognormal"`), or Pareto with scale `median * tail_mult` and shape `alpha`
  (`tail="pareto"`: heavy-tailed, its mean is infinite for `alpha <= 1`).

`bucket_probabilities` turns the mixture into the probabilities of the standard histogram buckets
(`LE`, the last bucket counting what lies above the last bound), vectorised over windows.
`Mixture.quantile` gives the exact quantiles the ground truth is computed from; it can also spread
every component over instance-level random effects (a lognormal factor on each instance's latency).
Everything here is NumPy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
TailKind = Literal["lognormal", "pareto"]

LE: tuple[int, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
"""The standard histogram bounds in ms (formats/observations.md)."""

_LOG_LE = np.log(np.array(LE, dtype=np.float64))


def normal_cdf(z: FloatArray | float) -> FloatArray:
    """Standard normal CDF, vectorised (erfc by Numerical Recipes' Chebyshev fit, relative error < 1.2e-7)."""
    x = -np.asarray(z, dtype=np.float64) / math.sqrt(2.0)  # Phi(z) = erfc(-z / sqrt 2) / 2
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * a)
    poly = -a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc_abs = t * np.exp(poly)
    result: FloatArray = 0.5 * np.where(x >= 0, erfc_abs, 2.0 - erfc_abs)
    return result


def _tail_cdf(log_x: FloatArray, log_median: FloatArray, sigma: float, tail: TailKind, alpha: float) -> FloatArray:
    """CDF of the tail component at log_x (broadcast against log_median)."""
    if tail == "lognormal":
        return normal_cdf((log_x - log_median) / sigma)
    # Pareto with scale x_m: F(x) = 1 - (x_m / x)^alpha for x >= x_m.
    out: FloatArray = 1.0 - np.exp(-alpha * np.clip(log_x - log_median, 0.0, None))
    return out


def bucket_probabilities(
    median: FloatArray | float, sigma: float, tail_frac: FloatArray | float, tail_mult: float,
    tail: TailKind = "lognormal", alpha: float = 1.5,
) -> FloatArray:
    """Probabilities of the `len(LE) + 1` buckets, one row per (median, tail_frac) pair (shape (..., 12))."""
    log_med = np.log(np.asarray(median, dtype=np.float64))[..., None]
    frac = np.asarray(tail_frac, dtype=np.float64)[..., None]
    body = normal_cdf((_LOG_LE - log_med) / sigma)
    slow = _tail_cdf(_LOG_LE, log_med + math.log(tail_mult), sigma, tail, alpha)
    cdf = (1.0 - frac) * body + frac * slow
    shape = cdf.shape[:-1]
    cdf = np.concatenate([np.zeros((*shape, 1)), cdf, np.ones((*shape, 1))], axis=-1)
    p = np.clip(np.diff(cdf, axis=-1), 0.0, None)
    probs: FloatArray = p / p.sum(axis=-1, keepdims=True)
    return probs


@dataclass(frozen=True)
class Component:
    """One part of a latency mixture: `weight` of the requests, a lognormal or Pareto law."""

    weight: float
    kind: TailKind
    median: float  # lognormal median, or Pareto scale (minimum)
    sigma: float = 0.5  # lognormal log-sd
    alpha: float = 1.5  # Pareto shape


# Probabilists' Gauss-Hermite nodes: E[f(Z)] for Z ~ N(0, 1) as a weighted sum.
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(48)
_GH_WEIGHTS = _GH_WEIGHTS / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Mixture:
    """A latency law made of components, each spread by a lognormal instance effect of log-sd `spread`."""

    components: tuple[Component, ...]
    spread: float = 0.0

    def cdf(self, x: float) -> float:
        log_x = math.log(x)
        total = 0.0
        for c in self.components:
            if c.weight <= 0:
                continue
            if c.kind == "lognormal":
                # A lognormal times an independent lognormal is lognormal: the log-sds add in quadrature.
                s = math.hypot(c.sigma, self.spread)
                total += c.weight * float(normal_cdf((log_x - math.log(c.median)) / s))
            else:
                shifted = math.log(c.median) + self.spread * _GH_NODES
                total += c.weight * float(np.sum(_GH_WEIGHTS * _tail_cdf(
                    np.full_like(shifted, log_x), shifted, c.sigma, "pareto", c.alpha)))
        return total / sum(c.weight for c in self.components)

    def quantile(self, q: float) -> float:
        lo, hi = math.log(1e-3), math.log(1e9)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if self.cdf(math.exp(mid)) < q:
                lo = mid
            else:
                hi = mid
        return math.exp(0.5 * (lo + hi))


def latency_mixture(
    parts: Sequence[tuple[float, float, float]], sigma: float, tail_mult: float, tail: TailKind, alpha: float,
    spread: float = 0.0,
) -> Mixture:
    """A mixture from (share of requests, median, tail_frac) parts, each a body plus its slow tail."""
    comps: list[Component] = []
    for share, median, tail_frac in parts:
        comps.append(Component(share * (1.0 - tail_frac), "lognormal", median, sigma))
        comps.append(Component(share * tail_frac, tail, median * tail_mult, sigma, alpha))
    return Mixture(tuple(comps), spread)
