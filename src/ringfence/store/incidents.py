"""Incident reads and writes: the record, its notes, and who ran the bad revision."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ringfence.core.incident import Exposure, Incident, IncidentState, Note, Severity
from ringfence.store import rows
from ringfence.store import tables as t

_X, _N, _E = t.incidents, t.incident_notes, t.incident_exposure
_M, _I, _A = t.rollout_members, t.instances, t.applied


def _incident(row: Any) -> Incident:
    return Incident(
        id=str(row.id), config=row.config, rollout_id=None if row.rollout_id is None else str(row.rollout_id),
        from_version=row.from_version, to_version=row.to_version, severity=Severity(row.severity),
        summary=row.summary, state=IncidentState(row.state), opened_at=rows.from_us(row.opened_us),
        opened_by=row.opened_by, mitigated_at=_time(row.mitigated_us), resolved_at=_time(row.resolved_us),
        evidence=json.loads(row.evidence),
    )


def _time(us: int | None) -> Any:
    return None if us is None else rows.from_us(us)


def _us(moment: Any) -> int | None:
    return None if moment is None else rows.to_us(moment)


def _values(incident: Incident) -> dict[str, Any]:
    return {
        "rollout_id": None if incident.rollout_id is None else int(incident.rollout_id), "config": incident.config,
        "from_version": incident.from_version, "to_version": incident.to_version,
        "severity": incident.severity.value, "summary": incident.summary, "state": incident.state.value,
        "opened_us": rows.to_us(incident.opened_at), "mitigated_us": _us(incident.mitigated_at),
        "resolved_us": _us(incident.resolved_at), "opened_by": incident.opened_by,
        "evidence": json.dumps(incident.evidence, sort_keys=True, default=str),
    }


class IncidentReads:
    connection: Connection

    def incident(self, incident_id: int) -> Incident | None:
        row = self.connection.execute(select(_X).where(_X.c.id == incident_id)).first()
        return _incident(row) if row else None

    def incidents(
        self, *, state: str | None = None, config: str | None = None, rollout_id: int | None = None,
        before: int | None = None, limit: int = 100,
    ) -> list[Incident]:
        query = select(_X)
        if state is not None:
            query = query.where(_X.c.state == state)
        if config is not None:
            query = query.where(_X.c.config == config)
        if rollout_id is not None:
            query = query.where(_X.c.rollout_id == rollout_id)
        if before is not None:
            query = query.where(_X.c.id < before)
        return [_incident(r) for r in self.connection.execute(query.order_by(_X.c.id.desc()).limit(limit))]

    def incident_notes(self, incident_id: int) -> list[Note]:
        query = select(_N).where(_N.c.incident_id == incident_id).order_by(_N.c.id)
        return [Note(r.id, rows.from_us(r.time_us), r.author, r.kind, r.text) for r in self.connection.execute(query)]

    def incident_exposure(self, incident_id: int) -> list[Exposure]:
        """Who ran the bad revision, as recorded when the incident opened."""
        query = select(_E).where(_E.c.incident_id == incident_id)
        return [Exposure(r.instance_id, r.service, r.region, r.stage, rows.from_us(r.assigned_us),
                         _time(r.applied_us)) for r in self.connection.execute(query)]

    def rollout_exposure(self, rollout_id: int, config: str, version: int) -> list[Exposure]:
        """Every member of a rollout (the instances given its new revision), with when each
        reported applying `version`, if its latest apply report still says so."""
        query = (
            select(_M.c.instance_id, _M.c.stage, _M.c.assigned_us, _I.c.service, _I.c.region, _A.c.version,
                   _A.c.applied_us)
            .select_from(_M.outerjoin(_I, _I.c.id == _M.c.instance_id)
                         .outerjoin(_A, (_A.c.instance_id == _M.c.instance_id) & (_A.c.config == config)))
            .where(_M.c.rollout_id == rollout_id)
        )
        return [Exposure(r.instance_id, r.service or "", r.region or "", r.stage, rows.from_us(r.assigned_us),
                         rows.from_us(r.applied_us) if r.version == version else None)
                for r in self.connection.execute(query)]


class IncidentWrites(IncidentReads):
    wrote: bool

    def insert_incident(self, incident: Incident) -> int:
        self.wrote = True
        result = self.connection.execute(insert(_X).values(**_values(incident)).returning(_X.c.id))
        return int(result.scalar_one())

    def save_incident(self, incident: Incident) -> None:
        self.wrote = True
        self.connection.execute(update(_X).where(_X.c.id == int(incident.id)).values(**_values(incident)))

    def add_incident_note(self, incident_id: int, note: Note) -> int:
        self.wrote = True
        result = self.connection.execute(insert(_N).values(
            incident_id=incident_id, time_us=rows.to_us(note.time), author=note.author, kind=note.kind,
            text=note.text).returning(_N.c.id))
        return int(result.scalar_one())

    def record_exposure(self, incident_id: int, exposures: Iterable[Exposure]) -> int:
        batch = [{"incident_id": incident_id, "instance_id": e.instance_id, "service": e.service,
                  "region": e.region, "stage": e.stage, "assigned_us": rows.to_us(e.assigned_at),
                  "applied_us": _us(e.applied_at)} for e in exposures]
        if batch:
            self.wrote = True
            self.connection.execute(insert(_E), batch)
        return len(batch)
