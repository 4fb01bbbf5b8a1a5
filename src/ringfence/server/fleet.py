"""The fleet registry: instances register, heartbeat and say goodbye; assignments per instance."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Any

from ringfence.core.access import Action, in_scope, require
from ringfence.core.assignment import ConfigAssignments
from ringfence.core.fleet import DEFAULT_GONE_AFTER, DEFAULT_SILENT_AFTER, Instance, Liveness
from ringfence.core.model import Token
from ringfence.core.names import MATCH_ALL, check_name, check_pattern
from ringfence.errors import InvalidInput, NotFound, Problem
from ringfence.server import metrics
from ringfence.server.configs import Clock
from ringfence.store.sql import Reader, SqlStore, Writer

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}")
_FIELD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")


def _when(value: Any, default: dt.datetime) -> dt.datetime:
    if not isinstance(value, str):
        return default
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"applied_at {value!r} is not an ISO 8601 time",
                           [Problem("/applied_at", "invalid time", "request")]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _check(value: Any, pattern: re.Pattern[str], pointer: str, what: str, *, required: bool = True) -> str:
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidInput(f"{what} {value!r} is not valid: use letters, digits and . _ : - (starting with a "
                           "letter or digit)", [Problem(pointer, f"invalid {what}", "request")])
    return value


class FleetService:
    def __init__(self, store: SqlStore, clock: Clock, silent_after: float = DEFAULT_SILENT_AFTER,
                 gone_after: float = DEFAULT_GONE_AFTER,
                 on_register: Callable[[Writer, Instance, dt.datetime], None] | None = None) -> None:
        self.store = store
        # Called in the registration's transaction: running rollouts place a newcomer at once,
        # so its first snapshot already holds what it must run.
        self.on_register = on_register
        self.clock = clock
        self.silent_after = silent_after
        self.gone_after = gone_after

    def liveness(self, instance: Instance, now: dt.datetime) -> Liveness:
        return instance.liveness(now, self.silent_after, self.gone_after)

    def to_json(self, instance: Instance, now: dt.datetime) -> dict[str, Any]:
        return instance.to_json(now, self.silent_after, self.gone_after)

    def register(self, token: Token, body: dict[str, Any]) -> Instance:
        require(token, Action.REGISTER)
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise InvalidInput("labels must map names to strings", [Problem("/labels", "expected strings", "request")])
        configs = body.get("configs") or [MATCH_ALL]
        if not isinstance(configs, list) or not all(isinstance(c, str) for c in configs):
            raise InvalidInput("configs must be a list of name patterns", [Problem("/configs", "expected a list",
                                                                                   "request")])
        for pattern in configs:
            check_pattern(pattern)
        now = self.clock()
        started_at = _when(body.get("started_at"), now) if body.get("started_at") is not None else None
        instance = Instance(
            id=_check(body.get("id"), _ID, "/id", "instance id"),
            service=_check(body.get("service"), _FIELD, "/service", "service"),
            region=_check(body.get("region"), _FIELD, "/region", "region", required=False),
            zone=_check(body.get("zone"), _FIELD, "/zone", "zone", required=False),
            labels=labels, configs=tuple(configs),
            sdk_version=str(body.get("sdk_version") or "")[:50], registered_at=now, last_seen=now,
            started_at=started_at,
        )
        # Sequenced: placing the instance in running rollouts writes their members, which the
        # controller writes too.
        with self.store.write() as tx:
            tx.register(instance)
            if self.on_register is not None:
                self.on_register(tx, instance, now)
            stored = tx.instance(instance.id)
        assert stored is not None
        return stored

    def heartbeat(self, token: Token, instance_id: str) -> Instance:
        require(token, Action.REGISTER)
        with self.store.write(sequenced=False) as tx:
            if not tx.touch(instance_id, self.clock()):
                raise NotFound(f"instance {instance_id!r} is not registered; register it first (POST /v1/instances)")
            instance = tx.instance(instance_id)
        assert instance is not None
        return instance

    def acknowledge(self, token: Token, instance_id: str, items: Any) -> int:
        """An instance reports the revisions it applied; each one's propagation delay is measured."""
        require(token, Action.REGISTER)
        if not isinstance(items, list) or not all(
                isinstance(i, dict) and isinstance(i.get("name"), str) and isinstance(i.get("version"), int)
                for i in items):
            raise InvalidInput("applied must be a list of {name, version, applied_at}",
                               [Problem("/applied", "expected a list of {name, version, applied_at}", "request")])
        now = self.clock()
        with self.store.write(sequenced=False) as tx:
            if tx.instance(instance_id) is None:
                raise NotFound(f"instance {instance_id!r} is not registered")
            for item in items:
                applied_at = min(_when(item.get("applied_at"), now), now)  # an instance's clock may run ahead
                tx.record_applied(instance_id, item["name"], item["version"], applied_at)
                since = tx.assigned_since(item["name"], item["version"], instance_id)
                if since is not None:
                    metrics.propagation.observe(max(0.0, (applied_at - since).total_seconds()))
        return len(items)

    def deregister(self, token: Token, instance_id: str) -> None:
        require(token, Action.REGISTER)
        with self.store.write(sequenced=False) as tx:
            if not tx.stop(instance_id, self.clock()):
                raise NotFound(f"instance {instance_id!r} is not registered")

    def get(self, token: Token, instance_id: str) -> Instance:
        require(token, Action.READ)
        with self.store.read() as reader:
            instance = reader.instance(instance_id)
        if instance is None:
            raise NotFound(f"instance {instance_id!r} is not registered")
        return instance

    def find(self, token: Token, *, service: str | None, region: str | None, zone: str | None,
             labels: dict[str, str], liveness: str | None) -> list[Instance]:
        require(token, Action.READ)
        now = self.clock()
        with self.store.read() as reader:
            found = reader.instances(service=service, region=region, zone=zone)
        return [i for i in found
                if all(i.labels.get(k) == v for k, v in labels.items())
                and (liveness is None or self.liveness(i, now).value == liveness)]

    def rings(self, token: Token, config: str, instances: list[Instance]) -> dict[str, dict[str, Any]]:
        """For one config: the revision each instance must run and the ring that gave it the newest one."""
        require(token, Action.READ, check_name(config))
        with self.store.read() as reader:
            rollout = reader.latest_rollout(config)
            members = reader.members(int(rollout.id)) if rollout else {}
            head = reader.head(config)
            applied = reader.applied_versions(config)
        out: dict[str, dict[str, Any]] = {}
        for instance in instances:
            if not instance.reads(config):
                continue
            if rollout is None:
                out[instance.id] = {"version": head.version if head else None, "ring": None, "rollout": None,
                                    "applied": applied.get(instance.id)}
                continue
            stage = members.get(instance.id)
            out[instance.id] = {
                "version": rollout.assigned(stage is not None),
                "ring": rollout.policy.stages[stage].name if stage is not None else None,
                "rollout": rollout.id,
                "applied": applied.get(instance.id),  # what it reports it runs: lags `version` while in flight
            }
        return out

    def assignments(self, token: Token, instance_id: str) -> list[dict[str, Any]]:
        """For every config the instance reads (and the token may read): the revision it must run now."""
        require(token, Action.READ)
        with self.store.read() as reader:
            instance = reader.instance(instance_id)
            if instance is None:
                raise NotFound(f"instance {instance_id!r} is not registered")
            seq = reader.last_seq()
            views = [reader.config_assignments(name, seq) for name in config_names(reader, instance.configs)
                     if in_scope(token, name)]
            return [a for view in views if (a := assignment(reader, view, instance.id)) is not None]


def config_names(reader: Reader, patterns: Iterable[str]) -> list[str]:
    """The names of the configs (deleted ones included) that `patterns` match."""
    names: set[str] = set()
    for pattern in patterns:
        if pattern == MATCH_ALL or pattern.endswith("/*"):
            prefix = "" if pattern == MATCH_ALL else pattern[:-1]
            after = None
            while heads := reader.heads(prefix=prefix, after=after, limit=1000, include_deleted=True):
                names.update(h.name for h in heads)
                after = heads[-1].name
        elif reader.head(pattern) is not None:
            names.add(pattern)
    return sorted(names)


def assignment(reader: Reader, view: ConfigAssignments, instance_id: str, *,
               with_value: bool = False) -> dict[str, Any] | None:
    """What `instance_id` must run of one config, or None when it must not have it (not yet, or deleted)."""
    version = view.version_for(instance_id)
    if version is None:
        return None  # a brand-new config that has not reached this instance yet
    revision = reader.revision(view.name, version)
    if revision is None or revision.deleted:
        return None
    out: dict[str, Any] = {"name": view.name, "version": version, "hash": revision.hash, "seq": revision.seq,
                           "rollout": view.rollout_json(instance_id)}
    if with_value:
        out["value"] = revision.value
    return out
