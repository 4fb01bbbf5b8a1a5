"""Every error ringfence raises on purpose, in one tree.

    RingfenceError                 anything ringfence reports to a person
    ├── InvalidInput               the input is wrong; `problems` say where and how to fix it
    │   ├── InvalidName            a config name or name pattern breaks the naming rule
    │   ├── DocumentError          a JSON / YAML / TOML file does not parse
    │   └── ValidationFailed       a value breaks its schema or a validator
    ├── NotFound                   a config, version, schema or token that does not exist
    ├── Conflict                   the write was based on a version that is no longer current
    │   └── PreconditionRequired   a write to an existing config named no expected version
    ├── Unauthorized               no token, or one that is unknown or revoked
    └── Forbidden                  a valid token without the role or scope for the action

Domain errors carry no HTTP status codes: `ringfence.server.problems` is the one
place that maps them to RFC 9457 problem documents, and the CLI maps the
documents back to exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can.

    `pointer` is a JSON pointer into the value ("" for the whole document);
    `validator` names the check that found it ("schema", "syntax", "name", or a
    plugin's name); `line`/`column` are 1-based positions in the source file when
    the value came from one.
    """

    pointer: str
    message: str
    validator: str = "schema"
    line: int | None = None
    column: int | None = None

    def where(self) -> str:
        place = self.pointer or "(document root)"
        if self.line is not None:
            place = f"line {self.line}" + (f", column {self.column}" if self.column else "")
            place += f" ({self.pointer or 'document root'})"
        return place


class RingfenceError(Exception):
    """Base of every error ringfence raises on purpose."""

    title = "ringfence error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(RingfenceError):
    title = "Invalid input"

    def __init__(self, detail: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(detail)
        self.problems = tuple(problems)


class InvalidName(InvalidInput):
    title = "Invalid name"


class DocumentError(InvalidInput):
    title = "Document does not parse"


class ValidationFailed(InvalidInput):
    title = "Validation failed"


class NotFound(RingfenceError):
    title = "Not found"


class Conflict(RingfenceError):
    title = "Conflict"

    def __init__(self, detail: str, current_version: int | None = None) -> None:
        super().__init__(detail)
        self.current_version = current_version


class PreconditionRequired(Conflict):
    title = "Precondition required"


class Unauthorized(RingfenceError):
    title = "Unauthorized"


class Forbidden(RingfenceError):
    title = "Forbidden"
