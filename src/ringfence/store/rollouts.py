"""Rollout reads and writes: the state the controller persists, and who received the new revision."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, func, insert, or_, select, update

from ringfence.core.assignment import ConfigAssignments
from ringfence.core.fleet import MemberStatus, liveness
from ringfence.core.rollout import ACTIVE, Rollout
from ringfence.store import rows
from ringfence.store import tables as t

_R, _M, _I = t.rollouts, t.rollout_members, t.instances


class RolloutReads:
    connection: Connection

    def rollout(self, rollout_id: int) -> Rollout | None:
        row = self.connection.execute(select(_R).where(_R.c.id == rollout_id)).first()
        return rows.rollout(row) if row else None

    def rollouts(
        self, *, state: str | None = None, config: str | None = None, before: int | None = None, limit: int = 100,
    ) -> list[Rollout]:
        query = select(_R)
        if state is not None:
            query = query.where(_R.c.state == state)
        if config is not None:
            query = query.where(_R.c.config == config)
        if before is not None:
            query = query.where(_R.c.id < before)
        return [rows.rollout(r) for r in self.connection.execute(query.order_by(_R.c.id.desc()).limit(limit))]

    def rollouts_touched_since(self, since: dt.datetime) -> list[Rollout]:
        """Active rollouts, and the ones that ended (or changed) since `since`."""
        query = select(_R).where(or_(_R.c.state.in_([s.value for s in ACTIVE]), _R.c.updated_us >= rows.to_us(since)))
        return [rows.rollout(r) for r in self.connection.execute(query.order_by(_R.c.id))]

    def active_rollouts(self) -> list[Rollout]:
        query = select(_R).where(_R.c.state.in_([s.value for s in ACTIVE])).order_by(_R.c.id)
        return [rows.rollout(r) for r in self.connection.execute(query)]

    def latest_rollout(self, config: str) -> Rollout | None:
        row = self.connection.execute(
            select(_R).where(_R.c.config == config).order_by(_R.c.id.desc()).limit(1)
        ).first()
        return rows.rollout(row) if row else None

    def members(self, rollout_id: int) -> dict[str, int]:
        """Instance id -> the stage at which it received the new revision."""
        query = select(_M.c.instance_id, _M.c.stage).where(_M.c.rollout_id == rollout_id)
        return {r.instance_id: r.stage for r in self.connection.execute(query)}

    def member_statuses(self, rollout_id: int, now: dt.datetime, silent_after: float, gone_after: float,
                        seen_at_least: dt.datetime | None = None) -> list[MemberStatus]:
        """The liveness of each member: one read of the members, not of the whole fleet. An
        instance counts as seen no earlier than `seen_at_least`."""
        floor = rows.to_us(seen_at_least) if seen_at_least is not None else 0
        query = select(_I.c.id, _I.c.last_seen_us, _I.c.stopped_us).join(_M, _M.c.instance_id == _I.c.id).where(
            _M.c.rollout_id == rollout_id)
        return [MemberStatus(r.id, liveness(rows.from_us(max(r.last_seen_us, floor)),
                                            None if r.stopped_us is None else rows.from_us(r.stopped_us),
                                            now, silent_after, gone_after))
                for r in self.connection.execute(query)]

    def config_assignments(self, config: str, seq: int) -> ConfigAssignments:
        rollout = self.latest_rollout(config)
        if rollout is None:
            current = self.connection.execute(
                select(t.configs.c.current_version).where(t.configs.c.name == config)).scalar()
            return ConfigAssignments(config, seq, None, frozenset(), current)
        return ConfigAssignments(config, seq, rollout, frozenset(self.members(int(rollout.id))), None)

    def assigned_since(self, config: str, version: int, instance_id: str) -> dt.datetime | None:
        """When `instance_id` was first told to run `version` of `config` by the latest rollout,
        or None when that is not what the latest rollout tells it."""
        return self.assigned_since_many(config, {instance_id: version}).get(instance_id)

    def assigned_since_many(self, config: str, versions: Mapping[str, int]) -> dict[str, dt.datetime]:
        """`assigned_since` for each instance -> version of `versions`, in two reads whatever their number;
        instances the latest rollout does not tell to run that version are left out."""
        row = self.connection.execute(
            select(_R).where(_R.c.config == config).order_by(_R.c.id.desc()).limit(1)).first()
        if row is None or not versions:
            return {}
        members = select(_M.c.instance_id, _M.c.assigned_us).where(_M.c.rollout_id == row.id)
        if len(versions) <= 100:  # a few instances: read just theirs; many: one scan of the members
            members = members.where(_M.c.instance_id.in_(list(versions)))
        assigned = {r.instance_id: r.assigned_us for r in self.connection.execute(members)}
        rollout = rows.rollout(row)
        out: dict[str, dt.datetime] = {}
        for instance_id, version in versions.items():
            member = assigned.get(instance_id)
            if rollout.assigned(member is not None) != version:
                continue
            if member is not None and rollout.active:
                out[instance_id] = rows.from_us(member)
            else:  # completed (everyone moved then) or rolled back / aborted (everyone moved back then)
                out[instance_id] = rows.from_us(row.updated_us if not rollout.active else row.created_us)
        return out

    def is_member(self, rollout_id: int, instance_id: str) -> bool:
        query = (select(func.count()).select_from(_M)
                 .where(_M.c.rollout_id == rollout_id, _M.c.instance_id == instance_id))
        return bool(self.connection.execute(query).scalar_one())


class RolloutWrites(RolloutReads):
    wrote: bool
    seq: int

    def insert_rollout(self, rollout: Rollout) -> int:
        self.wrote = True
        values = rows.rollout_values(rollout)
        result = self.connection.execute(
            insert(_R).values(**values, created_us=rows.to_us(rollout.created_at),
                              updated_us=rows.to_us(rollout.created_at), seq=self.seq).returning(_R.c.id)
        )
        return int(result.scalar_one())

    def save_rollout(self, rollout: Rollout, now: dt.datetime) -> None:
        self.wrote = True
        self.connection.execute(
            update(_R).where(_R.c.id == int(rollout.id))
            .values(**rows.rollout_values(rollout), updated_us=rows.to_us(now), seq=self.seq)
        )

    def add_members(self, rollout_id: int, instance_ids: Iterable[str], stage: int, now: dt.datetime) -> int:
        wanted = set(instance_ids)
        if len(wanted) <= 500:  # a few newcomers: look up only them, not every member
            known = {r.instance_id for r in self.connection.execute(select(_M.c.instance_id).where(
                _M.c.rollout_id == rollout_id, _M.c.instance_id.in_(wanted)))}
        else:
            known = set(self.members(rollout_id))
        fresh = sorted(wanted - known)
        if fresh:
            self.wrote = True
            self.connection.execute(insert(_M), [
                {"rollout_id": rollout_id, "instance_id": i, "stage": stage, "assigned_us": rows.to_us(now)}
                for i in fresh
            ])
        return len(fresh)
