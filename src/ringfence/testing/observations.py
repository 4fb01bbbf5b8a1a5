"""A fleet simulator writing observation streams (formats/observations.md) for the canary analyzer.

    from ringfence.testing.observations import Scenario, Effect, simulate, to_jsonl, truth

    spec = Scenario(seed=7, canary=3, baseline=12, effect=Effect(error_mult=3.0))
    records = simulate(spec)          # list of dicts, ordered by t: windows and events
    text = to_jsonl(records)          # the same stream as JSON Lines
    truth(spec).bad                   # True: errors x3 is beyond the default tolerance

The scenario fields are documented in `ringfence.testing.scenario`; the ground truth in
`ringfence.testing.truth`. One seeded NumPy `Generator` makes every draw, in a fixed order, so a
scenario gives the same bytes every time. NumPy only (it ships in the `server` extra).

How a stream is made, per instance:

- random effects: a traffic weight, an error factor and a latency factor, each lognormal with the
  `hetero` log-sd (bad hosts multiply theirs); a clock offset and a window phase when `clock_skew` is set;
- shared by every instance, in real time: load (ramp x a random walk) and bursts;
- per window `(tau - dt, tau]` (real time): requests ~ Poisson(rps x weight x load x dt x time up),
  errors ~ Binomial with the instance's error probability (x the effect on the affected share of
  the canary's requests), a latency histogram ~ Multinomial over the buckets of the latency law,
  and the gauges `cpu` and `rss_mb`; the line carries `t = tau + clock offset`;
- events: `start` for each canary at t = 0, `crash` and `start` for crash loops. No window is
  written while a process is down, nor after an instance went silent, nor with t outside (0, max_bake].
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ringfence.testing.latency import LE, FloatArray, bucket_probabilities
from ringfence.testing.scenario import (
    BadHosts,
    Bursts,
    ColdStart,
    CrashLoop,
    Effect,
    Hetero,
    Scenario,
    WindowNoise,
    as_scenario,
    scenario_from_dict,
    scenario_to_dict,
)
from ringfence.testing.truth import Truth, truth

__all__ = [
    "LE", "BadHosts", "Bursts", "ColdStart", "CrashLoop", "Effect", "Hetero", "Scenario", "Truth", "WindowNoise",
    "scenario_from_dict", "scenario_to_dict", "simulate", "stream_lines", "to_jsonl", "truth",
]

_LE_LIST = list(LE)
_RSS_WARMUP = 60.0  # s: a fresh process's rss climbs from 80% to its level with this time constant


@dataclass
class _Instance:
    id: str
    group: str
    weight: float
    err: float
    lat: float
    rss: float
    offset: float = 0.0
    phase: float = 0.0
    affected: bool = False
    starts: list[float] = field(default_factory=list)
    down: list[tuple[float, float]] = field(default_factory=list)
    silent_at: float = math.inf


class _Shared:
    """Load and bursts over real time, the same for every instance."""

    def __init__(self, s: Scenario, rng: np.random.Generator) -> None:
        self.s = s
        lo, hi = -2 * s.dt - s.clock_skew, s.max_bake + 2 * s.dt + s.clock_skew
        self.grid = np.arange(lo, hi + 1.0, 1.0)
        steps = rng.normal(0.0, s.drift * math.sqrt(1.0 / 60.0), self.grid.size) if s.drift > 0 else \
            np.zeros(self.grid.size)
        walk = np.cumsum(steps)
        self.walk = walk - np.interp(0.0, self.grid, walk)
        b = s.bursts
        self.bursts: list[float] = []
        if b is not None and b.count > 0:
            self.bursts = sorted(float(x) for x in rng.uniform(0.0, max(s.max_bake - b.duration, 0.0), b.count))

    def load(self, mid: FloatArray) -> FloatArray:
        s = self.s
        ramp = 1.0 + s.ramp * np.clip(mid, 0.0, s.max_bake) / s.max_bake
        out: FloatArray = ramp * np.exp(np.interp(mid, self.grid, self.walk))
        return out

    def burst(self, ends: FloatArray, factor: float) -> FloatArray:
        """Each window's factor: 1 outside bursts, `factor` during one, prorated over partial overlap."""
        out = np.ones_like(ends)
        b = self.s.bursts
        if b is None:
            return out
        for start in self.bursts:
            overlap = np.clip(np.minimum(ends, start + b.duration) - np.maximum(ends - self.s.dt, start), 0.0, None)
            out *= 1.0 + (factor - 1.0) * overlap / self.s.dt
        return out


def _crash_schedule(rng: np.random.Generator, loop: CrashLoop, horizon: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    t = loop.first
    while t < horizon and (loop.max_crashes is None or len(out) < loop.max_crashes):
        back = t + float(rng.uniform(*loop.down))
        out.append((t, back))
        t = back + max(0.0, loop.period * float(rng.uniform(0.8, 1.2)) - (back - t))
    return out


def _instances(s: Scenario, rng: np.random.Generator) -> list[_Instance]:
    h: Hetero = s.hetero
    out: list[_Instance] = []
    taken: set[str] = set()
    for group, n in (("canary", s.canary), ("baseline", s.baseline)):
        for k in range(n):
            ident = f"i-{int(rng.integers(0, 1 << 24)):06x}"  # the group is not guessable from the id
            while ident in taken:
                ident = f"i-{int(rng.integers(0, 1 << 24)):06x}"
            taken.add(ident)
            inst = _Instance(
                id=ident, group=group, weight=math.exp(rng.normal(0.0, h.traffic)),
                err=math.exp(rng.normal(0.0, h.errors)), lat=math.exp(rng.normal(0.0, h.latency)),
                rss=float(rng.uniform(300.0, 400.0)),
            )
            if s.clock_skew > 0:
                inst.offset = float(rng.uniform(-s.clock_skew, s.clock_skew))
                inst.phase = float(rng.uniform(0.0, s.dt))
            if group == "canary":
                inst.starts.append(0.0)
                inst.affected = k < s.affected_canaries()
            bad: BadHosts | None = s.bad_hosts
            if bad is not None and k < (bad.canary if group == "canary" else bad.baseline):
                inst.err *= bad.errors
                inst.lat *= bad.latency
            out.append(inst)
    canaries = [i for i in out if i.group == "canary"]
    baselines = [i for i in out if i.group == "baseline"]
    horizon = s.max_bake + s.clock_skew
    loops = ((canaries, s.effect.crash_loop), (baselines, s.baseline_crash_loop))
    for members, loop in loops:
        if loop is None:
            continue
        for inst in members[: loop.instances]:
            inst.down = _crash_schedule(rng, loop, horizon)
            inst.starts += [back for _, back in inst.down]
    if s.effect.silent_at is not None:
        for inst in canaries[: s.effect.silent_instances]:
            inst.silent_at = s.effect.silent_at
    if s.baseline_silent_at is not None:
        baselines[0].silent_at = s.baseline_silent_at
    # Interleave the groups: nothing in the order of lines at one t tells canary from baseline.
    return [out[int(k)] for k in rng.permutation(len(out))]


def _instance_windows(
    s: Scenario, inst: _Instance, shared: _Shared, rng: np.random.Generator,
) -> list[tuple[float, int, dict[str, Any]]]:
    dt = s.dt
    first = math.floor((0.0 - inst.phase) / dt)
    last = math.ceil((s.max_bake - inst.offset - inst.phase) / dt) + 1
    ends = inst.phase + dt * np.arange(first, last + 1, dtype=np.float64)
    t_rep = np.round(ends + inst.offset, 3)
    keep = (ends > 0.0) & (t_rep > 0.0) & (t_rep <= s.max_bake) & (ends <= inst.silent_at)
    # Time up in each window: after the process's first start, outside its down intervals.
    up = np.ones_like(ends)
    if inst.group == "canary":
        up -= np.clip(-(ends - dt), 0.0, dt) / dt  # the part of the window before the canary started
    for a, b in inst.down:
        keep &= ~((ends > a) & (ends <= b))
        up -= np.clip(np.minimum(ends, b) - np.maximum(ends - dt, a), 0.0, None) / dt
    up = np.clip(up, 0.0, 1.0)
    w = ends.size
    # Draw for every candidate window (fixed count per instance), keep some: draws never depend on `keep`.
    mid = ends - dt / 2
    load = shared.load(mid)
    bursts = s.bursts or Bursts(count=0)
    traffic = s.rps * inst.weight * load * shared.burst(ends, bursts.traffic) * dt * up
    n = rng.poisson(traffic)
    noise_e = np.exp(rng.normal(0.0, s.window_noise.errors, w))
    noise_l = np.exp(rng.normal(0.0, s.window_noise.latency, w))
    p = s.error_rate * inst.err * load ** s.load_errors * shared.burst(ends, bursts.errors) * noise_e
    median = s.p50_ms * inst.lat * load ** s.load_latency * shared.burst(ends, bursts.latency) * noise_l
    cold: ColdStart | None = s.cold_start
    age = np.full(w, math.inf)
    if inst.starts:
        starts = np.array(sorted(inst.starts))
        idx = np.searchsorted(starts, ends, side="right") - 1
        has = idx >= 0
        last_start = np.where(has, starts[np.clip(idx, 0, None)], -math.inf)
        # Age at the middle of the part of the window the process was up.
        age = np.where(has, (ends + np.maximum(ends - dt, last_start)) / 2 - last_start, math.inf)
        if cold is not None and cold.duration > 0:
            fade = np.clip(1.0 - age / cold.duration, 0.0, 1.0)
            p = p * (1.0 + (cold.errors - 1.0) * fade)
            median = median * (1.0 + (cold.latency - 1.0) * fade)
    e: Effect = s.effect
    active = inst.affected & (ends > e.onset)
    share = np.where(active, e.traffic_share, 0.0)
    n_hit = rng.binomial(n, share)
    n_rest = n - n_hit
    p_hit = np.minimum(p * e.error_mult + e.error_add, 0.95)
    errors = rng.binomial(n_rest, np.minimum(p, 0.95)) + rng.binomial(n_hit, p_hit)
    tf = np.full(w, s.tail_frac)
    counts = rng.multinomial(n_rest, bucket_probabilities(median, s.sigma, tf, s.tail_mult, s.tail, s.tail_alpha))
    tf_hit = np.minimum(0.5, tf * e.tail_frac_mult)
    counts += rng.multinomial(n_hit, bucket_probabilities(
        median * e.latency_scale, s.sigma, tf_hit, s.tail_mult, s.tail, s.tail_alpha))
    cpu = np.clip(0.004 * n / dt + rng.normal(0.0, 0.01, w), 0.0, None)
    rss = inst.rss * (1.0 - 0.2 * np.exp(-age / _RSS_WARMUP))
    rss = rss + rng.normal(0.0, 1.0, w)
    if inst.affected:
        on = ends > e.onset
        rss = np.where(on, rss * e.gauge_scale.get("rss_mb", 1.0)
                       + e.rss_growth_mb_per_min * np.clip(ends - e.onset, 0.0, None) / 60.0, rss)
        cpu = np.where(on, cpu * e.gauge_scale.get("cpu", 1.0), cpu)
    rows = zip(t_rep[keep].tolist(), n[keep].tolist(), errors[keep].tolist(), counts[keep].tolist(),
               np.round(cpu[keep], 3).tolist(), np.round(rss[keep], 1).tolist(), strict=True)
    return [(t, 1, {
        "t": t, "dt": dt, "instance": inst.id, "group": inst.group, "requests": req, "errors": err,
        "latency_ms": {"le": _LE_LIST, "counts": hist}, "gauges": {"cpu": c, "rss_mb": r},
    }) for t, req, err, hist, c, r in rows]


def _events(s: Scenario, inst: _Instance) -> list[tuple[float, int, dict[str, Any]]]:
    out: list[tuple[float, int, dict[str, Any]]] = []
    happened = [(0.0, "start")] if inst.group == "canary" else []
    for a, b in inst.down:
        happened += [(a, "crash"), (b, "start")]
    for real, kind in happened:
        t = max(0.0, round(real + inst.offset, 3))
        if real <= inst.silent_at and t <= s.max_bake:
            order = 0 if real == 0.0 else 2
            out.append((t, order, {"t": t, "instance": inst.id, "group": inst.group, "event": kind}))
    return out


def simulate(spec: Scenario | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The observation stream of one scenario, as records in stream order (non-decreasing `t`)."""
    s = as_scenario(spec)
    rng = np.random.default_rng(s.seed)
    instances = _instances(s, rng)
    shared = _Shared(s, rng)
    lines: list[tuple[float, int, dict[str, Any]]] = []
    for inst in instances:
        lines += _instance_windows(s, inst, shared, rng)
        lines += _events(s, inst)
    lines.sort(key=lambda x: (x[0], x[1]))
    return [rec for _, _, rec in lines]


def to_jsonl(records: Iterable[Mapping[str, Any]]) -> str:
    """Records as JSON Lines text (one compact object per line, newline-terminated)."""
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def stream_lines(spec: Scenario | Mapping[str, Any]) -> list[str]:
    """The stream of one scenario as JSON Lines, one string per line (no newline)."""
    return [json.dumps(r, separators=(",", ":")) for r in simulate(spec)]
