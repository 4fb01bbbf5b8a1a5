"""What the SDK samples for each window on its own: process memory, and the application's health checks.

Health checks run on the reporter thread's watch but not on it: each run is a
short-lived daemon thread, waited for until the check's deadline. A check that
raises, returns something falsy or is late reports 0.0; one that is still running
from an earlier window is not started again (it reports 0.0 until it returns), so a
check that hangs costs one thread, never a pile of them, and never stalls reporting.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("ringfence.sdk")

CHECK_TIMEOUT = 1.0  # seconds a health check may take by default
MAX_CHECKS = 14  # with 48 application gauges, cpu and rss_mb: the 64 gauges a window may carry


def rss_mb() -> float | None:
    """Resident memory of this process in MiB: /proc/self/statm where there is one (Linux), else the peak
    resident size from `resource` (the only figure it has), else None."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return round(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 2)
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 2)  # bytes on macOS, KiB elsewhere


@dataclass(eq=False)
class _Run:
    done: threading.Event = field(default_factory=threading.Event)
    healthy: bool = False
    why: str = "late"


@dataclass(eq=False)
class _Check:
    name: str
    fn: Callable[[], object]
    timeout: float
    run: _Run | None = None  # the latest run, finished or not
    healthy: bool = True  # as last reported, for logging changes only


class HealthChecks:
    def __init__(self) -> None:
        self._checks: dict[str, _Check] = {}
        self._lock = threading.Lock()

    def add(self, fn: Callable[[], object], name: str | None, timeout: float) -> None:
        if not callable(fn):
            raise TypeError(f"health_check(): fn must be a function, not {type(fn).__name__}")
        if inspect.iscoroutinefunction(fn):
            raise TypeError("health_check(): fn must be a plain function, not a coroutine function (checks run "
                            "on a thread of the SDK, outside your event loop)")
        if name is None:
            name = getattr(fn, "__name__", "")
        if not isinstance(name, str) or not name or name == "<lambda>":
            raise ValueError("health_check(): give the check a name= (it is reported as the gauge check:<name>)")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf:
            raise ValueError(f"health_check(): timeout must be a number of seconds > 0, not {timeout!r}")
        with self._lock:
            if name in self._checks:
                raise ValueError(f"health_check(): a check named {name!r} is registered already")
            if len(self._checks) >= MAX_CHECKS:
                raise ValueError(f"health_check(): at most {MAX_CHECKS} health checks (the server takes 64 gauges "
                                 "per window); fold related checks into one")
            self._checks[name] = _Check(name, fn, float(timeout))

    def __bool__(self) -> bool:
        return bool(self._checks)

    def reset(self) -> None:
        """After fork: the parent's check threads do not exist in the child."""
        self._lock = threading.Lock()
        for check in self._checks.values():
            check.run = None

    def run(self) -> dict[str, float]:
        """Run every check at once and wait for each until its deadline: `check:<name>` -> 1.0 or 0.0."""
        with self._lock:
            checks = list(self._checks.values())
        started = time.monotonic()
        for check in checks:
            if check.run is None or check.run.done.is_set():
                check.run = _Run()
                threading.Thread(target=_call, args=(check.fn, check.run), name=f"ringfence-check-{check.name}",
                                 daemon=True).start()
        gauges: dict[str, float] = {}
        for check in checks:
            run = check.run
            assert run is not None
            run.done.wait(max(0.0, started + check.timeout - time.monotonic()))
            healthy = run.done.is_set() and run.healthy
            gauges[f"check:{check.name}"] = 1.0 if healthy else 0.0
            if healthy != check.healthy:
                check.healthy = healthy
                if healthy:
                    log.info("ringfence: health check %s passes again", check.name)
                else:
                    why = run.why if run.done.is_set() else f"took over {check.timeout:g} s"
                    log.warning("ringfence: health check %s fails (%s)", check.name, why)
        return gauges


def _call(fn: Callable[[], object], run: _Run) -> None:
    try:
        run.healthy = bool(fn())
        run.why = "returned a false value"
    except Exception as error:  # the application's check: its failure is the answer, not our problem
        run.healthy = False
        run.why = f"raised {type(error).__name__}"
    finally:
        run.done.set()
