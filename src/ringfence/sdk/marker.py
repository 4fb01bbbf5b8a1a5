"""The crash marker: a file that says "this instance is running", so the next start can tell a crash.

A client with a `cache_dir` writes `<service>--<instance id>.running` there when it
starts, rewrites it at every window with the time and the revisions it runs, and
removes it when it closes (`close()`, or the interpreter's normal exit). A process
that dies without either (a kill, a segfault, an out-of-memory kill, `os._exit`)
leaves the marker behind; the next client of the same service and instance id
finds it, and reports a `crash` at the marker's last update with the revisions the
dead process ran.

So crash detection needs an instance id that survives a restart: one given with
`instance_id=` (a pod name, a host and slot), or the default `<service>-<host>-<pid>`
where restarts keep the pid (a container's main process). Markers older than
`MAX_AGE` are removed without a report: a restart that long after is no evidence
about a rollout, and a pid reused by chance must not read as a crash. A marker
held by another live process on this host (two processes given one id) is left
alone with a warning.

Writes are atomic (a temporary file renamed over the marker) but not fsynced: a
process that dies leaves the page cache to the kernel, and a machine that dies
loses at most the last refresh.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("ringfence.sdk")

FORMAT = 1
MAX_AGE = 3600.0  # seconds: older markers are stale, not crashes


@dataclass(frozen=True)
class Crash:
    at: float  # the marker's last update, Unix seconds
    revisions: dict[str, int]


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, but belongs to someone else (or we cannot tell: assume it lives)
    return True


class CrashMarker:
    def __init__(self, directory: str | os.PathLike[str], service: str, instance_id: str, *,
                 wall: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"{_safe(service)}--{_safe(instance_id)}.running"
        self.instance_id = instance_id
        self._wall = wall
        self._lock = threading.Lock()
        self._closed = False
        self._warned = False

    def previous(self) -> Crash | None:
        """The crash a previous process with this id left behind, if any; its marker is removed."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            at = float(doc["updated"])
            revisions = {str(k): int(v) for k, v in doc.get("revisions", {}).items()}
            pid, host = int(doc.get("pid", 0)), str(doc.get("host", ""))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("ringfence: the crash marker %s is unreadable; ignoring it", self.path)
            self._remove()
            return None
        if host == socket.gethostname() and pid != os.getpid() and pid > 0 and _alive(pid):
            log.warning("ringfence: process %d on this host runs as instance %s too; give each process its own "
                        "instance_id (no crash detection for this one)", pid, self.instance_id)
            with self._lock:
                self._closed = True  # do not overwrite the other process's marker
            return None
        self._remove()
        if self._wall() - at > MAX_AGE:
            log.info("ringfence: removed a crash marker from %.0f s ago (too old to report)", self._wall() - at)
            return None
        return Crash(at, revisions)

    def write(self, revisions: Mapping[str, int]) -> None:
        """Say "running, with these revisions, now". Best effort: a failure is logged once."""
        doc = {"format": FORMAT, "instance": self.instance_id, "pid": os.getpid(), "host": socket.gethostname(),
               "updated": self._wall(), "revisions": dict(revisions)}
        with self._lock:
            if self._closed:
                return
            tmp: str | None = None
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=".ringfence-", suffix=".tmp", dir=self.directory)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(doc, out, separators=(",", ":"))
                os.replace(tmp, self.path)
                tmp = None
            except OSError as error:
                if not self._warned:
                    self._warned = True
                    log.warning("ringfence: cannot write the crash marker in %s (%s); crashes of this process "
                                "will not be reported", self.directory, error.strerror or error)
            finally:
                if tmp is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)

    def close(self) -> None:
        """A clean stop: remove the marker, and never write it again."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._remove()

    def _remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
