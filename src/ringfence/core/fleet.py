"""Service instances and their liveness."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ringfence.core.names import matches
from ringfence.core.targeting import Member

DEFAULT_SILENT_AFTER = 30.0  # seconds without a heartbeat before an instance is "silent"
DEFAULT_GONE_AFTER = 300.0  # ... and before it is "gone"


class Liveness(StrEnum):
    ALIVE = "alive"
    SILENT = "silent"  # missed heartbeats: maybe a pause, maybe a crash
    GONE = "gone"  # long silent: treated as no longer part of the fleet
    STOPPED = "stopped"  # said goodbye: a clean shutdown


def liveness(last_seen: dt.datetime, stopped_at: dt.datetime | None, now: dt.datetime,
             silent_after: float = DEFAULT_SILENT_AFTER, gone_after: float = DEFAULT_GONE_AFTER) -> Liveness:
    if stopped_at is not None:
        return Liveness.STOPPED
    quiet = (now - last_seen).total_seconds()
    if quiet <= silent_after:
        return Liveness.ALIVE
    return Liveness.SILENT if quiet <= gone_after else Liveness.GONE


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """An instance on a rollout's new revision, as the controller sees it at a tick."""

    id: str
    liveness: Liveness


@dataclass(frozen=True)
class Instance:
    id: str
    service: str
    region: str
    zone: str
    labels: dict[str, str]
    configs: tuple[str, ...]  # name patterns it reads
    sdk_version: str
    registered_at: dt.datetime
    last_seen: dt.datetime
    started_at: dt.datetime | None = None
    stopped_at: dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def liveness(self, now: dt.datetime, silent_after: float = DEFAULT_SILENT_AFTER,
                 gone_after: float = DEFAULT_GONE_AFTER) -> Liveness:
        return liveness(self.last_seen, self.stopped_at, now, silent_after, gone_after)

    def reads(self, config: str) -> bool:
        return any(matches(pattern, config) for pattern in self.configs)

    def member(self, alive: bool) -> Member:
        return Member(self.id, self.service, self.region, self.zone, self.labels, alive)

    def to_json(self, now: dt.datetime, silent_after: float = DEFAULT_SILENT_AFTER,
                gone_after: float = DEFAULT_GONE_AFTER) -> dict[str, Any]:
        return {
            "id": self.id, "service": self.service, "region": self.region, "zone": self.zone,
            "labels": self.labels, "configs": list(self.configs), "sdk_version": self.sdk_version,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "registered_at": self.registered_at.isoformat(), "last_seen": self.last_seen.isoformat(),
            "liveness": self.liveness(now, silent_after, gone_after).value,
        }
