"""The fleet simulator (ringfence.testing.observations): streams in the exact format of
formats/observations.md, deterministic per seed, phenomena where the spec puts them, and a ground truth
that follows the tolerance rule of the scenarios README."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

import pytest

from ringfence.testing.latency import LE, bucket_probabilities, latency_mixture
from ringfence.testing.observations import (
    Scenario,
    scenario_from_dict,
    scenario_to_dict,
    simulate,
    stream_lines,
    to_jsonl,
    truth,
)

NOISY: dict[str, Any] = {
    "canary": 4, "baseline": 10, "rps": 20.0, "hetero": {"traffic": 0.6, "errors": 0.6, "latency": 0.3},
    "bad_hosts": {"canary": 1, "baseline": 2}, "ramp": 0.5, "drift": 0.3, "bursts": {"count": 3},
    "cold_start": {"duration": 25.0}, "clock_skew": 4.0, "tail": "pareto", "tail_alpha": 1.3,
    "baseline_crash_loop": True, "baseline_silent_at": 300.0,
    "effect": {"error_mult": 2.0, "latency_scale": 1.3, "traffic_share": 0.5, "instances": 2, "onset": 60.0,
               "crash_loop": {"instances": 1, "first": 100.0, "period": 120.0}, "silent_at": 400.0,
               "silent_instances": 1, "rss_growth_mb_per_min": 20.0},
}
WINDOW_KEYS = {"t", "dt", "instance", "group", "requests", "errors", "latency_ms", "gauges"}
EVENT_KEYS = {"t", "instance", "group", "event"}


def format_problems(lines: list[str]) -> list[str]:
    """Every rule of formats/observations.md a stream breaks (an independent check of the simulator)."""
    problems: list[str] = []
    last_t = -math.inf
    groups: dict[str, str] = {}
    for no, line in enumerate(lines, 1):
        rec = json.loads(line)
        t = rec.get("t")
        if not isinstance(t, int | float) or t < last_t:
            problems.append(f"line {no}: t {t!r} missing or out of order")
            continue
        last_t = t
        if groups.setdefault(rec["instance"], rec["group"]) != rec["group"] or rec["group"] not in (
            "canary", "baseline"
        ):
            problems.append(f"line {no}: group {rec['group']!r}")
        if "event" in rec:
            if set(rec) != EVENT_KEYS or rec["event"] not in ("start", "crash", "stop"):
                problems.append(f"line {no}: bad event {rec}")
            continue
        if set(rec) != WINDOW_KEYS:
            problems.append(f"line {no}: keys {sorted(rec)}")
            continue
        n, e, hist = rec["requests"], rec["errors"], rec["latency_ms"]
        if not (isinstance(n, int) and isinstance(e, int) and 0 <= e <= n and rec["dt"] > 0):
            problems.append(f"line {no}: requests {n!r} errors {e!r} dt {rec['dt']!r}")
        if hist["le"] != sorted(hist["le"]) or len(hist["counts"]) != len(hist["le"]) + 1:
            problems.append(f"line {no}: histogram shape")
        if sum(hist["counts"]) != n or min(hist["counts"]) < 0:
            problems.append(f"line {no}: counts sum to {sum(hist['counts'])}, requests {n}")
        if not all(isinstance(v, int | float) for v in rec["gauges"].values()):
            problems.append(f"line {no}: gauges")
    return problems


def windows(records: list[dict[str, Any]], group: str | None = None) -> list[dict[str, Any]]:
    return [r for r in records if "requests" in r and (group is None or r["group"] == group)]


def test_streams_follow_the_format() -> None:
    for spec in (Scenario(seed=1), scenario_from_dict({"seed": 2, **NOISY}), Scenario(seed=3, rps=1.0, canary=1)):
        lines = stream_lines(spec)
        assert lines, spec
        assert format_problems(lines) == []
        assert all(0 < json.loads(x)["t"] <= spec.max_bake or "event" in x for x in lines)


def test_the_analyzer_parses_simulated_streams() -> None:
    try:
        from ringfence.core.analysis import parse_observations  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        pytest.skip("the analyzer (ringfence.core.analysis) is not built yet")
    for spec in (Scenario(seed=4), scenario_from_dict({"seed": 5, **NOISY})):
        lines = to_jsonl(simulate(spec)).splitlines()
        assert len(list(parse_observations(lines))) == len(lines)


def test_deterministic_per_seed() -> None:
    spec = {"seed": 11, **NOISY}
    assert to_jsonl(simulate(spec)) == to_jsonl(simulate(spec))
    assert to_jsonl(simulate({**spec, "seed": 12})) != to_jsonl(simulate(spec))
    assert simulate(scenario_from_dict(scenario_to_dict(scenario_from_dict(spec)))) == simulate(spec)


def test_one_window_per_instance_and_dt_on_a_plain_fleet() -> None:
    records = simulate(Scenario(seed=6, canary=2, baseline=5))
    per: dict[str, list[float]] = defaultdict(list)
    for r in windows(records):
        per[r["instance"]].append(r["t"])
    assert len(per) == 7
    assert all(ts == [10.0 * k for k in range(1, 61)] for ts in per.values())
    starts = [r for r in records if r.get("event") == "start"]
    assert len(starts) == 2 and all(r["t"] == 0.0 and r["group"] == "canary" for r in starts)


def test_silent_canaries_stop_and_send_no_event() -> None:
    records = simulate(Scenario(seed=7, canary=4, effect=scenario_from_dict(
        {"effect": {"silent_at": 200.0, "silent_instances": 2}}).effect))
    last: dict[str, float] = {}
    for r in windows(records, "canary"):
        last[r["instance"]] = r["t"]
    assert sorted(last.values()) == [200.0, 200.0, 600.0, 600.0]
    assert [r["event"] for r in records if "event" in r] == ["start"] * 4


def test_crash_loops_emit_events_and_no_windows_while_down() -> None:
    spec = scenario_from_dict({"seed": 8, "effect": {"crash_loop": {"instances": 1, "first": 80.0, "period": 90.0}},
                               "baseline_crash_loop": True})
    records = simulate(spec)
    events: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for r in records:
        if "event" in r:
            events[r["instance"]].append((r["t"], r["event"]))
    looping = {i: ev for i, ev in events.items() if any(kind == "crash" for _, kind in ev)}
    groups = {r["instance"]: r["group"] for r in records}
    assert sorted(groups[i] for i in looping) == ["baseline", "canary"]
    for inst, ev in looping.items():
        crashes = [t for t, kind in ev if kind == "crash"]
        assert len(crashes) >= 5
        down = [(t, next(s for s, k in ev if k == "start" and s > t)) for t in crashes if t < 570]
        for w in windows(records):
            if w["instance"] == inst:
                assert not any(a < w["t"] <= b for a, b in down), (inst, w["t"])


def test_clock_skew_keeps_the_stream_ordered_and_in_the_stage() -> None:
    records = simulate(Scenario(seed=9, clock_skew=5.0))
    ts = [r["t"] for r in records]
    assert ts == sorted(ts) and min(ts) >= 0.0 and max(ts) <= 600.0
    firsts = {r["instance"]: r["t"] for r in reversed(windows(records))}
    assert len({round(t % 10.0, 3) for t in firsts.values()}) > 5  # windows are not aligned


def test_effects_show_in_the_data() -> None:
    def rates(spec: dict[str, Any]) -> dict[str, float]:
        out = {}
        for g in ("canary", "baseline"):
            w = windows(simulate(spec), g)
            out[g] = sum(r["errors"] for r in w) / sum(r["requests"] for r in w)
        return out

    aa = rates({"seed": 10, "canary": 6, "baseline": 6, "rps": 100.0})
    assert 0.85 < aa["canary"] / aa["baseline"] < 1.15
    bad = rates({"seed": 10, "canary": 6, "baseline": 6, "rps": 100.0, "effect": {"error_mult": 3.0}})
    assert 2.6 < bad["canary"] / bad["baseline"] < 3.4
    endpoint = rates({"seed": 10, "canary": 6, "baseline": 6, "rps": 100.0,
                      "effect": {"error_mult": 5.0, "traffic_share": 0.25}})
    assert 1.6 < endpoint["canary"] / endpoint["baseline"] < 2.4  # 1 + 0.25 * 4


def test_a_gauge_leak_grows_on_the_affected_canaries() -> None:
    records = simulate({"seed": 12, "effect": {"rss_growth_mb_per_min": 60.0, "instances": 1}})
    by: dict[str, list[float]] = defaultdict(list)
    for r in windows(records, "canary"):
        by[r["instance"]].append(r["gauges"]["rss_mb"])
    growth = sorted(v[-1] - v[len(v) // 2] for v in by.values())
    assert growth[-1] > 250 and abs(growth[0]) < 10


def test_histogram_probabilities_follow_the_law() -> None:
    p = bucket_probabilities(35.0, 0.5, 0.0, 5.0)
    assert p.shape == (len(LE) + 1,) and abs(p.sum() - 1) < 1e-12
    below_50ms = 0.5 * math.erfc(-math.log(50.0 / 35.0) / 0.5 / math.sqrt(2.0))
    assert p[:4].sum() == pytest.approx(below_50ms, abs=1e-6)
    law = latency_mixture([(1.0, 35.0, 0.0)], 0.5, 5.0, "lognormal", 1.5)
    assert law.quantile(0.5) == pytest.approx(35.0, rel=1e-6)
    assert law.quantile(0.99) == pytest.approx(35.0 * math.exp(0.5 * 2.326348), rel=1e-4)


@pytest.mark.parametrize(
    ("spec", "bad", "margin", "check"),
    [
        ({}, False, "good", {"error_ratio": 1.0, "latency_p99_ratio": 1.0}),
        ({"effect": {"error_mult": 3.0}}, True, "bad", {"error_ratio": 3.0, "error_diff_pp": 1.214}),
        ({"effect": {"error_mult": 1.1}}, False, "good", {"error_ratio": 1.1}),
        ({"effect": {"error_mult": 1.3}}, True, "borderline", {"error_ratio": 1.3}),
        # x1.8 relative, but only +0.04 pp: inside the absolute floor.
        ({"error_rate": 0.0005, "effect": {"error_mult": 1.8}}, False, "good", {"error_ratio": 1.8}),
        ({"effect": {"latency_scale": 1.4}}, True, "bad", {"latency_p50_ratio": 1.4, "latency_p99_ratio": 1.4}),
        ({"hetero": {"latency": 0.0}, "effect": {"tail_frac_mult": 5.0}}, True, "bad",
         {"latency_p50_ratio": 1.027, "latency_p99_ratio": 1.946}),
        ({"effect": {"error_mult": 5.0, "traffic_share": 0.25}}, True, "bad", {"error_ratio": 2.0}),
        ({"canary": 4, "effect": {"error_mult": 5.0, "instances": 2}}, True, "bad", {"error_ratio": 3.0}),
        ({"effect": {"error_mult": 3.0, "onset": 700.0}}, False, "good", {"error_ratio": 1.0}),
        ({"effect": {"crash_loop": {"first": 80.0, "period": 90.0}}}, True, "bad", {"crash_loop": True}),
        ({"effect": {"crash_loop": {"first": 80.0, "max_crashes": 1}}}, False, "borderline", {"crash_loop": False}),
        ({"effect": {"silent_at": 200.0}}, True, "bad", {"canary_silent": True}),
        ({"effect": {"silent_at": 590.0}}, True, "borderline", {"canary_silent": True}),
        ({"baseline_crash_loop": True, "baseline_silent_at": 100.0, "bad_hosts": {"canary": 1, "errors": 4.0},
          "bursts": {}, "cold_start": {}, "clock_skew": 5.0, "drift": 0.5}, False, "good", {"error_ratio": 1.0}),
        ({"gauge_tolerance": {"rss_mb": 1.2}, "effect": {"rss_growth_mb_per_min": 30.0}}, True, "bad",
         {"gauge_ratios": {"rss_mb": 1.857}}),
        ({"effect": {"rss_growth_mb_per_min": 30.0}}, False, "good", {"gauge_ratios": {}}),
    ],
)
def test_truth(spec: dict[str, Any], bad: bool, margin: str, check: dict[str, Any]) -> None:
    got = truth(spec)
    assert (got.bad, got.margin) == (bad, margin), got
    for key, want in check.items():
        value = got.to_dict()[key]
        assert value == (pytest.approx(want, abs=2e-3) if isinstance(want, float) else want), (key, got)


def test_specs_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        scenario_from_dict({"sed": 1})
    with pytest.raises(ValueError, match=r"effect\.crash_loop: unknown field"):
        scenario_from_dict({"effect": {"crash_loop": {"every": 3}}})
    with pytest.raises(ValueError, match="at least one canary"):
        Scenario(canary=0)
