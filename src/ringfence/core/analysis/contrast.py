"""One metric, canary against baseline, with instances as the unit of analysis.

Each instance contributes one value `l` on the log scale (its error rate, latency quantile or
gauge relative to the baseline running at the same moments) and the sampling variance `v` of
that value. The revision's effect is estimated by mean(canary l) - mean(baseline l); its
variance has two parts:

- between instances, `tau^2 (1/m + 1/n_b)`: host effects, estimated from the (larger) baseline
  group and borrowed for the canary. It does not shrink as windows accumulate;
- within instances, `sum(v)/m^2 + sum(v_b)/n_b^2`: sampling noise, shrinking window by window.

Each part gets the bound it needs and the two are combined root-sum-square: the within part a
one-sided normal-mixture boundary (`stats.mixture_radius`), valid however often it is looked at;
the between part, a single draw that does not change over time, a Student t quantile with
n_b - 1 degrees of freedom (tau is estimated from n_b baseline instances).

The between part of a *fail* bound uses tau estimated from the baseline alone: under "no
regression", canary hosts are draws from the baseline's population, so the t quantile is exact
for that part. A *pass* bound uses the larger of that and the spread of canary and baseline values
pooled (a canary group whose instances disagree is not evidence of safety).

To fail, the bound must clear the tolerance (at alpha), and the change must not be explained by
one canary instance: the canary without its worst instance still above the tolerance (at a fixed
5% level), or at least two canary instances each far beyond the tolerance, by more than the
baseline's spread explains (99.5% prediction bound, the one that also blocks a pass). These
conditions only narrow the fail region, so the false-failure rate stays under alpha; they keep
one canary landing on a bad host from failing a change while a regression on two canaries of a
region still fails.

To pass, the bound over all canary instances must be inside the tolerance (at alpha_pass, the
within part at the boundary of the looks the pass is allowed over, `stats.look_z`)
and no canary instance may sit far beyond it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ringfence.core.analysis.stats import mixture_radius, t_ppf

Pair = tuple[float, float]  # (value on the log scale, its sampling variance)


class Sides(NamedTuple):
    """One metric's instance values, both groups, and each baseline instance's share of the
    references it was measured against (see `contrast`)."""

    canary: list[Pair]
    baseline: list[Pair]
    shares: list[float]
OUTLIER_LEVEL = 0.995        # a canary instance this far beyond tolerance blocks a pass
ROBUST_LEVEL = 0.95          # the canary without its worst instance must clear the tolerance at this level


@dataclass(frozen=True)
class Part:
    """Mean canary - mean baseline over some canary instances, with its standard error and degrees of freedom."""

    estimate: float
    between: float   # standard error from host effects (fixed over time)
    within: float    # standard error from sampling noise (shrinks window by window)
    df: int          # degrees of freedom of the between part: baseline instances - 1
    m: int

    @property
    def se(self) -> float:
        return math.hypot(self.between, self.within)

    def radius(self, alpha: float, info: float, rho: float) -> float:
        """Root-sum-square of a t bound on the between part and a mixture bound on the within part."""
        return math.hypot(t_ppf(1.0 - alpha, float(self.df)) * self.between,
                          mixture_radius(alpha, info, rho) * self.within)

    def pass_radius(self, alpha: float, z_within: float) -> float:
        """Root-sum-square of a t bound on the between part and `z_within` standard errors of the within part."""
        return math.hypot(t_ppf(1.0 - alpha, float(self.df)) * self.between, z_within * self.within)


@dataclass(frozen=True)
class Contrast:
    """The evidence on one metric at one moment, and what it allows."""

    full: Part               # all canary instances, tau from the baseline (fail)
    robust: Part             # without the worst canary instance (= full with one canary)
    cautious: Part           # all canary instances, tau never below the pooled groups' spread (pass)
    info: float              # windows of canary data: the time scale of the mixture boundary
    rho: float
    tau: float               # between-instance log-sd estimated from the baseline
    outliers: tuple[int, ...]  # canary indices far beyond the tolerance
    beyond: int = 0          # canary instances each far beyond the tolerance (OUTLIER_LEVEL prediction bound)

    @property
    def estimate(self) -> float:
        return self.full.estimate

    def radius(self, alpha: float) -> float:
        return self.full.radius(alpha, self.info, self.rho)

    def low(self, alpha: float) -> float:
        return self.full.estimate - self.radius(alpha)

    def high(self, alpha: float) -> float:
        return self.cautious.estimate + self.cautious.radius(alpha, self.info, self.rho)

    def pass_high(self, alpha: float, z_within: float) -> float:
        """The upper bound a pass needs inside the tolerance (see `stats.look_z` for `z_within`)."""
        return self.cautious.estimate + self.cautious.pass_radius(alpha, z_within)

    def robust_clears(self, tolerance: float) -> bool:
        """The canary without its worst instance is still above the tolerance (at ROBUST_LEVEL)."""
        return self.robust.estimate - t_ppf(ROBUST_LEVEL, float(self.robust.df)) * self.robust.se > tolerance

    def fails(self, tolerance: float, alpha: float) -> bool:
        """Lower bound above the tolerance, and not one canary instance's doing (see the module)."""
        return self.low(alpha) > tolerance and (self.robust_clears(tolerance) or self.beyond >= 2)

    def p_value(self, tolerance: float) -> float:
        """Always-valid p-value of 'no regression beyond the tolerance': the smallest alpha that fails."""
        excess = self.full.estimate - tolerance
        if excess <= 0:
            return 1.0
        lo, hi = 1e-12, 0.5
        if self.radius(lo) < excess:
            return lo
        if self.radius(hi) >= excess:
            return hi
        for _ in range(50):
            mid = math.sqrt(lo * hi)
            if self.radius(mid) < excess:
                hi = mid
            else:
                lo = mid
        return hi


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _var(xs: Sequence[float]) -> float:
    m = _mean(xs)
    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def _part(canary: Sequence[Pair], mean_b: float, within_b: float, tau2: float, nb: int) -> Part:
    m = len(canary)
    between = tau2 * (1.0 / m + 1.0 / nb)
    within = sum(p[1] for p in canary) / (m * m) + within_b
    return Part(_mean([p[0] for p in canary]) - mean_b, math.sqrt(between), math.sqrt(within), nb - 1, m)


def contrast(canary: Sequence[Pair], baseline: Sequence[Pair], *, info: float, tolerance: float,
             rho: float, shares: Sequence[float] | None = None) -> Contrast | None:
    """The evidence on one metric, or None when it cannot be judged (no canary, < 2 baseline instances).

    A baseline instance is measured against the *other* baseline instances (`fleet`), so one that
    sits above the rest also lowers its own reference: its deviation from the baseline mean comes
    out stretched by 1 / (1 - share), where `share` is its part of the pooled reference (its
    traffic's share for error rates, 1 / instances for gauges; None: 1 / baseline instances each).
    Canary instances are measured against the whole baseline and are not stretched, so the
    deviations are shrunk back before the host spread is borrowed for them (at 12 equal
    instances the stretch would widen it by 19%)."""
    nc, nb = len(canary), len(baseline)
    if nc < 1 or nb < 2 or info <= 0:
        return None
    lb = [p[0] for p in baseline]
    vbar_b = _mean([p[1] for p in baseline])
    mean_b = _mean(lb)
    shares = [1.0 / nb] * nb if shares is None else shares
    spread_b = sum(((x - mean_b) * (1.0 - w)) ** 2 for x, w in zip(lb, shares, strict=True)) / (nb - 1)
    tau2 = max(0.0, spread_b - vbar_b)
    tau2_pass = tau2
    if nc >= 2:  # for a pass, the canary's own spread counts too, never narrowing the baseline's
        pooled = ((nb - 1) * spread_b + (nc - 1) * _var([p[0] for p in canary])) / (nb + nc - 2)
        vbar = (vbar_b * nb + sum(p[1] for p in canary)) / (nb + nc)
        tau2_pass = max(tau2, pooled - vbar)
    within_b = vbar_b / nb
    full = _part(canary, mean_b, within_b, tau2, nb)
    robust = _part(sorted(canary)[:-1], mean_b, within_b, tau2, nb) if nc >= 2 else full
    cautious = _part(canary, mean_b, within_b, tau2_pass, nb) if tau2_pass > tau2 else full
    cut = t_ppf(OUTLIER_LEVEL, float(nb - 1))
    outliers = tuple(i for i, (x, v) in enumerate(canary)
                     if x - mean_b - tolerance > cut * math.sqrt(tau2_pass + v + (tau2_pass + vbar_b) / nb))
    beyond = sum(1 for x, v in canary if x - mean_b - tolerance > cut * math.sqrt(tau2 + v + (tau2 + vbar_b) / nb))
    return Contrast(full, robust, cautious, info, rho, math.sqrt(tau2), outliers, beyond)


def point_estimate(sides: Sides) -> tuple[float, float] | None:
    """(mean canary - mean baseline, its within-instance standard error), for the recent-window check."""
    canary, baseline = sides.canary, sides.baseline
    if not canary or len(baseline) < 2:
        return None
    nc, nb = len(canary), len(baseline)
    est = _mean([p[0] for p in canary]) - _mean([p[0] for p in baseline])
    se = math.sqrt(sum(p[1] for p in canary) / (nc * nc) + sum(p[1] for p in baseline) / (nb * nb))
    return est, se
