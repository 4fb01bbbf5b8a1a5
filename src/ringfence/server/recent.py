"""What changed recently: every config revision that reached an instance in a window of time.

The first question in every incident. A revision counts when its rollout gave it to at least
one instance in the window, or an instance reported applying it in the window; a push that
reached no instance (a config nothing reads yet) is not a change anyone ran.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ringfence.core.access import Action, in_scope, require
from ringfence.core.model import Token
from ringfence.core.policy import parse_duration
from ringfence.errors import InvalidInput, Problem
from ringfence.server.configs import Clock
from ringfence.store.sql import SqlStore

DEFAULT_SINCE = "1h"


def parse_since(text: str, now: dt.datetime, pointer: str = "/query/since") -> dt.datetime:
    """`2h`, `90m`, `45s` (ago) or an ISO 8601 time (UTC when it has no offset)."""
    text = text.strip()
    try:
        return now - dt.timedelta(seconds=parse_duration(text))
    except (ValueError, OverflowError):
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text[:60]!r} is neither a duration (30m, 2h, 1d is 24h) nor an ISO 8601 time",
                           [Problem(pointer, "expected a duration such as 2h, or an ISO 8601 time", "request")]
                           ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class RecentChanges:
    def __init__(self, store: SqlStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def list(self, token: Token, *, since: str, until: str | None, service: str | None) -> dict[str, Any]:
        require(token, Action.READ_AUDIT)
        now = self.clock()
        start = parse_since(since, now)
        end = parse_since(until, now, "/query/until") if until else now
        if start > end:
            raise InvalidInput("since must come before until", [Problem("/query/since", "after until", "request")])
        items = []
        with self.store.read() as reader:
            for reach in reader.reached(max(start, _EPOCH), min(end, _FAR), service=service):
                if not in_scope(token, reach.config):
                    continue
                revision = reader.revision(reach.config, reach.version)
                rollout = reader.rollout(reach.rollout_id) if reach.rollout_id is not None else None
                incidents = reader.incidents(rollout_id=reach.rollout_id) if reach.rollout_id is not None else []
                items.append({
                    "config": reach.config, "version": reach.version,
                    "from_version": rollout.from_version if rollout else (revision.parent if revision else None),
                    "author": revision.author if revision else None,
                    "message": revision.message if revision else None,
                    "pushed_at": revision.created_at.isoformat() if revision else None,
                    "deleted": revision.deleted if revision else False,
                    "rollout": None if rollout is None else {
                        "id": rollout.id, "state": rollout.state.value, "stage": rollout.stage,
                        "stage_name": rollout.policy.stages[rollout.stage].name,
                        "stages": len(rollout.policy.stages), "emergency": rollout.emergency,
                    },
                    "instances": reach.assigned, "applied": reach.applied,
                    "first_reached_at": reach.first.isoformat(), "last_reached_at": reach.last.isoformat(),
                    "incidents": [i.id for i in incidents],
                })
        return {"since": start.isoformat(), "until": end.isoformat(), "service": service, "items": items}


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FAR = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
