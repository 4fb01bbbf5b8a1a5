"""Config names and the patterns that bind schemas, policies and token scopes.

A name is lowercase path segments (`payments/limits`). A pattern is either a
name (binds exactly that config), a name followed by `/*` (binds every config
below it), or `*` (binds everything). When several patterns match a name, the
most specific wins: the exact name, then the longest prefix, then `*`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ringfence.errors import InvalidName, Problem

NAME_RULE = (
    "a config name is 1 to 8 segments separated by '/', each 1 to 63 characters of "
    "lowercase letters, digits, '-' and '_', starting with a letter or digit "
    "(for example 'payments/limits')"
)
PATTERN_RULE = (
    "a pattern is a config name ('payments/limits'), a name followed by '/*' for "
    "everything below it ('payments/*'), or '*' for every config"
)

_SEGMENT = r"[a-z0-9][a-z0-9_-]{0,62}"
_NAME_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT}){{0,7}}")
MATCH_ALL = "*"


def check_name(name: str) -> str:
    """Return `name` unchanged, or raise InvalidName stating the rule."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidName(
            f"{name!r} is not a valid config name: {NAME_RULE}",
            [Problem("", f"invalid name {name!r}: {NAME_RULE}", "name")],
        )
    return name


def is_valid_name(name: str) -> bool:
    return isinstance(name, str) and _NAME_RE.fullmatch(name) is not None


def check_pattern(pattern: str) -> str:
    """Return `pattern` unchanged, or raise InvalidName stating the rule."""
    if pattern == MATCH_ALL:
        return pattern
    base = pattern[:-2] if pattern.endswith("/*") else pattern
    if not is_valid_name(base):
        raise InvalidName(
            f"{pattern!r} is not a valid pattern: {PATTERN_RULE}; {NAME_RULE}",
            [Problem("", f"invalid pattern {pattern!r}: {PATTERN_RULE}", "name")],
        )
    return pattern


def matches(pattern: str, name: str) -> bool:
    if pattern == MATCH_ALL:
        return True
    if pattern.endswith("/*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def specificity(pattern: str) -> tuple[int, int]:
    """A sort key: higher is more specific. Exact names beat every prefix."""
    if pattern == MATCH_ALL:
        return (0, 0)
    if pattern.endswith("/*"):
        return (1, len(pattern))
    return (2, len(pattern))


def most_specific(patterns: Iterable[str], name: str) -> str | None:
    """The pattern among `patterns` that binds `name`, or None if none matches."""
    candidates = [p for p in patterns if matches(p, name)]
    return max(candidates, key=specificity) if candidates else None


def covers(pattern: str, other: str) -> bool:
    """True when every name `other` can match is also matched by `pattern`."""
    if pattern == MATCH_ALL:
        return True
    if other == MATCH_ALL:
        return False
    if other.endswith("/*"):
        return pattern.endswith("/*") and other.startswith(pattern[:-1])
    return matches(pattern, other)
