"""Structural diff of two JSON values, usable as a patch.

`diff(a, b)` lists the changes as JSON Patch (RFC 6902) operations: `add`,
`remove` and `replace`, each with the JSON pointer it touches, the new `value`
and, for `remove` and `replace`, the `old` value (RFC 6902 processors ignore the
extra member). The order is stable: object keys sorted, array elements by index,
removals from the end of an array first so indexes stay valid while patching.
`patch(a, diff(a, b)) == b` for all JSON values.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from ringfence.core import pointer as jp

Op = Literal["add", "remove", "replace"]
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Change:
    op: Op
    path: str
    value: Any = _MISSING
    old: Any = _MISSING

    @property
    def kind(self) -> str:
        """`added`, `removed` or `changed`, as a person says it."""
        return {"add": "added", "remove": "removed", "replace": "changed"}[self.op]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.value is not _MISSING:
            out["value"] = self.value
        if self.old is not _MISSING:
            out["old"] = self.old
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(data["op"], data["path"], data.get("value", _MISSING), data.get("old", _MISSING))


def _same(a: Any, b: Any) -> bool:
    # JSON distinguishes true from 1 and 1.0 from 1 only by type; so do we.
    return type(a) is type(b) and a == b


def diff(a: Any, b: Any) -> list[Change]:
    changes: list[Change] = []
    _diff(a, b, [], changes)
    return changes


def _diff(a: Any, b: Any, path: list[str | int], out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            child = [*path, key]
            if key not in b:
                out.append(Change("remove", jp.join(child), old=a[key]))
            elif key not in a:
                out.append(Change("add", jp.join(child), value=b[key]))
            else:
                _diff(a[key], b[key], child, out)
    elif isinstance(a, list) and isinstance(b, list):
        common = min(len(a), len(b))
        for i in range(common):
            _diff(a[i], b[i], [*path, i], out)
        for i in range(len(a) - 1, common - 1, -1):
            out.append(Change("remove", jp.join([*path, i]), old=a[i]))
        for i in range(common, len(b)):
            out.append(Change("add", jp.join([*path, i]), value=b[i]))
    elif not _same(a, b):
        out.append(Change("replace", jp.join(path), value=b, old=a))


def patch(document: Any, changes: list[Change]) -> Any:
    """Apply `changes` to a copy of `document` and return it."""
    result = copy.deepcopy(document)
    for change in changes:
        tokens = jp.split(change.path)
        if not tokens:
            if change.op == "remove":
                raise ValueError("cannot remove the document root")
            result = copy.deepcopy(change.value)
            continue
        parent = jp.resolve(result, jp.join(tokens[:-1]))
        last = tokens[-1]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if change.op == "add":
                parent.insert(index, copy.deepcopy(change.value))
            elif change.op == "remove":
                del parent[index]
            else:
                parent[index] = copy.deepcopy(change.value)
        elif isinstance(parent, dict):
            if change.op == "remove":
                del parent[last]
            else:
                parent[last] = copy.deepcopy(change.value)
        else:
            raise ValueError(f"cannot apply {change.op} at {change.path}: parent is not a container")
    return result


def summary(changes: list[Change]) -> dict[str, int]:
    counts = {"added": 0, "removed": 0, "changed": 0}
    for change in changes:
        counts[change.kind] += 1
    return counts
