"""Where the server is and which token to use: flag, then environment, then the config file.

The file is `$XDG_CONFIG_HOME/ringfence/cli.toml` (default `~/.config/ringfence/cli.toml`):

    url = "https://ringfence.internal:8750"
    token = "rf_..."
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ringfence.cli.exits import CliError

DEFAULT_URL = "http://127.0.0.1:8750"
_TOKEN_TEXT = re.compile(r"[!-~]*")


@dataclass(frozen=True)
class ClientSettings:
    url: str
    # Out of the repr, hence out of any traceback or debug print.
    token: str | None = field(default=None, repr=False)


def config_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ringfence" / "cli.toml"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{path} is not valid TOML: {exc}") from None
    for key in ("url", "token"):
        if key in data and not isinstance(data[key], str):
            raise CliError(f"{path}: {key!r} must be a string")
    return data


def resolve(
    url: str | None, token: str | None, environ: Mapping[str, str] | None = None
) -> ClientSettings:
    environ = os.environ if environ is None else environ
    file: dict[str, Any] | None = None

    def from_file(key: str) -> str | None:
        nonlocal file
        if file is None:
            file = _read_file(config_path(environ))
        value = file.get(key)
        return value if isinstance(value, str) else None

    # The file is read only when a flag and the environment leave something open,
    # so a broken file never gets in the way of an explicit setting.
    url = url or environ.get("RINGFENCE_URL") or from_file("url") or DEFAULT_URL
    token = (token or environ.get("RINGFENCE_TOKEN") or from_file("token") or "").strip()
    if not _TOKEN_TEXT.fullmatch(token):
        # Said without the value: an HTTP library would echo a bad header value in its error.
        raise CliError("the token has characters no ringfence token has (only printable ASCII); "
                       "check --token, RINGFENCE_TOKEN or the config file")
    return ClientSettings(url.rstrip("/"), token or None)
