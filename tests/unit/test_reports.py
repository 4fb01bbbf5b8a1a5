"""Health reports from instances (ringfence.core.reports): checked with pointers, filed as observations."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ringfence.core.analysis import parse_observations
from ringfence.core.reports import event_record, group_of, parse_report, window_record
from ringfence.errors import InvalidInput

LE = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]


def window(**changes: Any) -> dict[str, Any]:
    body = {"start": 1000.0, "end": 1010.0, "revisions": {"shop/limits": 3}, "requests": 10, "errors": 1,
            "latency_ms": {"le": LE, "counts": [0, 2, 3, 5, 0, 0, 0, 0, 0, 0, 0, 0]}, "gauges": {"rss_mb": 120.5}}
    return {**body, **changes}


def report(**changes: Any) -> dict[str, Any]:
    return {"instance": "i-1", "windows": [window()], "events": [{"at": 1001.5, "event": "crash",
                                                                  "revisions": {"shop/limits": 3}}], **changes}


def test_a_good_report_is_read_whole() -> None:
    parsed = parse_report(report(dropped=2))
    assert parsed.instance == "i-1" and parsed.dropped == 2
    assert parsed.windows[0].revisions == {"shop/limits": 3} and parsed.windows[0].gauges == {"rss_mb": 120.5}
    assert parsed.events[0].event == "crash"


@pytest.mark.parametrize(("body", "pointer", "words"), [
    (report(instance=""), "/instance", "instance id"),
    (report(windows=[window(errors=11)]), "/windows/0/errors", "errors (11) > requests (10)"),
    (report(windows=[window(end=999.0)]), "/windows/0/end", "after start"),
    (report(windows=[window(requests=-1)]), "/windows/0/requests", "integer >= 0"),
    (report(windows=[window(latency_ms={"le": LE, "counts": [1] * 12})]), "/windows/0/latency_ms/counts",
     "sum to 12, not to requests (10)"),
    (report(windows=[window(latency_ms={"le": [10, 5], "counts": [5, 5, 0]})]), "/windows/0/latency_ms/le",
     "ascending"),
    (report(windows=[window(gauges={"a/b": "high"})]), "/windows/0/gauges/a~1b", "finite number"),
    (report(windows=[window(revisions={"shop/limits": "3"})]), "/windows/0/revisions/shop~1limits", "integer"),
    (report(events=[{"at": 1.0, "event": "reboot"}]), "/events/0/event", "start, crash, stop"),
    (report(windows=[window()] * 1001), "/windows", "at most 1000"),
])
def test_a_bad_report_names_the_pointer_and_what_is_wrong(body: dict[str, Any], pointer: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_report(body)
    assert caught.value.problems[0].pointer == pointer
    assert words in caught.value.problems[0].message


def test_the_revision_an_instance_ran_decides_its_group() -> None:
    assert group_of(4, to_version=4, from_version=3) == "canary"
    assert group_of(3, to_version=4, from_version=3) == "baseline"
    assert group_of(2, to_version=4, from_version=3) is None  # neither: an older revision
    assert group_of(None, to_version=1, from_version=None) is None


def test_windows_become_observation_lines_counted_from_the_stage_start() -> None:
    parsed = parse_report(report())
    line = window_record(parsed.windows[0], "i-1", "canary", stage_start=995.0)
    assert line is not None and line["t"] == 15.0 and line["dt"] == 10.0
    # The line is exactly what `ringfence analyze` reads.
    (record,) = parse_observations([json.dumps(line)])
    assert record.group == "canary" and record.requests == 10 and record.errors == 1
    event = event_record(parsed.events[0], "i-1", "canary", stage_start=995.0)
    assert event == {"t": 6.5, "instance": "i-1", "group": "canary", "event": "crash"}


def test_a_window_that_began_before_the_stage_is_not_part_of_it() -> None:
    parsed = parse_report(report())
    assert window_record(parsed.windows[0], "i-1", "baseline", stage_start=1005.0) is None
    assert event_record(parsed.events[0], "i-1", "canary", stage_start=1005.0) is None
