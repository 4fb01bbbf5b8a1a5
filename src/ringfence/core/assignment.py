"""Which revision of one config each instance must run: derived, never stored.

For a config, the latest rollout and the instances that received its new revision
(its members) decide everything: members run `to_version` while the rollout is
active, everyone runs it once it completed, and everyone else runs the revision the
fleet ran before. A config that never had a rollout (stored before rollouts existed)
is simply at its current version everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from ringfence.core.rollout import Rollout


@dataclass(frozen=True)
class ConfigAssignments:
    name: str
    seq: int  # the global seq this view was taken at
    rollout: Rollout | None
    members: frozenset[str]
    current_version: int | None  # used only when there is no rollout

    def version_for(self, instance_id: str) -> int | None:
        if self.rollout is None:
            return self.current_version
        return self.rollout.assigned(instance_id in self.members)

    def rollout_json(self, instance_id: str) -> dict[str, object] | None:
        if self.rollout is None:
            return None
        return {"id": self.rollout.id, "state": self.rollout.state.value, "stage": self.rollout.stage,
                "member": instance_id in self.members, "to_version": self.rollout.to_version,
                "from_version": self.rollout.from_version}
