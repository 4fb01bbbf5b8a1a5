"""The sequential verdict after one slot: every metric's evidence, the rules, and the decision.

Fail (any one is enough):
- error rate: the always-valid lower bound of canary/baseline is above the ratio tolerance AND the
  implied increase is above the absolute floor (a regression needs both);
- latency p50 / p99 and watched gauges: the lower bound of the ratio is above its tolerance;
- crashes: one canary instance crashed `crash_loop` times, or canary crashes are significantly
  more frequent than the baseline's over the same exposure;
- silence: a canary instance sent nothing for `silent_windows` slots in which the baseline reported;
- SLO: the canary breaches an absolute SLO of the policy while the baseline does not.

Pass (all at once): past min_bake and `settle` x max_bake; every metric with data has its
upper bound (valid over the looks from the earliest pass to max bake) inside its tolerance,
enough requests, no canary instance far beyond the tolerance, and its recent stretch not above
the tolerance; no unexplained canary crash, every
canary reporting, no SLO breached by either group.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from ringfence.core.analysis.contrast import Contrast, Pair, contrast, point_estimate
from ringfence.core.analysis.fleet import Fleet
from ringfence.core.analysis.result import Decision, MetricResult, Verdict, percent, pvalue, ratio, value
from ringfence.core.analysis.settings import AnalysisSettings
from ringfence.core.analysis.stats import binomial_sf, look_z

FAIL_MIN_WINDOWS = 3   # windows of warm canary data before a statistical metric may fail


@dataclass(frozen=True)
class Judgement:
    decision: Decision
    metrics: dict[str, MetricResult]
    reasons: tuple[str, ...]
    pending: tuple[str, ...] = ()   # why it is not a pass yet


@dataclass
class _Verdicts:
    metrics: dict[str, MetricResult] = field(default_factory=dict)
    fails: list[str] = field(default_factory=list)
    passes: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)

    def put(self, m: MetricResult, sentence: str) -> None:
        self.metrics[m.name] = m
        if m.verdict == "fail":
            self.fails.append(sentence)
        elif m.verdict == "pass":
            self.passes.append(sentence)
        elif m.verdict == "continue":
            self.blocks.append(sentence)


def _interval(c: Contrast, alpha: float) -> tuple[float, float, float]:
    return math.exp(c.estimate), math.exp(c.low(alpha)), math.exp(c.high(alpha))


def pass_z(s: AnalysisSettings) -> float:
    """The within-instance z of a pass bound: valid over the looks from the earliest pass to max bake.

    A canary's information grows by about one window of data per window from the end of its warmup,
    so the pass is looked at after windows first..last of a random walk (`stats.look_z`)."""
    window = s.window or 10.0
    earliest = max(s.min_bake, s.settle * s.max_bake)
    first = max(1, round((earliest - s.warmup) / window))
    last = max(first, round((s.max_bake - s.warmup) / window))
    return look_z(s.alpha_pass, first, last)


def _ratio_metric(name: str, unit: str, c: Contrast | None, recent_of: Callable[[], tuple[float, float] | None], *,
                  tolerance: float, fail_extra: Callable[[Contrast], bool], pass_extra: Callable[[float], bool],
                  enough: bool, canary_value: float, baseline_value: float, alpha: float, s: AnalysisSettings,
                  tol_text: str, tol_json: dict[str, float], counts: tuple[int, int, float, float]
                  ) -> tuple[MetricResult, str]:
    k_c, k_b, n_c, n_b = counts
    common = dict(canary=canary_value, baseline=baseline_value, unit=unit, tolerance=tol_json,
                  canary_instances=k_c, baseline_instances=k_b, canary_requests=n_c, baseline_requests=n_b)
    values = f"canary {value(canary_value, unit)} vs baseline {value(baseline_value, unit)}"
    if c is None:
        m = MetricResult(name, "continue", "waiting for warm data from both groups", **common)  # type: ignore[arg-type]
        return m, f"{name}: not enough data yet ({values})"
    effect, low, high = _interval(c, alpha)
    p = c.p_value(math.log(tolerance))
    shown = dict(effect=effect, effect_low=low, effect_high=high, confidence=1 - alpha, p_value=p,
                 details={"between_instance_sd": c.tau, "windows": c.info})
    level = f"{100 * (1 - alpha):.4g}% CI {ratio(low)}-{ratio(high)}"
    if c.info >= FAIL_MIN_WINDOWS and c.fails(math.log(tolerance), alpha) and fail_extra(c):
        rule = ("lower bound above tolerance, with or without the worst canary instance" if c.robust_clears(
            math.log(tolerance)) else f"lower bound above tolerance, {c.beyond} canary instances each beyond it")
        m = MetricResult(name, "fail", rule, **common, **shown)  # type: ignore[arg-type]
        return m, f"{name}: {values} ({ratio(effect)}, {level}), tolerance {tol_text}, {pvalue(p)}"
    verdict: Verdict = "continue"
    high = c.pass_high(s.alpha_pass, pass_z(s))
    if not enough:
        rule = "too few requests to pass"
    elif c.outliers:
        rule = f"{len(c.outliers)} canary instance(s) far beyond tolerance"
    elif not (high < math.log(tolerance) or pass_extra(high)):
        rule = "upper bound not yet within tolerance"
    elif (recent := recent_of()) is None or recent[0] > math.log(tolerance) + recent[1]:
        rule = "recent windows above tolerance" if recent is not None else "no recent canary data"
    else:
        verdict, rule = "pass", "upper bound within tolerance"
    m = MetricResult(name, verdict, rule, **common, **shown)  # type: ignore[arg-type]
    pass_high = math.exp(high)
    if verdict == "pass":
        return m, f"{name}: {values} ({ratio(effect)}, upper bound {ratio(pass_high)}) is within tolerance {tol_text}"
    return m, f"{name}: {values} ({ratio(effect)}): {rule} (upper bound {ratio(pass_high)}, tolerance {tol_text})"


def _latency(v: _Verdicts, fleet: Fleet, s: AnalysisSettings, alpha: float, q: float, name: str,
             tol: float) -> None:
    if not fleet.seen_latency:
        v.metrics[name] = MetricResult(name, "no_data", "no latency histograms in the stream")
        return
    canary, baseline, shares = fleet.quantile_pairs(q)
    c = contrast(canary, baseline, info=fleet.canary_slots, tolerance=math.log(tol), rho=s.rho, shares=shares)
    n_c, _, _ = fleet.totals("canary")
    n_b, _, _ = fleet.totals("baseline")
    enough = n_c >= s.min_requests and n_b >= s.min_requests
    m, sentence = _ratio_metric(
        name, "ms", c, lambda: point_estimate(fleet.quantile_pairs(q, recent=True)), tolerance=tol,
        fail_extra=lambda _: True,
        pass_extra=lambda _high: False, enough=enough, canary_value=fleet.pooled_quantile("canary", q),
        baseline_value=fleet.pooled_quantile("baseline", q), alpha=alpha, s=s, tol_text=ratio(tol),
        tol_json={"ratio": tol}, counts=(len(canary), len(baseline), n_c, n_b))
    v.put(m, sentence)


def _errors(v: _Verdicts, fleet: Fleet, s: AnalysisSettings, alpha: float) -> None:
    n_c, e_c, _ = fleet.totals("canary")
    n_b, e_b, _ = fleet.totals("baseline")
    p_b = e_b / n_b if n_b else math.nan
    p_lo = max(0.0, e_b - 2.0 * math.sqrt(e_b)) / n_b if n_b else 0.0
    p_hi = (e_b + 2.0 * math.sqrt(e_b) + 1.0) / n_b if n_b else math.inf
    floor = s.error_floor
    effective = max(s.error_ratio, 1.0 + floor / max(p_b, 1e-12)) if n_b else s.error_ratio
    canary, baseline, shares = fleet.error_pairs()
    c = contrast(canary, baseline, info=fleet.canary_slots, tolerance=math.log(effective), rho=s.rho, shares=shares)

    def recent() -> tuple[float, float] | None:  # judged against the effective tolerance, through a shift
        found = point_estimate(fleet.error_pairs(recent=True))
        return None if found is None else (found[0] - math.log(effective) + math.log(s.error_ratio), found[1])

    m, sentence = _ratio_metric(
        "error_rate", "fraction", c, recent, tolerance=s.error_ratio,
        fail_extra=lambda c: p_lo * math.expm1(c.low(alpha)) > floor,
        pass_extra=lambda high: p_hi * math.expm1(high) < floor,
        enough=n_c >= s.min_requests and n_b >= s.min_requests,
        canary_value=e_c / n_c if n_c else math.nan, baseline_value=p_b, alpha=alpha, s=s,
        tol_text=f"{ratio(s.error_ratio)} and +{100 * floor:.2g} pp",
        tol_json={"ratio": s.error_ratio, "increase": floor}, counts=(len(canary), len(baseline), n_c, n_b))
    v.put(m, sentence)


def _gauge(v: _Verdicts, fleet: Fleet, s: AnalysisSettings, alpha: float, name: str, tol: float) -> None:
    key = f"gauge:{name}"
    if name not in fleet.seen_gauges:
        v.put(MetricResult(key, "continue", "the policy watches this gauge but no window carries it",
                           tolerance={"ratio": tol}), f"{key}: no data, and the policy watches it")
        return
    canary, baseline, shares = fleet.gauge_pairs(name)
    c = contrast(canary, baseline, info=fleet.canary_slots, tolerance=math.log(tol), rho=s.rho, shares=shares)
    n_c, _, _ = fleet.totals("canary")
    n_b, _, _ = fleet.totals("baseline")
    m, sentence = _ratio_metric(
        key, "", c, lambda: point_estimate(fleet.gauge_pairs(name, recent=True)), tolerance=tol,
        fail_extra=lambda _: True, pass_extra=lambda _high: False,
        enough=True, canary_value=fleet.pooled_gauge("canary", name),
        baseline_value=fleet.pooled_gauge("baseline", name), alpha=alpha, s=s, tol_text=ratio(tol),
        tol_json={"ratio": tol}, counts=(len(canary), len(baseline), n_c, n_b))
    v.put(m, sentence)


def _crashes(v: _Verdicts, fleet: Fleet, s: AnalysisSettings, alpha: float, slot: int) -> None:
    crashes = {"canary": 0, "baseline": 0}
    exposure = {"canary": 0, "baseline": 0}
    looping = []
    for inst in fleet.instances.values():
        crashes[inst.group] += inst.crashes
        exposure[inst.group] += max(0, slot - inst.first_slot + 1)
        if inst.group == "canary" and inst.crashes >= s.crash_loop:
            looping.append(inst)
    c, b = crashes["canary"], crashes["baseline"]
    x_c, x_b = exposure["canary"], exposure["baseline"]
    share = x_c / (x_c + x_b) if x_c + x_b else 0.0
    p = binomial_sf(c, c + b, share) if c >= 2 and 0 < share < 1 else 1.0
    common = dict(canary=float(c), baseline=float(b), unit="count", tolerance={"crash_loop": s.crash_loop},
                  canary_instances=sum(1 for i in fleet.instances.values() if i.group == "canary"),
                  baseline_instances=sum(1 for i in fleet.instances.values() if i.group == "baseline"),
                  details={"canary_instance_windows": x_c, "baseline_instance_windows": x_b})
    if looping:
        worst = max(looping, key=lambda i: i.crashes)
        v.put(MetricResult("crashes", "fail", "crash loop", **common),  # type: ignore[arg-type]
              f"crashes: canary instance {worst.id} crashed {worst.crashes} times (a crash loop: "
              f"{s.crash_loop} crashes of one canary instance fail the stage)")
    elif p <= alpha:
        v.put(MetricResult("crashes", "fail", "canary crash rate above the baseline's", p_value=p,
                           **common),  # type: ignore[arg-type]
              f"crashes: canary {c} crash(es) over {x_c} instance-windows vs baseline {b} over {x_b}, p = {p:.2g}")
    elif c and (x_b == 0 or c / max(x_c, 1) > b / x_b):
        v.put(MetricResult("crashes", "continue", "canary crashed more often than the baseline",
                           **common),  # type: ignore[arg-type]
              f"crashes: canary {c} crash(es) vs baseline {b}: not a loop yet, but no pass while the canary "
              "crashes more often")
    else:
        v.put(MetricResult("crashes", "pass", "no canary crash beyond the baseline's rate",
                           **common),  # type: ignore[arg-type]
              f"crashes: canary {c} vs baseline {b}")


def _silence(v: _Verdicts, fleet: Fleet, s: AnalysisSettings, slot: int) -> None:
    silent: list[tuple[str, int]] = []
    lagging = 0
    canaries = 0
    for inst in fleet.instances.values():
        if inst.group != "canary" or inst.stopped:
            continue
        canaries += 1
        missed = len(fleet.baseline_slots) - bisect_right(fleet.baseline_slots, inst.last_alive)
        if missed >= s.silent_windows:
            silent.append((inst.id, missed))
        elif inst.last_alive < slot:
            lagging += 1
    common = dict(canary=float(len(silent)), baseline=0.0, unit="count",
                  tolerance={"silent_windows": s.silent_windows}, canary_instances=canaries)
    if silent:
        ident, missed = silent[0]
        more = f" (and {len(silent) - 1} more)" if len(silent) > 1 else ""
        v.put(MetricResult("silent", "fail", "canary instance silent", **common),  # type: ignore[arg-type]
              f"silent: canary instance {ident} has sent nothing for {missed} windows while the baseline "
              f"reports{more}")
    elif lagging or not canaries:
        v.put(MetricResult("silent", "continue", "a canary instance missed the last window",
                           **common),  # type: ignore[arg-type]
              "silent: waiting for every canary instance to report" if canaries else "silent: no canary instance")
    else:
        v.put(MetricResult("silent", "pass", "every canary instance reports", **common),  # type: ignore[arg-type]
              "silent: every canary instance reports")


def _slo(v: _Verdicts, fleet: Fleet, s: AnalysisSettings) -> None:
    if not s.slo:
        return
    breaches: dict[str, list[str]] = {"canary": [], "baseline": []}
    for group in ("canary", "baseline"):
        n, e = fleet.recent_totals(group)
        limit = s.slo.get("error_rate")
        if limit is not None and n > 0 and max(0.0, e - 2.0 * math.sqrt(e)) / n > limit:
            breaches[group].append(f"error rate {percent(e / n)} > {percent(limit)}")
        for key, q in (("latency_p50", 0.5), ("latency_p99", 0.99)):
            limit = s.slo.get(key)
            if limit is not None and n >= s.min_requests:
                observed = fleet.pooled_quantile(group, q, recent=True)
                if observed > limit:
                    breaches[group].append(f"{key} {observed:.0f} ms > {limit:g} ms")
    detail = {"canary_breaches": breaches["canary"], "baseline_breaches": breaches["baseline"]}
    if breaches["baseline"]:
        v.put(MetricResult("slo", "continue", "the baseline breaches the SLO: hold", details=detail),
              "slo: the baseline itself breaches the SLO (" + "; ".join(breaches["baseline"]) + "): hold")
    elif breaches["canary"]:
        v.put(MetricResult("slo", "fail", "canary breaches the SLO", details=detail),
              "slo: the canary breaches the SLO (" + "; ".join(breaches["canary"]) + ") while the baseline does not")
    else:
        v.put(MetricResult("slo", "pass", "both groups within the SLO", details=detail), "slo: within the SLO")


def judge(fleet: Fleet, s: AnalysisSettings, slot: int, at: float) -> Judgement:
    """Every metric's verdict after `slot` (whose last record has t = `at`), and the decision."""
    tests = 4 + len(s.gauges)                 # error rate, p50, p99, crash rate, gauges: alpha is split
    alpha = s.alpha / tests
    v = _Verdicts()
    _errors(v, fleet, s, alpha)
    _latency(v, fleet, s, alpha, 0.5, "latency_p50", s.latency_p50_ratio)
    _latency(v, fleet, s, alpha, 0.99, "latency_p99", s.latency_p99_ratio)
    for name, tol in sorted(s.gauges.items()):
        _gauge(v, fleet, s, alpha, name, tol)
    _crashes(v, fleet, s, alpha, slot)
    _silence(v, fleet, s, slot)
    _slo(v, fleet, s)
    if v.fails:
        return Judgement("fail", v.metrics, tuple(v.fails))
    earliest = max(s.min_bake, s.settle * s.max_bake)
    if v.blocks:
        return Judgement("continue", v.metrics, tuple(v.blocks), tuple(v.blocks))
    if at + 1e-9 < earliest:
        wait = f"no pass before {earliest:g} s (min bake {s.min_bake:g} s, settle {s.settle:g} x max bake)"
        return Judgement("continue", v.metrics, (wait,), (wait,))
    return Judgement("pass", v.metrics, tuple(v.passes))


__all__ = ["Judgement", "Pair", "judge"]
