"""Schema and validator checks of a config value (ringfence.core.validation)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ringfence.core.validation import Validator, check_schema, validate, validator_problems
from ringfence.errors import InvalidInput, Problem
from ringfence.validators.secrets import no_plaintext_secrets

SCHEMA = {
    "type": "object",
    "properties": {
        "max": {"type": "integer", "minimum": 0},
        "name": {"type": "string"},
        "ports": {"type": "array", "items": {"type": "integer"}},
        "limits": {
            "type": "object",
            "properties": {"a/b": {"type": "number"}},
        },
        "host": {"type": "string", "format": "ipv4"},
    },
    "required": ["name", "max"],
    "additionalProperties": False,
}

BAD_VALUE = {
    "max": -1,
    "ports": [80, "http", 443, "https"],
    "limits": {"a/b": "lots"},
    "extra": True,
    "host": "999.1.1.1",
}


def test_every_schema_problem_is_reported_at_once_with_its_pointer() -> None:
    problems = validate("payments/limits", BAD_VALUE, SCHEMA)
    assert [p.pointer for p in problems] == [
        "",  # additionalProperties
        "",  # required: name
        "/host",
        "/limits/a~1b",  # the key is escaped
        "/max",
        "/ports/1",
        "/ports/3",
    ]
    assert all(p.validator == "schema" for p in problems)
    messages = {p.pointer: p.message for p in problems}
    assert "'name' is a required property" in [p.message for p in problems]
    assert "-1 is less than the minimum of 0" in messages["/max"]
    assert "ipv4" in messages["/host"], "formats are checked, not only annotated"


def test_problem_order_is_stable() -> None:
    first = validate("payments/limits", BAD_VALUE, SCHEMA)
    # Same input built in another key order, validated again: the same list, in the same order.
    reordered = dict(reversed(list(BAD_VALUE.items())))
    assert validate("payments/limits", reordered, SCHEMA) == first
    assert validate("payments/limits", BAD_VALUE, SCHEMA) == first


def test_a_valid_value_has_no_problems() -> None:
    good = {"name": "limits", "max": 10, "ports": [80], "limits": {"a/b": 1.5}, "host": "10.0.0.1"}
    assert validate("payments/limits", good, SCHEMA) == []


def test_without_a_schema_only_validators_run() -> None:
    assert validate("payments/limits", {"anything": [1, 2]}, None) == []


def test_an_unresolvable_ref_is_a_problem_not_a_crash() -> None:
    problems = validate("x", {"a": 1}, {"$ref": "#/$defs/missing"})
    assert len(problems) == 1
    assert "cannot be resolved" in problems[0].message


# --- check_schema -------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [SCHEMA, {}, True, False, {"type": ["string", "null"]}])
def test_check_schema_accepts_valid_schemas(schema: Any) -> None:
    check_schema(schema)  # must not raise
    # And a valid schema is then usable to validate.
    validate("x", "text", schema)


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"type": 5}, "/type"),
        ({"properties": {"max": {"type": "integer", "minimum": "zero"}}}, "/properties/max/minimum"),
        ({"type": "object", "required": "name"}, "/required"),
        ({"items": {"minItems": -1}}, "/items/minItems"),
    ],
)
def test_check_schema_rejects_invalid_schemas_with_a_pointer(schema: Any, pointer: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_schema(schema)
    problem = caught.value.problems[0]
    assert problem.pointer == pointer
    assert problem.message
    assert pointer in caught.value.detail
    assert "2020-12" in caught.value.detail


@pytest.mark.parametrize("schema", [[{"type": "string"}], "string", 3, None])
def test_check_schema_rejects_non_objects(schema: Any) -> None:
    with pytest.raises(InvalidInput, match="must be an object"):
        check_schema(schema)


# --- validators ---------------------------------------------------------------------------


def max_over_min(name: str, value: Any) -> Iterator[tuple[str, str]]:
    if value.get("max", 0) < value.get("min", 0):
        yield ("/max", "max must be at least min")


def problem_objects(name: str, value: Any) -> list[Problem]:
    # The validator field is overwritten with the validator's registered name.
    return [Problem("/min", "min looks odd", "whatever-the-plugin-said", line=3)]


def test_validators_may_return_tuples_or_problems() -> None:
    validators = [Validator.wrap("ranges", max_over_min), Validator.wrap("odd", problem_objects)]
    problems = validate("payments/limits", {"max": 1, "min": 5}, None, validators)
    assert problems == [
        Problem("/min", "min looks odd", "odd"),
        Problem("/max", "max must be at least min", "ranges"),
    ]


def test_schema_problems_come_first_then_validators_by_name() -> None:
    validators = [Validator.wrap("zeta", max_over_min), Validator.wrap("alpha", problem_objects)]
    problems = validate("payments/limits", {"max": 1, "min": 5, "name": 3}, SCHEMA, validators)
    assert [p.validator for p in problems] == ["schema", "schema", "alpha", "zeta"]
    assert [p.pointer for p in problems[:2]] == ["", "/name"]  # `min` is not allowed; name: type
    # The order of the validators given does not change the answer.
    assert validate("payments/limits", {"max": 1, "min": 5, "name": 3}, SCHEMA,
                    list(reversed(validators))) == problems


def test_a_validator_that_raises_becomes_a_problem() -> None:
    def broken(name: str, value: Any) -> Iterator[tuple[str, str]]:
        yield ("/a", "found before the crash")
        raise ZeroDivisionError("division by zero")

    validators = [Validator("broken", broken), Validator("ranges", max_over_min)]
    problems = validate("payments/limits", {"max": 1, "min": 5}, None, validators)
    assert Problem("/a", "found before the crash", "broken") in problems
    crash = [p for p in problems if "failed to run" in p.message]
    assert len(crash) == 1
    assert crash[0].validator == "broken"
    assert "'broken'" in crash[0].message
    assert "ZeroDivisionError: division by zero" in crash[0].message
    # The other validators still ran.
    assert Problem("/max", "max must be at least min", "ranges") in problems


@pytest.mark.parametrize(
    "check",
    [
        lambda name, value: None,  # not iterable
        lambda name, value: [("/only-a-pointer",)],  # a malformed pair
        lambda name, value: [42],  # neither a Problem nor a pair
        lambda name, value: value["missing"],  # KeyError
    ],
)
def test_a_misbehaving_validator_never_propagates(check: Any) -> None:
    problems = validator_problems(Validator("plugin", check), "x", {"a": 1})
    assert len(problems) == 1
    assert problems[0].validator == "plugin"
    assert "failed to run" in problems[0].message


def test_applies_to_limits_a_validator_to_some_configs() -> None:
    def payments_only(name: str, value: Any) -> list[tuple[str, str]]:
        return [("", f"checked {name}")]

    payments_only.applies_to = ("payments/*", "billing/invoices")  # type: ignore[attr-defined]
    validator = Validator.wrap("payments-only", payments_only)
    assert validator.applies_to == ("payments/*", "billing/invoices")
    assert validate("payments/limits", {}, None, [validator]) == [
        Problem("", "checked payments/limits", "payments-only")
    ]
    assert validate("billing/invoices", {}, None, [validator]) != []
    assert validate("billing/other", {}, None, [validator]) == []
    assert validate("payments", {}, None, [validator]) == []


def test_a_validator_without_applies_to_runs_everywhere() -> None:
    validator = Validator.wrap("ranges", max_over_min)
    assert validator.applies_to == ("*",)
    assert validate("any/config/at/all", {"max": 0, "min": 1}, None, [validator]) != []


# --- the secrets validator ----------------------------------------------------------------

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAuX0\n-----END RSA PRIVATE KEY-----\n"
)
SECRETS = Validator.wrap("secrets", no_plaintext_secrets)


def secret_problems(value: Any) -> list[Problem]:
    return validate("payments/limits", value, None, [SECRETS])


def test_secrets_flags_a_pem_private_key_at_its_pointer() -> None:
    problems = secret_problems({"tls": {"certs": ["ok", {"key": PEM}]}})
    assert len(problems) == 1
    assert problems[0].pointer == "/tls/certs/1/key"
    assert problems[0].validator == "secrets"
    assert "PEM private key" in problems[0].message
    assert "secret manager" in problems[0].message, "the message says what to do instead"


def test_secrets_flags_an_aws_access_key_id_at_its_pointer() -> None:
    problems = secret_problems({"aws": {"s3/creds": "id=AKIAIOSFODNN7EXAMPLE"}, "region": "eu"})
    assert [p.pointer for p in problems] == ["/aws/s3~1creds"]
    assert "AWS access key id" in problems[0].message


@pytest.mark.parametrize(
    "secret",
    [
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----",
        "ASIAY34FZKBOKMUTVV7A",
        "ghp_" + "a" * 36,
        "xoxb-123456789012-abcdef",
    ],
)
def test_secrets_flags_other_well_known_formats(secret: str) -> None:
    assert [p.pointer for p in secret_problems({"value": secret})] == ["/value"]


def test_secrets_flags_each_string_once_and_each_place() -> None:
    value = {"a": PEM + "AKIAIOSFODNN7EXAMPLE", "b": ["AKIAIOSFODNN7EXAMPLE"]}
    assert [p.pointer for p in secret_problems(value)] == ["/a", "/b/0"]


@pytest.mark.parametrize(
    "value",
    [
        {"name": "payments", "max": 100, "ratio": 0.5, "on": True, "none": None},
        {"note": "rotate the private key monthly; see -----BEGIN PUBLIC KEY-----"},
        {"id": "AKIA-not-a-key", "short": "AKIA1234", "lower": "akiaiosfodnn7example"},
        {"token_ref": "vault://payments/aws", "github": "ghp_short"},
        {"hash": "sha256:" + "0" * 64, "AKIAIOSFODNN7EXAMPLE": "a key name is not a value"},
    ],
)
def test_secrets_passes_ordinary_values(value: Any) -> None:
    assert secret_problems(value) == []
