"""Parse config documents written as JSON, YAML or TOML into JSON values.

Parsing is strict where the formats are sloppy, because a config that silently
means something else is how outages start:

- duplicate keys are an error (JSON and YAML would keep the last one);
- YAML booleans are only `true` / `false` (YAML 1.1 also reads `no`, `off` and
  `y` as booleans: the "Norway problem");
- YAML and TOML dates stay strings in ISO 8601 (JSON has no date type);
- YAML mapping keys are always strings, as in JSON (`404:` is the key "404");
- NaN and Infinity are refused (not JSON).

Every error carries the line and column, and `Document.locate` maps a JSON
pointer back to its line so validation problems can point into the file too.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from ringfence.core import pointer as jp
from ringfence.errors import DocumentError, Problem

FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}


@dataclass
class Document:
    value: Any
    format: str
    source: str = "<input>"
    _text: str = field(default="", repr=False)
    _lines: dict[str, tuple[int, int]] | None = field(default=None, repr=False)

    def locate(self, pointer: str) -> tuple[int, int] | None:
        """1-based (line, column) of the value at `pointer`, or of its nearest ancestor."""
        if self._lines is None:
            self._lines = _index_positions(self._text, self.format)
        tokens = jp.split(pointer) if pointer.startswith("/") else []
        while True:
            found = self._lines.get(jp.join(tokens))
            if found is not None:
                return found
            if not tokens:
                return None
            tokens = tokens[:-1]

    def locate_problems(self, problems: list[Problem]) -> list[Problem]:
        out = []
        for p in problems:
            where = self.locate(p.pointer)
            out.append(Problem(p.pointer, p.message, p.validator, *(where or (None, None))))
        return out


def format_for(filename: str) -> str | None:
    for suffix, fmt in FORMATS.items():
        if filename.lower().endswith(suffix):
            return fmt
    return None


def parse(text: str, fmt: str, source: str = "<input>") -> Document:
    """Parse `text` written in `fmt` ("json", "yaml" or "toml")."""
    parsers: dict[str, Callable[[str, str], Any]] = {
        "json": _parse_json,
        "yaml": _parse_yaml,
        "toml": _parse_toml,
    }
    if fmt not in parsers:
        raise DocumentError(f"{source}: unknown format {fmt!r}; use json, yaml or toml")
    value = parsers[fmt](text, source)
    problems = json_problems(value)
    if problems:
        doc = Document(value, fmt, source, text)
        located = doc.locate_problems(problems)
        raise DocumentError(f"{source}: {located[0].where()}: {located[0].message}", located)
    return Document(value, fmt, source, text)


def json_problems(value: Any) -> list[Problem]:
    """Problems that keep `value` from being JSON (NaN, Infinity, odd types)."""
    problems: list[Problem] = []

    def walk(node: Any, path: list[str | int]) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    problems.append(Problem(jp.join(path), f"key {key!r} is not a string", "syntax"))
                    continue
                walk(child, [*path, key])
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, [*path, i])
        elif isinstance(node, float) and not math.isfinite(node):
            problems.append(
                Problem(jp.join(path), f"{node} is not a JSON number; use a finite number or a string", "syntax")
            )
        elif node is not None and not isinstance(node, str | int | float | bool):
            problems.append(
                Problem(jp.join(path), f"a {type(node).__name__} is not a JSON value", "syntax")
            )

    walk(value, [])
    return problems


def _syntax_error(source: str, message: str, line: int | None, column: int | None) -> DocumentError:
    where = f"line {line}, column {column}: " if line is not None else ""
    return DocumentError(
        f"{source}: {where}{message}", [Problem("", message, "syntax", line, column)]
    )


# --- JSON ---------------------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _parse_json(text: str, source: str) -> Any:
    # NaN and Infinity parse as floats here, so that json_problems() refuses them with
    # their pointer and Document.locate() gives them a line.
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise _syntax_error(source, exc.msg, exc.lineno, exc.colno) from None
    except _DuplicateKey as exc:
        key = str(exc)
        line, column = _json_duplicate_position(text, key)
        raise _syntax_error(
            source, f"duplicate key {key!r}: each key may appear once per object", line, column
        ) from None
    except ValueError as exc:
        raise _syntax_error(source, str(exc), None, None) from None


def _json_duplicate_position(text: str, key: str) -> tuple[int | None, int | None]:
    """Where `key` appears a second time in one object (the same key in two objects is fine)."""
    try:
        root = yaml.compose(_json_as_yaml(text), Loader=StrictLoader)
    except yaml.YAMLError:
        return None, None
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, value_node in node.value:
                if key_node.value == key and key in seen:
                    return key_node.start_mark.line + 1, key_node.start_mark.column + 1
                seen.add(key_node.value)
                stack.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None, None


def _json_as_yaml(text: str) -> str:
    # YAML refuses tabs where JSON allows them as whitespace. A raw tab cannot be inside a
    # JSON string (json.loads is strict), so this keeps every value and every column.
    return text.replace("\t", " ")


# --- YAML ---------------------------------------------------------------------------------


_MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with JSON's data model (see the module docstring)."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Remember the keys a mapping spells out itself, before merges (`<<: *defaults`) add
        # theirs: a written key may override a merged one, but not repeat another written one.
        if not hasattr(self, "_written_keys"):
            self._written_keys: dict[int, set[int]] = {}
        written = {id(key) for key, _ in node.value if key.tag != _MERGE_TAG}
        self._written_keys.setdefault(id(node), written)
        super().flatten_mapping(node)


# YAML 1.2 core schema scalars instead of YAML 1.1's: 1.1 reads `no` as false, `01234` as
# octal 668, `1:30` as 90 (base 60) and `1_000` as 1000, none of which a person means.
_YAML11_TAGS = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int",
                "tag:yaml.org,2002:float"}
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML11_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"),
)


def _construct_int(loader: StrictLoader, node: yaml.ScalarNode) -> int:
    text = str(node.value)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # leading zeros are decimal in YAML 1.2: `01234` is 1234


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    written = loader._written_keys[id(node)]
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain scalar (JSON keys are strings)",
                key_node.start_mark,
            )
        key = str(key_node.value)
        if id(key_node) in written:  # merged keys: the later one wins, as YAML's `<<` says
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found duplicate key {key!r}: each key may appear once per mapping",
                    key_node.start_mark,
                )
            seen.add(key)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


def _construct_timestamp_text(loader: StrictLoader, node: yaml.ScalarNode) -> str:
    return str(node.value)


StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_text)
StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _parse_yaml(text: str, source: str) -> Any:
    try:
        documents = list(yaml.load_all(text, Loader=StrictLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise _syntax_error(source, message, line, column) from None
    except yaml.YAMLError as exc:
        raise _syntax_error(source, str(exc), None, None) from None
    if not documents or (documents[0] is None and not text.strip("-. \n\t")):
        raise _syntax_error(
            source, "the document is empty; a config needs a value (use {} for an empty one)", 1, 1
        )
    if len(documents) != 1:
        found = "no document" if not documents else f"{len(documents)} documents"
        raise _syntax_error(source, f"expected exactly one YAML document, found {found}", None, None)
    return documents[0]


def _yaml_positions(text: str) -> dict[str, tuple[int, int]]:
    positions: dict[str, tuple[int, int]] = {}

    def walk(node: yaml.Node, path: list[str | int]) -> None:
        positions[jp.join(path)] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = [*path, str(key_node.value)]
                walk(value_node, child)
                # Point at the key, where a person looks for it.
                positions[jp.join(child)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, [*path, i])

    try:
        root = yaml.compose(text, Loader=StrictLoader)
    except yaml.YAMLError:
        return positions
    if root is not None:
        walk(root, [])
    return positions


# --- TOML ---------------------------------------------------------------------------------

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def _plain_dates(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _plain_dates(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain_dates(v) for v in node]
    if isinstance(node, dt.date | dt.time):
        return node.isoformat()
    return node


def _parse_toml(text: str, source: str) -> Any:
    try:
        return _plain_dates(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.search(message)
        line, column = (int(found[1]), int(found[2])) if found else (None, None)
        raise _syntax_error(source, _TOML_POSITION.sub("", message).strip(), line, column) from None


_TOML_KEY_PART = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_TOML_KEY = re.compile(rf"^\s*({_TOML_KEY_PART}(?:\s*\.\s*{_TOML_KEY_PART})*)\s*=")
_TOML_TABLE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")


def _toml_key_parts(dotted: str) -> list[str]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)', dotted)
    return [quoted or single or bare for quoted, single, bare in parts]


def _toml_positions(text: str) -> dict[str, tuple[int, int]]:
    positions: dict[str, tuple[int, int]] = {"": (1, 1)}
    table: list[str | int] = []
    array_counts: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TOML_TABLE.match(line)
        if header:
            names = _toml_key_parts(header[2])
            # A table below an array of tables belongs to its latest element: [fruits.x]
            # after [[fruits]] is /fruits/<n>/x.
            parts: list[str | int] = []
            for name in names[:-1] if header[1] == "[[" else names:
                parts.append(name)
                if jp.join(parts) in array_counts:
                    parts.append(array_counts[jp.join(parts)])
            if header[1] == "[[":
                parts.append(names[-1])
                array_key = jp.join(parts)
                array_counts[array_key] = array_counts.get(array_key, -1) + 1
                parts.append(array_counts[array_key])
            table = parts
            positions.setdefault(jp.join(table), (number, 1))
            continue
        key = _TOML_KEY.match(line)
        if key:
            pointer = jp.join([*table, *_toml_key_parts(key[1])])
            positions.setdefault(pointer, (number, len(line) - len(line.lstrip()) + 1))
    return positions


def _index_positions(text: str, fmt: str) -> dict[str, tuple[int, int]]:
    if fmt == "toml":
        return _toml_positions(text)
    if fmt == "json":
        text = _json_as_yaml(text)
    return _yaml_positions(text)  # JSON's syntax is (nearly) YAML's, which keeps positions
