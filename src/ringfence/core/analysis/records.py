"""Observation records (formats/observations.md): windows and events, and the parser that checks them.

    records = parse_observations(lines)      # list of Window | Event, in stream order

Every line is checked: a bad line raises InvalidInput naming the line and the field
(`line 17: errors (12) > requests (10)`), with one Problem per bad line (at most
MAX_PROBLEMS), so nothing is analyzed from input that is not what it claims to be.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

from ringfence.errors import InvalidInput, Problem

Group = Literal["canary", "baseline"]
EventKind = Literal["start", "crash", "stop"]
GROUPS: tuple[Group, ...] = ("canary", "baseline")
EVENTS: tuple[EventKind, ...] = ("start", "crash", "stop")
MAX_PROBLEMS = 20


class Histogram(NamedTuple):
    """Latency histogram: `le` ascending finite upper bounds (ms), `counts` has one more (the overflow)."""

    le: tuple[float, ...]
    counts: tuple[int, ...]


class Window(NamedTuple):
    """One instance's health over `(t - dt, t]`."""

    t: float
    dt: float
    instance: str
    group: Group
    requests: int
    errors: int
    latency: Histogram | None = None
    gauges: Mapping[str, float] | None = None


class Event(NamedTuple):
    """A process event of one instance at `t`: start, crash or stop."""

    t: float
    instance: str
    group: Group
    event: EventKind


Record = Window | Event


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _number(obj: Mapping[str, Any], key: str) -> float:
    value = obj.get(key)
    if value is None:
        raise _Bad(key, f"missing {key}" if key not in obj else f"{key} must be a number, not null")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(key, f"{key} must be a number, not {json.dumps(value)[:40]}")
    number = float(value)
    if not math.isfinite(number):
        raise _Bad(key, f"{key} must be finite")
    return number


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and value >= 0:
            return int(value)
        raise _Bad(name, f"{name} must be a whole number >= 0, not {json.dumps(value)[:40]}")
    if value < 0:
        raise _Bad(name, f"{name} must be >= 0, not {value}")
    return value


def _string(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _Bad(key, f"{key} must be a non-empty string" if key in obj else f"missing {key}")
    return value


def _group(obj: Mapping[str, Any]) -> Group:
    value = obj.get("group")
    if value == "canary":
        return "canary"
    if value == "baseline":
        return "baseline"
    if "group" not in obj:
        raise _Bad("group", "missing group")
    raise _Bad("group", f"group must be canary or baseline, not {json.dumps(value)[:40]}")


def _histogram(value: Any, requests: int) -> Histogram:
    if not isinstance(value, dict):
        raise _Bad("latency_ms", "latency_ms must be an object with le and counts")
    le_raw, counts_raw = value.get("le"), value.get("counts")
    if not isinstance(le_raw, list) or not le_raw:
        raise _Bad("latency_ms/le", "latency_ms.le must be a non-empty list of bounds")
    le: list[float] = []
    for k, bound in enumerate(le_raw):
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound) or bound <= 0:
            raise _Bad(f"latency_ms/le/{k}", f"latency_ms.le[{k}] must be a finite number > 0")
        if le and bound <= le[-1]:
            raise _Bad(f"latency_ms/le/{k}", f"latency_ms.le must be ascending: le[{k}] ({bound}) <= le[{k - 1}]")
        le.append(float(bound))
    if not isinstance(counts_raw, list):
        raise _Bad("latency_ms/counts", "latency_ms.counts must be a list of whole numbers")
    if len(counts_raw) != len(le) + 1:
        raise _Bad("latency_ms/counts", f"latency_ms.counts has {len(counts_raw)} entries; "
                   f"it needs len(le) + 1 = {len(le) + 1} (the last one counts values above the last bound)")
    counts = tuple(_count(c, f"latency_ms/counts/{k}") for k, c in enumerate(counts_raw))
    total = sum(counts)
    if total != requests:
        raise _Bad("latency_ms/counts", f"latency_ms.counts sum to {total}, not to requests ({requests})")
    return Histogram(tuple(le), counts)


def _gauges(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise _Bad("gauges", "gauges must be an object of name -> number")
    out: dict[str, float] = {}
    for name, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise _Bad(f"gauges/{name}", f"gauge {name!r} must be a finite number")
        out[name] = float(number)
    return out


def parse_record(obj: Any) -> Record:
    """One record from its JSON value; raises _Bad naming the field."""
    if not isinstance(obj, dict):
        raise _Bad("", "each line must be a JSON object")
    t = _number(obj, "t")
    if t < 0:
        raise _Bad("t", f"t must be >= 0 (seconds since the stage started), not {t:g}")
    instance = _string(obj, "instance")
    group = _group(obj)
    if "event" in obj:
        kind = obj["event"]
        if kind not in EVENTS:
            raise _Bad("event", f"event must be start, crash or stop, not {json.dumps(kind)[:40]}")
        return Event(t, instance, group, kind)
    dt = _number(obj, "dt")
    if dt <= 0:
        raise _Bad("dt", f"dt must be > 0, not {dt:g}")
    requests = _count(obj.get("requests"), "requests") if "requests" in obj else _missing("requests")
    errors = _count(obj.get("errors"), "errors") if "errors" in obj else _missing("errors")
    if errors > requests:
        raise _Bad("errors", f"errors ({errors}) > requests ({requests})")
    latency = _histogram(obj["latency_ms"], requests) if obj.get("latency_ms") is not None else None
    gauges = _gauges(obj["gauges"]) if obj.get("gauges") is not None else None
    return Window(t, dt, instance, group, requests, errors, latency, gauges)


def _missing(name: str) -> int:
    raise _Bad(name, f"missing {name}")


def parse_observations(lines: Iterable[str]) -> list[Record]:
    """Every record of a JSON Lines stream; `#` lines and blank lines are skipped.

    Raises InvalidInput when any line is bad: the message names the first bad line and
    field, and `problems` holds one Problem per bad line (line numbers are 1-based).
    """
    records: list[Record] = []
    problems: list[Problem] = []
    groups: dict[str, tuple[Group, int]] = {}
    last_t = -math.inf
    loads = json.loads
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            try:
                obj = loads(text)
            except ValueError as exc:
                raise _Bad("", f"not JSON ({exc})") from None
            record = parse_record(obj)
            if record.t < last_t:
                raise _Bad("t", f"t ({record.t:g}) is before the t of the line before it ({last_t:g}); "
                           "lines must be in time order")
            seen = groups.get(record.instance)
            if seen is None:
                groups[record.instance] = (record.group, number)
            elif seen[0] != record.group:
                raise _Bad("group", f"instance {record.instance!r} is {record.group} here but was {seen[0]} "
                           f"on line {seen[1]}")
        except _Bad as bad:
            problems.append(Problem("/" + bad.field if bad.field else "", bad.message, "observations", line=number))
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        last_t = record.t
        records.append(record)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more bad line(s))" if len(problems) > 1 else ""
        raise InvalidInput(f"line {first.line}: {first.message}{more}", problems)
    return records
