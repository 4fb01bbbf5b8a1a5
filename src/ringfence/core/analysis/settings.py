"""What the analyzer is told: tolerances, error rates and timings, and the policy's `analysis:` section.

    analysis:                       # in a rollout policy; every key is optional
      alpha: 0.01                   # false-failure rate per stage (all metrics together)
      alpha_pass: 0.2               # per metric: chance to pass a change sitting exactly at its tolerance
      error_rate: {max_ratio: 1.2, min_increase_pp: 0.1}   # a regression needs both
      latency_p50: {max_ratio: 1.1}
      latency_p99: {max_ratio: 1.1}
      gauges: {rss_mb: {max_ratio: 1.3}}                   # gauges to watch, canary / baseline
      slo: {error_rate: 0.02, latency_p99: 800}            # absolute guards (fraction, ms)
      crash_loop: 2                 # crashes of one canary instance that fail the stage
      silent_windows: 3             # windows a canary may miss while the baseline reports
      warmup: 30s                   # windows this soon after a process start are not compared
      recent: 60s                   # a pass also needs the last minute to look within tolerance

Bakes are not part of the section: they belong to the stage (`AnalysisSettings.for_stage`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ringfence.errors import InvalidInput, Problem

SLO_KEYS = ("error_rate", "latency_p50", "latency_p99")
_KEYS = ("alpha", "alpha_pass", "error_rate", "latency_p50", "latency_p99", "gauges", "slo", "crash_loop",
         "silent_windows", "warmup", "recent")


@dataclass(frozen=True)
class AnalysisSettings:
    """Everything the analyzer needs besides the observations. Times are seconds from the stage start."""

    min_bake: float = 0.0            # no pass before this
    max_bake: float = 1800.0         # the stream is read up to here; undecided then = inconclusive
    alpha: float = 0.01              # P(fail a healthy change) per stage, shared by the statistical tests
    alpha_pass: float = 0.2          # per metric: P(pass | the metric sits exactly at its tolerance)
    error_ratio: float = 1.2         # a regression needs canary/baseline error rate above this ...
    error_floor: float = 0.001       # ... and canary - baseline above this (0.001 = 0.1 percentage point)
    latency_p50_ratio: float = 1.10
    latency_p99_ratio: float = 1.10
    gauges: Mapping[str, float] = field(default_factory=dict)   # gauge name -> max canary/baseline ratio
    slo: Mapping[str, float] = field(default_factory=dict)      # error_rate (fraction), latency_p50/p99 (ms)
    crash_loop: int = 2              # crashes of one canary instance that fail the stage
    silent_windows: int = 3          # windows a canary instance may miss while the baseline reports
    warmup: float = 30.0             # s after a process start whose windows are not compared
    recent: float = 60.0             # s: a pass also needs this recent stretch within tolerance
    settle: float = 0.5              # no pass before this share of max_bake (late onsets, crash loops)
    rho: float = 2.0                 # windows: where the mixture boundary is tightest (~3-10 x rho)
    min_requests: int = 200          # per group, before a metric may pass
    window: float | None = None      # slot width; None = the first window's dt

    def __post_init__(self) -> None:
        problems = _check(self)
        if problems:
            raise InvalidInput(f"invalid analysis settings: {problems[0].pointer}: {problems[0].message}", problems)

    def for_stage(self, min_bake: float, max_bake: float) -> AnalysisSettings:
        return replace(self, min_bake=min_bake, max_bake=max_bake)

    @classmethod
    def from_policy(cls, section: Any, where: str = "") -> AnalysisSettings:
        """Settings from a policy's `analysis:` section; InvalidInput with JSON pointers otherwise."""
        problems: list[Problem] = []
        settings = _parse(section, where, problems)
        if problems:
            first = problems[0]
            raise InvalidInput(f"the analysis section has {len(problems)} problem(s): {first.pointer}: "
                               f"{first.message}", problems)
        return settings

    def to_policy_json(self) -> dict[str, Any]:
        """The `analysis:` section meaning these settings (bakes and tuning left out)."""
        out: dict[str, Any] = {
            "alpha": self.alpha, "alpha_pass": self.alpha_pass,
            "error_rate": {"max_ratio": self.error_ratio, "min_increase_pp": round(self.error_floor * 100, 12)},
            "latency_p50": {"max_ratio": self.latency_p50_ratio},
            "latency_p99": {"max_ratio": self.latency_p99_ratio},
            "crash_loop": self.crash_loop, "silent_windows": self.silent_windows,
            "warmup": self.warmup, "recent": self.recent,
        }
        if self.gauges:
            out["gauges"] = {name: {"max_ratio": ratio} for name, ratio in sorted(self.gauges.items())}
        if self.slo:
            out["slo"] = dict(sorted(self.slo.items()))
        return out


def _check(s: AnalysisSettings) -> list[Problem]:
    out: list[Problem] = []

    def need(ok: bool, name: str, message: str) -> None:
        if not ok:
            out.append(Problem(f"/{name}", message, "analysis"))

    need(0 < s.alpha < 0.5, "alpha", f"alpha must lie in (0, 0.5), not {s.alpha!r}")
    need(0 < s.alpha_pass < 0.5, "alpha_pass", f"alpha_pass must lie in (0, 0.5), not {s.alpha_pass!r}")
    need(s.error_ratio >= 1, "error_rate", "error_rate max_ratio must be >= 1")
    need(s.error_floor >= 0, "error_rate", "error_rate min_increase_pp must be >= 0")
    need(s.latency_p50_ratio >= 1, "latency_p50", "latency_p50 max_ratio must be >= 1")
    need(s.latency_p99_ratio >= 1, "latency_p99", "latency_p99 max_ratio must be >= 1")
    need(0 <= s.min_bake <= s.max_bake, "min_bake", f"need 0 <= min_bake ({s.min_bake}) <= max_bake ({s.max_bake})")
    need(s.crash_loop >= 1, "crash_loop", "crash_loop must be >= 1")
    need(s.silent_windows >= 1, "silent_windows", "silent_windows must be >= 1")
    need(s.warmup >= 0 and s.recent >= 0, "warmup", "warmup and recent must be >= 0")
    need(0 <= s.settle <= 1 and s.rho > 0 and s.min_requests >= 0, "settle", "bad tuning")
    need(s.window is None or s.window > 0, "window", "window must be > 0")
    for name, ratio in s.gauges.items():
        need(math.isfinite(ratio) and ratio >= 1, f"gauges/{name}", "a gauge max_ratio must be >= 1")
    for name in s.slo:
        need(name in SLO_KEYS, f"slo/{name}", f"unknown SLO {name!r}; known: {', '.join(SLO_KEYS)}")
    return out


def _number(node: Mapping[str, Any], key: str, where: str, out: list[Problem], low: float, high: float,
            default: float) -> float:
    if key not in node:
        return default
    value = node[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        out.append(Problem(f"{where}/{key}", f"{key} must be a number in [{low:g}, {high:g}], not {value!r}",
                           "policy"))
        return default
    return float(value)


def _seconds(node: Mapping[str, Any], key: str, where: str, out: list[Problem], default: float) -> float:
    from ringfence.core.policy import parse_duration  # policy imports this module

    if key not in node:
        return default
    try:
        return parse_duration(node[key])
    except ValueError as exc:
        out.append(Problem(f"{where}/{key}", f"{node[key]!r} is {exc}: use 30s, 1m or a number of seconds",
                           "policy"))
        return default


def _ratio_block(node: Mapping[str, Any], key: str, where: str, out: list[Problem], default: float,
                 extra: tuple[str, ...] = ()) -> Mapping[str, Any]:
    block = node.get(key, {})
    if not isinstance(block, dict):
        out.append(Problem(f"{where}/{key}", f"{key} must be an object like {{max_ratio: {default}}}", "policy"))
        return {}
    for name in block:
        if name not in ("max_ratio", *extra):
            out.append(Problem(f"{where}/{key}/{name}", f"unknown key {name!r}; allowed: "
                               f"{', '.join(('max_ratio', *extra))}", "policy"))
    return block


def parse_analysis(section: Any, where: str, out: list[Problem]) -> AnalysisSettings:
    """The settings an `analysis:` section means, appending every problem (JSON pointers under `where`) to `out`."""
    return _parse(section, where, out)


def _parse(section: Any, where: str, out: list[Problem]) -> AnalysisSettings:
    if not isinstance(section, dict):
        out.append(Problem(where, "analysis must be an object (see the policy docs)", "policy"))
        return AnalysisSettings()
    for key in section:
        if key not in _KEYS:
            out.append(Problem(f"{where}/{key}", f"unknown key {key!r}; allowed: {', '.join(_KEYS)}", "policy"))
    d = AnalysisSettings()
    err = _ratio_block(section, "error_rate", where, out, d.error_ratio, ("min_increase_pp",))
    p50 = _ratio_block(section, "latency_p50", where, out, d.latency_p50_ratio)
    p99 = _ratio_block(section, "latency_p99", where, out, d.latency_p99_ratio)
    gauges: dict[str, float] = {}
    raw_gauges = section.get("gauges", {})
    if not isinstance(raw_gauges, dict):
        out.append(Problem(f"{where}/gauges", "gauges must map names to {max_ratio: R}", "policy"))
    else:
        for name, block in raw_gauges.items():
            if not isinstance(block, dict) or set(block) != {"max_ratio"}:
                out.append(Problem(f"{where}/gauges/{name}", "each gauge needs exactly {max_ratio: R}, e.g. "
                                   "rss_mb: {max_ratio: 1.3}", "policy"))
                continue
            gauges[name] = _number(block, "max_ratio", f"{where}/gauges/{name}", out, 1.0, 1e6, 1.3)
    slo: dict[str, float] = {}
    raw_slo = section.get("slo", {})
    if not isinstance(raw_slo, dict):
        out.append(Problem(f"{where}/slo", "slo must map error_rate / latency_p50 / latency_p99 to limits", "policy"))
    else:
        for name in raw_slo:
            if name not in SLO_KEYS:
                out.append(Problem(f"{where}/slo/{name}", f"unknown SLO {name!r}; known: {', '.join(SLO_KEYS)}",
                                   "policy"))
            else:
                high = 1.0 if name == "error_rate" else 1e9
                slo[name] = _number(raw_slo, name, f"{where}/slo", out, 0.0, high, 0.0)
    crash = _number(section, "crash_loop", where, out, 1, 1000, d.crash_loop)
    silent = _number(section, "silent_windows", where, out, 1, 1000, d.silent_windows)
    for key, value in (("crash_loop", crash), ("silent_windows", silent)):
        if not float(value).is_integer():
            out.append(Problem(f"{where}/{key}", f"{key} must be a whole number", "policy"))
    return AnalysisSettings(
        alpha=_number(section, "alpha", where, out, 1e-6, 0.49, d.alpha),
        alpha_pass=_number(section, "alpha_pass", where, out, 1e-6, 0.49, d.alpha_pass),
        error_ratio=_number(err, "max_ratio", f"{where}/error_rate", out, 1.0, 1e6, d.error_ratio),
        error_floor=_number(err, "min_increase_pp", f"{where}/error_rate", out, 0.0, 100.0, d.error_floor * 100)
        / 100,
        latency_p50_ratio=_number(p50, "max_ratio", f"{where}/latency_p50", out, 1.0, 1e6, d.latency_p50_ratio),
        latency_p99_ratio=_number(p99, "max_ratio", f"{where}/latency_p99", out, 1.0, 1e6, d.latency_p99_ratio),
        gauges=gauges, slo=slo, crash_loop=int(crash), silent_windows=int(silent),
        warmup=_seconds(section, "warmup", where, out, d.warmup),
        recent=_seconds(section, "recent", where, out, d.recent),
    )
