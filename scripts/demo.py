"""`make demo` until the rollout demo lands: a real server on a temporary SQLite file,
driven through the real `ringfence` CLI, narrated.

It shows what the foundation gives: a schema, a push with its diff, a bad push
refused with the line in the file, a concurrent edit refused, history, diff,
revert and the audit log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from ringfence.testing.server import ServerProcess

console = Console()
RINGFENCE = [sys.executable, "-m", "ringfence.cli.main"]


def step(title: str, *args: str, cwd: Path, env: dict[str, str], expect: int = 0) -> None:
    console.print(Rule(f"[bold]{title}"))
    console.print(f"[dim]$ ringfence {' '.join(args)}[/dim]")
    result = subprocess.run([*RINGFENCE, *args], cwd=cwd, env=env)
    if result.returncode != expect:
        console.print(f"[red]demo: expected exit {expect}, got {result.returncode}[/red]")
        raise SystemExit(1)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ringfence-demo-") as tmp:
        work = Path(tmp)
        (work / "payments").mkdir()
        (work / "limits.schema.json").write_text(
            '{"type": "object", "required": ["card_limit_eur"], "properties": {\n'
            '  "card_limit_eur": {"type": "integer", "minimum": 0, "maximum": 10000},\n'
            '  "currencies": {"type": "array", "items": {"enum": ["EUR", "USD", "GBP"]}}}}\n'
        )
        limits = work / "payments" / "limits.yaml"
        limits.write_text("card_limit_eur: 2000\ncurrencies: [EUR, USD]\n")
        with ServerProcess(f"sqlite:///{work / 'ringfence.db'}", admin_token="rf_demo_admin",
                           log_path=work / "server.log") as server:
            env = {**os.environ, "RINGFENCE_URL": server.url, "RINGFENCE_TOKEN": server.admin_token}
            console.print(f"[bold green]ringfence serve[/] is running at {server.url} on {work / 'ringfence.db'}")
            step("Bind a schema to everything under payments/", "schema", "set", "payments/*",
                 "limits.schema.json", "-m", "limits must be sane", cwd=work, env=env)
            step("Push a config written in YAML", "push", "payments/limits.yaml", "-m", "first limits",
                 cwd=work, env=env)
            limits.write_text("card_limit_eur: 5000\ncurrencies: [EUR, USD, GBP]\n")
            step("Raise the limit: a new revision, with its diff", "push", "payments/limits.yaml",
                 "-m", "raise card limit", cwd=work, env=env)
            limits.write_text(textwrap.dedent("""\
                card_limit_eur: 50000
                currencies: [EUR, USD, JPY]
                """))
            step("A typo'd limit and an unknown currency are refused, with their lines; nothing stored",
                 "push", "payments/limits.yaml", "-m", "oops", cwd=work, env=env, expect=1)
            step("The same check offline, as a pre-merge CI job would run it",
                 "validate", "payments", "--schema", "limits.schema.json", cwd=work, env=env, expect=1)
            step("History: who, when, why", "history", "payments/limits", cwd=work, env=env)
            step("Diff between two versions", "diff", "payments/limits", "1", "2", cwd=work, env=env)
            step("Revert to the known-good version: a new revision, nothing rewritten", "revert",
                 "payments/limits", "--to", "1", "-m", "back to known good", cwd=work, env=env)
            step("The audit log", "audit", "--subject", "payments/limits", cwd=work, env=env)
        console.print(Rule("[bold green]done"))
        console.print("Every push above also started a rollout (see `ringfence rollout list`); canary analysis "
                      "and the dashboard come next: see the issues.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
