"""Finding config files, naming them, and parsing them with positions kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path, PurePath
from typing import Any

from ringfence.cli.exits import CliError
from ringfence.cli.output import problem_lines
from ringfence.core.documents import FORMATS, Document, format_for, parse
from ringfence.core.names import NAME_RULE, is_valid_name
from ringfence.core.policy import parse_policy
from ringfence.core.validation import check_schema
from ringfence.errors import DocumentError, InvalidInput

EXTENSIONS = " ".join(FORMATS)


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    name: str      # the config name it is pushed as
    display: str   # how messages refer to it: the path as the user would type it

    def load(self) -> Document:
        """Parse the file; raises DocumentError (with line and column) or CliError."""
        fmt = format_for(self.path.name)
        if fmt is None:
            raise CliError(f"{self.display}: unknown file type; use one of {EXTENSIONS}")
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CliError(f"{self.display}: not UTF-8 text") from None
        except OSError as exc:
            raise CliError(f"cannot read {self.display}: {exc.strerror or exc}") from None
        return parse(text, fmt, source=self.display)


def _strip_extension(path: PurePath) -> str:
    posix = path.as_posix()
    for suffix in FORMATS:
        if posix.lower().endswith(suffix):
            return posix[: -len(suffix)]
    return posix


def collect(target: str, name: str | None = None) -> list[ConfigFile]:
    """The config files `target` stands for: itself, or every one below it, sorted by name.

    A file is named by its path as given, without extension (`payments/limits.yaml` is
    `payments/limits`); a file below a directory by its path relative to that directory.
    Hidden files and directories (`.git`, editors' swap files) are skipped.
    """
    root = Path(target)
    if root.is_dir():
        if name is not None:
            raise CliError("--name names a single file; a directory's files are named by their paths")
        found = []
        for path in root.rglob("*"):
            relative = path.relative_to(root)
            if path.is_file() and format_for(path.name) and not any(
                part.startswith(".") for part in relative.parts
            ):
                found.append(ConfigFile(path, _strip_extension(relative), path.as_posix()))
        if not found:
            raise CliError(f"no config files ({EXTENSIONS}) under {target}")
        found.sort(key=lambda f: (f.name, f.display))
        _refuse_duplicates(found)
        return found
    if not root.exists():
        raise CliError(f"no such file or directory: {target}")
    if format_for(root.name) is None:
        raise CliError(f"{target}: unknown file type; use one of {EXTENSIONS}")
    # pathlib already drops "./" and doubled slashes; an absolute or "../" path yields an
    # invalid name, which check_names reports with the --name way out.
    return [ConfigFile(root, name if name is not None else _strip_extension(root), target)]


def _refuse_duplicates(files: list[ConfigFile]) -> None:
    for before, after in pairwise(files):
        if before.name == after.name:
            raise CliError(
                f"{before.display} and {after.display} would both be config {before.name!r}; keep one"
            )


def check_names(files: list[ConfigFile]) -> None:
    """Refuse names the server would refuse, before anything is sent, with the way out."""
    for file in files:
        if not is_valid_name(file.name):
            hint = "pass --name" if len(files) == 1 else "rename the file"
            raise CliError(f"{file.display}: {file.name!r} is not a valid config name ({hint}): {NAME_RULE}")


def load_checked(filename: str, what: str, check: Callable[[Any], object]) -> Document:
    """A JSON/YAML/TOML file whose value `check` accepts (it raises InvalidInput otherwise).

    Checked here, before anything is sent, so every mistake shows with its line in the
    user's file; the server only knows positions in the request body.
    """
    file = ConfigFile(Path(filename), "", filename)
    if not file.path.is_file():
        raise CliError(f"no such file: {filename}")
    try:
        document = file.load()
    except DocumentError as exc:
        raise CliError(f"{filename} does not parse", details=problem_lines(exc.problems, filename, None)) from None
    try:
        check(document.value)
    except InvalidInput as exc:
        raise CliError(f"{filename} is not {what}: {exc.detail}",
                       details=problem_lines(exc.problems, filename, document)) from None
    return document


def load_schema(filename: str) -> Document:
    """A JSON Schema from a JSON/YAML/TOML file, checked against the 2020-12 metaschema."""
    return load_checked(filename, "a usable JSON Schema (2020-12)", check_schema)


def load_policy(filename: str) -> Document:
    """A rollout policy from a JSON/YAML/TOML file, checked with the server's own rules."""
    return load_checked(filename, "a valid rollout policy", parse_policy)
