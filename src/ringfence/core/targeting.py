"""Which instances a rollout stage targets, by selectors and a stable hash.

The hash of (config name, instance id) places every instance at a fixed point in
[0, 1): a stage at 10% takes the instances below 0.1. So for successive changes of
one config the same instances go first, an instance that joins mid-rollout is
placed by the same rule, and a bigger percentage is always a superset of a smaller
one. `min_instances` tops a stage up with the lowest-placed live instances it may
select when the percentage rounds to too few.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ringfence.core.policy import Policy, Stage


@dataclass(frozen=True)
class Member:
    """What targeting needs to know about one instance."""

    id: str
    service: str = ""
    region: str = ""
    zone: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    alive: bool = True


def placement(config: str, instance_id: str) -> float:
    """A stable point in [0, 1) for this instance and this config."""
    digest = hashlib.sha256(f"{config}\0{instance_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _eligible(stage: Stage, member: Member) -> bool:
    return stage.select.matches(service=member.service, region=member.region, zone=member.zone, labels=member.labels)


def stage_selection(stage: Stage, config: str, instances: Iterable[Member]) -> set[str]:
    """The instances `stage` itself selects (not counting earlier stages)."""
    eligible = [m for m in instances if _eligible(stage, m)]
    chosen = {m.id for m in eligible if placement(config, m.id) < stage.percent / 100}
    live_chosen = sum(1 for m in eligible if m.id in chosen and m.alive)
    if live_chosen < stage.min_instances:
        spare = sorted((m for m in eligible if m.alive and m.id not in chosen), key=lambda m: placement(config, m.id))
        chosen.update(m.id for m in spare[: stage.min_instances - live_chosen])
    return chosen


def chosen_by_placement(policy: Policy, stage_index: int, config: str, member: Member) -> bool:
    """Whether stages 0..stage_index take this instance by selector and percentage alone: what
    can be decided for a newcomer without looking at the rest of the fleet (the `min_instances`
    top-up needs the fleet, and the controller's next tick does it)."""
    return any(_eligible(stage, member) and placement(config, member.id) < stage.percent / 100
               for stage in policy.stages[: stage_index + 1])


def targets(policy: Policy, stage_index: int, config: str, instances: Iterable[Member]) -> set[str]:
    """Everything stages 0..stage_index target: stages are cumulative."""
    fleet = list(instances)
    chosen: set[str] = set()
    for stage in policy.stages[: stage_index + 1]:
        chosen |= stage_selection(stage, config, fleet)
    return chosen
