"""`ringfence validate`: check config files offline, as a push would, without a server.

The checks are the JSON Schema given with --schema and the validator plugins
installed here; the server may know schemas bound since, so a push can still
find more. Parse errors and problems print like a compiler's: file:line:col.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ringfence.cli import output
from ringfence.cli.exits import CliError, ExitCode
from ringfence.cli.files import ConfigFile, collect, load_schema
from ringfence.core.validation import Validator, validate
from ringfence.errors import DocumentError, Problem
from ringfence.plugins import PluginError, load_validators


def _file_problems(file: ConfigFile, schema: Any, validators: list[Validator]) -> list[Problem]:
    try:
        document = file.load()
    except DocumentError as exc:
        return list(exc.problems) or [Problem("", exc.detail, "syntax")]
    except CliError as exc:
        return [Problem("", exc.message, "file")]
    return document.locate_problems(validate(file.name, document.value, schema, validators))


def validate_command(
    target: Annotated[str, typer.Argument(metavar="FILE_OR_DIR", help="a config file or a directory")],
    schema: Annotated[str | None, typer.Option(metavar="SCHEMA_FILE",
                                               help="JSON Schema (2020-12) file, JSON or YAML")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list of problems only")] = False,
) -> None:
    """Validate config files offline: syntax, --schema and installed validators."""
    files = collect(target)
    schema_value = load_schema(schema).value if schema else None
    try:
        validators = load_validators()
    except PluginError as exc:
        raise CliError(exc.detail) from None
    found: list[dict[str, Any]] = []
    failed = 0
    for file in files:
        problems = _file_problems(file, schema_value, validators)
        failed += bool(problems)
        for problem in problems:
            found.append({"file": file.display, "name": file.name, "pointer": problem.pointer,
                          "message": problem.message, "validator": problem.validator,
                          "line": problem.line, "column": problem.column})
    if as_json:
        output.print_json(found)
    else:
        for item in found:
            output.say(output.located(item, item["file"], None), "red")
        if found:
            output.say(f"{len(found)} problem(s) in {failed} of {len(files)} file(s)")
        else:
            output.say(f"{len(files)} file(s) valid", "green")
    if found:
        raise typer.Exit(ExitCode.INVALID)
