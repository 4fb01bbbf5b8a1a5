"""Which revisions reached instances in a window of time: rollout assignments and apply reports."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from ringfence.store import rows
from ringfence.store import tables as t

_M, _I, _A, _R = t.rollout_members, t.instances, t.applied, t.rollouts


@dataclass(frozen=True, slots=True)
class Reach:
    """How far one revision of a config got: instances given it and instances reporting it."""

    config: str
    version: int
    rollout_id: int | None
    assigned: int  # instances its rollout gave it (all time)
    applied: int  # instances whose latest report says they run it
    first: dt.datetime  # first time it reached an instance inside the window
    last: dt.datetime


class ReachReads:
    connection: Connection

    def reached(self, since: dt.datetime, until: dt.datetime, *, service: str | None = None) -> list[Reach]:
        """Every revision that an instance (of `service`, if given) was given, or reported applying,
        between `since` and `until`."""
        low, high = rows.to_us(since), rows.to_us(until)
        found: dict[tuple[str, int], Reach] = {}

        members = (select(_M.c.rollout_id, func.min(_M.c.assigned_us).label("first"),
                          func.max(_M.c.assigned_us).label("last"))
                   .where(_M.c.assigned_us >= low, _M.c.assigned_us <= high))
        if service is not None:
            members = members.join(_I, _I.c.id == _M.c.instance_id).where(_I.c.service == service)
        window = {r.rollout_id: (r.first, r.last) for r in self.connection.execute(members.group_by(_M.c.rollout_id))}
        if window:
            for r in self.connection.execute(select(_R.c.id, _R.c.config, _R.c.to_version)
                                             .where(_R.c.id.in_(list(window)))):
                first, last = window[r.id]
                found[(r.config, r.to_version)] = Reach(r.config, r.to_version, r.id, self._given(r.id, service), 0,
                                                        rows.from_us(first), rows.from_us(last))

        reports = (select(_A.c.config, _A.c.version, func.min(_A.c.applied_us).label("first"),
                          func.max(_A.c.applied_us).label("last"))
                   .where(_A.c.applied_us >= low, _A.c.applied_us <= high))
        if service is not None:
            reports = reports.join(_I, _I.c.id == _A.c.instance_id).where(_I.c.service == service)
        for report in self.connection.execute(reports.group_by(_A.c.config, _A.c.version)):
            key = (report.config, report.version)
            known = found.get(key)
            first, last = rows.from_us(report.first), rows.from_us(report.last)
            if known is None:
                rollout = self.connection.execute(
                    select(_R.c.id).where(_R.c.config == report.config, _R.c.to_version == report.version)
                    .order_by(_R.c.id.desc()).limit(1)).scalar()
                found[key] = Reach(report.config, report.version, rollout,
                                   self._given(rollout, service) if rollout else 0, 0, first, last)
            else:
                found[key] = Reach(known.config, known.version, known.rollout_id, known.assigned, 0,
                                   min(known.first, first), max(known.last, last))
        out = []
        for (config, version), reach in found.items():
            out.append(Reach(reach.config, reach.version, reach.rollout_id, reach.assigned,
                             self._running(config, version, service), reach.first, reach.last))
        return sorted(out, key=lambda r: (r.last, r.config), reverse=True)

    def _given(self, rollout_id: int, service: str | None) -> int:
        query = select(func.count()).select_from(_M).where(_M.c.rollout_id == rollout_id)
        if service is not None:
            query = query.join(_I, _I.c.id == _M.c.instance_id).where(_I.c.service == service)
        return int(self.connection.execute(query).scalar_one())

    def _running(self, config: str, version: int, service: str | None) -> int:
        query = select(func.count()).select_from(_A).where(_A.c.config == config, _A.c.version == version)
        if service is not None:
            query = query.join(_I, _I.c.id == _A.c.instance_id).where(_I.c.service == service)
        return int(self.connection.execute(query).scalar_one())
