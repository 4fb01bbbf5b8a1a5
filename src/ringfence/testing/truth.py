"""Ground truth of a simulated scenario: is the new revision beyond the default tolerance?

The truth is computed from the scenario's parameters, not from the random stream: it is the
effect of the new revision once active, with everything that is not the revision's doing
cancelling out (instance random effects and bad hosts, load ramp and drift, bursts, clock skew,
cold starts, baseline crash loops). Both groups draw their instances from the same population, so:

- error rate: the population error rate is `error_rate * E[instance factor]` (`exp(h^2 / 2)` for a
  lognormal factor of log-sd h) in both groups; on the canary, a share `q * f` of the requests
  (q = affected canaries / canaries, f = `traffic_share`) fails with `p * error_mult + error_add`;
- latency p50 and p99: exact quantiles of the pooled latency law of each group (body + slow tail,
  spread by the instance latency factor), the canary's mixing in the affected share with its
  median x `latency_scale` and its tail share x `tail_frac_mult`;
- crash loop: at least two crashes of one canary within the stage; silent canary: a canary stops
  reporting before the end of the stage;
- gauges the spec gives a tolerance for: the canary/baseline ratio of the gauge's mean at the end
  of the stage (rss levels average 350 MB; a leak adds `rss_growth_mb_per_min` after the onset).

`bad` applies the default tolerance of the scenarios README: error rate above x1.2 **and** above
+0.1 percentage point; p50 or p99 above x1.10; any canary crash loop or silent canary; any watched
gauge above its tolerance. `margin` says how clear the case is, so an evaluation can report the
borderline ones apart: `good` when every figure is well inside (errors x1.10 or +0.05 pp at most,
latency x1.05, a gauge at most half-way to its tolerance), `bad` when one figure is well beyond
(errors x1.4 and +0.2 pp, latency x1.25, a crash loop with two crashes at least 20 s before the end,
a canary silent at least five windows before the end, a gauge twice as far as its tolerance), and
`borderline` otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ringfence.testing.latency import Mixture, latency_mixture
from ringfence.testing.scenario import CrashLoop, Scenario, as_scenario

Margin = Literal["good", "bad", "borderline"]

ERROR_RATIO_TOL, ERROR_FLOOR_PP, LATENCY_RATIO_TOL = 1.2, 0.1, 1.10
GOOD_ERROR_RATIO, GOOD_ERROR_PP, GOOD_LATENCY_RATIO = 1.10, 0.05, 1.05
BAD_ERROR_RATIO, BAD_ERROR_PP, BAD_LATENCY_RATIO = 1.4, 0.2, 1.25
MEAN_RSS_MB = 350.0  # the simulator draws each instance's rss level from U(300, 400)


@dataclass(frozen=True)
class Truth:
    error_ratio: float
    error_diff_pp: float
    latency_p50_ratio: float
    latency_p99_ratio: float
    crash_loop: bool
    canary_silent: bool
    gauge_ratios: Mapping[str, float] = field(default_factory=dict)
    bad: bool = False
    margin: Margin = "good"
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gauge_ratios"] = dict(self.gauge_ratios)
        d["reasons"] = list(self.reasons)
        return d


def _crashes(loop: CrashLoop, horizon: float, gap: float) -> int:
    """How many crashes happen before `horizon` when crashes are `gap` s apart."""
    if horizon <= loop.first:
        return 0
    n = 1 + math.floor((horizon - loop.first) / gap - 1e-9)
    return n if loop.max_crashes is None else min(n, loop.max_crashes)


def truth(spec: Scenario | Mapping[str, Any]) -> Truth:
    """The ground truth of a scenario (see the module docstring)."""
    s = as_scenario(spec)
    e = s.effect
    active = e.onset < s.max_bake
    hit = (s.affected_canaries() / s.canary) * e.traffic_share if active else 0.0

    base = s.error_rate * math.exp(0.5 * s.hetero.errors ** 2)
    can = base + hit * (base * (e.error_mult - 1.0) + e.error_add)
    error_ratio = can / base if base > 0 else (math.inf if can > 0 else 1.0)
    error_pp = 100.0 * (can - base)

    tail_hit = min(0.5, s.tail_frac * e.tail_frac_mult)
    def law(parts: list[tuple[float, float, float]]) -> Mixture:
        return latency_mixture(parts, s.sigma, s.tail_mult, s.tail, s.tail_alpha, spread=s.hetero.latency)

    baseline_law = law([(1.0, s.p50_ms, s.tail_frac)])
    canary_law = law([(1.0 - hit, s.p50_ms, s.tail_frac), (hit, s.p50_ms * e.latency_scale, tail_hit)])
    p50 = canary_law.quantile(0.5) / baseline_law.quantile(0.5)
    p99 = canary_law.quantile(0.99) / baseline_law.quantile(0.99)

    loop = e.crash_loop
    nominal = worst = 0
    if loop is not None and loop.instances > 0:
        nominal = _crashes(loop, s.max_bake, max(loop.period, loop.down[0]))
        worst = _crashes(loop, s.max_bake - 20.0, max(1.2 * loop.period, loop.down[1]))
    crash_loop = nominal >= 2
    silent_at = e.silent_at if e.silent_instances > 0 else None
    canary_silent = silent_at is not None and silent_at < s.max_bake

    gauges: dict[str, float] = {}
    q = s.affected_canaries() / s.canary if active else 0.0
    for name in s.gauge_tolerance:
        scale = e.gauge_scale.get(name, 1.0)
        if name == "rss_mb":
            leak = e.rss_growth_mb_per_min * max(0.0, s.max_bake - e.onset) / 60.0
            affected = MEAN_RSS_MB * scale + leak
            gauges[name] = round(((1.0 - q) * MEAN_RSS_MB + q * affected) / MEAN_RSS_MB, 3)
        else:
            gauges[name] = round(1.0 + q * (scale - 1.0), 3)

    reasons: list[str] = []
    clear_bad = False
    if error_ratio > ERROR_RATIO_TOL and error_pp > ERROR_FLOOR_PP:
        reasons.append(f"error rate x{error_ratio:.3g} (+{error_pp:.3g} pp)")
        clear_bad |= error_ratio >= BAD_ERROR_RATIO and error_pp >= BAD_ERROR_PP
    for name, ratio in (("p50", p50), ("p99", p99)):
        if ratio > LATENCY_RATIO_TOL:
            reasons.append(f"latency {name} x{ratio:.3g}")
            clear_bad |= ratio >= BAD_LATENCY_RATIO
    if crash_loop:
        reasons.append(f"canary crash loop ({nominal} crashes)")
        clear_bad |= worst >= 2
    if canary_silent and silent_at is not None:
        reasons.append(f"canary silent from {silent_at:g} s")
        clear_bad |= silent_at <= s.max_bake - 5 * s.dt
    for name, ratio in gauges.items():
        tol = s.gauge_tolerance[name]
        if ratio > tol:
            reasons.append(f"{name} x{ratio:.3g} (tolerance x{tol:g})")
            clear_bad |= ratio >= 1.0 + 2.0 * (tol - 1.0)

    clear_good = (
        (error_ratio <= GOOD_ERROR_RATIO or error_pp <= GOOD_ERROR_PP)
        and p50 <= GOOD_LATENCY_RATIO and p99 <= GOOD_LATENCY_RATIO
        and nominal == 0 and not canary_silent
        and all(r <= 1.0 + 0.5 * (s.gauge_tolerance[g] - 1.0) for g, r in gauges.items())
    )
    bad = bool(reasons)
    margin: Margin = ("bad" if clear_bad else "borderline") if bad else ("good" if clear_good else "borderline")
    return Truth(
        error_ratio=round(error_ratio, 3), error_diff_pp=round(error_pp, 3),
        latency_p50_ratio=round(p50, 3), latency_p99_ratio=round(p99, 3),
        crash_loop=crash_loop, canary_silent=canary_silent, gauge_ratios=gauges,
        bad=bad, margin=margin, reasons=tuple(reasons),
    )
