"""Per-instance running sums, updated once per time slot: O(instances) work per slot, none per history.

Windows are compared contemporaneously. Every closed slot gives a reference from the baseline
instances that reported in it (pooled error rate, pooled latency histogram, mean log gauge); each
instance adds its own counts and what the reference predicts for its traffic in that slot. A
baseline instance is compared with the *other* baseline instances (leave-one-out), so that both
groups are measured the same way. Shared drift, ramps and bursts appear in both and cancel.

Windows that start less than `warmup` seconds after a process start (every canary at the stage
start, any instance after a restart) feed nothing: a cold process is not the revision's doing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ringfence.core.analysis.contrast import Pair, Sides
from ringfence.core.analysis.histogram import Grid, edges, log_quantile_variance, quantile, rebin
from ringfence.core.analysis.records import Event, Group, Record, Window

SMOOTH = 0.5          # pseudo-errors added to observed and expected counts (zero counts stay finite)
MIN_REQUESTS = 20     # an instance's requests before its error rate counts
TAIL_REQUESTS = 5     # requests above (below) a quantile before that quantile counts


class Sums:
    """Additive evidence of one instance: requests, errors, errors the reference predicts, histograms, gauges,
    and (a baseline instance's) share of the references it was measured against, weighted like its evidence."""

    __slots__ = ("error_share", "errors", "expected", "gauges", "hist", "hist_n", "hist_share", "ref", "requests",
                 "windows")

    def __init__(self, buckets: int) -> None:
        self.requests = 0.0
        self.errors = 0.0
        self.expected = 0.0
        self.hist_n = 0.0
        self.hist = [0.0] * buckets
        self.ref = [0.0] * buckets
        self.gauges: dict[str, list[float]] = {}   # name -> [sum, sum of squares, count, sum of shares]
        self.windows = 0
        self.error_share = 0.0   # sum of share x expected errors
        self.hist_share = 0.0    # sum of share x histogram count

    def add(self, c: Contribution, sign: float = 1.0) -> None:
        self.requests += sign * c.requests
        self.errors += sign * c.errors
        self.expected += sign * c.expected
        self.error_share += sign * c.share * c.expected
        self.windows += int(sign)
        if c.hist is not None and c.ref is not None:
            self.hist_n += sign * c.hist_n
            self.hist_share += sign * c.hist_share * c.hist_n
            h, r = self.hist, self.ref
            for k, x in enumerate(c.hist):
                h[k] += sign * x
            for k, x in enumerate(c.ref):
                r[k] += sign * x
        for name, (dev, share) in c.gauges.items():
            g = self.gauges.get(name)
            if g is None:
                g = self.gauges[name] = [0.0, 0.0, 0.0, 0.0]
            g[0] += sign * dev
            g[1] += sign * dev * dev
            g[2] += sign
            g[3] += sign * share


@dataclass(slots=True)
class GroupSlot:
    """One group's pooled warm data in one slot."""

    requests: float = 0.0
    errors: float = 0.0
    hist: list[float] | None = None
    gauges: dict[str, list[float]] | None = None   # name -> [sum, count] of raw values


@dataclass(slots=True)
class SlotSeries:
    slot: int
    t: float
    canary: GroupSlot
    baseline: GroupSlot


@dataclass(frozen=True, slots=True)
class Contribution:
    slot: int
    requests: float
    errors: float
    expected: float
    hist_n: float
    hist: list[float] | None
    ref: list[float] | None
    gauges: Mapping[str, tuple[float, float]]   # name -> (log deviation, share of the reference)
    share: float = 0.0        # a baseline instance's share of the slot's pooled requests (its reference's stretch)
    hist_share: float = 0.0   # ... and of the pooled histogram


class Instance:
    __slots__ = ("crashes", "first_slot", "group", "id", "last_alive", "last_start", "queue", "recent",
                 "stopped", "total")

    def __init__(self, ident: str, group: Group, slot: int, buckets: int) -> None:
        self.id = ident
        self.group: Group = group
        self.total = Sums(buckets)
        self.recent = Sums(buckets)
        self.queue: deque[Contribution] = deque()
        self.first_slot = slot
        self.last_alive = slot - 1       # last slot with a window or a start event
        self.last_start = 0.0 if group == "canary" else -math.inf
        self.crashes = 0
        self.stopped = False


class _Merged:
    __slots__ = ("dt", "errors", "gauges", "hist", "requests", "t", "warm")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.hist: list[float] | None = None
        self.gauges: dict[str, float] = {}
        self.warm = True
        self.t = 0.0
        self.dt = 0.0


class Fleet:
    """Every instance's sums, and the references built slot by slot."""

    def __init__(self, warmup: float, gauges: Iterable[str], recent_slots: int) -> None:
        self.warmup = warmup
        self.watched = tuple(gauges)
        self.recent_slots = max(1, recent_slots)
        self.instances: dict[str, Instance] = {}
        self.grid: Grid | None = None
        self.log_edges: list[tuple[float, float]] = []
        self.buckets = 0
        self.canary_slots = 0            # slots with warm canary data
        self.baseline_slots: list[int] = []   # slots in which the baseline reported
        self.seen_latency = False
        self.seen_gauges: set[str] = set()
        self.windows = 0
        self.crash_events: list[tuple[float, str, Group]] = []
        self.keep_series = False
        self.series: list[SlotSeries] = []    # per-slot group aggregates (the Kayenta judge reads them)
        self.gauge_raw: dict[tuple[Group, str], list[float]] = {}   # (group, gauge) -> [sum, count], warm

    def instance(self, ident: str, group: Group, slot: int) -> Instance:
        inst = self.instances.get(ident)
        if inst is None:
            inst = self.instances[ident] = Instance(ident, group, slot, self.buckets)
        return inst

    def _counts(self, w: Window) -> list[float] | None:
        if w.latency is None:
            return None
        if self.grid is None:
            self.grid = w.latency.le
            self.log_edges = edges(self.grid)
            self.buckets = len(self.grid) + 1
            for inst in self.instances.values():
                for sums in (inst.total, inst.recent):
                    sums.hist = [0.0] * self.buckets
                    sums.ref = [0.0] * self.buckets
        if w.latency.le == self.grid:
            return [float(c) for c in w.latency.counts]
        return rebin(w.latency.le, w.latency.counts, self.grid)

    def close(self, slot: int, records: Iterable[Record]) -> None:
        """Fold one slot's records (in stream order) into every instance's sums."""
        merged: dict[str, _Merged] = {}
        for r in records:
            if isinstance(r, Event):
                self._event(r, slot)
                continue
            self.windows += 1
            inst = self.instance(r.instance, r.group, slot)
            inst.last_alive = slot
            m = merged.get(r.instance)
            if m is None:
                m = merged[r.instance] = _Merged()
            m.requests += r.requests
            m.errors += r.errors
            m.t, m.dt = r.t, r.dt
            if r.t - r.dt < inst.last_start + self.warmup - 1e-9:
                m.warm = False
            counts = self._counts(r)
            if counts is not None:
                self.seen_latency = True
                if m.hist is None:
                    m.hist = counts
                else:
                    m.hist = [a + b for a, b in zip(m.hist, counts, strict=True)]
            if r.gauges:
                for name in self.watched:
                    value = r.gauges.get(name)
                    if value is not None:
                        self.seen_gauges.add(name)
                        if value > 0:
                            m.gauges[name] = math.log(value)
        if any(self.instances[i].group == "baseline" for i in merged):
            self.baseline_slots.append(slot)
        self._fold(slot, merged)

    def _event(self, e: Event, slot: int) -> None:
        inst = self.instance(e.instance, e.group, slot)
        if e.event == "start":
            inst.last_start = e.t
            inst.last_alive = slot
            inst.stopped = False
        elif e.event == "crash":
            inst.crashes += 1
            self.crash_events.append((e.t, e.instance, e.group))
        else:
            inst.stopped = True

    def _fold(self, slot: int, merged: dict[str, _Merged]) -> None:
        # The slot's baseline reference, from warm baseline windows only.
        n_b = err_b = 0.0
        hist_b = [0.0] * self.buckets
        gsum: dict[str, float] = {}
        gcount: dict[str, int] = {}
        for ident, m in merged.items():
            if not m.warm or self.instances[ident].group != "baseline":
                continue
            n_b += m.requests
            err_b += m.errors
            if m.hist is not None:
                for k, x in enumerate(m.hist):
                    hist_b[k] += x
            for name, g in m.gauges.items():
                gsum[name] = gsum.get(name, 0.0) + g
                gcount[name] = gcount.get(name, 0) + 1
        hist_total = sum(hist_b)
        canary_data = False
        groups = {"canary": GroupSlot(), "baseline": GroupSlot()} if self.keep_series else None
        last_t = 0.0
        for ident, m in merged.items():
            last_t = max(last_t, m.t)
            if not m.warm:
                continue
            inst = self.instances[ident]
            for name, g in m.gauges.items():
                raw = self.gauge_raw.setdefault((inst.group, name), [0.0, 0.0])
                raw[0] += math.exp(g)
                raw[1] += 1
            if groups is not None:
                agg = groups[inst.group]
                agg.requests += m.requests
                agg.errors += m.errors
                if m.hist is not None:
                    agg.hist = list(m.hist) if agg.hist is None else [a + b for a, b in zip(agg.hist, m.hist,
                                                                                              strict=True)]
                for name, g in m.gauges.items():
                    if agg.gauges is None:
                        agg.gauges = {}
                    acc = agg.gauges.setdefault(name, [0.0, 0.0])
                    acc[0] += math.exp(g)
                    acc[1] += 1
            own = inst.group == "baseline"
            ref_n = n_b - m.requests if own else n_b
            if ref_n <= 0:
                continue
            rate = ((err_b - m.errors) if own else err_b) / ref_n
            hist = ref = None
            hist_n = 0.0
            if m.hist is not None:
                hist_n = float(sum(m.hist))
                base = [a - b for a, b in zip(hist_b, m.hist, strict=True)] if own else hist_b
                base_n = hist_total - hist_n if own else hist_total
                if base_n > 0 and hist_n > 0:
                    scale = hist_n / base_n
                    hist, ref = m.hist, [max(0.0, x) * scale for x in base]
                else:
                    hist_n = 0.0
            devs: dict[str, tuple[float, float]] = {}
            for name, g in m.gauges.items():
                total, count = gsum.get(name, 0.0), gcount.get(name, 0)
                if own:
                    total, count = total - g, count - 1
                if count > 0:
                    devs[name] = (g - total / count, 1.0 / (count + 1) if own else 0.0)
            c = Contribution(slot, m.requests, m.errors, m.requests * rate, hist_n, hist, ref, devs,
                             share=m.requests / n_b if own else 0.0,
                             hist_share=hist_n / hist_total if own and hist is not None else 0.0)
            inst.total.add(c)
            inst.recent.add(c)
            inst.queue.append(c)
            canary_data = canary_data or not own
        if canary_data:
            self.canary_slots += 1
        if groups is not None and merged:
            self.series.append(SlotSeries(slot, last_t, groups["canary"], groups["baseline"]))
        horizon = slot - self.recent_slots
        for inst in self.instances.values():
            q = inst.queue
            while q and q[0].slot <= horizon:
                inst.recent.add(q.popleft(), -1.0)

    # --- per-metric evidence -------------------------------------------------------------

    def error_pairs(self, recent: bool = False) -> Sides:
        sides = Sides([], [], [])
        for inst in self.instances.values():
            s = inst.recent if recent else inst.total
            if s.requests < MIN_REQUESTS:
                continue
            e = s.expected
            pair = (math.log((s.errors + SMOOTH) / (e + SMOOTH)), e / ((e + SMOOTH) ** 2) + 1e-12)
            _put(sides, inst.group, pair, s.error_share / e if e > 0 else 0.0)
        return sides

    def quantile_pairs(self, q: float, recent: bool = False) -> Sides:
        sides = Sides([], [], [])
        need = TAIL_REQUESTS / min(q, 1.0 - q)
        for inst in self.instances.values():
            s = inst.recent if recent else inst.total
            if s.hist_n < need:
                continue
            own, _ = quantile(s.hist, self.log_edges, q)
            ref, density = quantile(s.ref, self.log_edges, q)
            if math.isnan(own) or math.isnan(ref):
                continue
            pair = (own - ref, log_quantile_variance(q, s.hist_n, density))
            if math.isinf(pair[1]):
                continue
            _put(sides, inst.group, pair, s.hist_share / s.hist_n)
        return sides

    def gauge_pairs(self, name: str, recent: bool = False) -> Sides:
        sides = Sides([], [], [])
        for inst in self.instances.values():
            g = (inst.recent if recent else inst.total).gauges.get(name)
            if g is None or g[2] < 0.5:
                continue
            count = g[2]
            mean = g[0] / count
            var = max(0.0, g[1] / count - mean * mean) / count if count >= 2 else 0.0
            _put(sides, inst.group, (mean, var), g[3] / count)
        return sides

    def totals(self, group: Group) -> tuple[float, float, int]:
        """(requests, errors, instances with warm data) of one group."""
        n = e = 0.0
        k = 0
        for inst in self.instances.values():
            if inst.group == group and inst.total.windows > 0:
                n += inst.total.requests
                e += inst.total.errors
                k += 1
        return n, e, k

    def pooled_quantile(self, group: Group, q: float, recent: bool = False) -> float:
        """A group's latency quantile in ms, from all its warm histograms pooled (nan without data)."""
        if not self.buckets:
            return math.nan
        pooled = [0.0] * self.buckets
        for inst in self.instances.values():
            if inst.group == group:
                s = inst.recent if recent else inst.total
                for k, x in enumerate(s.hist):
                    pooled[k] += x
        value, _ = quantile(pooled, self.log_edges, q)
        return math.exp(value) if not math.isnan(value) else math.nan

    def recent_totals(self, group: Group) -> tuple[float, float]:
        n = e = 0.0
        for inst in self.instances.values():
            if inst.group == group:
                n += inst.recent.requests
                e += inst.recent.errors
        return n, e

    def pooled_gauge(self, group: Group, name: str) -> float:
        """Mean of a gauge over a group's warm windows (nan without data)."""
        raw = self.gauge_raw.get((group, name))
        return raw[0] / raw[1] if raw and raw[1] else math.nan


def _put(sides: Sides, group: Group, pair: Pair, share: float) -> None:
    if group == "canary":
        sides.canary.append(pair)
    else:
        sides.baseline.append(pair)
        sides.shares.append(share)
