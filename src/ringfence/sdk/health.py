"""Health windows: what the application's requests looked like, interval by interval.

The application records into the current window from any thread (`track`,
`record`, `gauge`); the reporter thread closes windows at their end and sends
them. A window is also closed at once when the revisions this instance runs
change, so every window is tagged with exactly one set of revisions: a canary's
requests are never mixed with the baseline's in one window.

The hot path is a few counter increments under a lock of the calling thread's
own: each thread that records gets a shard (its counters and a lock), which only
the thread itself and the closing of a window ever take. Request threads never
wait for each other, and closing a window drains every shard under its lock, so
each request is counted in exactly one window. `with client.track()` costs two
clock reads, a bisect into the bucket bounds and that lock (see
bench/sdk_track.py; one lock shared by all threads made each request two thirds
dearer with eight threads at once). Nothing here does I/O or raises into the application,
but a bad argument does: a wrong call is a bug the caller should hear about at once.

Windows end on a grid aligned to the wall clock (every 10 s by default: at
:00, :10, :20...), so the windows of all instances line up; the first window of
a client, and a window cut short by a revision change or by `close()`, are
shorter. Times are Unix epoch seconds; `cpu` is measured on a monotonic clock.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import numbers
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar

# Upper bounds of the latency histogram, in milliseconds (formats/observations.md); one more bucket
# counts the values above the last bound.
LE: Final = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_BOUNDS: Final = tuple(float(b) for b in LE)  # bisecting floats among floats is twice as fast as among ints
RESERVED_GAUGES: Final = frozenset({"cpu", "rss_mb"})  # measured by the SDK; `check:<name>` are health checks
MAX_GAUGES: Final = 48  # application gauges per window (the server takes 64 in all, with process gauges and checks)
MAX_WINDOW: Final = 3600.0  # seconds; the server refuses longer windows

log = logging.getLogger("ringfence.sdk")
Revisions = Mapping[str, int]
F = TypeVar("F", bound=Callable[..., Any])


class _Shard:
    """One thread's counts since the last window closed. Taken by its thread and by `Windows.roll`."""

    __slots__ = ("counts", "errors", "lock", "owner")

    def __init__(self, owner: weakref.ref[object]) -> None:
        self.lock = threading.Lock()
        self.counts = [0] * (len(LE) + 1)
        self.errors = 0
        self.owner = owner  # dead once the thread has ended (its thread-local data is gone)


class _Alive:
    """Kept in a thread's local data only, so that a weak reference to it says whether the thread lives."""

    __slots__ = ("__weakref__",)


class Window:
    """One window being filled, then closed. Its counts come from the shards when it closes; its
    gauges are set under the owning `Windows`' lock.

    Requests are not counted apart: every request is in exactly one bucket, so `requests` is the
    sum of `counts` (one increment less per request, and the two can never disagree).
    """

    __slots__ = ("counts", "cpu", "cpu_start", "end", "errors", "gauges", "mono_start", "revisions", "start")

    def __init__(self, start: float, mono_start: float, cpu_start: float, revisions: Revisions) -> None:
        self.start = start
        self.end = start
        self.mono_start = mono_start
        self.cpu_start = cpu_start
        self.cpu: float | None = None
        self.revisions = dict(revisions)
        self.errors = 0
        self.counts = [0] * (len(LE) + 1)
        self.gauges: dict[str, float] = {}

    @property
    def requests(self) -> int:
        return sum(self.counts)

    def to_wire(self, gauges: Mapping[str, float] | None = None) -> dict[str, Any]:
        """The window as `POST /v1/metrics` sends it, with the gauges sampled when it was sent."""
        measured = {} if self.cpu is None else {"cpu": round(self.cpu, 4)}
        return {"start": self.start, "end": self.end, "revisions": dict(self.revisions),
                "requests": self.requests, "errors": self.errors,
                "latency_ms": {"le": list(LE), "counts": list(self.counts)},
                "gauges": {**self.gauges, **measured, **(gauges or {})}}


class Windows:
    """The window accumulator. `wall`, `clock` (monotonic) and `cpu` (process CPU seconds) are
    injectable so that tests move time instead of sleeping."""

    def __init__(self, interval: float, revisions: Revisions, *, wall: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.perf_counter,
                 cpu: Callable[[], float] = time.process_time) -> None:
        self.interval = interval
        self.wall = wall
        self.clock = clock  # read by Request for latencies
        self._cpu = cpu
        self._warned_gauges = False
        self.reset(revisions)

    def reset(self, revisions: Revisions) -> None:
        """Start afresh (also after fork: a lock held by a parent thread would stay held in the child)."""
        self._lock = threading.Lock()  # shards list, gauges, window swaps
        self._local = threading.local()
        self._shards: list[_Shard] = []
        self._window = self._open(revisions)
        self._closed: list[Window] = []

    # --- recording: any thread -------------------------------------------------------------
    def shard(self) -> _Shard:
        """The calling thread's shard (made on its first request)."""
        try:
            return self._local.shard  # type: ignore[no-any-return]
        except AttributeError:
            pass
        alive = self._local.alive = _Alive()
        shard = self._local.shard = _Shard(weakref.ref(alive))
        with self._lock:
            self._shards.append(shard)
        return shard

    def observe(self, latency_ms: float, error: bool) -> None:
        """One request (the hot path of decorated functions; `Request.__exit__` has its own copy)."""
        bucket = bisect_left(_BOUNDS, latency_ms)  # the first bound >= the value: `le` means "at most"
        try:
            shard = self._local.shard
        except AttributeError:
            shard = self.shard()
        # acquire/release rather than `with`: half the cost. try/finally costs nothing unless raised
        # (a KeyboardInterrupt landing here must not leave the lock held).
        lock = shard.lock
        lock.acquire()
        try:
            shard.counts[bucket] += 1
            if error:
                shard.errors += 1
        finally:
            lock.release()

    def record(self, requests: int | None = None, errors: int = 0,
               latency_ms: float | Iterable[float] | None = None) -> None:
        """Requests counted by the application itself; see `Client.record`."""
        if ((type(latency_ms) is float or type(latency_ms) is int) and type(requests) is int
                and type(errors) is int and 0 <= errors <= requests and 0.0 <= latency_ms < math.inf):
            # The common call, checked in one expression; anything else takes the long way below.
            bucket = bisect_left(_BOUNDS, latency_ms)
            try:
                shard = self._local.shard
            except AttributeError:
                shard = self.shard()
            lock = shard.lock
            lock.acquire()
            try:
                shard.counts[bucket] += requests
                shard.errors += errors
            finally:
                lock.release()
            return
        added: list[int] | int  # one bucket for all the requests, or a count per bucket
        if _is_number(latency_ms):
            if requests is None:
                raise TypeError("record(): give requests= with a single latency_ms (the latency of each of them)")
            requests = _count("requests", requests)
            added = bisect_left(_BOUNDS, _latency(latency_ms))
        elif latency_ms is not None and not isinstance(latency_ms, str | bytes) and hasattr(latency_ms, "__iter__"):
            values = list(latency_ms)
            requests = len(values) if requests is None else _count("requests", requests)
            if len(values) != requests:
                raise ValueError(f"record(): latency_ms has {len(values)} values for {requests} requests "
                                 "(give one per request, or a single number for all of them)")
            added = [0] * (len(LE) + 1)
            for value in values:
                if not ((type(value) is float or type(value) is int) and 0.0 <= value < math.inf):
                    value = _latency(value)  # a NumPy number, or something wrong: checked the long way
                added[bisect_left(_BOUNDS, value)] += 1
        elif latency_ms is None:
            requests = _count("requests", requests or 0)
            if requests:
                raise TypeError(f"record(): give latency_ms for the {requests} requests, a number for all of them "
                                "(e.g. their mean) or a list of one per request: every window's latency histogram "
                                "counts all of its requests")
            added = 0
        else:
            raise TypeError("record(): latency_ms must be a number of milliseconds or a list of them, "
                            f"not {type(latency_ms).__name__}")
        errors = _count("errors", errors)
        if errors > requests:
            raise ValueError(f"record(): errors ({errors}) > requests ({requests})")
        shard = self.shard()
        with shard.lock:
            shard.errors += errors
            if isinstance(added, int):
                shard.counts[added] += requests
            else:
                for bucket, count in enumerate(added):
                    shard.counts[bucket] += count

    def gauge(self, name: str, value: float) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"gauge(): the name must be a non-empty string, not {name!r}")
        if name in RESERVED_GAUGES or name.startswith("check:"):
            raise ValueError(f"gauge(): {name!r} is reported by the SDK itself (cpu, rss_mb, check:<name>)")
        if not _is_number(value) or not math.isfinite(value):
            raise ValueError(f"gauge(): {name} must be a finite number, not {value!r}")
        value = float(value)
        with self._lock:
            gauges = self._window.gauges
            if len(gauges) < MAX_GAUGES or name in gauges:
                gauges[name] = value
                return
        if not self._warned_gauges:
            self._warned_gauges = True
            log.warning("ringfence: more than %d gauge names in one window; %r and other new names are left out",
                        MAX_GAUGES, name)

    # --- windows: the reporter thread and the stream thread -----------------------------------------
    @property
    def revisions(self) -> dict[str, int]:
        return self._window.revisions

    def next_end(self) -> float:
        """When the current window ends on the wall-clock grid."""
        return (math.floor(self._window.start / self.interval) + 1) * self.interval

    def roll(self, revisions: Revisions | None = None) -> None:
        """Close the current window now and open the next (with new revisions, if given)."""
        now, mono, cpu = self.wall(), self.clock(), self._cpu()
        with self._lock:
            closed = self._window
            self._drain(closed)
            tags = closed.revisions if revisions is None else revisions
            if now <= closed.start and not any(closed.counts) and not closed.gauges:
                closed.revisions = dict(tags)  # nothing happened in no time (or the clock stepped back): retag
                return
            # A window has a length (the server refuses one that ends when it starts), and lasts at most
            # MAX_WINDOW seconds: after the process was suspended, the counts are real, the idle hour is not.
            closed.end = now if now > closed.start else math.nextafter(closed.start, math.inf)
            closed.start = max(closed.start, closed.end - MAX_WINDOW)
            elapsed = mono - closed.mono_start
            closed.cpu = max(0.0, cpu - closed.cpu_start) / elapsed if elapsed > 0 else 0.0
            self._window = Window(closed.end, mono, cpu, tags)
            self._closed.append(closed)

    def _drain(self, window: Window) -> None:
        """Move every shard's counts into `window` (under self._lock); forget the shards of ended threads."""
        counts, errors = window.counts, window.errors
        kept = []
        for shard in self._shards:
            with shard.lock:
                drained, shard.counts = shard.counts, [0] * (len(LE) + 1)
                errors += shard.errors
                shard.errors = 0
            for bucket, count in enumerate(drained):
                counts[bucket] += count
            if shard.owner() is not None:
                kept.append(shard)
        window.errors = errors
        self._shards = kept

    def roll_if_due(self) -> bool:
        if self.wall() < self.next_end():
            return False
        self.roll()
        return True

    def take_closed(self) -> list[Window]:
        with self._lock:
            closed, self._closed = self._closed, []
        return closed

    def _open(self, revisions: Revisions) -> Window:
        return Window(self.wall(), self.clock(), self._cpu(), revisions)


def _is_number(value: object) -> bool:
    # int and float first (the common case, and cheap); then any real number (NumPy's) but a bool.
    return type(value) in (float, int) or (isinstance(value, numbers.Real) and not isinstance(value, bool))


def _count(what: str, value: object) -> int:
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0:
        return int(value)
    raise ValueError(f"record(): {what} must be an integer >= 0, not {value!r}")


def _latency(value: object) -> float:
    if _is_number(value) and 0 <= value < math.inf:  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]
    raise ValueError(f"record(): a latency must be a finite number of milliseconds >= 0, not {value!r}")


def _failed(kind: type[BaseException] | None) -> bool:
    # An exception is a failed request; a cancellation (CancelledError, KeyboardInterrupt, GeneratorExit)
    # ends the request without saying it failed, so it is counted as a request but not as an error.
    return kind is not None and issubclass(kind, Exception)


class Request:
    """One tracked request: `with client.track("charge") as request:`, or `@client.track("charge")`.

    As a context manager, one object times one request (call `client.track()` for each). As a
    decorator, each call of the function is timed on its own.
    """

    __slots__ = ("_start", "_windows", "failed", "name")

    def __init__(self, windows: Windows, name: str) -> None:
        self._windows = windows
        self.name = name
        self.failed = False

    def mark_error(self) -> None:
        """Count this request as failed, without raising."""
        self.failed = True

    def __enter__(self) -> Request:
        self._start = self._windows.clock()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        # Windows.observe, inlined: a method call is a fifth of the budget on a slow machine.
        windows = self._windows
        bucket = bisect_left(_BOUNDS, (windows.clock() - self._start) * 1000.0)
        failed = self.failed or (kind is not None and issubclass(kind, Exception))  # see _failed
        try:
            shard = windows._local.shard
        except AttributeError:
            shard = windows.shard()
        lock = shard.lock
        lock.acquire()
        try:
            shard.counts[bucket] += 1
            if failed:
                shard.errors += 1
        finally:
            lock.release()

    def __call__(self, fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"track() decorates a function, not {type(fn).__name__}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"track() cannot time the generator {fn.__qualname__}: it would time creating the "
                            "generator, not consuming it; track the code that consumes it instead")
        windows = self._windows
        if inspect.iscoroutinefunction(fn):
            coroutine: Callable[..., Awaitable[Any]] = fn

            @functools.wraps(fn)
            async def tracked_async(*args: Any, **kwargs: Any) -> Any:
                clock = windows.clock
                start = clock()
                kind: type[BaseException] | None = None
                try:
                    return await coroutine(*args, **kwargs)
                except BaseException as error:
                    kind = type(error)
                    raise
                finally:
                    windows.observe((clock() - start) * 1000.0, _failed(kind))

            return tracked_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def tracked(*args: Any, **kwargs: Any) -> Any:
            clock = windows.clock
            start = clock()
            kind: type[BaseException] | None = None
            try:
                return fn(*args, **kwargs)
            except BaseException as error:
                kind = type(error)
                raise
            finally:
                windows.observe((clock() - start) * 1000.0, _failed(kind))

        return tracked  # type: ignore[return-value]
