"""Parsing config documents written as JSON, YAML or TOML (ringfence.core.documents)."""

from __future__ import annotations

import textwrap

import pytest

from ringfence.core.documents import Document, format_for, json_problems, parse
from ringfence.errors import DocumentError, InvalidInput, Problem


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def refused(text: str, fmt: str) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        parse(text, fmt, source="limits." + fmt)
    assert caught.value.problems, "a refusal must say what is wrong"
    return caught.value


# --- the three formats --------------------------------------------------------------------

SAME_CONFIG = {
    "json": '{"name": "limits", "max": 10, "ratio": 0.5, "on": true, "off": null, "tags": ["a", "b"],'
    ' "eu": {"max": 5}}',
    "yaml": dedent(
        """
        name: limits
        max: 10
        ratio: 0.5
        on: true
        off: null
        tags: [a, b]
        eu:
          max: 5
        """
    ),
    "toml": dedent(
        """
        name = "limits"
        max = 10
        ratio = 0.5
        on = true
        tags = ["a", "b"]

        [eu]
        max = 5
        """
    ),
}
EXPECTED = {"name": "limits", "max": 10, "ratio": 0.5, "on": True, "off": None, "tags": ["a", "b"],
            "eu": {"max": 5}}


@pytest.mark.parametrize("fmt", ["json", "yaml", "toml"])
def test_each_format_parses_to_the_same_json_value(fmt: str) -> None:
    doc = parse(SAME_CONFIG[fmt], fmt, source=f"limits.{fmt}")
    expected = dict(EXPECTED)
    if fmt == "toml":
        del expected["off"]  # TOML has no null
    assert doc.value == expected
    assert type(doc.value["max"]) is int
    assert type(doc.value["ratio"]) is float
    assert doc.value["on"] is True
    assert doc.format == fmt
    assert doc.source == f"limits.{fmt}"


@pytest.mark.parametrize(
    ("filename", "fmt"),
    [("a.json", "json"), ("a.yaml", "yaml"), ("A.YML", "yaml"), ("dir/a.toml", "toml"), ("a.ini", None),
     ("json", None)],
)
def test_format_for_filename(filename: str, fmt: str | None) -> None:
    assert format_for(filename) == fmt


def test_unknown_format_is_refused_naming_the_formats() -> None:
    with pytest.raises(DocumentError, match="json, yaml or toml"):
        parse("x = 1", "ini")


def test_document_errors_are_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        parse("{", "json")


# --- syntax errors carry the line and column ----------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "text", "line", "column"),
    [
        ("json", '{"a": 1,\n "b": }', 2, 7),
        ("json", '{\n  "a": 1\n  "b": 2\n}', 3, 3),  # missing comma
        ("json", '{"a": 1}\n{"b": 2}', 2, 1),  # two documents
        ("yaml", "a: 1\n  b: 2\n", 2, 4),  # bad indentation
        ("yaml", "a:\n  - 1\n  - [2\n", 4, 1),  # unclosed flow sequence
        ("yaml", "? [a, b]\n: 1\n", 1, 3),  # a key that is not a string
        ("yaml", "a: !!python/object:os.system x\n", 1, 4),  # no arbitrary objects
        ("toml", "a = 1\nb = \n", 2, 5),
        ("toml", "[server]\nport = 1\n[server]\n", 3, 8),
        ("toml", 'a = 1\nname = "open\n', 2, 13),
    ],
)
def test_malformed_input_reports_line_and_column(fmt: str, text: str, line: int, column: int) -> None:
    error = refused(text, fmt)
    problem = error.problems[0]
    assert (problem.line, problem.column) == (line, column)
    assert problem.validator == "syntax"
    assert problem.message
    assert f"line {line}, column {column}" in error.detail
    assert error.detail.startswith(f"limits.{fmt}: "), "the detail names the file"


# --- duplicate keys -----------------------------------------------------------------------


def test_json_duplicate_key_is_refused_with_its_line() -> None:
    error = refused('{\n  "max": 1,\n  "min": 0,\n  "max": 2\n}', "json")
    assert "duplicate key 'max'" in error.detail
    assert (error.problems[0].line, error.problems[0].column) == (4, 3)


def test_json_duplicate_key_line_ignores_the_same_key_in_other_objects() -> None:
    text = dedent(
        """
        {
          "eu": {"max": 1},
          "us": {"max": 2},
          "ap": {
            "max": 3,
            "max": 4
          }
        }
        """
    )
    error = refused(text, "json")
    assert "duplicate key 'max'" in error.detail
    assert error.problems[0].line == 6


def test_yaml_duplicate_key_is_refused_with_its_line() -> None:
    error = refused("limits:\n  max: 1\n  min: 0\n  max: 2\n", "yaml")
    assert "duplicate key 'max'" in error.detail
    assert (error.problems[0].line, error.problems[0].column) == (4, 3)


def test_same_key_in_different_objects_is_fine() -> None:
    assert parse('{"eu": {"max": 1}, "us": {"max": 2}}', "json").value == {
        "eu": {"max": 1}, "us": {"max": 2}}
    assert parse("eu: {max: 1}\nus: {max: 2}\n", "yaml").value == {"eu": {"max": 1}, "us": {"max": 2}}


# --- YAML's data model is JSON's ----------------------------------------------------------


def test_yaml_norway_problem_and_friends_stay_strings() -> None:
    doc = parse(
        "country: NO\nenabled: yes\ndisabled: off\nshort: y\nupper: ON\nt: true\nf: false\n"
        "T: True\nF: FALSE\n",
        "yaml",
    )
    assert doc.value == {
        "country": "NO", "enabled": "yes", "disabled": "off", "short": "y", "upper": "ON",
        "t": True, "f": False, "T": True, "F": False,
    }
    for key in ("t", "f", "T", "F"):
        assert type(doc.value[key]) is bool


def test_yaml_dates_and_timestamps_stay_strings() -> None:
    doc = parse(
        "day: 2024-02-29\nat: 2024-02-29T12:30:00Z\nspaced: 2024-02-29 12:30:00\n"
        "tagged: !!timestamp 2024-03-01\n",
        "yaml",
    )
    assert doc.value == {
        "day": "2024-02-29",
        "at": "2024-02-29T12:30:00Z",
        "spaced": "2024-02-29 12:30:00",
        "tagged": "2024-03-01",
    }


def test_yaml_scalar_keys_become_string_keys() -> None:
    doc = parse("404: not found\n500: error\n1.5: ratio\ntrue: yes-key\nnested: {7: seven}\n", "yaml")
    assert doc.value == {
        "404": "not found", "500": "error", "1.5": "ratio", "true": "yes-key", "nested": {"7": "seven"},
    }
    assert all(type(k) is str for k in doc.value)


def test_yaml_merge_keys_still_work() -> None:
    doc = parse("base: &base {timeout: 5, retries: 2}\nfast:\n  <<: *base\n  timeout: 1\n", "yaml")
    assert doc.value["fast"] == {"timeout": 1, "retries": 2}


@pytest.mark.parametrize(
    ("fmt", "text", "pointer", "line"),
    [
        ("yaml", "a: 1\nratio: .nan\n", "/ratio", 2),
        ("yaml", "limits:\n  - 1\n  - .inf\n", "/limits/1", 3),
        ("yaml", "low: -.Inf\n", "/low", 1),
        ("json", '{"a": 1,\n "ratio": NaN}', "/ratio", 2),
        ("json", '{"limits": [1,\n  -Infinity]}', "/limits/1", 2),
        ("json", '{"big": 1e400}', "/big", 1),  # overflows to infinity
    ],
)
def test_nan_and_infinity_are_refused_at_their_pointer(fmt: str, text: str, pointer: str, line: int) -> None:
    error = refused(text, fmt)
    assert error.problems[0].pointer == pointer
    assert error.problems[0].line == line
    assert "not a JSON number" in error.problems[0].message


def test_multiple_yaml_documents_are_refused() -> None:
    error = refused("a: 1\n---\nb: 2\n", "yaml")
    assert "exactly one YAML document" in error.detail
    assert "2 documents" in error.detail


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "---\n...\n"])
def test_empty_yaml_is_refused_with_a_hint(text: str) -> None:
    error = refused(text, "yaml")
    assert "empty" in error.detail
    assert "{}" in error.detail, "the message says how to write an empty config"


def test_yaml_explicit_null_is_a_value_not_an_empty_document() -> None:
    assert parse("null\n", "yaml").value is None


# --- TOML ---------------------------------------------------------------------------------


def test_toml_dates_and_times_become_iso_strings() -> None:
    doc = parse(
        dedent(
            """
            offset = 2024-02-29T12:30:00Z
            shifted = 2024-02-29T12:30:00.5+02:00
            local = 2024-02-29T12:30:00
            day = 2024-02-29
            clock = 07:45:00
            [nested]
            days = [2024-01-01, 2024-12-31]
            """
        ),
        "toml",
    )
    assert doc.value == {
        "offset": "2024-02-29T12:30:00+00:00",
        "shifted": "2024-02-29T12:30:00.500000+02:00",
        "local": "2024-02-29T12:30:00",
        "day": "2024-02-29",
        "clock": "07:45:00",
        "nested": {"days": ["2024-01-01", "2024-12-31"]},
    }


# --- locate: JSON pointers back to lines --------------------------------------------------

YAML_DOC = dedent(
    """
    service: payments
    limits:
      eu:
        max: 100
        min: 1
      regions:
        - name: eu-west
          weight: 3
        - name: us-east
          weight: 1
    """
)


@pytest.mark.parametrize(
    ("pointer", "where"),
    [
        ("", (1, 1)),
        ("/service", (1, 1)),
        ("/limits", (2, 1)),
        ("/limits/eu/max", (4, 5)),
        ("/limits/eu/min", (5, 5)),
        ("/limits/regions/0", (7, 7)),
        ("/limits/regions/1/weight", (10, 7)),
        # Not there: the nearest ancestor that is.
        ("/limits/eu/missing", (3, 3)),
        ("/limits/regions/7/name", (6, 3)),
        ("/nothing/at/all", (1, 1)),
    ],
)
def test_locate_in_yaml(pointer: str, where: tuple[int, int]) -> None:
    assert parse(YAML_DOC, "yaml").locate(pointer) == where


JSON_DOC = '{\n  "service": "payments",\n  "limits": {\n    "eu": {"max": 100, "min": 1},\n' \
    '    "a/b": [10,\n      20]\n  }\n}\n'


@pytest.mark.parametrize(
    ("pointer", "where"),
    [
        ("/service", (2, 3)),
        ("/limits", (3, 3)),
        ("/limits/eu", (4, 5)),
        ("/limits/eu/min", (4, 24)),
        ("/limits/a~1b/1", (6, 7)),
        ("/limits/eu/nope", (4, 5)),
    ],
)
def test_locate_in_json(pointer: str, where: tuple[int, int]) -> None:
    assert parse(JSON_DOC, "json").locate(pointer) == where


def test_locate_in_json_indented_with_tabs() -> None:
    doc = parse('{\n\t"limits": {\n\t\t"max": 100\n\t}\n}\n', "json")
    assert doc.locate("/limits/max") == (3, 3)


TOML_DOC = dedent(
    """
    title = "payments"
    owner.team = "core"

    [limits]
    max = 100
    eu.max = 50

    [limits.regions.west]
    weight = 3

    [[rules]]
    name = "first"
    [rules.match]
    path = "/pay"

    [[rules]]
    name = "second"
    [[rules.steps]]
    action = "log"
    [[rules.steps]]
    action = "deny"
    """
)


@pytest.mark.parametrize(
    ("pointer", "line"),
    [
        ("", 1),
        ("/title", 1),
        ("/owner/team", 2),  # dotted key
        ("/limits", 4),
        ("/limits/max", 5),
        ("/limits/eu/max", 6),  # dotted key inside a table
        ("/limits/regions/west", 8),  # nested table header
        ("/limits/regions/west/weight", 9),
        ("/rules/0", 11),  # array of tables
        ("/rules/0/name", 12),
        ("/rules/0/match/path", 14),  # a table inside an element of an array of tables
        ("/rules/1/name", 17),
        ("/rules/1/steps/0/action", 19),  # an array of tables inside one
        ("/rules/1/steps/1/action", 21),
        ("/limits/missing", 4),  # nearest ancestor
        ("/rules/1/steps/1/missing", 20),
    ],
)
def test_locate_in_toml(pointer: str, line: int) -> None:
    doc = parse(TOML_DOC, "toml")
    assert doc.value["rules"][1]["steps"][1] == {"action": "deny"}  # the layout the test assumes
    where = doc.locate(pointer)
    assert where is not None
    assert where[0] == line


def test_locate_problems_adds_positions_to_validation_problems() -> None:
    doc = parse(YAML_DOC, "yaml")
    located = doc.locate_problems(
        [Problem("/limits/eu/max", "must be at most 50"), Problem("/limits/regions/1", "bad", "geo")]
    )
    assert located == [
        Problem("/limits/eu/max", "must be at most 50", "schema", 4, 5),
        Problem("/limits/regions/1", "bad", "geo", 9, 7),
    ]
    assert located[0].where() == "line 4, column 5 (/limits/eu/max)"


def test_locate_without_source_text_is_none() -> None:
    # A document built from a value (not parsed from a file) has no lines to point at.
    assert Document({"a": 1}, "json").locate("/a") is None


def test_json_problems_names_what_is_not_json() -> None:
    problems = json_problems({"ok": [1, "x", None, True, 2.5], "set": {1}, "nan": float("nan"), 3: "k"})
    assert sorted(p.pointer for p in problems) == ["", "/nan", "/set"]
    assert all(p.validator == "syntax" for p in problems)
    assert json_problems({"a": [1, {"b": None}]}) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zip: 01234", 1234),  # YAML 1.1 would read octal 668
        ("t: 1:30", "1:30"),  # YAML 1.1 would read base 60: 90
        ("n: 1_000", "1_000"),  # YAML 1.1 would read 1000
        ("x: 0x1F", 31),
        ("o: 0o17", 15),
        ("e: 1e3", 1000.0),  # YAML 1.1 would read a string
        ("v: 1.2.3", "1.2.3"),
    ],
)
def test_yaml_numbers_follow_yaml_1_2_not_1_1(text: str, expected: object) -> None:
    [value] = parse(text, "yaml").value.values()
    assert value == expected
    assert type(value) is type(expected)
