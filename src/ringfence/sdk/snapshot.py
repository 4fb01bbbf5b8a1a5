"""The state a client serves: config name -> the revision it runs, immutable.

The client holds one `Snapshot` in one attribute and replaces it whole when a
message is applied. Assigning an attribute is atomic in Python, so readers take
no lock: they see the old state or the new one, never half of each. Values are
frozen once, when applied, so that handing them out costs nothing and no caller
can change what another caller reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


def freeze(value: Any) -> Any:
    """A read-only copy: dicts become MappingProxyType, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


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
