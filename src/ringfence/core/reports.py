"""Health reports from SDK instances (`POST /v1/metrics`): checked, and turned into observations.

A report holds windows (requests, errors, a latency histogram, gauges, tagged with the
revisions the instance ran) and process events. For a rollout, a window run on its new
revision is a canary window, one run on its previous revision a baseline window, in the
shape of formats/observations.md, with `t` counted from the stage's start.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from ringfence.errors import InvalidInput, Problem

MAX_WINDOWS = 1000
MAX_EVENTS = 1000
MAX_BUCKETS = 64
MAX_GAUGES = 64
MAX_WINDOW_SECONDS = 3600.0
EVENTS = ("start", "crash", "stop")


@dataclass(frozen=True, slots=True)
class ReportedWindow:
    start: float  # Unix seconds
    end: float
    revisions: dict[str, int]
    requests: int
    errors: int
    latency_ms: dict[str, list[Any]] | None
    gauges: dict[str, float]


@dataclass(frozen=True, slots=True)
class ReportedEvent:
    at: float  # Unix seconds
    event: str
    revisions: dict[str, int]


@dataclass(frozen=True, slots=True)
class Report:
    instance: str
    windows: tuple[ReportedWindow, ...]
    events: tuple[ReportedEvent, ...]
    dropped: int


class _Bad(Exception):
    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer
        self.message = message


def _number(node: Any, where: str) -> float:
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        raise _Bad(where, "expected a finite number")
    return float(node)


def _count(node: Any, where: str) -> int:
    if isinstance(node, bool) or not isinstance(node, int) or node < 0:
        raise _Bad(where, "expected an integer >= 0")
    return node


def _object(node: Any, where: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise _Bad(where, "expected an object")
    return node


def _revisions(node: Any, where: str) -> dict[str, int]:
    found = _object(node, where)
    for name, version in found.items():
        _count(version, f"{where}/{_escape(name)}")
    return found


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _histogram(node: Any, where: str, requests: int) -> dict[str, list[Any]]:
    found = _object(node, where)
    le, counts = found.get("le"), found.get("counts")
    if not isinstance(le, list) or not 1 <= len(le) <= MAX_BUCKETS:
        raise _Bad(f"{where}/le", f"expected a list of 1 to {MAX_BUCKETS} bucket bounds in ms")
    bounds = [_number(b, f"{where}/le/{i}") for i, b in enumerate(le)]
    if any(b <= a for a, b in itertools.pairwise(bounds)):
        raise _Bad(f"{where}/le", "bucket bounds must be strictly ascending")
    if not isinstance(counts, list) or len(counts) != len(le) + 1:
        raise _Bad(f"{where}/counts", f"expected {len(le) + 1} counts: one per bound, then the overflow")
    values = [_count(c, f"{where}/counts/{i}") for i, c in enumerate(counts)]
    if sum(values) != requests:
        raise _Bad(f"{where}/counts", f"the counts sum to {sum(values)}, not to requests ({requests})")
    return {"le": bounds, "counts": values}


def _window(node: Any, where: str) -> ReportedWindow:
    found = _object(node, where)
    start, end = _number(found.get("start"), f"{where}/start"), _number(found.get("end"), f"{where}/end")
    if not 0 < end - start <= MAX_WINDOW_SECONDS:
        raise _Bad(f"{where}/end", f"end must be after start, by at most {MAX_WINDOW_SECONDS:g} s")
    requests = _count(found.get("requests"), f"{where}/requests")
    errors = _count(found.get("errors"), f"{where}/errors")
    if errors > requests:
        raise _Bad(f"{where}/errors", f"errors ({errors}) > requests ({requests})")
    latency = found.get("latency_ms")
    gauges = _object(found.get("gauges", {}), f"{where}/gauges")
    if len(gauges) > MAX_GAUGES:
        raise _Bad(f"{where}/gauges", f"at most {MAX_GAUGES} gauges")
    return ReportedWindow(
        start, end, _revisions(found.get("revisions", {}), f"{where}/revisions"), requests, errors,
        None if latency is None else _histogram(latency, f"{where}/latency_ms", requests),
        {name: _number(value, f"{where}/gauges/{_escape(name)}") for name, value in gauges.items()})


def _event(node: Any, where: str) -> ReportedEvent:
    found = _object(node, where)
    if found.get("event") not in EVENTS:
        raise _Bad(f"{where}/event", f"expected one of {', '.join(EVENTS)}")
    return ReportedEvent(_number(found.get("at"), f"{where}/at"), found["event"],
                         _revisions(found.get("revisions", {}), f"{where}/revisions"))


def _list(node: Any, where: str, most: int) -> list[Any]:
    if node is None:
        return []
    if not isinstance(node, list) or len(node) > most:
        raise _Bad(where, f"expected a list of at most {most}")
    return node


def parse_report(body: Any) -> Report:
    """A report from its JSON body; InvalidInput naming the JSON pointer of the first problem."""
    try:
        found = _object(body, "")
        instance = found.get("instance")
        if not isinstance(instance, str) or not 0 < len(instance) <= 200:
            raise _Bad("/instance", "expected the instance id (a string of 1 to 200 characters)")
        windows = tuple(_window(w, f"/windows/{i}") for i, w in enumerate(_list(found.get("windows"), "/windows",
                                                                                  MAX_WINDOWS)))
        events = tuple(_event(e, f"/events/{i}") for i, e in enumerate(_list(found.get("events"), "/events",
                                                                             MAX_EVENTS)))
        dropped = _count(found.get("dropped", 0), "/dropped")
    except _Bad as bad:
        raise InvalidInput(f"the metric report is not valid: {bad.pointer or '/'}: {bad.message}",
                           [Problem(bad.pointer, bad.message, "request")]) from None
    return Report(instance, windows, events, dropped)


def group_of(version: int | None, to_version: int, from_version: int | None) -> str | None:
    """Canary when it ran the rollout's new revision, baseline on the previous one, else neither."""
    if version == to_version:
        return "canary"
    if version is not None and version == from_version:
        return "baseline"
    return None


def window_record(window: ReportedWindow, instance: str, group: str, stage_start: float) -> dict[str, Any] | None:
    """The window as a line of formats/observations.md, or None when it began before the stage did:
    part of it ran before the change reached anyone, and a canary's would be on the old revision."""
    if window.start < stage_start:
        return None
    t = window.end - stage_start
    line: dict[str, Any] = {"t": round(t, 3), "dt": round(window.end - window.start, 3), "instance": instance,
                            "group": group, "requests": window.requests, "errors": window.errors}
    if window.latency_ms is not None:
        line["latency_ms"] = window.latency_ms
    if window.gauges:
        line["gauges"] = window.gauges
    return line


def event_record(event: ReportedEvent, instance: str, group: str, stage_start: float) -> dict[str, Any] | None:
    t = event.at - stage_start
    if t < 0:
        return None
    return {"t": round(t, 3), "instance": instance, "group": group, "event": event.event}
