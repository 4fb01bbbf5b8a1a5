"""What a simulated fleet looks like during one canary stage: the scenario spec of the fleet simulator.

Every field has a default, so `Scenario(seed=7)` is a healthy A/A stage of 3 canaries against 12
baseline instances at 60 requests/s each, and a dict from YAML with only the fields that differ is
enough (`scenario_from_dict`). Unknown keys are an error, so a typo cannot silently mean "default".

Fields (times in seconds from the start of the stage, when the canaries get the new revision):

| field | default | meaning |
|---|---|---|
| `seed` | 0 | seed of every random draw (NumPy `Generator`) |
| `dt`, `max_bake`, `min_bake` | 10, 600, None | window length; stage length; no pass before `min_bake` |
| `canary`, `baseline` | 3, 12 | instances in each group |
| `rps` | 60 | mean requests/s per instance; window counts are Poisson (1-5 is "very little traffic") |
| `error_rate` | 0.006 | baseline error probability per request |
| `p50_ms`, `sigma` | 35, 0.5 | lognormal latency body: median and log-sd |
| `tail_frac`, `tail_mult` | 0.01, 5 | share of requests in the slow tail; where it starts (x the median) |
| `tail`, `tail_alpha` | lognormal, 1.5 | tail law: `lognormal` (same sigma) or `pareto` (heavy-tailed, shape alpha) |
| `hetero` | 0.15, 0.15, 0.04 | log-sd of per-instance random effects on traffic, errors and latency |
| `bad_hosts` | none | hosts much worse than the rest: how many in each group, their error and latency factors |
| `ramp` | 0 | shared load ramp: load goes from 1 to 1+ramp over the stage (may be negative) |
| `drift` | 0 | shared random walk of log-load, log-sd per sqrt(minute) |
| `load_errors`, `load_latency` | 1, 0.3 | errors follow load^load_errors, latency load^load_latency |
| `bursts` | none | bursts hitting both groups at once: count, duration, traffic/error/latency factors |
| `cold_start` | none | every process start (canaries at t=0, any restart) is slower and fails more for `duration` s |
| `clock_skew` | 0 | per-instance clock offsets, uniform in +-clock_skew; windows also unaligned across instances |
| `window_noise` | 0.1, 0.03 | log-sd of per-window noise on each instance's error rate and latency |
| `baseline_crash_loop` | none | `CrashLoop` of baseline instances: not the canary's fault |
| `baseline_silent_at` | none | the first baseline instance stops reporting then: not the canary's fault |
| `gauge_tolerance` | {} | e.g. `{"rss_mb": 1.2}`: the policy watches that gauge with that ratio tolerance |
| `effect` | `Effect()` | what the new revision does to the canary (all neutral by default) |

Effect fields: `error_mult`, `error_add` (canary error probability x mult + add), `latency_scale`,
`tail_frac_mult` (moves p99, barely p50), `onset` (the effects start this long after the change),
`traffic_share` (share of the affected canaries' requests hit: one endpoint), `instances` (how many
canaries are affected: one region; None = all), `crash_loop`, `silent_at` / `silent_instances`
(canaries that stop reporting, without any event), `gauge_scale` (e.g. `{"rss_mb": 1.5}`) and
`rss_growth_mb_per_min` (a leak).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

TailKind = Literal["lognormal", "pareto"]
GAUGES = ("cpu", "rss_mb")


@dataclass(frozen=True)
class Hetero:
    """Log-sd of instance random effects: some instances get more traffic, fail more, or are slower."""

    traffic: float = 0.15
    errors: float = 0.15
    latency: float = 0.04


@dataclass(frozen=True)
class BadHosts:
    """Hosts much worse than the rest, in both groups: `canary` of the canaries, `baseline` of the baseline."""

    canary: int = 1
    baseline: int = 0
    errors: float = 3.0
    latency: float = 1.3


@dataclass(frozen=True)
class Bursts:
    """`count` bursts of `duration` s at random times, hitting every instance of both groups at once."""

    count: int = 2
    duration: float = 30.0
    traffic: float = 2.0
    errors: float = 3.0
    latency: float = 1.5


@dataclass(frozen=True)
class ColdStart:
    """A fresh process: errors and latency start at these factors and fade linearly over `duration` s."""

    duration: float = 20.0
    errors: float = 3.0
    latency: float = 2.0


@dataclass(frozen=True)
class CrashLoop:
    """`instances` processes crash at ~`first` s, then every `period` s (x U(0.8, 1.2)); each is down for a time
    drawn from `down` and then restarts (a `start` event). At most `max_crashes` crashes each."""

    instances: int = 1
    first: float = 90.0
    period: float = 90.0
    down: tuple[float, float] = (15.0, 25.0)
    max_crashes: int | None = None


@dataclass(frozen=True)
class WindowNoise:
    errors: float = 0.1
    latency: float = 0.03


@dataclass(frozen=True)
class Effect:
    """What the new revision does to the canary group. The defaults do nothing."""

    error_mult: float = 1.0
    error_add: float = 0.0
    latency_scale: float = 1.0
    tail_frac_mult: float = 1.0
    onset: float = 0.0
    traffic_share: float = 1.0
    instances: int | None = None
    crash_loop: CrashLoop | None = None
    silent_at: float | None = None
    silent_instances: int = 1
    gauge_scale: Mapping[str, float] = field(default_factory=dict)
    rss_growth_mb_per_min: float = 0.0


@dataclass(frozen=True)
class Scenario:
    """One canary stage of one service: the fleet, its traffic, and what the new revision does."""

    seed: int = 0
    dt: float = 10.0
    max_bake: float = 600.0
    min_bake: float | None = None
    canary: int = 3
    baseline: int = 12
    rps: float = 60.0
    error_rate: float = 0.006
    p50_ms: float = 35.0
    sigma: float = 0.5
    tail_frac: float = 0.01
    tail_mult: float = 5.0
    tail: TailKind = "lognormal"
    tail_alpha: float = 1.5
    hetero: Hetero = field(default_factory=Hetero)
    bad_hosts: BadHosts | None = None
    ramp: float = 0.0
    drift: float = 0.0
    load_errors: float = 1.0
    load_latency: float = 0.3
    bursts: Bursts | None = None
    cold_start: ColdStart | None = None
    clock_skew: float = 0.0
    window_noise: WindowNoise = field(default_factory=WindowNoise)
    baseline_crash_loop: CrashLoop | None = None
    baseline_silent_at: float | None = None
    gauge_tolerance: Mapping[str, float] = field(default_factory=dict)
    effect: Effect = field(default_factory=Effect)

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("invalid scenario: " + "; ".join(problems))

    def affected_canaries(self) -> int:
        n = self.canary if self.effect.instances is None else self.effect.instances
        return max(0, min(self.canary, n))


def _problems(s: Scenario) -> list[str]:
    out: list[str] = []
    if s.dt <= 0 or s.max_bake < s.dt:
        out.append("need 0 < dt <= max_bake")
    if s.min_bake is not None and not 0 <= s.min_bake <= s.max_bake:
        out.append("min_bake must lie in [0, max_bake]")
    if s.canary < 1 or s.baseline < 1:
        out.append("need at least one canary and one baseline instance")
    if s.rps < 0 or not 0 <= s.error_rate < 1:
        out.append("need rps >= 0 and 0 <= error_rate < 1")
    if s.p50_ms <= 0 or s.sigma <= 0 or s.tail_mult <= 0 or s.tail_alpha <= 0:
        out.append("latency parameters must be positive")
    if not 0 <= s.tail_frac <= 0.5:
        out.append("tail_frac must lie in [0, 0.5]")
    if s.tail not in ("lognormal", "pareto"):
        out.append(f"tail must be lognormal or pareto, not {s.tail!r}")
    if s.ramp <= -1:
        out.append("ramp must be > -1 (load stays positive)")
    e = s.effect
    if not 0 <= e.traffic_share <= 1:
        out.append("effect.traffic_share must lie in [0, 1]")
    if e.error_mult < 0 or e.latency_scale <= 0 or e.tail_frac_mult < 0:
        out.append("effect factors must be positive")
    if s.bad_hosts is not None and (s.bad_hosts.canary > s.canary or s.bad_hosts.baseline > s.baseline):
        out.append("bad_hosts: more bad hosts than instances")
    for name in [*s.gauge_tolerance, *e.gauge_scale]:
        if name not in GAUGES:
            out.append(f"unknown gauge {name!r} (simulated gauges: {', '.join(GAUGES)})")
    return out


T = TypeVar("T")


def _build(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        sub = _NESTED.get(name)
        if sub is not None and value is not None:
            if value is True:  # `baseline_crash_loop: true` = the default loop
                value = {"first": 70.0, "period": 80.0} if sub is CrashLoop else {}
            if value is False:
                value = None
            elif not isinstance(value, sub):
                value = _build(sub, value, f"{where}.{name}")
        if name == "down" and value is not None:
            value = (float(value[0]), float(value[1]))
        if name in ("gauge_scale", "gauge_tolerance") and value is not None:
            value = {str(k): float(v) for k, v in dict(value).items()}
        kwargs[name] = value
    return cls(**kwargs)


_NESTED: dict[str, type[Any]] = {
    "hetero": Hetero, "bad_hosts": BadHosts, "bursts": Bursts, "cold_start": ColdStart,
    "crash_loop": CrashLoop, "baseline_crash_loop": CrashLoop, "window_noise": WindowNoise, "effect": Effect,
}


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """A `Scenario` from plain data (YAML, JSON): omitted fields take their defaults; unknown fields raise."""
    return _build(Scenario, data, "scenario")


def as_scenario(spec: Scenario | Mapping[str, Any]) -> Scenario:
    return spec if isinstance(spec, Scenario) else scenario_from_dict(spec)


def scenario_to_dict(s: Scenario) -> dict[str, Any]:
    """Plain data for a scenario (round-trips through `scenario_from_dict`)."""
    return dataclasses.asdict(s)
