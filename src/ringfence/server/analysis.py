"""The controller's verdicts: canary analysis of the observations filed for each running stage.

One `Analyzer` (core/analysis) per service of a running rollout stage, fed in time order
with the observations ingestion filed (server/ingest.py), read incrementally by id. Reports
reach the database a little after their window ended (the SDK's send, the one-second
flush), so a record is fed only once it is older than `LAG`: windows then arrive in order,
and a straggler later than that is counted and left out rather than reordering history.
Everything here can be rebuilt from the database, so a new leader (or a restart) picks
up the stage where it was, from the same observations.

A stage passes when every service that has canaries passes, fails when any fails. No
report from any canary is never a pass: the stage waits, and pauses at its maximum bake.
Policies with `gate: bake` skip the analysis (for services that report no health): the
stage then passes on its bake time alone, as long as its instances stay alive.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

from ringfence.core.analysis import Analyzer, Record, Result, parse_observations
from ringfence.core.fleet import MemberStatus
from ringfence.core.policy import Selector
from ringfence.core.rollout import Rollout, Verdict
from ringfence.server import metrics
from ringfence.server.rollouts import SilenceVerdicts
from ringfence.store.sql import Reader

LAG = 5.0  # seconds a window's report may take to be sent, flushed and read
FORGET_AFTER = dt.timedelta(hours=1)  # a stage no tick asked about for this long is dropped from memory
_VERDICT_VALUE = {"fail": 1.0, "pass": 0.0}


@dataclass
class _Service:
    analyzer: Analyzer
    waiting: list[tuple[float, int, Record]] = field(default_factory=list)  # heap by t
    fed_until: float = 0.0
    late: int = 0
    switched: int = 0
    lagging: int = 0  # windows of members still on the old revision, left out
    has_baseline: bool = False
    groups: dict[str, str] = field(default_factory=dict)  # instance -> the group it is analysed in


@dataclass
class _Stage:
    key: tuple[int, int, dt.datetime]  # rollout, stage, stage start
    last_id: int = 0
    services: dict[str, _Service] = field(default_factory=dict)
    seen_at: dt.datetime | None = None
    order: itertools.count[int] = field(default_factory=itertools.count)  # ties in the heap keep arrival order


class AnalysisVerdicts:
    """A VerdictSource (server/rollouts.py): the canary analysis, and liveness before it."""

    def __init__(self, silence: SilenceVerdicts) -> None:
        self.silence = silence
        self._stages: dict[int, _Stage] = {}

    def verdict(self, reader: Reader, rollout: Rollout, members: list[MemberStatus], now: dt.datetime) -> Verdict:
        quiet = self.silence.verdict(reader, rollout, members, now)
        if quiet.decision == "fail" or rollout.policy.gate == "bake":
            return quiet
        assert rollout.stage_started_at is not None
        stage = self._stage(rollout)
        stage.seen_at = now
        self._read(reader, rollout, stage, {m.id for m in members})
        elapsed = (now - rollout.stage_started_at).total_seconds()
        whole_fleet = _whole_fleet(rollout)
        if whole_fleet and not any(s.has_baseline for s in stage.services.values()):
            return _whole_fleet_verdict(quiet)
        results = {name: self._advance(service, elapsed - LAG) for name, service in sorted(stage.services.items())}
        self._export(rollout, results)
        self._forget(now)
        verdict = combine(results)
        if whole_fleet and verdict.decision != "fail":
            # The only baseline of a stage that takes everyone is the instances that had not applied
            # the change yet in its first seconds: a clear regression against them still fails, but
            # they are too few and too brief to wait for a pass on.
            return _whole_fleet_verdict(quiet)
        return verdict

    def _stage(self, rollout: Rollout) -> _Stage:
        assert rollout.stage_started_at is not None
        key = (int(rollout.id), rollout.stage, rollout.stage_started_at)
        stage = self._stages.get(int(rollout.id))
        if stage is None or stage.key != key:  # a new stage, or a resumed one: its bake starts again
            stage = self._stages[int(rollout.id)] = _Stage(key)
        return stage

    def _read(self, reader: Reader, rollout: Rollout, stage: _Stage, members: set[str]) -> None:
        assert rollout.stage_started_at is not None
        settings = rollout.policy.analysis_settings(rollout.stage)
        started_us = int(rollout.stage_started_at.timestamp() * 1_000_000)
        while rows := reader.observations(int(rollout.id), after_id=stage.last_id, stage_started_us=started_us):
            stage.last_id = rows[-1].id
            for row in rows:
                service = stage.services.get(row.service)
                if service is None:
                    service = stage.services[row.service] = _Service(Analyzer(settings))
                (record,) = parse_observations([row.record])
                if record.group == "baseline" and record.instance in members:
                    # The rollout gave this instance the new revision, but it still ran the old one
                    # (it applied the change more than a window late): no baseline, and not yet a
                    # canary. Filed as baseline, it would stay there for the whole stage.
                    service.lagging += 1
                    continue
                service.has_baseline = service.has_baseline or record.group == "baseline"
                heapq.heappush(service.waiting, (record.t, next(stage.order), record))

    @staticmethod
    def _advance(service: _Service, until: float) -> Result:
        while service.waiting and service.waiting[0][0] <= until:
            t, _, record = heapq.heappop(service.waiting)
            if t < service.fed_until:
                service.late += 1  # its slot was judged already
                continue
            service.fed_until = t
            group = service.groups.setdefault(record.instance, record.group)
            if group != record.group:
                # It changed sides within the stage (it joined the stage late, or applied the change
                # more than a window after it was told to): keep it where the analysis first put it.
                service.switched += 1
                continue
            service.analyzer.add(record)
        return service.analyzer.result(now=max(until, 0.0))

    def _export(self, rollout: Rollout, results: dict[str, Result]) -> None:
        for service, result in results.items():
            for name, metric in result.metrics.items():
                labels = (rollout.config, rollout.id, service, name)
                metrics.verdicts.labels(*labels).set(_VERDICT_VALUE.get(metric.verdict, -1.0))
                if metric.effect is not None:
                    metrics.effect.labels(*labels).set(metric.effect)

    def _forget(self, now: dt.datetime) -> None:
        for rollout_id, stage in list(self._stages.items()):
            if stage.seen_at is not None and now - stage.seen_at > FORGET_AFTER:
                del self._stages[rollout_id]


def _whole_fleet_verdict(quiet: Verdict) -> Verdict:
    # Everyone runs the new revision: nothing is left to compare with. The stages before were
    # the comparison; this one passes on its bake and liveness, as a human would.
    return Verdict(quiet.decision, ("the whole fleet runs the new revision: no baseline is left to compare with, "
                                    "so the stage passes on its bake and liveness",), quiet.evidence)


def _whole_fleet(rollout: Rollout) -> bool:
    """Whether this stage takes every instance: the last stage, at 100%, selecting everyone."""
    stage = rollout.policy.stages[rollout.stage]
    return rollout.stage == len(rollout.policy.stages) - 1 and stage.percent >= 100 and stage.select == Selector()


def combine(results: dict[str, Result]) -> Verdict:
    """One verdict for the stage from each service's analysis."""
    evidence: dict[str, Any] = {"services": {name: r.to_json() for name, r in results.items()}}
    failed = {name: r for name, r in results.items() if r.decision == "fail"}
    if failed:
        return Verdict("fail", tuple(f"{name}: {reason}" for name, r in failed.items() for reason in r.reasons),
                       evidence)
    if not results:
        return Verdict("continue", ("no health reports from instances on either revision yet",), evidence)
    if all(r.decision == "pass" for r in results.values()):
        return Verdict("pass", tuple(f"{name}: {reason}" for name, r in results.items() for reason in r.reasons),
                       evidence)
    waiting = [f"{name}: {reason}" for name, r in results.items() if r.decision != "pass" for reason in r.reasons]
    return Verdict("continue", tuple(waiting) or ("collecting evidence",), evidence)
