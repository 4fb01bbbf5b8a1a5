"""Which instances a stage targets (ringfence.core.targeting): stable hashing, selectors, cumulative stages."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringfence.core.policy import DEFAULT_POLICY, Policy, Selector, Stage, parse_policy
from ringfence.core.targeting import Member, chosen_by_placement, placement, stage_selection, targets

FAST = settings(max_examples=100, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONFIG = "payments/limits"
CONFIG_NAMES = st.builds("/".join, st.lists(st.text("abcdefgh0123-", min_size=1, max_size=6), min_size=1, max_size=3))
PERCENTS = st.floats(min_value=0.01, max_value=100, allow_nan=False)
SERVICES = ("checkout", "search")
REGIONS = ("eu-west", "us-east", "ap-south")
ZONES = ("a", "b")


def fleet(n: int, *, prefix: str = "i-") -> list[Member]:
    return [Member(f"{prefix}{i:04d}", service=SERVICES[i % 2], region=REGIONS[i % 3], zone=ZONES[i % 2],
                   labels={"canary": "true"} if i % 10 == 0 else {}) for i in range(n)]


@st.composite
def members(draw: st.DrawFn, prefix: str = "i-", *, max_size: int = 40) -> list[Member]:
    numbers = draw(st.lists(st.integers(0, 10**6), max_size=max_size, unique=True))
    return [Member(
        f"{prefix}{n:x}",
        service=draw(st.sampled_from(SERVICES)),
        region=draw(st.sampled_from(REGIONS)),
        zone=draw(st.sampled_from(ZONES)),
        labels=draw(st.sampled_from([{}, {"canary": "true"}, {"tier": "true"}, {"canary": "true", "tier": "false"}])),
        alive=draw(st.sampled_from([True, True, False])),
    ) for n in numbers]


SELECTORS = st.builds(
    Selector,
    labels=st.sampled_from([(), (("canary", "true"),), (("tier", "true"),), (("canary", "true"), ("tier", "false"))]),
    region=st.sampled_from([(), ("eu-west",), ("eu-west", "us-east")]),
    zone=st.sampled_from([(), ("a",)]),
    service=st.sampled_from([(), ("checkout",), SERVICES]),
)
STAGES = st.builds(Stage, name=st.just("s"), select=SELECTORS, percent=PERCENTS, min_instances=st.integers(0, 5))


def matches(stage: Stage, m: Member) -> bool:
    return stage.select.matches(service=m.service, region=m.region, zone=m.zone, labels=m.labels)


# --- placement --------------------------------------------------------------------------------------


def test_placement_is_pinned_so_upgrades_do_not_reshuffle_who_goes_first() -> None:
    # The canaries of a config must not change when ringfence itself is upgraded.
    assert placement(CONFIG, "i-1") == pytest.approx(0.028152519261107258, abs=1e-15)
    assert placement(CONFIG, "i-2") == pytest.approx(0.57367707196411, abs=1e-15)


@FAST
@given(CONFIG_NAMES, st.text(min_size=1, max_size=20))
def test_placement_is_stable_and_in_the_unit_interval(config: str, instance_id: str) -> None:
    point = placement(config, instance_id)
    assert 0.0 <= point < 1.0
    assert placement(config, instance_id) == point


def test_placement_spreads_evenly_so_a_percentage_means_that_share_of_the_fleet() -> None:
    points = [placement(CONFIG, f"i-{i}") for i in range(10_000)]
    for percent in (1, 10, 50, 90):
        share = sum(p < percent / 100 for p in points) / len(points)
        assert share == pytest.approx(percent / 100, abs=0.015)


def test_different_configs_pick_different_instances_first() -> None:
    instances = fleet(1000)
    stage = Stage("early", percent=10.0, min_instances=0)
    limits = stage_selection(stage, "payments/limits", instances)
    fees = stage_selection(stage, "payments/fees", instances)
    assert 70 <= len(limits) <= 130 and 70 <= len(fees) <= 130
    # Independent 10% samples overlap by about 1% of the fleet; identical ones would overlap by 10%.
    assert len(limits & fees) < 30


# --- percentages ----------------------------------------------------------------------------------------


@FAST
@given(members(), STAGES, PERCENTS, CONFIG_NAMES)
def test_a_larger_percent_selects_a_superset(instances: list[Member], stage: Stage, other: float,
                                            config: str) -> None:
    low, high = sorted([stage.percent, other])
    smaller = stage_selection(Stage("s", stage.select, low, stage.min_instances), config, instances)
    larger = stage_selection(Stage("s", stage.select, high, stage.min_instances), config, instances)
    assert smaller <= larger


@FAST
@given(members(), members("j-"), STAGES, CONFIG_NAMES)
def test_new_instances_never_push_an_existing_one_out_of_a_percent_stage(
        existing: list[Member], joining: list[Member], stage: Stage, config: str) -> None:
    percent_only = Stage("s", stage.select, stage.percent, min_instances=0)
    before = stage_selection(percent_only, config, existing)
    after = stage_selection(percent_only, config, existing + joining)
    assert before <= after
    assert after - before <= {m.id for m in joining}  # only newcomers can be added


@FAST
@given(members(), CONFIG_NAMES, st.randoms(use_true_random=False))
def test_the_order_of_the_fleet_does_not_matter(instances: list[Member], config: str, rnd: random.Random) -> None:
    shuffled = list(instances)
    rnd.shuffle(shuffled)
    for index in range(len(DEFAULT_POLICY.stages)):
        assert targets(DEFAULT_POLICY, index, config, instances) == targets(DEFAULT_POLICY, index, config, shuffled)


def test_the_same_config_sends_the_same_instances_first_every_time() -> None:
    # Placement depends on the config name and the instance id only: not on labels, liveness,
    # the revision being rolled out, or which other instances exist.
    instances = fleet(300)
    first = targets(DEFAULT_POLICY, 1, CONFIG, instances)
    relabelled = [Member(m.id, service="other", region="elsewhere", zone="z", labels={"x": "y"}) for m in instances]
    assert targets(DEFAULT_POLICY, 1, CONFIG, relabelled) == first
    by_rule = {m.id for m in instances if placement(CONFIG, m.id) < 0.10}
    assert by_rule <= first
    assert targets(DEFAULT_POLICY, 1, CONFIG, instances + fleet(50, prefix="new-")) >= first


# --- cumulative stages -------------------------------------------------------------------------------------


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    stages = draw(st.lists(STAGES, min_size=1, max_size=5))
    return Policy(tuple(Stage(f"s{i}", s.select, s.percent, s.min_instances) for i, s in enumerate(stages)))


@FAST
@given(members(), policies(), CONFIG_NAMES)
def test_stages_are_cumulative(instances: list[Member], policy: Policy, config: str) -> None:
    every = [targets(policy, i, config, instances) for i in range(len(policy.stages))]
    for i, stage in enumerate(policy.stages):
        assert stage_selection(stage, config, instances) <= every[i]
        if i:
            assert every[i - 1] <= every[i]
    assert every[-1] <= {m.id for m in instances}


def test_the_last_default_stage_targets_the_whole_fleet_dead_or_alive() -> None:
    instances = [Member(m.id, alive=i % 7 != 0) for i, m in enumerate(fleet(200))]
    assert targets(DEFAULT_POLICY, 3, CONFIG, instances) == {m.id for m in instances}


# --- selectors ------------------------------------------------------------------------------------------------


@FAST
@given(members(), STAGES, CONFIG_NAMES)
def test_a_stage_never_selects_an_instance_its_selector_excludes(instances: list[Member], stage: Stage,
                                                                 config: str) -> None:
    chosen = stage_selection(stage, config, instances)
    assert all(matches(stage, m) for m in instances if m.id in chosen)
    # At 100% every matching instance is in.
    everyone = stage_selection(Stage("s", stage.select, 100.0, stage.min_instances), config, instances)
    assert everyone == {m.id for m in instances if matches(stage, m)}


def test_the_issue_example_selects_by_label_then_percent_then_region() -> None:
    policy = parse_policy({"stages": [
        {"name": "canary", "select": {"labels": {"canary": "true"}}, "min_instances": 1},
        {"name": "early", "percent": 10},
        {"name": "eu", "select": {"region": ["eu-west"]}},
        {"name": "checkout", "select": {"service": "checkout", "zone": ["a"]}},
        {"name": "global", "percent": 100},
    ]})
    instances = fleet(200)
    ids = {m.id for m in instances}
    by_id = {m.id: m for m in instances}

    canary = targets(policy, 0, CONFIG, instances)
    assert canary == {m.id for m in instances if m.labels.get("canary") == "true"}
    early = targets(policy, 1, CONFIG, instances)
    assert early == canary | {i for i in ids if placement(CONFIG, i) < 0.10}
    eu = targets(policy, 2, CONFIG, instances)
    assert eu == early | {i for i in ids if by_id[i].region == "eu-west"}
    checkout = targets(policy, 3, CONFIG, instances)
    assert checkout == eu | {i for i in ids if by_id[i].service == "checkout" and by_id[i].zone == "a"}
    assert targets(policy, 4, CONFIG, instances) == ids


# --- min_instances --------------------------------------------------------------------------------------------


def _config_where_one_percent_of(instances: list[Member]) -> str:
    """A config name for which no instance of `instances` falls under 1%."""
    for n in range(1000):
        name = f"team/config-{n}"
        if all(placement(name, m.id) >= 0.01 for m in instances):
            return name
    raise AssertionError("unreachable: most names qualify")


def test_min_instances_is_honoured_when_one_percent_rounds_to_zero() -> None:
    instances = fleet(20)
    config = _config_where_one_percent_of(instances)
    ranked = sorted(instances, key=lambda m: placement(config, m.id))
    canary = DEFAULT_POLICY.stages[0]

    assert stage_selection(Stage("bare", percent=1.0, min_instances=0), config, instances) == set()
    assert stage_selection(canary, config, instances) == {ranked[0].id}
    assert targets(DEFAULT_POLICY, 0, config, instances) == {ranked[0].id}
    # More wanted: the lowest-placed ones, so the top-up is as stable as the hash.
    three = stage_selection(Stage("c", percent=1.0, min_instances=3), config, instances)
    assert three == {m.id for m in ranked[:3]}


def test_only_live_instances_fill_up_a_stage() -> None:
    instances = fleet(20)
    config = _config_where_one_percent_of(instances)
    ranked = sorted(instances, key=lambda m: placement(config, m.id))
    dead = {ranked[0].id, ranked[2].id}
    mixed = [Member(m.id, m.service, m.region, m.zone, m.labels, alive=m.id not in dead) for m in instances]

    chosen = stage_selection(Stage("c", percent=1.0, min_instances=2), config, mixed)
    assert chosen == {ranked[1].id, ranked[3].id}
    nobody_alive = [Member(m.id, alive=False) for m in instances]
    assert stage_selection(Stage("c", percent=1.0, min_instances=2), config, nobody_alive) == set()


def test_a_dead_instance_picked_by_percent_does_not_count_towards_the_minimum() -> None:
    instances = fleet(200)
    config = CONFIG
    below = sorted((m for m in instances if placement(config, m.id) < 0.05), key=lambda m: placement(config, m.id))
    assert below, "the fixture needs at least one instance under 5%"
    dead = {m.id for m in below}
    mixed = [Member(m.id, m.service, m.region, m.zone, m.labels, alive=m.id not in dead) for m in instances]
    chosen = stage_selection(Stage("c", percent=5.0, min_instances=2), config, mixed)
    # The dead ones stay targeted (they get the revision if they come back), plus two live ones.
    assert dead <= chosen
    live = [m for m in mixed if m.id in chosen and m.alive]
    assert len(live) == 2


@FAST
@given(members(), STAGES, CONFIG_NAMES)
def test_a_stage_has_its_minimum_of_live_instances_whenever_enough_are_eligible(
        instances: list[Member], stage: Stage, config: str) -> None:
    chosen = stage_selection(stage, config, instances)
    eligible_live = [m for m in instances if matches(stage, m) and m.alive]
    live_chosen = [m for m in eligible_live if m.id in chosen]
    assert len(live_chosen) >= min(stage.min_instances, len(eligible_live))


@FAST
@given(CONFIG_NAMES)
def test_the_default_canary_of_20_instances_always_has_a_live_one(config: str) -> None:
    instances = fleet(20)
    canary = targets(DEFAULT_POLICY, 0, config, instances)
    assert 1 <= len(canary) <= 3


@FAST
@given(members(), CONFIG_NAMES)
def test_a_newcomer_placed_alone_gets_what_the_whole_fleet_computation_gives_it(
        instances: list[Member], config: str) -> None:
    # Registration places a newcomer without reading the fleet; the controller's tick later
    # computes the whole fleet. The quick answer must never add an instance the tick would not.
    percent_only = Policy(stages=tuple(Stage(s.name, s.select, s.percent, 0) for s in DEFAULT_POLICY.stages))
    for policy in (DEFAULT_POLICY, percent_only):
        for index in range(len(policy.stages)):
            chosen = targets(policy, index, config, instances)
            quick = {m.id for m in instances if chosen_by_placement(policy, index, config, m)}
            assert quick <= chosen
            if policy is percent_only:
                assert quick == chosen
