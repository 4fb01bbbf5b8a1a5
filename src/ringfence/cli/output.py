"""Everything the CLI prints: results on stdout, errors and problems on stderr.

Rich handles colour (and honours NO_COLOR). Text from the server or from files is
printed as `Text`, never as markup, so a `[` in a value or message is shown as is.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ringfence.cli.client import ApiError
from ringfence.core.documents import Document
from ringfence.errors import Problem

PIPE_WIDTH = 200


def _console(stream: TextIO) -> Console:
    # Piped output (a file, grep, a CI log) has no width to fit: Rich would assume 80
    # columns and fold every table, so give it room unless COLUMNS says otherwise.
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(file=stream, highlight=False, soft_wrap=True, width=PIPE_WIDTH if wide else None)


stdout = _console(sys.stdout)
stderr = _console(sys.stderr)

_DIFF_STYLE = {"add": ("+", "green"), "remove": ("-", "red"), "replace": ("~", "yellow")}


def results_to_stderr() -> None:
    """For --json: human progress lines would corrupt the JSON on stdout, so they go to stderr."""
    global stdout
    stdout = stderr


def print_json(data: Any) -> None:
    """Machine output: the JSON document alone on stdout, never reflowed by Rich."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def say(message: str, style: str | None = None) -> None:
    stdout.print(Text(message, style=style or ""))


def error(message: str) -> None:
    stderr.print(Text(f"error: {message}", style="red"))


def note(message: str) -> None:
    stderr.print(Text(message))


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def pointer_label(pointer: str) -> str:
    return pointer or "(root)"


def diff_lines(changes: Sequence[dict[str, Any]]) -> list[Text]:
    """One line per JSON pointer: `+ /a: 1`, `- /b: 2`, `~ /c: 3 → 4`."""
    lines = []
    for change in changes:
        sign, style = _DIFF_STYLE.get(str(change.get("op")), ("?", ""))
        where = pointer_label(str(change.get("path", "")))
        if change.get("op") == "replace":
            body = f"{compact(change.get('old'))} → {compact(change.get('value'))}"
        elif change.get("op") == "remove":
            body = compact(change.get("old"))
        else:
            body = compact(change.get("value"))
        lines.append(Text(f"{sign} {where}: {body}", style=style))
    return lines


def print_diff(changes: Sequence[dict[str, Any]]) -> None:
    for line in diff_lines(changes):
        stdout.print(Text("  ") + line)


def located(problem: dict[str, Any], source: str, document: Document | None) -> str:
    """`file:line:col: pointer: message [validator]`, the line found from the pointer.

    With a document, the position comes from it: a position the server sends is one
    in the request body it parsed, not in the user's file.
    """
    pointer = str(problem.get("pointer", ""))
    if document is not None:
        line, column = document.locate(pointer) or (None, None)
    else:
        line, column = problem.get("line"), problem.get("column")
    where = source + (f":{line}:{column or 1}" if line is not None else "")
    validator = problem.get("validator")
    if validator == "syntax":  # the file does not parse: the position says it all
        return f"{where}: {pointer + ': ' if pointer else ''}{problem.get('message', '')}"
    suffix = f" [{validator}]" if validator else ""
    return f"{where}: {pointer_label(pointer)}: {problem.get('message', '')}{suffix}"


def problem_lines(problems: Iterable[Problem], source: str, document: Document | None) -> list[str]:
    return [located({"pointer": p.pointer, "message": p.message, "validator": p.validator,
                     "line": p.line, "column": p.column}, source, document) for p in problems]


def print_problems(lines: Iterable[str]) -> None:
    for line in lines:
        stderr.print(Text(line, style="red"))


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    grid = Table(title=title, header_style="bold")
    for column in columns:
        # Fold rather than cut with an ellipsis: a narrow terminal must not hide an id or a name.
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    stdout.print(grid)


def history_table(items: Iterable[dict[str, Any]], title: str, deleted_label: str) -> None:
    """Versions of a config or a schema binding, newest first."""
    table(
        ["version", "when (UTC)", "author", "message", "hash"],
        ([item["version"], when(item["created_at"]), item["author"],
          (f"({deleted_label}) " if item.get("deleted") else "") + item["message"], short_hash(item["hash"])]
         for item in items),
        title=title,
    )


def short_hash(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def when(iso: str) -> str:
    """ISO 8601 trimmed to the second (the server's times are UTC): enough to read, still sortable."""
    return iso.replace("T", " ")[:19]


def api_error(exc: ApiError, source: str | None = None, document: Document | None = None) -> None:
    """The problem's detail as one sentence, then each of its errors, located in `source` if given."""
    error(exc.detail)
    for item in exc.errors:
        if source is not None:
            print_problems([located(item, source, document)])
        else:
            validator = f" [{item['validator']}]" if item.get("validator") else ""
            note(f"  {pointer_label(str(item.get('pointer', '')))}: {item.get('message', '')}{validator}")
    if exc.status == 401:
        note("give a token with --token, RINGFENCE_TOKEN or `token` in "
             "~/.config/ringfence/cli.toml")
    if exc.status in (409, 428) and exc.current_version is not None:
        note(f"the current version is {exc.current_version}: re-fetch it, reapply your change "
             "and try again")
