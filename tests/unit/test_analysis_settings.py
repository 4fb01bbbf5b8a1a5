"""The policy's `analysis:` section: parsed with problems at JSON pointers, stored and read back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ringfence.core.analysis import AnalysisSettings
from ringfence.core.canonical import canonical_json
from ringfence.core.policy import parse_policy, policy_from_json
from ringfence.errors import InvalidInput

STAGES: list[dict[str, Any]] = [{"name": "canary", "bake": {"min": "2m", "max": "10m"}}]


def test_a_policy_without_analysis_keeps_its_old_form() -> None:
    policy = parse_policy({"stages": STAGES})
    assert policy.analysis is None
    assert "analysis" not in policy.to_json()
    assert policy.analysis_settings(0) == AnalysisSettings(min_bake=120.0, max_bake=600.0)


def test_the_analysis_section_is_parsed_stored_and_read_back() -> None:
    policy = parse_policy({"stages": STAGES, "analysis": {
        "alpha": 0.005, "error_rate": {"max_ratio": 1.5, "min_increase_pp": 0.2}, "latency_p99": {"max_ratio": 1.2},
        "gauges": {"rss_mb": {"max_ratio": 1.3}}, "slo": {"error_rate": 0.05, "latency_p99": 800},
        "crash_loop": 3, "warmup": "20s"}})
    s = policy.analysis_settings(0)
    assert (s.alpha, s.error_ratio, s.error_floor, s.latency_p99_ratio) == (0.005, 1.5, 0.002, 1.2)
    assert s.gauges == {"rss_mb": 1.3} and s.slo == {"error_rate": 0.05, "latency_p99": 800.0}
    assert (s.crash_loop, s.warmup, s.min_bake, s.max_bake) == (3, 20.0, 120.0, 600.0)
    stored = json.loads(canonical_json(policy.to_json()))
    assert policy_from_json(stored) == policy
    assert parse_policy(stored) == policy


@pytest.mark.parametrize(
    ("section", "pointer"),
    [
        ({"alpha": 2}, "/analysis/alpha"),
        ({"bogus": 1}, "/analysis/bogus"),
        ({"error_rate": {"max_ratio": 0.5}}, "/analysis/error_rate/max_ratio"),
        ({"error_rate": {"ratio": 1.2}}, "/analysis/error_rate/ratio"),
        ({"gauges": {"rss_mb": 1.3}}, "/analysis/gauges/rss_mb"),
        ({"slo": {"errors": 0.1}}, "/analysis/slo/errors"),
        ({"warmup": "soon"}, "/analysis/warmup"),
        ({"crash_loop": 1.5}, "/analysis/crash_loop"),
        ("strict", "/analysis"),
    ],
)
def test_each_mistake_is_one_problem_at_its_pointer(section: Any, pointer: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_policy({"stages": STAGES, "analysis": section})
    assert [p.pointer for p in caught.value.problems] == [pointer]


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(InvalidInput, match="min_bake"):
        AnalysisSettings(min_bake=700, max_bake=600)
    with pytest.raises(InvalidInput, match="alpha"):
        AnalysisSettings(alpha=0.9)
