"""`ringfence push`: validate and store config files, or only check them (`--dry-run`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ringfence.cli import output
from ringfence.cli.client import ApiClient, ApiError, path
from ringfence.cli.exits import ExitCode, for_status
from ringfence.cli.files import ConfigFile, check_names, collect
from ringfence.cli.rollouts import announce
from ringfence.cli.state import api
from ringfence.core.documents import Document
from ringfence.errors import DocumentError


def _located_problems(problems: list[dict[str, Any]], document: Document) -> list[dict[str, Any]]:
    out = []
    for problem in problems:
        line, column = document.locate(str(problem.get("pointer", ""))) or (None, None)
        out.append({**problem, "line": line, "column": column})
    return out


def _parse_failure(file: ConfigFile, exc: DocumentError) -> dict[str, Any]:
    output.print_problems(output.problem_lines(exc.problems, file.display, None) or [exc.detail])
    return {"file": file.display, "name": file.name, "error": {
        "detail": exc.detail,
        "errors": [{"pointer": p.pointer, "message": p.message, "validator": p.validator,
                    "line": p.line, "column": p.column} for p in exc.problems]}}


def _dry_run(client: ApiClient, file: ConfigFile, document: Document) -> tuple[ExitCode, dict[str, Any]]:
    result = client.request("POST", "/v1/validate", body={"name": file.name, "value": document.value})
    result["problems"] = _located_problems(result.get("problems", []), document)
    current = result.get("current_version")
    if result.get("valid"):
        if current is None:
            output.say(f"{file.name}: valid, would be a new config")
        elif not result.get("changes"):
            output.say(f"{file.name}: valid, unchanged at version {current}")
        else:
            output.say(f"{file.name}: valid, would be version {current} → {current + 1}")
    else:
        output.say(f"{file.name}: {len(result['problems'])} problem(s); it would be refused", "red")
        output.print_problems(output.located(p, file.display, document) for p in result["problems"])
    output.print_diff(result.get("changes", []))
    return (ExitCode.OK if result.get("valid") else ExitCode.INVALID), result


def _push(
    client: ApiClient, file: ConfigFile, document: Document, message: str | None, emergency: bool
) -> dict[str, Any]:
    expected = client.head_version(file.name)
    body: dict[str, Any] = {"value": document.value, "message": message}
    if emergency:  # sent only when asked: the server refuses it to anyone but an admin
        body["emergency"] = True
    result: dict[str, Any] = client.request("PUT", path("/v1/configs", file.name), if_match=expected, body=body)
    version = result["revision"]["version"]
    if result.get("changed"):
        output.say(f"{file.name}: version {version}" + ("" if expected else " (new config)"), "bold")
        output.print_diff(result.get("changes", []))
        announce(result.get("rollout"))
    else:
        output.say(f"{file.name}: unchanged at version {version}")
    return result


def _push_file(
    client: ApiClient, file: ConfigFile, message: str | None, dry_run: bool, emergency: bool
) -> tuple[ExitCode, dict[str, Any]]:
    try:
        document = file.load()
    except DocumentError as exc:
        return ExitCode.INVALID, _parse_failure(file, exc)
    try:
        if dry_run:
            return _dry_run(client, file, document)
        return ExitCode.OK, _push(client, file, document, message, emergency)
    except ApiError as exc:
        # Without an answer, or without a valid token, the next file would fail the same way.
        if exc.status in (0, 401) or exc.status >= 500:
            raise
        output.api_error(exc, file.display, document)
        errors = _located_problems(exc.errors, document)
        return for_status(exc.status), {"file": file.display, "name": file.name,
                                        "error": {**exc.problem, "errors": errors}}


def push(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="FILE_OR_DIR", help="a .json/.yaml/.yml/.toml "
                                          "file, or a directory of them")],
    message: Annotated[str | None, typer.Option(
        "--message", "-m", help="why: kept in history and audit (needed unless --dry-run)")] = None,
    name: Annotated[str | None, typer.Option(help="config name (single file only); default: "
                                             "the path without extension")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate and diff; store nothing")] = False,
    emergency: Annotated[bool, typer.Option(
        "--emergency", help="admins only: the same rings with short bakes, marked in the audit log")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """Validate config files and store each as a new version, showing the diff and the rollout it starts."""
    if not dry_run and not (message or "").strip():
        raise typer.BadParameter("a change needs a reason, e.g. -m 'raise card limit'",
                                 param_hint="'--message' / '-m'")
    files = collect(target, name)
    check_names(files)
    client = api(ctx)
    if as_json:
        output.results_to_stderr()
    codes, results = [], []
    for file in files:
        code, result = _push_file(client, file, message, dry_run, emergency)
        codes.append(code)
        results.append(result if len(files) == 1 else {"file": file.display, "name": file.name, **result})
    if as_json:
        output.print_json(results[0] if len(files) == 1 else results)
    failed = [code for code in codes if code != ExitCode.OK]
    if failed:
        if len(files) > 1:
            output.error(f"{len(failed)} of {len(files)} files failed")
        raise typer.Exit(failed[0])
