"""Exit codes, shared by every command; scripts branch on them, so they never change."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INVALID = 1       # validation problems, bad input files, other 4xx
    USAGE = 2         # Typer's own code for a bad command line
    NOT_FOUND = 3     # 404
    AUTH = 4          # 401, 403
    CONFLICT = 5      # 409, 428
    UNAVAILABLE = 6   # no answer, or 5xx


EPILOG = (
    "Exit codes: 0 success; 1 validation problems, bad input files or other 4xx; "
    "2 usage error; 3 not found; 4 not authenticated or not allowed; "
    "5 conflict (re-fetch and retry); 6 server unreachable or failing."
)


def for_status(status: int) -> ExitCode:
    """The exit code for an HTTP status; 0 stands for "no answer at all"."""
    if status == 0 or status >= 500:
        return ExitCode.UNAVAILABLE
    if status == 404:
        return ExitCode.NOT_FOUND
    if status in (401, 403):
        return ExitCode.AUTH
    if status in (409, 428):
        return ExitCode.CONFLICT
    return ExitCode.INVALID


class CliError(Exception):
    """A failure on this side of the wire (a missing file, a bad schema file).

    `message` is the one sentence; `details` are lines that locate it, such as
    `file:line:col: pointer: message [validator]`.
    """

    def __init__(
        self, message: str, code: ExitCode = ExitCode.INVALID, details: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = tuple(details)
