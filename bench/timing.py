"""What bench/sdk_read.py and bench/sdk_track.py share: a timed statement, and timing many
of them interleaved (so a slow moment of the machine hits every line alike)."""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Line:
    group: str  # reference | ringfence | a peer's name
    label: str
    stmt: str
    env: dict[str, Any]
    base: str  # the reference line this one is compared with ("" for the references)
    number: int = 0
    times: list[float] = field(default_factory=list)  # seconds per call, one per repeat
    skipped: str = ""

    @property
    def ns(self) -> float:
        return statistics.median(self.times) * 1e9

    def ratio(self, reference: Line) -> float:
        return statistics.median(mine / theirs for mine, theirs in zip(self.times, reference.times, strict=True))


def measure(lines: list[Line], repeat: int, min_time: float, clock: Callable[[], float]) -> None:
    timers = [timeit.Timer(line.stmt, timer=clock, globals=line.env) for line in lines]
    for line, timer in zip(lines, timers, strict=True):
        number = 1
        while timer.timeit(number) < min_time:  # like Timer.autorange, to the time asked for
            number *= 2 if number < 8 else 4
        line.number = number
    for _ in range(repeat):
        for line, timer in zip(lines, timers, strict=True):
            line.times.append(timer.timeit(line.number) / line.number)
