"""Server settings, declared once: `RINGFENCE_*` environment variables, overridden by flags.

`docs/reference/settings.md` is generated from SETTINGS (`python -m ringfence.server.settings`)
and a test keeps it in step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ringfence.errors import InvalidInput


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env(self) -> str:
        return "RINGFENCE_" + self.name.upper()


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _synchronous(text: str) -> str:
    if text.upper() not in ("FULL", "NORMAL"):
        raise ValueError("use FULL or NORMAL")
    return text.upper()


SETTINGS = [
    Setting("host", "127.0.0.1", "Address to listen on."),
    Setting("port", 8750, "TCP port to listen on.", int),
    Setting("db", "sqlite:///./ringfence.db",
            "Database URL: `sqlite:///path/to/file.db` or `postgresql://user@host:port/dbname`."),
    Setting("admin_token", None,
            "An admin token to accept (stored hashed on start). Without it, the first start on an "
            "empty database creates one and prints it once."),
    Setting("max_body_bytes", 1024 * 1024, "Largest request body accepted; larger ones get 413.", int),
    Setting("sqlite_synchronous", "FULL",
            "SQLite `synchronous` pragma. FULL survives power loss; NORMAL survives process crashes "
            "(kill -9) and is faster.", _synchronous),
    Setting("disabled_validators", (), "Comma-separated names of validator plugins not to run.", _names),
    Setting("log_level", "info", "Log level: debug, info, warning or error."),
    Setting("worker_threads", 8, "Threads that run database work; more mostly add GIL contention.", int),
    Setting("controller_interval", 1.0, "Seconds between controller ticks (0 turns the controller off).", float),
    Setting("instance_silent_after", 30.0, "Seconds without a heartbeat before an instance counts as silent.",
            float),
    Setting("max_streams", 10_000, "Most open streams; past it, new ones get 503 with Retry-After.", int),
    Setting("observation_retention", 7 * 86400.0,
            "Seconds health reports filed under rollout stages are kept (for the analysis and its charts).", float),
    Setting("instance_gone_after", 300.0, "Seconds without a heartbeat before an instance counts as gone.", float),
    Setting("webhook_timeout", 5.0, "Seconds a webhook receiver has to answer a delivery.", float),
    Setting("webhook_backoff", 30.0,
            "Seconds before a failed webhook delivery is retried; each further retry waits twice as long "
            "(less up to a quarter of jitter), up to `webhook_max_backoff`.", float),
    Setting("webhook_max_backoff", 3600.0, "Longest wait, in seconds, between two attempts of a webhook delivery.",
            float),
    Setting("webhook_max_attempts", 8, "Attempts of a webhook delivery before it is marked failed.", int),
]


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8750
    db: str = "sqlite:///./ringfence.db"
    admin_token: str | None = None
    max_body_bytes: int = 1024 * 1024
    sqlite_synchronous: str = "FULL"
    disabled_validators: tuple[str, ...] = ()
    log_level: str = "info"
    worker_threads: int = 8
    controller_interval: float = 1.0
    instance_silent_after: float = 30.0
    instance_gone_after: float = 300.0
    max_streams: int = 10_000
    webhook_timeout: float = 5.0
    webhook_backoff: float = 30.0
    webhook_max_backoff: float = 3600.0
    webhook_max_attempts: int = 8
    observation_retention: float = 7 * 86400.0

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            if overrides.get(setting.name) is not None:
                values[setting.name] = overrides[setting.name]
            elif setting.env in environ:
                try:
                    values[setting.name] = setting.parse(environ[setting.env])
                except ValueError as exc:
                    raise InvalidInput(f"{setting.env}={environ[setting.env]!r} is not valid: {exc}") from None
            else:
                values[setting.name] = setting.default
        return cls(**values)


def reference() -> str:
    assert {f.name for f in fields(Settings)} == {s.name for s in SETTINGS}
    lines = [
        "# Server settings",
        "",
        "Generated from `ringfence/server/settings.py`; do not edit by hand.",
        "Each setting is read from its environment variable; a `ringfence serve` flag of the same",
        "name (`--db`, `--port`, ...) wins over it.",
        "",
        "| setting | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = ", ".join(s.default) if isinstance(s.default, tuple) else s.default
        lines.append(f"| `{s.name}` | `{s.env}` | `{default}` | {s.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
