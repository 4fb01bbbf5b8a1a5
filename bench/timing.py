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


def ns_text(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def print_lines(title: str, lines: list[dict[str, Any]], skipped: dict[str, str] | None = None) -> Any:
    """The timed lines of a result as one table, grouped, on a console it returns for what follows.

    Each line is a dict with `group`, `call`, `ns`, `min_ns`, `max_ns`, `ratio` (None for a reference)
    and `vs` (the reference's text); `skipped` names the groups that could not run, and why."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console.width = 150  # a file or a pipe: do not wrap at 80 columns
    table = Table(title=title, title_justify="left")
    for column, justify in (("", "left"), ("call", "left"), ("ns/op", "right"), ("min-max", "right"),
                            ("x ref", "right"), ("ref", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    group = ""
    for line in lines:
        if line["group"] != group and group:
            table.add_section()
        call = line["call"] if line["call"] != "pass" else "pass  (the timing loop alone, inside every line)"
        table.add_row(line["group"] if line["group"] != group else "", escape(call), ns_text(line["ns"]),
                      f"{ns_text(line['min_ns'])}-{ns_text(line['max_ns'])}",
                      "" if line["ratio"] is None else f"{line['ratio']:,.2f}", escape(line["vs"]))
        group = line["group"]
    for name, why in (skipped or {}).items():
        table.add_section()
        table.add_row(name, escape(f"skipped: {why}"), "", "", "", "")
    console.print(table)
    return console
