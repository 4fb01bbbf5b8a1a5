"""Fleet reads and writes: registration, heartbeats, queries by service, region and labels."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from ringfence.core.fleet import Instance
from ringfence.store import rows
from ringfence.store import tables as t

_I = t.instances
_TOUCH = update(_I).where(_I.c.id == bindparam("b_id")).values(last_seen_us=bindparam("b_seen"))


class FleetReads:
    connection: Connection

    def instance(self, instance_id: str) -> Instance | None:
        row = self.connection.execute(select(_I).where(_I.c.id == instance_id)).first()
        return rows.instance(row) if row else None

    def instances(
        self, *, service: str | None = None, region: str | None = None, zone: str | None = None,
        after: str | None = None, limit: int | None = None,
    ) -> list[Instance]:
        query = select(_I)
        for column, value in ((_I.c.service, service), (_I.c.region, region), (_I.c.zone, zone)):
            if value is not None:
                query = query.where(column == value)
        if after is not None:
            query = query.where(_I.c.id > after)
        query = query.order_by(_I.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [rows.instance(r) for r in self.connection.execute(query)]

    def instance_services(self) -> dict[str, str]:
        """Instance id -> service, for every registered instance."""
        return {r.id: r.service for r in self.connection.execute(select(_I.c.id, _I.c.service))}

    def applied(self, instance_id: str) -> dict[str, tuple[int, dt.datetime]]:
        """Config -> (version, when) the instance last reported it applied."""
        query = select(t.applied).where(t.applied.c.instance_id == instance_id)
        return {r.config: (r.version, rows.from_us(r.applied_us)) for r in self.connection.execute(query)}

    def applied_versions(self, config: str) -> dict[str, int]:
        """Instance id -> the version of `config` it last reported it runs."""
        return {instance_id: version for instance_id, (version, _) in self.applied_reports(config).items()}

    def applied_reports(self, config: str) -> dict[str, tuple[int, dt.datetime]]:
        """Instance id -> (version, when) of `config` it last reported it applied."""
        query = select(t.applied).where(t.applied.c.config == config)
        return {r.instance_id: (r.version, rows.from_us(r.applied_us)) for r in self.connection.execute(query)}

    def readers_of(self, config: str) -> list[Instance]:
        """Instances that read `config` (by the patterns they registered), stopped ones left out."""
        return [i for i in self.instances() if i.stopped_at is None and i.reads(config)]


class FleetWrites(FleetReads):
    wrote: bool

    def register(self, instance: Instance) -> None:
        self.wrote = True
        values: dict[str, Any] = {
            "service": instance.service, "region": instance.region, "zone": instance.zone,
            "labels": json.dumps(instance.labels, sort_keys=True), "configs": json.dumps(list(instance.configs)),
            "sdk_version": instance.sdk_version,
            "started_us": rows.to_us(instance.started_at) if instance.started_at else None,
            "last_seen_us": rows.to_us(instance.last_seen), "stopped_us": None,
        }
        done = self.connection.execute(update(_I).where(_I.c.id == instance.id).values(**values))
        if done.rowcount == 0:
            self.connection.execute(insert(_I).values(id=instance.id, registered_us=rows.to_us(instance.registered_at),
                                                      **values))

    def record_applied(self, instance_id: str, config: str, version: int, applied_at: dt.datetime) -> None:
        self.wrote = True
        key = (t.applied.c.instance_id == instance_id) & (t.applied.c.config == config)
        values = {"version": version, "applied_us": rows.to_us(applied_at)}
        if not self.connection.execute(update(t.applied).where(key).values(**values)).rowcount:
            self.connection.execute(insert(t.applied).values(instance_id=instance_id, config=config, **values))

    def touch(self, instance_id: str, now: dt.datetime) -> bool:
        self.wrote = True
        return bool(self.connection.execute(_TOUCH, {"b_id": instance_id, "b_seen": rows.to_us(now)}).rowcount)

    def touch_many(self, instance_ids: set[str], now: dt.datetime) -> None:
        if instance_ids:
            self.wrote = True
            seen = rows.to_us(now)
            self.connection.execute(_TOUCH, [{"b_id": i, "b_seen": seen} for i in sorted(instance_ids)])

    def stop(self, instance_id: str, now: dt.datetime) -> bool:
        self.wrote = True
        done = self.connection.execute(update(_I).where(_I.c.id == instance_id).values(stopped_us=rows.to_us(now)))
        return bool(done.rowcount)
