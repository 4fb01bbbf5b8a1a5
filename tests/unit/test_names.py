"""Config names and name patterns (ringfence.core.names)."""

from __future__ import annotations

import pytest

from ringfence.core.names import (
    MATCH_ALL,
    check_name,
    check_pattern,
    covers,
    is_valid_name,
    matches,
    most_specific,
)
from ringfence.errors import InvalidInput, InvalidName

VALID_NAMES = [
    "payments",
    "payments/limits",
    "a/b/c/d/e/f/g/h",  # 8 segments: the maximum
    "x" * 63,  # 63 characters: the longest segment
    "9lives/feature_flags",
    "team-a/area_1/name-2",
    "0",
]

INVALID_NAMES = {
    "uppercase": "Payments/limits",
    "space": "payments/credit limits",
    "empty segment": "payments//limits",
    "leading slash": "/payments",
    "trailing slash": "payments/",
    "leading dash": "-payments",
    "leading dash in a later segment": "payments/-limits",
    "leading underscore": "_payments",
    "nine segments": "a/b/c/d/e/f/g/h/i",
    "64-character segment": "payments/" + "x" * 64,
    "empty": "",
    "dot": "payments.limits",
    "trailing newline": "payments\n",
    "wildcard": "payments/*",
}


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_names_are_accepted_unchanged(name: str) -> None:
    assert check_name(name) == name
    assert is_valid_name(name)


@pytest.mark.parametrize("name", INVALID_NAMES.values(), ids=INVALID_NAMES.keys())
def test_invalid_names_are_refused(name: str) -> None:
    assert not is_valid_name(name)
    with pytest.raises(InvalidName):
        check_name(name)


@pytest.mark.parametrize("name", INVALID_NAMES.values(), ids=INVALID_NAMES.keys())
def test_invalid_name_message_states_the_rule(name: str) -> None:
    with pytest.raises(InvalidName) as caught:
        check_name(name)
    error = caught.value
    # The person reading the error must learn what a valid name looks like.
    for part in ("1 to 8 segments", "1 to 63 characters", "lowercase", "starting with a letter or digit"):
        assert part in error.detail
    assert repr(name) in error.detail
    assert len(error.problems) == 1
    assert error.problems[0].validator == "name"
    assert "1 to 8 segments" in error.problems[0].message


def test_invalid_name_is_an_invalid_input() -> None:
    # The server maps InvalidInput to a 4xx problem document: the subclassing matters.
    with pytest.raises(InvalidInput):
        check_name("Bad")


def test_non_string_name_is_refused_without_crashing() -> None:
    assert not is_valid_name(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidName):
        check_name(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("pattern", ["*", "payments/*", "payments/limits", "a/b/c/*", "payments"])
def test_valid_patterns_are_accepted_unchanged(pattern: str) -> None:
    assert check_pattern(pattern) == pattern


@pytest.mark.parametrize(
    "pattern",
    ["", "/*", "payments*", "payments/*/limits", "payments/**", "Payments/*", "*/limits", "a/*/*", "**"],
)
def test_invalid_patterns_are_refused_with_both_rules(pattern: str) -> None:
    with pytest.raises(InvalidName) as caught:
        check_pattern(pattern)
    detail = caught.value.detail
    assert "'/*'" in detail  # the pattern rule
    assert "'*' for every config" in detail
    assert "1 to 8 segments" in detail  # and the name rule it builds on
    assert caught.value.problems[0].validator == "name"


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*", "payments", True),
        ("*", "a/b/c", True),
        ("payments/*", "payments/limits", True),
        ("payments/*", "payments/eu/limits", True),
        ("payments/*", "payments", False),  # `/*` is everything *below* the name
        ("payments/*", "payments-eu/limits", False),  # a prefix of the text is not a parent
        ("payments/*", "paymentsx/limits", False),
        ("payments/*", "billing/limits", False),
        ("payments/limits", "payments/limits", True),
        ("payments/limits", "payments/limits2", False),
        ("payments/limits", "payments", False),
        ("payments", "payments/limits", False),  # an exact name binds only itself
    ],
)
def test_matches(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name) is expected


def test_most_specific_prefers_exact_then_longest_prefix_then_everything() -> None:
    patterns = ["*", "payments/*", "payments/eu/*", "payments/eu/limits"]
    assert most_specific(patterns, "payments/eu/limits") == "payments/eu/limits"
    assert most_specific(patterns, "payments/eu/fees") == "payments/eu/*"
    assert most_specific(patterns, "payments/us/limits") == "payments/*"
    assert most_specific(patterns, "billing/limits") == "*"


def test_most_specific_does_not_depend_on_order() -> None:
    patterns = ["payments/eu/limits", "payments/eu/*", "*", "payments/*"]
    for rotation in range(len(patterns)):
        rotated = patterns[rotation:] + patterns[:rotation]
        assert most_specific(rotated, "payments/eu/limits") == "payments/eu/limits"
        assert most_specific(list(reversed(rotated)), "payments/eu/fees") == "payments/eu/*"


def test_exact_name_beats_a_prefix_pattern_of_the_same_length() -> None:
    # "a/*" and "a/b" are both three characters: the exact name must win on kind, not length.
    assert most_specific(["a/*", "a/b"], "a/b") == "a/b"
    assert most_specific(["a/b", "a/*"], "a/b") == "a/b"
    assert most_specific(["a/b", "a/*"], "a/c") == "a/*"


def test_most_specific_without_a_match_is_none() -> None:
    assert most_specific(["billing/*", "payments/limits"], "payments/fees") is None
    assert most_specific([], "payments") is None


@pytest.mark.parametrize(
    ("pattern", "other", "expected"),
    [
        ("*", "*", True),
        ("*", "payments/*", True),
        ("*", "payments/limits", True),
        ("payments/*", "*", False),
        ("payments/*", "payments/*", True),
        ("payments/*", "payments/eu/*", True),
        ("payments/*", "payments/limits", True),
        ("payments/*", "payments", False),
        ("payments/*", "billing/*", False),
        ("payments/*", "payments-eu/*", False),
        ("payments/eu/*", "payments/*", False),  # narrower cannot cover wider
        ("payments/limits", "payments/limits", True),
        ("payments/limits", "payments/*", False),
        ("payments/limits", "payments/limits/*", False),  # a name does not cover what is below it
        ("payments", "payments/*", False),
        ("payments/limits", "*", False),
        ("payments", "payments/limits", False),
    ],
)
def test_covers(pattern: str, other: str, expected: bool) -> None:
    assert covers(pattern, other) is expected


def test_match_all_constant_is_the_star() -> None:
    assert MATCH_ALL == "*"
    assert matches(MATCH_ALL, "anything/at/all")
