"""Refuse configs that carry credentials in plain text.

Configs are read by every instance, shown in diffs and kept forever in history:
a private key or a cloud access key pasted into one leaks everywhere at once.
The patterns are narrow on purpose (key headers and well-known key formats), so
an ordinary value never trips them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ringfence.core import pointer as jp

_PATTERNS = [
    (re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"), "a PEM private key"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"), "a GitHub token"),
    (re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b"), "a Slack token"),
]


def no_plaintext_secrets(config_name: str, value: Any) -> Iterator[tuple[str, str]]:
    def walk(node: Any, path: list[str | int]) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for key, child in node.items():
                yield from walk(child, [*path, key])
        elif isinstance(node, list):
            for i, child in enumerate(node):
                yield from walk(child, [*path, i])
        elif isinstance(node, str):
            for pattern, what in _PATTERNS:
                if pattern.search(node):
                    yield (jp.join(path), f"looks like {what}; keep secrets in a secret manager and "
                                          "put only a reference to them in the config")
                    break

    yield from walk(value, [])
