"""How long to wait before reconnecting: exponential, capped, with full jitter.

Full jitter (a uniform draw between 0 and the exponential bound) spreads a whole
fleet's reconnects after a server restart instead of having them arrive in waves.
A server's `Retry-After` is a floor: it asked us not to come back sooner.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable


class Backoff:
    def __init__(self, base: float = 0.2, cap: float = 30.0, *, max_retry_after: float = 300.0,
                 rng: random.Random | None = None, sleep: Callable[[float], object] | None = None) -> None:
        self.base = base
        self.cap = cap
        self.max_retry_after = max_retry_after
        self.failures = 0
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        # Waiting on an Event by default so that close() can cut a long wait short.
        self._sleep = sleep or self._stop.wait

    def delay(self, retry_after: float | None = None) -> float:
        """The next delay, counting one more failure."""
        bound = min(self.cap, self.base * (2 ** min(self.failures, 32)))
        self.failures += 1
        delay = self._rng.uniform(0, bound)
        if retry_after is not None:
            # Honoured, but bounded: a silly value must not stall an instance for ever.
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    def wait(self, retry_after: float | None = None) -> float:
        delay = self.delay(retry_after)
        self._sleep(delay)
        return delay

    def reset(self) -> None:
        self.failures = 0

    def stop(self) -> None:
        self._stop.set()


def retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (the delta form; the date form is rare and ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
