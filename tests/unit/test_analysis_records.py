"""Parsing observation streams: every bad line is named with its line number and field."""

from __future__ import annotations

import json

import pytest

from ringfence.core.analysis import Event, Window, parse_observations
from ringfence.errors import InvalidInput

LE = [5, 10, 25]


def window(**over: object) -> str:
    line: dict[str, object] = {"t": 10.0, "dt": 10.0, "instance": "i-1", "group": "canary", "requests": 10,
                               "errors": 1, "latency_ms": {"le": LE, "counts": [1, 2, 3, 4]},
                               "gauges": {"cpu": 0.4}}
    line.update(over)
    return json.dumps({k: v for k, v in line.items() if v is not None})


def test_windows_events_comments_and_blank_lines() -> None:
    lines = ["# a comment", "", window(), json.dumps({"t": 12.5, "instance": "i-1", "group": "canary",
                                                        "event": "crash"})]
    records = parse_observations(lines)
    assert len(records) == 2
    w, e = records
    assert isinstance(w, Window) and w.requests == 10 and w.latency is not None and w.latency.counts == (1, 2, 3, 4)
    assert w.gauges == {"cpu": 0.4}
    assert isinstance(e, Event) and e.event == "crash"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (window(errors=12), "line 2: errors (12) > requests (10)"),
        (window(group="canari"), "line 2: group must be canary or baseline"),
        (window(requests=-1), "line 2: requests must be >= 0"),
        (window(requests=2.5), "line 2: requests must be a whole number"),
        (window(dt=0), "line 2: dt must be > 0"),
        (window(t="soon"), "line 2: t must be a number"),
        (window(instance=""), "line 2: instance must be a non-empty string"),
        (window(latency_ms={"le": LE, "counts": [1, 2, 3]}), "line 2: latency_ms.counts has 3 entries"),
        (window(latency_ms={"le": LE, "counts": [1, 2, 3, 5]}), "line 2: latency_ms.counts sum to 11"),
        (window(latency_ms={"le": [10, 5, 25], "counts": [1, 2, 3, 4]}), "line 2: latency_ms.le must be ascending"),
        (window(gauges={"cpu": "high"}), "line 2: gauge 'cpu' must be a finite number"),
        ('{"t": 1, "instance": "i", "group": "canary", "event": "boom"}', "line 2: event must be start, crash"),
        ("{not json", "line 2: not JSON"),
        ("[1, 2]", "line 2: each line must be a JSON object"),
        (window(t=5.0), "line 2: t (5) is before the t of the line before it (10)"),
    ],
)
def test_a_bad_line_is_named_by_number_and_field(line: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_observations([window(), line])
    assert caught.value.detail.startswith(message), caught.value.detail
    assert caught.value.problems[0].line == 2


def test_every_bad_line_is_listed_and_the_field_is_a_pointer() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_observations([window(errors=11), window(), window(group="x")])
    assert [(p.line, p.pointer) for p in caught.value.problems] == [(1, "/errors"), (3, "/group")]
    assert "and 1 more" in caught.value.detail


def test_an_instance_cannot_change_group() -> None:
    with pytest.raises(InvalidInput, match="line 2: instance 'i-1' is baseline here but was canary on line 1"):
        parse_observations([window(), window(t=20.0, group="baseline")])


def test_missing_fields_are_named() -> None:
    with pytest.raises(InvalidInput, match="line 1: missing requests"):
        parse_observations([json.dumps({"t": 1, "dt": 1, "instance": "a", "group": "canary", "errors": 0})])
