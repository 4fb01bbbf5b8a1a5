"""Who needs to hear that a config's assignments may have changed.

Services call `changed(config)` after the transaction that changed something has
committed; the stream hub listens and pushes the new state to the instances
concerned. The message carries no state of its own: listeners read the truth
from the store, so a burst of changes costs one read, not one per change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("ringfence.changes")


class Changes:
    def __init__(self) -> None:
        self._listeners: list[Callable[[str], None]] = []

    def subscribe(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def changed(self, config: str) -> None:
        for listener in self._listeners:
            try:
                listener(config)
            except Exception:  # a listener's bug must not undo a committed change's response
                log.exception("change listener failed for %s", config)
