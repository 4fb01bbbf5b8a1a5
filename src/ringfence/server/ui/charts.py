"""Canary vs baseline over time, from the observations filed for a rollout, as inline SVG.

Observations (formats/observations.md, filed per stage and service by ingestion) are added
up per service, group and time slot: requests, errors and a merged latency histogram. The
sums are kept per rollout and extended with only the rows filed since the last look, so a
live page refreshed every two seconds reads a few new rows, not the whole history.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from ringfence.core.analysis.settings import AnalysisSettings
from ringfence.store.sql import Reader

MAX_POINTS = 120
CACHED_ROLLOUTS = 32
WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 560, 180, 56, 12, 12, 26
COLOURS = {"canary": "#d9480f", "baseline": "#1c7ed6", "tolerance": "#868e96"}


@dataclass
class Slot:
    requests: int = 0
    errors: int = 0
    le: tuple[float, ...] = ()
    counts: list[int] = field(default_factory=list)

    def add(self, requests: int, errors: int, latency: dict[str, list[float]] | None) -> None:
        self.requests += requests
        self.errors += errors
        if latency:
            le = tuple(float(x) for x in latency["le"])
            if not self.counts:
                self.le, self.counts = le, [0] * (len(le) + 1)
            if le == self.le:
                for i, count in enumerate(latency["counts"]):
                    self.counts[i] += int(count)

    def merge(self, other: Slot) -> None:
        self.add(other.requests, other.errors,
                 {"le": list(other.le), "counts": list(other.counts)} if other.counts else None)

    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def p99(self) -> float | None:
        """The 99th percentile, interpolated inside its histogram bucket (ms)."""
        total = sum(self.counts)
        if not total:
            return None
        rank, seen = 0.99 * total, 0
        for i, count in enumerate(self.counts):
            if count and seen + count >= rank:
                low = self.le[i - 1] if i > 0 else 0.0
                high = self.le[i] if i < len(self.le) else self.le[-1] * 2
                return low + (high - low) * (rank - seen) / count
            seen += count
        return self.le[-1] * 2 if self.le else None


@dataclass
class Series:
    """One rollout's sums: (service, group) -> slot start (epoch seconds) -> Slot."""

    last_id: int = 0
    width: float = 0.0
    slots: dict[tuple[str, str], dict[float, Slot]] = field(default_factory=dict)
    stage_starts: set[float] = field(default_factory=set)


class Charts:
    def __init__(self) -> None:
        self._series: OrderedDict[int, Series] = OrderedDict()
        self._lock = threading.Lock()

    def series(self, reader: Reader, rollout_id: int) -> Series:
        with self._lock:
            series = self._series.pop(rollout_id, None) or Series()
            self._series[rollout_id] = series
            while len(self._series) > CACHED_ROLLOUTS:
                self._series.popitem(last=False)
            while rows := reader.observations(rollout_id, after_id=series.last_id, limit=20_000):
                series.last_id = rows[-1].id
                for row in rows:
                    record = json.loads(row.record)
                    if "event" in record or "requests" not in record:
                        continue
                    start = row.stage_started_us / 1_000_000
                    series.stage_starts.add(start)
                    if not series.width:
                        series.width = float(record.get("dt") or 10.0)
                    end = start + float(record["t"])
                    slot_at = math.floor(end / series.width) * series.width
                    slots = series.slots.setdefault((row.service, record["group"]), {})
                    slots.setdefault(slot_at, Slot()).add(int(record["requests"]), int(record["errors"]),
                                                          record.get("latency_ms"))
            return series


def _downsample(slots: dict[float, Slot], width: float, span: tuple[float, float]) -> dict[float, Slot]:
    step = max(width, (span[1] - span[0]) / MAX_POINTS)
    if step <= width:
        return slots
    out: dict[float, Slot] = {}
    for at, slot in slots.items():
        out.setdefault(math.floor(at / step) * step, Slot()).merge(slot)
    return out


def panels(series: Series, settings: AnalysisSettings) -> list[dict[str, str]]:
    """One (service, metric) panel each: its title and its SVG."""
    if not series.slots:
        return []
    times = [at for slots in series.slots.values() for at in slots]
    span = (min(times), max(times) + series.width)
    out = []
    for service in sorted({service for service, _ in series.slots}):
        groups = {group: _downsample(series.slots.get((service, group), {}), series.width, span)
                  for group in ("canary", "baseline")}
        for metric, title, unit in (("error_rate", "error rate", "%"), ("latency_p99", "latency p99", "ms")):
            lines: dict[str, list[tuple[float, float]]] = {}
            for group, slots in groups.items():
                points = []
                for at in sorted(slots):
                    value = slots[at].error_rate() if metric == "error_rate" else slots[at].p99()
                    if value is not None:
                        points.append((at, value * 100 if unit == "%" else value))
                lines[group] = points
            lines["tolerance"] = [(at, _tolerance(metric, v, settings, unit)) for at, v in lines["baseline"]]
            out.append({"service": service, "title": f"{service}: {title}",
                        "svg": svg(lines, span, unit, sorted(series.stage_starts))})
    return out


def _tolerance(metric: str, baseline: float, settings: AnalysisSettings, unit: str) -> float:
    """The highest canary value within tolerance of the baseline at that time."""
    if metric == "error_rate":
        floor = settings.error_floor * 100 if unit == "%" else settings.error_floor
        return max(baseline * settings.error_ratio, baseline + floor)
    return baseline * settings.latency_p99_ratio


def svg(lines: dict[str, list[tuple[float, float]]], span: tuple[float, float], unit: str,
        marks: list[float]) -> str:
    values = [v for points in lines.values() for _, v in points]
    top = _nice(max(values) if values else 1.0)
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    length = max(span[1] - span[0], 1e-9)

    def x(at: float) -> float:
        return PAD_L + (at - span[0]) / length * inner_w

    def y(value: float) -> float:
        return PAD_T + inner_h - min(value, top) / top * inner_h

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for i in range(5):
        value = top * i / 4
        parts.append(f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="#e9ecef" stroke-width="1"/>')
        label = f"{value:.2f}%" if unit == "%" else f"{value:g} ms"
        parts.append(f'<text x="{PAD_L - 4}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="10" '
                     f'fill="#495057">{label}</text>')
    for mark in marks:
        if span[0] <= mark <= span[1]:
            parts.append(f'<line x1="{x(mark):.1f}" x2="{x(mark):.1f}" y1="{PAD_T}" y2="{PAD_T + inner_h}" '
                         f'stroke="#adb5bd" stroke-dasharray="2 3"/>')
    for at, anchor in ((span[0], "start"), ((span[0] + span[1]) / 2, "middle"), (span[1], "end")):
        parts.append(f'<text x="{x(at):.1f}" y="{HEIGHT - 6}" font-size="10" fill="#495057" '
                     f'text-anchor="{anchor}">{_clock(at)}</text>')
    for group in ("tolerance", "baseline", "canary"):
        points = lines.get(group, [])
        if not points:
            continue
        path = " ".join(f"{x(at):.1f},{y(v):.1f}" for at, v in points)
        dash = ' stroke-dasharray="5 4"' if group == "tolerance" else ""
        parts.append(f'<polyline class="line-{group}" points="{path}" fill="none" stroke="{COLOURS[group]}" '
                     f'stroke-width="{1.5 if group == "tolerance" else 2}"{dash}><title>{escape(group)}</title>'
                     f'</polyline>')
    parts.append("</svg>")
    return "".join(parts)


def _clock(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M:%S")


def _nice(value: float) -> float:
    """A round axis top at or above `value`."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 6, 8, 10):  # a quarter of each is a round tick
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def progress(stages: Sequence[object], current: int, state: str) -> str:
    """The stage bar: one segment per ring, done / current / to come, as SVG (no inline styles)."""
    n = max(len(stages), 1)
    w = 100.0 / n
    parts = ['<svg class="progress" viewBox="0 0 100 6" preserveAspectRatio="none" '
             'xmlns="http://www.w3.org/2000/svg" role="img">']
    for i in range(n):
        if state == "completed" or i < current:
            colour = "#2f9e44"
        elif i == current:
            colour = {"running": "#1c7ed6", "paused": "#f59f00", "pending": "#adb5bd"}.get(state, "#e03131")
        else:
            colour = "#dee2e6"
        parts.append(f'<rect x="{i * w + 0.3:.2f}" y="0" width="{w - 0.6:.2f}" height="6" fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)
