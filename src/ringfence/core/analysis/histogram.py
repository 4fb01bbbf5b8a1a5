"""Latency quantiles from coarse histograms, with the variance of their logarithm.

Buckets are coarse (5, 10, 25, 50, 100, 250 ms, ...), so a quantile is interpolated inside its
bucket on the log scale (latency is close to lognormal; a bucket spanning x2.5 is then filled
evenly in log-latency). The first bucket's lower edge and the overflow bucket's upper edge are
extrapolated geometrically from their neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Grid = tuple[float, ...]


def edges(le: Grid) -> list[tuple[float, float]]:
    """(low, high) of every bucket, including the first and the overflow bucket, on the log scale."""
    ratio = le[1] / le[0] if len(le) > 1 else 2.0
    last = le[-1] / le[-2] if len(le) > 1 else 2.0
    lows = [le[0] / ratio, *le]
    highs = [*le, le[-1] * last]
    return [(math.log(lo), math.log(hi)) for lo, hi in zip(lows, highs, strict=True)]


def quantile(counts: Sequence[float], log_edges: Sequence[tuple[float, float]], q: float) -> tuple[float, float]:
    """(log of the q-quantile, density of log-latency there) of a histogram; (nan, 0) when empty."""
    total = 0.0
    for c in counts:
        total += c
    if total <= 0:
        return math.nan, 0.0
    target = q * total
    cumulative = 0.0
    for k, c in enumerate(counts):
        if c > 0 and cumulative + c >= target:
            lo, hi = log_edges[k]
            frac = (target - cumulative) / c
            return lo + frac * (hi - lo), (c / total) / (hi - lo)
        cumulative += c
    lo, hi = log_edges[-1]
    return hi, 0.0


def log_quantile_variance(q: float, n: float, density: float) -> float:
    """Asymptotic variance of the log of a sample quantile: q(1-q) / (n f^2), f the log-density."""
    if n <= 0 or density <= 0:
        return math.inf
    return q * (1.0 - q) / (n * density * density)


def rebin(le: Grid, counts: Sequence[int], grid: Grid) -> list[float]:
    """Counts of a histogram with bounds `le` spread onto the buckets of `grid` (log-linear inside buckets)."""
    src = edges(le)
    cum_at: list[float] = []
    for bound in grid:
        x = math.log(bound)
        acc = 0.0
        for (lo, hi), c in zip(src, counts, strict=True):
            if x >= hi:
                acc += c
            elif x > lo:
                acc += c * (x - lo) / (hi - lo)
                break
            else:
                break
        cum_at.append(acc)
    total = float(sum(counts))
    out = [cum_at[0]]
    out.extend(cum_at[k] - cum_at[k - 1] for k in range(1, len(cum_at)))
    out.append(total - cum_at[-1])
    return [max(0.0, c) for c in out]
