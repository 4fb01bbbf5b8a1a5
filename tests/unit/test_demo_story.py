"""The demo's pure parts: the fleet layout, the health model, the summary's verdict on the story."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from ringfence.cli.incident_view import show_view
from ringfence.demo import scenario, summary
from ringfence.demo.story import fold_code
from ringfence.demo.traffic import SimulatedInstance, timeout_share


def test_the_layout_spreads_services_and_regions_and_labels_a_tenth_of_each_service_canary() -> None:
    specs = scenario.layout(60, seed=1)
    assert len({s.id for s in specs}) == 60
    for service in scenario.SERVICES:
        mine = [s for s in specs if s.service == service]
        assert len(mine) == 30
        assert {r: sum(s.region == r for s in mine) for r in scenario.REGIONS} == dict.fromkeys(scenario.REGIONS, 10)
        canaries = [s for s in mine if s.canary]
        assert len(canaries) == 3 and {s.region for s in canaries} == set(scenario.REGIONS)
    assert scenario.layout(60, seed=1) == specs and scenario.layout(60, seed=2) != specs
    small = scenario.layout(12, seed=1)
    assert [s.id for s in small if s.canary] == ["checkout-eu-west-00", "search-eu-west-00"]
    with pytest.raises(ValueError, match="at least 4"):
        scenario.layout(3, seed=1)


def _served(config: Any, seconds: float = 10.0, seed: int = 1) -> tuple[float, float]:
    sim = SimulatedInstance(scenario.layout(4, seed)[0], seed)
    served = sim.serve(config, seconds)
    assert served.requests == len(served.latency_ms)
    return served.errors / served.requests, served.heap_mb


def test_health_follows_the_config_the_instance_runs() -> None:
    healthy_errors, healthy_heap = _served(scenario.HEALTHY.value)
    bad_errors, bad_heap = _served(scenario.BAD.value)
    assert healthy_errors < 0.002 < 0.03 < bad_errors  # a 40 ms connect timeout fails the slow connections
    assert bad_heap > 2 * healthy_heap  # the big cache fills
    assert timeout_share(40) > 0.05 > 1e-4 > timeout_share(300)
    # Seeded: the same instance under the same config serves the same traffic.
    assert _served(scenario.HEALTHY.value) == (healthy_errors, healthy_heap)


def _story(**changes: Any) -> dict[str, Any]:
    story: dict[str, Any] = {
        "fleet": {"instances": 12, "canaries": ["a", "b"]},
        "healthy": {"rollout": "2", "state": "completed", "stage": "global", "reason": ""},
        "bad": {"rollout": "3", "state": "rolled_back", "stage": "canary", "reason": "failed",
                "incident": {"id": "1", "blast_radius": {"instances": 2, "members": ["a", "b"],
                                                         "canaries_only": True}}},
    }
    for key, value in changes.items():
        story[key] = {**story[key], **value}
    return story


def test_the_story_is_told_only_when_every_part_of_it_happened() -> None:
    assert summary.problems(_story()) == []
    assert "the healthy change did not complete" in summary.problems(
        _story(healthy={"state": "paused", "reason": "max bake"}))[0]
    assert "the bad change was not caught: rollout 3 is completed" in summary.problems(
        _story(bad={"state": "completed", "stage": "global", "reason": "", "incident": None}))[0]
    beyond = {"id": "1", "blast_radius": {"instances": 3, "members": ["a", "b", "c"], "canaries_only": False}}
    assert summary.problems(_story(bad={"incident": beyond})) == [
        "the bad revision reached instances beyond the canaries: c"]


def test_long_code_blocks_of_the_post_mortem_are_folded_with_where_to_find_them() -> None:
    text = "# Draft\n```json\n" + "\n".join(f'"{i}": {i},' for i in range(40)) + "\n```\n```diff\n+ a\n```\nend"
    folded = fold_code(text, "ringfence incident postmortem 1")
    assert "*(40 lines of json left out here: `ringfence incident postmortem 1` prints them)*" in folded
    assert "```diff\n+ a\n```" in folded and folded.endswith("end") and '"7": 7' not in folded


def test_incident_show_draws_the_per_service_evidence_as_a_table() -> None:
    metric = {"verdict": "fail", "canary": 0.0807, "baseline": 0.0001, "unit": "fraction",
              "effect": {"ratio": 356.0, "low": 45.8, "high": 2770.0}, "rule": "lower bound above tolerance"}
    incident = {"id": "1", "severity": "sev2", "state": "mitigated", "config": "shop/backend", "from_version": 2,
                "to_version": 3, "summary": "rolled back", "opened_at": "2026-12-05T00:06:14+00:00",
                "opened_by": "controller", "timeline": [], "blast_radius": {},
                "evidence": {"verdict": "fail", "reasons": ["search: error_rate: x356"],
                             "services": {"search": {"decision": "fail", "metrics": {"error_rate": metric}}}}}
    console = Console(width=200, record=True)
    console.print(show_view(incident))
    text = console.export_text()
    assert "search" in text and "error_rate" in text and "8.07%" in text and "0.010%" in text
    assert "x356 (45.80-2770)" in text
    assert '{"services"' not in text
