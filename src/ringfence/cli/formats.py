"""Rendering a config value as JSON, YAML or TOML, for `ringfence get --format`.

TOML has neither null nor a non-table document root, so a value with either
cannot be written as TOML; we say so instead of writing something else.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from ringfence.cli.exits import CliError
from ringfence.core import pointer as jp

FORMATS = ("json", "yaml", "toml")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def render(value: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    if fmt == "toml":
        return to_toml(value)
    raise CliError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def to_toml(value: Any) -> str:
    if not isinstance(value, dict):
        raise CliError(f"TOML output needs an object at the root, and this value is a "
                       f"{type(value).__name__}; use --format json or yaml")
    lines: list[str] = []
    _table(value, [], [], lines)
    return "\n".join(lines).strip("\n") + "\n"


def _string(text: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes; TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _inline(value: Any, path: list[str | int]) -> str:
    if value is None:
        raise CliError(f"TOML has no null, and {jp.join(path) or '(root)'} is null; "
                       "use --format json or yaml")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise CliError(f"TOML integers are 64-bit, and {jp.join(path) or '(root)'} is {value}; "
                       "use --format json or yaml")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v, [*path, i]) for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_inline(v, [*path, k])}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise CliError(f"{jp.join(path)}: a {type(value).__name__} is not a JSON value")


def _table(table: dict[str, Any], keys: list[str], path: list[str | int], lines: list[str]) -> None:
    """Write `table`, whose header is `keys`; `path` is its JSON pointer, for errors."""
    # Plain keys first: once a [header] is written, every later key belongs to that table.
    for key, value in table.items():
        if not isinstance(value, dict) and not _is_table_array(value):
            lines.append(f"{_key(key)} = {_inline(value, [*path, key])}")
    for key, value in table.items():
        header = ".".join(_key(k) for k in [*keys, key])
        if isinstance(value, dict):
            lines += ["", f"[{header}]"]
            _table(value, [*keys, key], [*path, key], lines)
        elif _is_table_array(value):
            for i, item in enumerate(value):
                lines += ["", f"[[{header}]]"]
                _table(item, [*keys, key], [*path, key, i], lines)
