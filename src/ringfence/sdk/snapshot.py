"""The state a client serves: config name -> the revision it runs, immutable.

The client holds one `Snapshot` in one attribute and replaces it whole when a
message is applied. Assigning an attribute is atomic in Python, so readers take
no lock: they see the old state or the new one, never half of each. Values are
frozen once, when applied, so that handing them out costs nothing and no caller
can change what another caller reads.

Reads are a dictionary lookup: a snapshot keeps its values by name in a plain
dict (`values`), built once when the snapshot is made and never changed after.
Dotted paths (`client.value`) are walked once per snapshot and remembered in
`paths`, the one part of a snapshot that changes after it is made: a memo of a
pure function of the snapshot's own frozen values, so an answer never goes stale
(a new snapshot starts an empty memo), and two threads that race to fill it
compute the same answer. Each write is one dict assignment (atomic under the
GIL, and per-object locked in free-threaded builds): no lock of ours. At most
`MAX_PATHS` paths are remembered per config; past that, paths are walked each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

MAX_PATHS: Final = 1024  # dotted paths remembered per config and snapshot (paths built at run time stay bounded)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()  # "no such config or path" (None is a value a config can hold)


def freeze(value: Any) -> Any:
    """A read-only copy: dicts become MappingProxyType, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def walk(value: Any, path: str) -> Any:
    """The value at a dotted path (`"timeouts.connect_ms"`; digits index lists), or MISSING."""
    current = value
    for key in path.split(".") if path else ():
        if isinstance(current, Mapping):
            if key not in current:
                return MISSING
            current = current[key]
        elif isinstance(current, tuple) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return MISSING
    return current


def thaw(value: Any) -> Any:
    """The plain JSON form of a frozen value (for the disk cache)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Entry:
    version: int
    hash: str
    value: Any  # frozen

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "hash": self.hash, "value": thaw(self.value)}


def entry(item: Mapping[str, Any]) -> Entry:
    return Entry(int(item.get("version", 0)), str(item.get("hash", "")), freeze(item.get("value")))


@dataclass(frozen=True, slots=True)
class Snapshot:
    configs: Mapping[str, Entry] = field(default_factory=lambda: MappingProxyType({}))
    seq: int = 0
    # Derived from `configs` for the read path (see the module docstring); not part of equality.
    values: dict[str, Any] = field(init=False, repr=False, compare=False)  # name -> frozen value; never changed
    paths: dict[str, dict[str, Any]] = field(init=False, repr=False, compare=False)  # name -> path -> value

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", {name: e.value for name, e in self.configs.items()})
        object.__setattr__(self, "paths", {})

    def resolve(self, name: str, path: str) -> Any:
        """The value at `path` in config `name`, or MISSING; remembered for the next read (see MAX_PATHS)."""
        if name not in self.values:
            return MISSING  # not remembered: names that do not exist are not bounded
        found = walk(self.values[name], path)
        memo = self.paths.get(name)
        if memo is None:
            memo = self.paths.setdefault(name, {})  # setdefault: racing readers share one memo
        if len(memo) < MAX_PATHS:
            memo[path] = found
        return found

    def have(self) -> str:
        """`name@version,...` for `have=`: what the server need not send again."""
        return ",".join(f"{name}@{e.version}" for name, e in sorted(self.configs.items()) if e.version > 0)

    def replaced(self, configs: Mapping[str, Any], seq: int) -> Snapshot:
        """A server snapshot: complete, so anything it does not list is dropped.

        An item without `value` means "the version you named in have=": keep ours.
        """
        new: dict[str, Entry] = {}
        for name, item in configs.items():
            current = self.configs.get(name)
            if "value" not in item and current is not None and current.version == item.get("version"):
                new[name] = current
            else:
                new[name] = entry(item)
        return Snapshot(MappingProxyType(new), seq)

    def updated(self, name: str, item: Mapping[str, Any], seq: int) -> Snapshot:
        return Snapshot(MappingProxyType({**self.configs, name: entry(item)}), max(seq, self.seq))

    def removed(self, name: str, seq: int) -> Snapshot:
        return Snapshot(MappingProxyType({k: v for k, v in self.configs.items() if k != name}), max(seq, self.seq))

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "configs": {name: e.to_json() for name, e in self.configs.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(MappingProxyType({name: entry(item) for name, item in data.get("configs", {}).items()}),
                   int(data.get("seq", 0)))
