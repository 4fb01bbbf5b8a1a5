"""Rollout policies (ringfence.core.policy): parsing, defaults, clear problems, round trips, emergency mode."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringfence.core.canonical import canonical_json
from ringfence.core.policy import (
    DEFAULT_BAKE_MAX,
    DEFAULT_BAKE_MIN,
    DEFAULT_POLICY,
    EMERGENCY_BAKE_MAX,
    EMERGENCY_BAKE_MIN,
    Policy,
    Selector,
    Stage,
    parse_duration,
    parse_policy,
    policy_from_json,
)
from ringfence.errors import InvalidInput

FAST = settings(max_examples=150, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The example policy of issue 3, as the YAML loader gives it (durations stay strings).
EXAMPLE: dict[str, Any] = {
    "stages": [
        {"name": "canary", "select": {"labels": {"canary": "true"}}, "min_instances": 1,
         "bake": {"min": "2m", "max": "10m"}},
        {"name": "early", "percent": 10, "bake": {"min": "5m", "max": "20m"}},
        {"name": "eu", "select": {"region": ["eu-west"]}, "bake": {"min": "10m", "max": "30m"}},
        {"name": "global", "percent": 100},
    ],
    "on_failure": "rollback",
}


def problems_of(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse_policy(document)
    assert caught.value.problems, "an invalid policy must say what is wrong"
    return [(p.pointer, p.message) for p in caught.value.problems]


# --- the example and the defaults -----------------------------------------------------------------


def test_the_issue_example_parses_into_the_stages_it_describes() -> None:
    policy = parse_policy(copy.deepcopy(EXAMPLE))

    assert [s.name for s in policy.stages] == ["canary", "early", "eu", "global"]
    canary, early, eu, global_ = policy.stages
    assert canary.select == Selector(labels=(("canary", "true"),))
    assert canary.percent == 100.0
    assert canary.min_instances == 1
    assert (canary.bake_min, canary.bake_max) == (120.0, 600.0)
    assert early.select == Selector()
    assert early.percent == 10.0
    assert (early.bake_min, early.bake_max) == (300.0, 1200.0)
    assert eu.select == Selector(region=("eu-west",))
    assert (eu.bake_min, eu.bake_max) == (600.0, 1800.0)
    assert global_.percent == 100.0
    assert policy.on_failure == "rollback"


def test_a_stage_with_only_a_name_gets_the_documented_defaults() -> None:
    policy = parse_policy({"stages": [{"name": "all"}]})

    assert policy == Policy(stages=(Stage("all"),), on_failure="rollback")
    (stage,) = policy.stages
    assert stage.percent == 100.0
    assert stage.min_instances == 1
    assert (stage.bake_min, stage.bake_max) == (DEFAULT_BAKE_MIN, DEFAULT_BAKE_MAX)
    assert stage.select.matches(service="any", region="any", zone="any", labels={})


def test_on_failure_pause_is_kept() -> None:
    assert parse_policy({"stages": [{"name": "all"}], "on_failure": "pause"}).on_failure == "pause"


@pytest.mark.parametrize(
    ("bake", "expected"),
    [
        ({"min": "2m"}, (120.0, DEFAULT_BAKE_MAX)),  # only min: the default max
        ({"min": "1h"}, (3600.0, 3600.0)),  # only a min beyond the default max: max follows it up
        ({"max": "1h"}, (DEFAULT_BAKE_MIN, 3600.0)),  # only max: the default min
        ({"max": "1m"}, (60.0, 60.0)),  # only a max below the default min: min follows it down
        ({}, (DEFAULT_BAKE_MIN, DEFAULT_BAKE_MAX)),
        ({"min": 0, "max": 0}, (0.0, 0.0)),
    ],
)
def test_a_bake_with_only_one_bound_is_completed_sensibly(bake: dict[str, Any], expected: tuple[float, float]) -> None:
    (stage,) = parse_policy({"stages": [{"name": "s", "bake": bake}]}).stages
    assert (stage.bake_min, stage.bake_max) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (90.5, 90.5), ("90s", 90.0), ("2m", 120.0), ("1.5h", 5400.0), ("500ms", 0.5), (" 3m ", 180.0),
     ("0s", 0.0)],
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    (stage,) = parse_policy({"stages": [{"name": "s", "bake": {"min": text, "max": "2h"}}]}).stages
    assert stage.bake_min == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "m", "2 minutes", "2d", "-5s", "1e3s", True, None, [1], {"m": 2}, -1, "1h30m", "2M",
             float("nan"), float("inf"), pytest.param(10**400, id="huge-int"),
             pytest.param("9" * 400 + "s", id="huge-text")],
)
def test_what_is_not_a_duration(text: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is checked through parse_policy below
        parse_duration(text)
    problems = problems_of({"stages": [{"name": "s", "bake": {"min": text}}]})
    assert [p for p, _ in problems] == ["/stages/0/bake/min"]
    assert "90s" in problems[0][1]  # says what a duration looks like


# --- one clear problem per mistake ----------------------------------------------------------------


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(EXAMPLE)
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return document


MISTAKES = [
    pytest.param(_with(["stages", 0, "select"], {"regoin": ["eu-west"]}), "/stages/0/select/regoin",
                 ["unknown key 'regoin'", "region"], id="unknown-selector-key"),
    pytest.param(_with(["stages", 1, "percent"], 120), "/stages/1/percent", ["at most 100", "120"], id="percent-120"),
    pytest.param(_with(["stages", 1, "percent"], 0), "/stages/1/percent", ["above 0"], id="percent-0"),
    pytest.param(_with(["stages", 1, "percent"], "10%"), "/stages/1/percent", ["number"], id="percent-text"),
    pytest.param(_with(["stages", 0, "bake"], {"min": "10m", "max": "2m"}), "/stages/0/bake",
                 ["min (10m)", "max (2m)"], id="bake-min-above-max"),
    pytest.param({"stages": [], "on_failure": "rollback"}, "/stages", ["non-empty list of stages"], id="empty-stages"),
    pytest.param({"on_failure": "rollback"}, "/stages", ["non-empty list of stages"], id="missing-stages"),
    pytest.param(_with(["stages", 2, "name"], "early"), "/stages/2/name", ["'early'", "twice"], id="duplicate-name"),
    pytest.param(_with(["on_failure"], "retry"), "/on_failure", ["rollback or pause", "'retry'"], id="on-failure"),
    pytest.param(_with(["stages", 0, "select", "labels"], {"canary": True}), "/stages/0/select/labels",
                 ["strings"], id="label-not-a-string"),
    pytest.param(_with(["stages", 0, "select", "labels"], {"tier": 1}), "/stages/0/select/labels",
                 ["strings"], id="label-a-number"),
    pytest.param(_with(["stages", 2, "select", "region"], []), "/stages/2/select/region",
                 ["non-empty list"], id="empty-region-list"),
    pytest.param(_with(["stages", 1, "min_instances"], -1), "/stages/1/min_instances", ["whole number"],
                 id="min-instances-negative"),
    pytest.param(_with(["stages", 1, "name"], "Early Birds"), "/stages/1/name", ["lowercase"], id="bad-name"),
    pytest.param(_with(["stages", 1, "precent"], 10), "/stages/1/precent", ["unknown key 'precent'"],
                 id="unknown-stage-key"),
    pytest.param(_with(["rings"], []), "/rings", ["unknown key 'rings'"], id="unknown-policy-key"),
    pytest.param(_with(["stages", 3], "global"), "/stages/3", ["object"], id="stage-not-an-object"),
]


@pytest.mark.parametrize(("document", "pointer", "fragments"), MISTAKES)
def test_each_mistake_gets_one_clear_problem_at_its_pointer(document: Any, pointer: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_policy(document)

    assert [(p.pointer, p.validator) for p in caught.value.problems] == [(pointer, "policy")]
    message = caught.value.problems[0].message
    for fragment in fragments:
        assert fragment in message
    # The one-line summary names the place, so a person reading only it knows where to look.
    assert pointer in caught.value.detail
    assert "1 problem" in caught.value.detail


def test_a_policy_that_is_not_an_object_is_refused() -> None:
    for document in ([], "stages: []", None):
        assert [p for p, _ in problems_of(document)] == [""]


def test_every_mistake_is_reported_at_once() -> None:
    document = copy.deepcopy(EXAMPLE)
    document["stages"][0]["select"] = {"regoin": ["eu-west"]}
    document["stages"][0]["bake"] = {"min": "10m", "max": "2m"}
    document["stages"][1]["percent"] = 120
    document["stages"][3]["name"] = "early"
    document["on_failure"] = "retry"

    with pytest.raises(InvalidInput) as caught:
        parse_policy(document)

    assert sorted(p.pointer for p in caught.value.problems) == sorted([
        "/stages/0/select/regoin", "/stages/0/bake", "/stages/1/percent", "/stages/3/name", "/on_failure",
    ])
    assert "5 problem(s)" in caught.value.detail


def test_a_duplicate_name_is_pointed_at_where_it_is_even_after_a_broken_stage() -> None:
    problems = problems_of({"stages": ["oops", {"name": "a"}, {"name": "a"}]})
    assert [p for p, _ in problems] == ["/stages/0", "/stages/2/name"]


def test_a_bad_stage_name_is_one_problem_not_a_duplicate_of_a_name_nobody_wrote() -> None:
    problems = problems_of({"stages": [{"name": "stage-1"}, {"name": "Bad Name"}]})
    assert [p for p, _ in problems] == ["/stages/1/name"]
    assert "twice" not in problems[0][1]


# --- round trips ----------------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)
WORDS = st.text(alphabet="abcdefgh-_.", min_size=1, max_size=8)


@st.composite
def durations(draw: st.DrawFn, seconds: int) -> Any:
    form = draw(st.sampled_from(["int", "float", "s", "ms", "m"]))
    if form == "int":
        return seconds
    if form == "float":
        return float(seconds)
    if form == "s":
        return f"{seconds}s"
    if form == "ms":
        return f"{seconds * 1000}ms"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


@st.composite
def selectors(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["labels"] = draw(st.dictionaries(WORDS, WORDS, min_size=1, max_size=3))
    for key in ("region", "zone", "service"):
        if draw(st.booleans()):
            values = draw(st.lists(WORDS, min_size=1, max_size=3, unique=True))
            out[key] = values[0] if len(values) == 1 and draw(st.booleans()) else values
    return out


@st.composite
def stage_documents(draw: st.DrawFn, name: str) -> dict[str, Any]:
    stage: dict[str, Any] = {"name": name}
    if draw(st.booleans()):
        stage["select"] = draw(selectors())
    if draw(st.booleans()):
        stage["percent"] = draw(st.one_of(
            st.integers(1, 100),
            st.floats(min_value=0, max_value=100, exclude_min=True, allow_nan=False),
        ))
    if draw(st.booleans()):
        stage["min_instances"] = draw(st.integers(0, 20))
    if draw(st.booleans()):
        low, high = sorted(draw(st.lists(st.integers(0, 7200), min_size=2, max_size=2)))
        bake: dict[str, Any] = {}
        if draw(st.booleans()):
            bake["min"] = draw(durations(low))
        if draw(st.booleans()):
            bake["max"] = draw(durations(high))
        stage["bake"] = bake
    return stage


@st.composite
def policy_documents(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    document: dict[str, Any] = {"stages": [draw(stage_documents(name)) for name in names]}
    if draw(st.booleans()):
        document["on_failure"] = draw(st.sampled_from(["rollback", "pause"]))
    return document


@FAST
@given(policy_documents())
def test_a_valid_policy_survives_storage(document: dict[str, Any]) -> None:
    policy = parse_policy(document)

    assert [s.name for s in policy.stages] == [s["name"] for s in document["stages"]]
    for stage in policy.stages:
        assert 0 < stage.percent <= 100
        assert 0 <= stage.bake_min <= stage.bake_max
    # Stored as canonical JSON in the rollout, read back as the same policy.
    stored = json.loads(canonical_json(policy.to_json()))
    assert policy_from_json(stored) == policy
    # The stored form is itself a valid policy document meaning the same thing.
    assert parse_policy(stored) == policy


@FAST
@given(policy_documents())
def test_emergency_mode_keeps_every_stage_and_only_shortens_bakes(document: dict[str, Any]) -> None:
    policy = parse_policy(document)
    urgent = policy.emergency()

    assert len(urgent.stages) == len(policy.stages)
    assert urgent.on_failure == policy.on_failure
    for before, after in zip(policy.stages, urgent.stages, strict=True):
        assert (after.name, after.select, after.percent, after.min_instances) == (
            before.name, before.select, before.percent, before.min_instances)
        assert after.bake_min == min(before.bake_min, EMERGENCY_BAKE_MIN)
        assert after.bake_max == min(before.bake_max, EMERGENCY_BAKE_MAX)
        assert after.bake_min <= after.bake_max
    assert policy_from_json(urgent.to_json()) == urgent


def test_emergency_caps_bakes_at_10_seconds_and_2_minutes() -> None:
    urgent = DEFAULT_POLICY.emergency()
    assert [s.name for s in urgent.stages] == [s.name for s in DEFAULT_POLICY.stages]
    assert all((s.bake_min, s.bake_max) == (10.0, 120.0) for s in urgent.stages)
    assert DEFAULT_POLICY.stages[0].bake_min == DEFAULT_BAKE_MIN  # the default policy itself is untouched


def test_emergency_never_lengthens_a_short_bake() -> None:
    policy = parse_policy({"stages": [{"name": "a", "bake": {"min": "5s", "max": "1m"}}, {"name": "b"}]})
    urgent = policy.emergency()
    assert (urgent.stages[0].bake_min, urgent.stages[0].bake_max) == (5.0, 60.0)
    assert (urgent.stages[1].bake_min, urgent.stages[1].bake_max) == (10.0, 120.0)


def test_the_default_policy_is_canary_1_10_50_100() -> None:
    assert [s.percent for s in DEFAULT_POLICY.stages] == [1.0, 10.0, 50.0, 100.0]
    assert DEFAULT_POLICY.stages[0].name == "canary"
    assert DEFAULT_POLICY.stages[0].min_instances >= 1
    assert DEFAULT_POLICY.on_failure == "rollback"
    for stage in DEFAULT_POLICY.stages:
        assert stage.select == Selector()  # the whole fleet, by percentage
        assert 0 < stage.bake_min <= stage.bake_max
        assert math.isfinite(stage.bake_max)
    assert parse_policy(DEFAULT_POLICY.to_json()) == DEFAULT_POLICY
