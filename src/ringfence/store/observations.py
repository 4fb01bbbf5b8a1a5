"""Health reports filed under rollout stages, and the traffic each revision served."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from ringfence.store import rows
from ringfence.store import tables as t

_O = t.observations
_T = t.revision_traffic
_TRAFFIC_ADD = update(_T).where(
    _T.c.rollout_id == bindparam("b_rollout"), _T.c.instance_id == bindparam("b_instance"),
    _T.c.version == bindparam("b_version"),
).values(requests=_T.c.requests + bindparam("b_requests"), errors=_T.c.errors + bindparam("b_errors"),
         last_us=bindparam("b_last"))


@dataclass(frozen=True, slots=True)
class Observation:
    id: int
    stage_started_us: int
    service: str
    record: str  # one line of formats/observations.md


@dataclass(frozen=True, slots=True)
class Traffic:
    instance_id: str
    version: int
    requests: int
    errors: int
    first_seen: dt.datetime
    last_seen: dt.datetime


class ObservationReads:
    connection: Connection

    def observations(self, rollout_id: int, *, after_id: int = 0, stage_started_us: int | None = None,
                     limit: int = 50_000) -> list[Observation]:
        query = select(_O.c.id, _O.c.stage_started_us, _O.c.service, _O.c.record).where(
            _O.c.rollout_id == rollout_id, _O.c.id > after_id)
        if stage_started_us is not None:
            query = query.where(_O.c.stage_started_us == stage_started_us)
        return [Observation(r.id, r.stage_started_us, r.service, r.record)
                for r in self.connection.execute(query.order_by(_O.c.id).limit(limit))]

    def traffic(self, rollout_id: int) -> list[Traffic]:
        query = select(_T).where(_T.c.rollout_id == rollout_id).order_by(_T.c.instance_id, _T.c.version)
        return [Traffic(r.instance_id, r.version, r.requests, r.errors, rows.from_us(r.first_us),
                        rows.from_us(r.last_us)) for r in self.connection.execute(query)]


class ObservationWrites(ObservationReads):
    wrote: bool

    def add_observations(self, items: Iterable[tuple[int, int, str, str]], now: dt.datetime) -> int:
        """(rollout id, stage start in µs, service, record line) each."""
        batch = [{"rollout_id": r, "stage_started_us": s, "service": svc, "record": line,
                  "received_us": rows.to_us(now)} for r, s, svc, line in items]
        if batch:
            self.wrote = True
            self.connection.execute(insert(_O), batch)
        return len(batch)

    def add_traffic(self, served: Mapping[tuple[int, str, int], tuple[int, int, int, int]]) -> None:
        """(rollout id, instance, version) -> (requests, errors, first µs, last µs) to add."""
        if not served:
            return
        self.wrote = True
        known = {(r.rollout_id, r.instance_id, r.version) for r in self.connection.execute(
            select(_T.c.rollout_id, _T.c.instance_id, _T.c.version).where(
                _T.c.rollout_id.in_({key[0] for key in served})))}
        fresh = [{"rollout_id": k[0], "instance_id": k[1], "version": k[2], "requests": v[0], "errors": v[1],
                  "first_us": v[2], "last_us": v[3]} for k, v in served.items() if k not in known]
        if fresh:
            self.connection.execute(insert(_T), fresh)
        more = [{"b_rollout": k[0], "b_instance": k[1], "b_version": k[2], "b_requests": v[0], "b_errors": v[1],
                 "b_last": v[3]} for k, v in served.items() if k in known]
        if more:
            self.connection.execute(_TRAFFIC_ADD, more)

    def prune_observations(self, before: dt.datetime) -> int:
        self.wrote = True
        return int(self.connection.execute(delete(_O).where(_O.c.received_us < rows.to_us(before))).rowcount)
