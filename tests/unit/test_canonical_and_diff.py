"""Canonical JSON, content hashes and the structural diff (ringfence.core.canonical / .diff)."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringfence.core import pointer as jp
from ringfence.core.canonical import canonical_json, content_hash
from ringfence.core.diff import Change, diff, patch, summary

# No example database on disk, no deadline (shared CI machines are slow sometimes).
FAST = settings(
    max_examples=150,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Keys that need escaping in JSON pointers, mixed with arbitrary text.
KEYS = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["a/b", "m~n", "~1", "~0", "/", "~", "", "0", "1", "-"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(KEYS, children, max_size=5),
    ),
    max_leaves=25,
)
JSON_DICTS = st.dictionaries(KEYS, JSON_VALUES, max_size=4)


@st.composite
def edited(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """A value like `value` with a few edits deep inside, as a real config change is."""
    action = draw(st.sampled_from(["keep", "keep", "edit", "replace"]))
    if action == "keep":
        return copy.deepcopy(value)
    if action == "replace" or depth > 4 or not isinstance(value, dict | list):
        return draw(JSON_VALUES)
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            if draw(st.booleans()) or draw(st.booleans()):  # keep three keys in four
                out[key] = draw(edited(child, depth + 1))
        out.update(draw(st.dictionaries(KEYS, SCALARS, max_size=2)))
        return out
    items = [draw(edited(child, depth + 1)) for child in value]
    cut = draw(st.integers(min_value=0, max_value=len(items)))
    return items[:cut] + draw(st.lists(SCALARS, max_size=2)) if draw(st.booleans()) else items


@st.composite
def pairs(draw: st.DrawFn, base: st.SearchStrategy[Any] = JSON_VALUES) -> tuple[Any, Any]:
    """Two unrelated values, or a value and an edit of it."""
    a = draw(base)
    b = draw(base) if draw(st.booleans()) else draw(edited(a))
    return a, b

MISSING = object()


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that, like JSON, tells 1, 1.0 and true apart (Python's == does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def reordered(value: Any, rnd: random.Random) -> Any:
    """The same value with every dict rebuilt in a shuffled insertion order."""
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return {k: reordered(value[k], rnd) for k in keys}
    if isinstance(value, list):
        return [reordered(v, rnd) for v in value]
    return value


def at(document: Any, pointer: str) -> Any:
    try:
        return jp.resolve(document, pointer)
    except KeyError:
        return MISSING


def as_json(changes: list[Change]) -> list[dict[str, Any]]:
    return [c.to_json() for c in changes]


# --- the helper itself ---------------------------------------------------------------------


def test_strict_equal_tells_json_types_apart() -> None:
    assert 1 == 1.0 == True  # the reason the helper exists
    assert not strict_equal(1, 1.0)
    assert not strict_equal(1, True)
    assert not strict_equal({"a": [0]}, {"a": [False]})
    assert not strict_equal([1], [1, 2])
    assert strict_equal({"a": [1, 2.5, None, "x"]}, {"a": [1, 2.5, None, "x"]})


# --- canonical JSON and the content hash --------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8() -> None:
    value = {"b": 1, "a": [True, None, "é", 1.5], "c": {"z": {}, "y": []}}
    assert canonical_json(value) == '{"a":[true,null,"é",1.5],"b":1,"c":{"y":[],"z":{}}}'


def test_content_hash_is_sha256_of_the_canonical_utf8_text() -> None:
    # Outside tools recompute this hash: the exact recipe is part of the contract.
    value = {"name": "café", "limits": [1, 2]}
    expected = hashlib.sha256('{"limits":[1,2],"name":"café"}'.encode()).hexdigest()
    assert content_hash(value) == f"sha256:{expected}"


def test_content_hash_tells_json_types_apart() -> None:
    hashes = {content_hash(v) for v in (1, 1.0, True, "1", [1], {"1": 1}, None)}
    assert len(hashes) == 7


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), {"a": [float("nan")]}])
def test_canonical_json_refuses_nan_and_infinity(bad: Any) -> None:
    with pytest.raises(ValueError, match="JSON"):
        canonical_json(bad)


@FAST
@given(JSON_VALUES, st.randoms(use_true_random=False))
def test_hash_ignores_key_order(value: Any, rnd: random.Random) -> None:
    shuffled = reordered(value, rnd)
    assert canonical_json(shuffled) == canonical_json(value)
    assert content_hash(shuffled) == content_hash(value)


@FAST
@given(JSON_VALUES)
def test_canonical_json_parses_back_to_the_same_value(value: Any) -> None:
    assert strict_equal(json.loads(canonical_json(value)), value)


# --- diff and patch: properties -----------------------------------------------------------


@FAST
@given(pairs())
def test_patch_of_diff_gives_the_target(pair: tuple[Any, Any]) -> None:
    a, b = pair
    before = copy.deepcopy(a)
    result = patch(a, diff(a, b))
    assert strict_equal(result, b)
    assert strict_equal(a, before), "patch must not modify its input"


@FAST
@given(pairs())
def test_diff_survives_a_trip_through_json(pair: tuple[Any, Any]) -> None:
    a, b = pair
    # Changes are stored and sent as JSON; they must still patch after the trip.
    wire = json.loads(json.dumps(as_json(diff(a, b))))
    assert strict_equal(patch(a, [Change.from_json(c) for c in wire]), b)


@FAST
@given(JSON_VALUES)
def test_diff_of_a_value_with_itself_is_empty(a: Any) -> None:
    assert diff(a, a) == []
    assert diff(a, copy.deepcopy(a)) == []


@FAST
@given(pairs(), st.randoms(use_true_random=False))
def test_diff_order_is_stable(pair: tuple[Any, Any], rnd: random.Random) -> None:
    a, b = pair
    first = as_json(diff(a, b))
    assert as_json(diff(a, b)) == first
    # Nor does it depend on the order keys were inserted in.
    assert as_json(diff(reordered(a, rnd), reordered(b, rnd))) == first


@FAST
@given(pairs())
def test_each_change_says_truly_what_was_there_and_what_will_be(pair: tuple[Any, Any]) -> None:
    a, b = pair
    changes = diff(a, b)
    paths = [c.path for c in changes]
    assert len(set(paths)) == len(paths), "each pointer is touched once"
    for change in changes:
        old, new = at(a, change.path), at(b, change.path)
        if change.op == "add":
            assert old is MISSING
            assert strict_equal(change.value, new)
        elif change.op == "remove":
            assert new is MISSING
            assert strict_equal(change.old, old)
        else:
            assert change.op == "replace"
            assert not strict_equal(old, new)
            assert strict_equal(change.old, old)
            assert strict_equal(change.value, new)


@FAST
@given(pairs(JSON_DICTS).filter(lambda p: isinstance(p[1], dict)))
def test_diff_of_dicts_touches_only_pointers_whose_values_differ(
    pair: tuple[Any, Any],
) -> None:
    a, b = pair
    changes = diff(a, b)
    for change in changes:
        assert change.path != "", "two dicts are never replaced wholesale"
        assert not strict_equal(at(a, change.path), at(b, change.path))
    touched_keys = {jp.split(c.path)[0] for c in changes}
    differing_keys = {k for k in a.keys() | b.keys() if not strict_equal(at(a, jp.join([k])),
                                                                     at(b, jp.join([k])))}
    assert touched_keys == differing_keys


# --- diff and patch: examples -------------------------------------------------------------


def test_array_growing_adds_at_the_end_in_order() -> None:
    changes = diff({"ports": [80, 443]}, {"ports": [80, 443, 8080, 8443]})
    assert changes == [Change("add", "/ports/2", value=8080), Change("add", "/ports/3", value=8443)]
    assert patch({"ports": [80, 443]}, changes) == {"ports": [80, 443, 8080, 8443]}


def test_array_shrinking_removes_from_the_end_first() -> None:
    a = {"ports": [80, 443, 8080, 8443]}
    changes = diff(a, {"ports": [80]})
    assert changes == [
        Change("remove", "/ports/3", old=8443),
        Change("remove", "/ports/2", old=8080),
        Change("remove", "/ports/1", old=443),
    ]
    assert patch(a, changes) == {"ports": [80]}


def test_array_element_change_and_shrink_together() -> None:
    a = [1, 2, 3]
    changes = diff(a, [9])
    assert changes == [Change("replace", "/0", value=9, old=1), Change("remove", "/2", old=3),
                       Change("remove", "/1", old=2)]
    assert patch(a, changes) == [9]


def test_nested_replace_touches_only_the_leaf() -> None:
    a = {"limits": {"eu": {"max": 100, "min": 1}, "us": {"max": 50}}}
    b = {"limits": {"eu": {"max": 200, "min": 1}, "us": {"max": 50}}}
    assert diff(a, b) == [Change("replace", "/limits/eu/max", value=200, old=100)]


def test_keys_are_sorted_and_type_changes_are_replacements() -> None:
    a = {"b": 1, "a": 1, "c": {"x": 1}, "d": 0}
    b = {"d": False, "c": [1], "b": 1.0, "a": 1}
    assert diff(a, b) == [
        Change("replace", "/b", value=1.0, old=1),
        Change("replace", "/c", value=[1], old={"x": 1}),
        Change("replace", "/d", value=False, old=0),
    ]


def test_root_replacement_uses_the_empty_pointer() -> None:
    changes = diff({"a": 1}, [1])
    assert changes == [Change("replace", "", value=[1], old={"a": 1})]
    assert patch({"a": 1}, changes) == [1]


def test_keys_are_escaped_in_pointers() -> None:
    a = {"plain": 1}
    b = {"plain": 1, "a/b": 2, "m~n": {"~1": 3}}
    changes = diff(a, b)
    assert [c.path for c in changes] == ["/a~1b", "/m~0n"]
    assert diff(b, {"plain": 1, "a/b": 2, "m~n": {"~1": 4}}) == [
        Change("replace", "/m~0n/~01", value=4, old=3)
    ]
    assert patch(a, changes) == b


def test_removing_the_root_is_refused() -> None:
    with pytest.raises(ValueError, match="root"):
        patch({"a": 1}, [Change("remove", "")])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (Change("add", "/a", value=1), {"op": "add", "path": "/a", "value": 1}),
        (Change("add", "/a", value=None), {"op": "add", "path": "/a", "value": None}),
        (Change("remove", "/a", old={"x": [1]}), {"op": "remove", "path": "/a", "old": {"x": [1]}}),
        (
            Change("replace", "/a~1b", value="new", old=None),
            {"op": "replace", "path": "/a~1b", "value": "new", "old": None},
        ),
    ],
)
def test_change_to_json_and_back(change: Change, expected: dict[str, Any]) -> None:
    assert change.to_json() == expected
    assert Change.from_json(expected) == change
    assert Change.from_json(json.loads(json.dumps(change.to_json()))).to_json() == expected


def test_kind_and_summary_count_changes_as_a_person_says_them() -> None:
    a = {"keep": 1, "drop": 2, "edit": 3, "list": [1, 2]}
    b = {"keep": 1, "edit": 4, "new": 5, "list": [1], "new2": None}
    changes = diff(a, b)
    assert sorted(c.kind for c in changes) == ["added", "added", "changed", "removed", "removed"]
    assert summary(changes) == {"added": 2, "removed": 2, "changed": 1}
    assert summary([]) == {"added": 0, "removed": 0, "changed": 0}
