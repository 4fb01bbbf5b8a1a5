"""The last known good state on disk, so an instance starts and keeps running when the server cannot be reached.

One JSON file per instance: the snapshot, the server URL and instance it belongs
to, and a sha256 of the canonical snapshot. It is written to a temporary file,
fsynced and renamed over the old one, so a crash leaves the old copy or the new
one, never a torn file. A file that is corrupt, or that belongs to another
server or service, is ignored with a warning: serving another fleet's values
would be worse than serving none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ringfence.sdk.snapshot import Snapshot, entry

log = logging.getLogger("ringfence.sdk")
FORMAT = 1


def _checksum(snapshot: dict[str, Any]) -> str:
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class DiskCache:
    def __init__(self, directory: str | os.PathLike[str], server: str, owner: str) -> None:
        """`owner` names who the file is for (the service): the instance id changes with each process,
        so it is recorded in the file for people but not required to match."""
        self.directory = Path(directory)
        self.server = server.rstrip("/")
        self.owner = owner
        self.path = self.directory / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', owner)}.json"
        self._warned = False

    def load(self) -> Snapshot | None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            log.warning("ringfence: cannot read the config cache %s (%s); ignoring it", self.path, error.strerror)
            return None
        try:
            doc = json.loads(raw)
            snapshot = doc["snapshot"]
            if doc.get("format") != FORMAT or doc.get("checksum") != _checksum(snapshot):
                raise ValueError("checksum mismatch")
            if doc.get("server") != self.server or doc.get("owner") != self.owner:
                log.warning("ringfence: the config cache %s belongs to another server or service; ignoring it",
                            self.path)
                return None
            return Snapshot.from_json(snapshot)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ringfence: the config cache %s is corrupt; ignoring it", self.path)
            return None

    def save(self, snapshot: Snapshot, instance_id: str) -> bool:
        """Write atomically; on failure warn once and carry on: the cache is a safety net, not a duty."""
        data = snapshot.to_json()
        doc = {"format": FORMAT, "server": self.server, "owner": self.owner, "instance": instance_id,
               "checksum": _checksum(data), "snapshot": data}
        tmp: str | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".ringfence-", suffix=".tmp", dir=self.directory)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(doc, out, separators=(",", ":"), ensure_ascii=False)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            tmp = None
            self._fsync_directory()
            return True
        except OSError as error:
            if not self._warned:
                self._warned = True
                log.warning("ringfence: cannot write the config cache in %s (%s); running without it",
                            self.directory, error.strerror or error)
            return False
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _fsync_directory(self) -> None:
        # The rename itself is durable only once the directory is synced (POSIX); best effort elsewhere.
        with contextlib.suppress(OSError, AttributeError):
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def load_bootstrap(source: str | os.PathLike[str] | Mapping[str, Any]) -> Snapshot | None:
    """`bootstrap=`: values to serve on the very first start, before any cache exists (version 0)."""
    if isinstance(source, Mapping):
        values: Any = source
    else:
        try:
            values = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            log.warning("ringfence: cannot use the bootstrap file %s (%s)", source, type(error).__name__)
            return None
    if not isinstance(values, Mapping):
        log.warning("ringfence: bootstrap must map config names to values; ignoring it")
        return None
    return Snapshot(MappingProxyType({name: entry({"version": 0, "hash": "", "value": value})
                                      for name, value in values.items()}))
