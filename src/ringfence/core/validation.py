"""Validation of a config value: its JSON Schema (2020-12) and pluggable validators.

Every problem is reported at once, each with its JSON pointer, a message that
says what to fix, and the name of the check that found it.

A validator is any callable `(config_name, value) -> iterable of problems`,
where a problem is a `Problem` or a `(pointer, message)` pair. Set an
`applies_to` attribute (a tuple of name patterns) to limit it to some configs.
Third-party validators register under the `ringfence.validators` entry point
group; `ringfence.plugins` loads them, this module only runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

from ringfence.core import pointer as jp
from ringfence.core.names import MATCH_ALL, matches
from ringfence.errors import InvalidInput, Problem

CheckResult = Iterable[Problem | tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Validator:
    name: str
    check: Callable[[str, Any], CheckResult]
    applies_to: tuple[str, ...] = (MATCH_ALL,)

    @classmethod
    def wrap(cls, name: str, check: Callable[[str, Any], CheckResult]) -> Validator:
        patterns = getattr(check, "applies_to", (MATCH_ALL,))
        return cls(name, check, tuple(patterns))

    def applies(self, config_name: str) -> bool:
        return any(matches(p, config_name) for p in self.applies_to)


def check_schema(schema: Any) -> None:
    """Raise InvalidInput when `schema` is not a usable JSON Schema 2020-12."""
    if not isinstance(schema, dict | bool):
        raise InvalidInput(
            "a JSON Schema must be an object (or a boolean)",
            [Problem("", f"expected an object, got {type(schema).__name__}", "schema")],
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        pointer = jp.join(exc.absolute_path)
        raise InvalidInput(
            f"not a valid JSON Schema (2020-12) at {pointer or 'the root'}: {exc.message}",
            [Problem(pointer, exc.message, "metaschema")],
        ) from None


def compile_schema(schema: Any) -> Draft202012Validator:
    """A reusable validator for `schema`; compiling once per schema version saves work per push."""
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_problems(schema: Any, value: Any) -> list[Problem]:
    """Problems of `value` under `schema` (a JSON Schema, or one made by `compile_schema`)."""
    validator = schema if isinstance(schema, Draft202012Validator) else compile_schema(schema)
    problems = []
    try:
        for error in validator.iter_errors(value):
            problems.append(Problem(jp.join(error.absolute_path), error.message, "schema"))
    except Unresolvable as exc:
        problems.append(Problem("", f"the schema has a $ref that cannot be resolved: {exc}", "schema"))
    return problems


def validator_problems(validator: Validator, config_name: str, value: Any) -> list[Problem]:
    problems = []
    try:
        for found in validator.check(config_name, value):
            if isinstance(found, Problem):
                problems.append(Problem(found.pointer, found.message, validator.name))
            else:
                pointer, message = found
                problems.append(Problem(pointer, message, validator.name))
    except Exception as exc:  # a plugin's bug must not take the push down with a 500
        problems.append(
            Problem("", f"validator {validator.name!r} failed to run: {type(exc).__name__}: {exc}",
                    validator.name)
        )
    return problems


def validate(
    config_name: str,
    value: Any,
    schema: Any | None,
    validators: Sequence[Validator] = (),
) -> list[Problem]:
    """Every problem with `value`, in a stable order (schema first, then by pointer)."""
    problems = schema_problems(schema, value) if schema is not None else []
    for validator in validators:
        if validator.applies(config_name):
            problems.extend(validator_problems(validator, config_name, value))
    order = {"schema": 0}
    return sorted(problems, key=lambda p: (order.get(p.validator, 1), p.validator, p.pointer, p.message))
