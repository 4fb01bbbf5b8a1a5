"""The analyzer: records in time order in, a decision out, one time slot at a time.

    analyzer = Analyzer(settings)             # method "sequential" (default) or "kayenta"
    for record in records: analyzer.add(record)
    result = analyzer.result(now=t)           # "continue" until final, then stays final
    result = analyze(records, settings)       # batch: stops at the first final decision

Records are grouped into slots one window long (by each window's midpoint, so clocks a few
seconds apart still land together); a slot is judged once a record of a later slot arrives, or
when `result(now)` is asked past its end, or at the end of the stream. A decision is taken only
when a slot is judged, from that slot and the ones before it, and `decided_at` is the largest `t`
in that slot: the stream cut right after `decided_at` gives the same decision (the prefix rule).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Literal

from ringfence.core.analysis import kayenta
from ringfence.core.analysis.fleet import Fleet
from ringfence.core.analysis.judge import Judgement, judge
from ringfence.core.analysis.records import Event, Record, Window
from ringfence.core.analysis.result import Decision, MetricResult, Result
from ringfence.core.analysis.settings import AnalysisSettings
from ringfence.errors import InvalidInput, Problem

Method = Literal["sequential", "kayenta"]
METHODS: tuple[Method, ...] = ("sequential", "kayenta")
_EPS = 1e-9


class Analyzer:
    """Incremental analysis of one rollout stage: O(instances) work per slot, nothing per history."""

    def __init__(self, settings: AnalysisSettings, method: Method = "sequential") -> None:
        if method not in METHODS:
            raise InvalidInput(f"unknown method {method!r}; use sequential or kayenta",
                               [Problem("/method", "use sequential or kayenta", "analysis")])
        self.settings = settings
        self.method: Method = method
        self._width: float | None = settings.window
        self._fleet: Fleet | None = None
        self._pending: list[Record] = []     # events before the first window (slot width unknown yet)
        self._open = 0                       # index of the slot being filled
        self._records: list[Record] = []
        self._last_t = -math.inf
        self._decision: Decision = "continue"
        self._decided_at: float | None = None
        self._judgement: Judgement | None = None
        self._metrics: dict[str, MetricResult] = {}
        self._reasons: tuple[str, ...] = ()

    # --- feeding -----------------------------------------------------------------------------

    @property
    def final(self) -> bool:
        return self._decision != "continue"

    def add(self, record: Record) -> None:
        """Read one record; records must come in non-decreasing `t`. Ignored once the decision is final."""
        if self.final:
            return
        if record.t < self._last_t - _EPS:
            raise InvalidInput(f"t ({record.t:g}) is before the previous record's t ({self._last_t:g}); "
                               "records must be added in time order", [Problem("/t", "out of order", "analysis")])
        if record.t > self.settings.max_bake + _EPS:
            self._end()
            return
        self._last_t = record.t
        if self._width is None:
            if isinstance(record, Event):
                self._pending.append(record)
                return
            self._width = record.dt
        if self._fleet is None:
            self._start()
        self._place(record)

    def _start(self) -> None:
        assert self._width is not None
        if self.settings.window is None:  # the pass boundary counts its looks in slots of this width
            self.settings = replace(self.settings, window=self._width)
        s = self.settings
        self._fleet = Fleet(s.warmup, s.gauges, math.ceil(s.recent / self._width - _EPS))
        self._fleet.keep_series = self.method == "kayenta"
        pending, self._pending = self._pending, []
        for event in pending:
            self._place(event)

    def _slot_of(self, record: Record) -> int:
        assert self._width is not None
        middle = record.t - (record.dt if isinstance(record, Window) else self._width) / 2.0
        return max(0, math.floor(middle / self._width + _EPS))

    def _place(self, record: Record) -> None:
        slot = self._slot_of(record)
        while slot > self._open and not self.final:
            self._close()
        if not self.final:
            self._records.append(record)

    def _close(self) -> None:
        """Judge the open slot, then open the next one."""
        assert self._fleet is not None
        records, self._records = self._records, []
        slot = self._open
        self._open += 1
        self._fleet.close(slot, records)
        if not records or self.method == "kayenta":
            return
        at = max(r.t for r in records)
        self._judgement = judge(self._fleet, self.settings, slot, at)
        self._metrics = self._judgement.metrics
        self._reasons = self._judgement.reasons
        if self._judgement.decision != "continue":
            self._decision = self._judgement.decision
            self._decided_at = at

    def _end(self) -> None:
        """No more records: judge what is open, then the stage is over."""
        if self.final:
            return
        if self._fleet is None and self._pending and self._width is None:
            self._width = 10.0
            self._start()
        if self._fleet is not None and self._records:
            last_t = max(r.t for r in self._records)
            self._close()
        else:
            last_t = self._last_t
        if self.final:
            return
        if self.method == "kayenta" and self._fleet is not None:
            verdict = kayenta.judge(self._fleet, self.settings)
            self._metrics = verdict.metrics
            self._reasons = verdict.reasons
            if verdict.decision != "inconclusive":
                self._decision = verdict.decision
                self._decided_at = last_t if math.isfinite(last_t) else None
                return
        self._decision = "inconclusive"
        self._decided_at = None
        if self.method == "sequential":
            self._reasons = self._why_undecided()

    def _why_undecided(self) -> tuple[str, ...]:
        if self._judgement is None:
            return ("no windows to compare: the stream ended before any canary and baseline data",)
        return self._judgement.pending or ("the stream ended before the evidence could rule a regression in or out",)

    # --- reading -------------------------------------------------------------------------------

    def result(self, now: float | None = None, *, end: bool = False) -> Result:
        """The decision so far. `now` judges every slot that has ended by then; `end`, or a `now` past
        max_bake, ends the stage (undecided is then inconclusive)."""
        width = self._width
        if not self.final and now is not None and width is not None and self._fleet is not None:
            while not self.final and (self._open + 1.5) * width <= now + _EPS:
                self._close()
        if end or (now is not None and now >= self.settings.max_bake + (width or 0.0) / 2.0 - _EPS):
            self._end()
        windows = self._fleet.windows if self._fleet is not None else 0
        return Result(self._decision, self._decided_at, self._reasons, dict(self._metrics), windows, self.method)

    def finish(self) -> Result:
        """End of the stream (or of the stage): judge what is left; undecided is inconclusive."""
        return self.result(end=True)


def analyze(records: Iterable[Record], settings: AnalysisSettings, method: Method = "sequential") -> Result:
    """Read `records` in order until the first final decision; inconclusive if the stream ends first."""
    analyzer = Analyzer(settings, method)
    for record in records:
        analyzer.add(record)
        if analyzer.final:
            break
    return analyzer.finish()


__all__ = ["METHODS", "Analyzer", "Method", "analyze"]
