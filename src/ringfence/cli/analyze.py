"""`ringfence analyze`: judge an observation stream offline, as the controller would during a stage.

    ringfence analyze windows.jsonl --max-bake 600 [--min-bake 120] [--policy policy.yaml]
                      [--method sequential|kayenta] [--json]

Exit codes (formats/observations.md, fixed): 0 pass, 1 fail, 3 inconclusive, 2 bad input or
usage. Bad input prints one line naming the file, line and field, and no verdict at all.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ringfence.cli import output
from ringfence.cli.exits import CliError
from ringfence.errors import InvalidInput

if TYPE_CHECKING:
    from ringfence.core.analysis import AnalysisSettings, Result

EXIT = {"pass": 0, "fail": 1, "inconclusive": 3}
BAD_INPUT = 2
_STYLE = {"pass": "green", "fail": "red", "continue": "yellow", "inconclusive": "yellow", "no_data": "dim"}


class MethodName(StrEnum):
    sequential = "sequential"
    kayenta = "kayenta"


def _bad(message: str) -> typer.Exit:
    output.error(message)
    return typer.Exit(BAD_INPUT)


def _read_lines(file: str) -> list[str]:
    try:
        if file == "-":
            return sys.stdin.read().splitlines()
        return Path(file).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise _bad(f"no such file: {file}") from None
    except UnicodeDecodeError:
        raise _bad(f"{file}: not UTF-8 text") from None
    except OSError as exc:
        raise _bad(f"cannot read {file}: {exc.strerror or exc}") from None


def _settings(policy: str | None, min_bake: float | None, max_bake: float | None) -> AnalysisSettings:
    from ringfence.cli.files import load_checked
    from ringfence.core.analysis import AnalysisSettings
    from ringfence.core.policy import parse_policy

    settings = AnalysisSettings()
    if policy is not None:
        def check(value: Any) -> object:
            if isinstance(value, dict) and "stages" not in value and set(value) <= {"analysis"}:
                return AnalysisSettings.from_policy(value.get("analysis", {}), "/analysis")
            return parse_policy(value)

        try:
            document = load_checked(policy, "a policy with an analysis section", check)
        except CliError as exc:
            raise _bad(exc.message + "".join(f"; {d}" for d in exc.details[:3])) from None
        checked = check(document.value)
        if isinstance(checked, AnalysisSettings):
            settings = checked
        else:
            parsed = parse_policy(document.value)
            settings = parsed.analysis_settings(0)
    low = min_bake if min_bake is not None else (settings.min_bake if policy else 0.0)
    high = max_bake if max_bake is not None else settings.max_bake
    if not 0 <= low <= high:
        raise _bad(f"--min-bake ({low:g}) must lie between 0 and --max-bake ({high:g})")
    return settings.for_stage(low, high)


def _fmt_effect(m: dict[str, Any]) -> str:
    effect = m.get("effect")
    if not effect or effect.get("ratio") is None:
        return ""
    low, high = effect.get("low"), effect.get("high")
    text = f"x{effect['ratio']:.3g}"
    if low is not None and high is not None:
        text += f" [{low:.3g}, {high:.3g}]"
    return text


def _fmt_value(x: Any, unit: str) -> str:
    from ringfence.core.analysis.result import value

    return value(x if isinstance(x, float | int) else None, unit) if x is not None else ""


def _print_human(file: str, result: Result) -> None:
    data = result.to_json()
    table = Table(title=f"{file}: canary analysis ({result.method})", title_justify="left")
    for column in ("metric", "verdict", "canary", "baseline", "effect [CI]", "tolerance", "instances c/b",
                   "requests c/b", "rule"):
        table.add_column(column)
    for name, m in data["metrics"].items():
        tol = ", ".join(f"{k} {v:g}" for k, v in m.get("tolerance", {}).items() if isinstance(v, int | float))
        inst, req = m.get("instances", {}), m.get("requests", {})
        table.add_row(Text(name), Text(m["verdict"], style=_STYLE.get(m["verdict"], "")),
                      Text(_fmt_value(m.get("canary"), m.get("unit", ""))),
                      Text(_fmt_value(m.get("baseline"), m.get("unit", ""))), Text(_fmt_effect(m)), Text(tol),
                      Text(f"{inst.get('canary', 0)}/{inst.get('baseline', 0)}"),
                      Text(f"{req.get('canary', 0)}/{req.get('baseline', 0)}"), Text(m.get("rule", "")))
    output.stdout.print(table)
    when = f" at t = {result.decided_at:g} s" if result.decided_at is not None else ""
    output.say(f"decision: {result.decision}{when} ({result.windows_read} windows read)",
               _STYLE.get(result.decision, ""))
    for reason in result.reasons:
        output.say(f"  - {reason}")


def analyze_command(
    file: Annotated[str, typer.Argument(metavar="FILE", help="observation stream (JSON Lines); - for stdin")],
    policy: Annotated[str | None, typer.Option(metavar="POLICY_FILE",
                                               help="policy (YAML/JSON/TOML) whose analysis section to use")] = None,
    method: Annotated[MethodName, typer.Option(help="sequential (ringfence) or kayenta (the reference judge)")]
    = MethodName.sequential,
    min_bake: Annotated[float | None, typer.Option(metavar="SECONDS", help="no pass before this")] = None,
    max_bake: Annotated[float | None, typer.Option(metavar="SECONDS",
                                                   help="end of the stage (default: the policy's, else 1800)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON (formats/observations.md)")]
    = False,
) -> None:
    """Judge a canary observation stream: exit 0 pass, 1 fail, 3 inconclusive, 2 bad input."""
    try:
        from ringfence.core.analysis import analyze, parse_observations
    except ImportError:
        raise _bad("canary analysis needs the server extra: install ringfence[server]") from None
    settings = _settings(policy, min_bake, max_bake)
    lines = _read_lines(file)
    name = "stdin" if file == "-" else file
    try:
        records = parse_observations(lines)
        result = analyze(records, settings, method.value)
    except InvalidInput as exc:
        raise _bad(f"{name}: {exc.detail}") from None
    if as_json:
        output.print_json(result.to_json())
    else:
        _print_human(name, result)
    raise typer.Exit(EXIT[result.decision])
