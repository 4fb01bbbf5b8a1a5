"""Rollout policies: the rings a change walks through, and how long each one bakes.

    stages:
      - name: canary
        select: {labels: {canary: "true"}}   # or region / zone / service lists
        percent: 100                          # of the selected instances, by stable hash (default 100)
        min_instances: 1
        bake: {min: 2m, max: 10m}
      - {name: early, percent: 10, bake: {min: 5m, max: 20m}}
      - {name: global, percent: 100}
    on_failure: rollback        # or pause
    gate: analysis              # a stage passes on canary analysis (default); `bake`: on bake time
                                # and liveness alone, for services that report no health

Stages are cumulative: stage i targets everything stages 0..i target. Every problem in
a policy is reported at once, with its JSON pointer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ringfence.core.analysis.settings import AnalysisSettings, parse_analysis
from ringfence.core.names import is_valid_name
from ringfence.errors import InvalidInput, Problem

DEFAULT_BAKE_MIN = 300.0
DEFAULT_BAKE_MAX = 1800.0
EMERGENCY_BAKE_MIN = 10.0
EMERGENCY_BAKE_MAX = 120.0
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SELECTOR_KEYS = ("labels", "region", "zone", "service")
_STAGE_KEYS = ("name", "select", "percent", "min_instances", "bake")
_POLICY_KEYS = ("stages", "on_failure", "gate", "analysis")
GATES = ("analysis", "bake")
ON_FAILURE = ("rollback", "pause")


@dataclass(frozen=True)
class Selector:
    """Which instances a stage may pick from; an empty selector allows every instance."""

    labels: tuple[tuple[str, str], ...] = ()
    region: tuple[str, ...] = ()
    zone: tuple[str, ...] = ()
    service: tuple[str, ...] = ()

    def matches(self, *, service: str, region: str, zone: str, labels: Mapping[str, str]) -> bool:
        return (
            (not self.service or service in self.service)
            and (not self.region or region in self.region)
            and (not self.zone or zone in self.zone)
            and all(labels.get(k) == v for k, v in self.labels)
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.labels:
            out["labels"] = dict(self.labels)
        for key in ("region", "zone", "service"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        return out


@dataclass(frozen=True)
class Stage:
    name: str
    select: Selector = field(default_factory=Selector)
    percent: float = 100.0
    min_instances: int = 1
    bake_min: float = DEFAULT_BAKE_MIN  # seconds
    bake_max: float = DEFAULT_BAKE_MAX

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "select": self.select.to_json(), "percent": self.percent,
                "min_instances": self.min_instances, "bake": {"min": self.bake_min, "max": self.bake_max}}


@dataclass(frozen=True)
class Policy:
    stages: tuple[Stage, ...]
    on_failure: str = "rollback"
    analysis: AnalysisSettings | None = None   # the `analysis:` section; None = the analyzer's defaults
    gate: str = "analysis"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stages": [s.to_json() for s in self.stages], "on_failure": self.on_failure,
                               "gate": self.gate}
        if self.analysis is not None:
            out["analysis"] = self.analysis.to_policy_json()
        return out

    def analysis_settings(self, stage: int) -> AnalysisSettings:
        """What the analyzer needs for one stage: the policy's analysis section with that stage's bakes."""
        base = self.analysis if self.analysis is not None else AnalysisSettings()
        return base.for_stage(self.stages[stage].bake_min, self.stages[stage].bake_max)

    def emergency(self) -> Policy:
        """The same rings with short bakes: an emergency change still goes ring by ring."""
        return replace(self, stages=tuple(
            replace(s, bake_min=min(s.bake_min, EMERGENCY_BAKE_MIN), bake_max=min(s.bake_max, EMERGENCY_BAKE_MAX))
            for s in self.stages
        ))


DEFAULT_POLICY = Policy(stages=(
    Stage("canary", percent=1.0, min_instances=1),
    Stage("early", percent=10.0),
    Stage("half", percent=50.0),
    Stage("global", percent=100.0),
))


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `90s`, `2m`, `1.5h` or `500ms`; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("negative")
        seconds = float(value) if value < 2**64 else math.inf  # float() of a huge int raises OverflowError
    elif isinstance(value, str) and (found := _DURATION.match(value.strip())):
        seconds = float(found[1]) * _UNITS[found[2]]
    else:
        raise ValueError("not a duration")
    if not math.isfinite(seconds):  # NaN or infinite bakes never elapse, and cannot be stored as JSON
        raise ValueError("not a finite duration")
    return seconds


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _unknown_keys(node: dict[str, Any], allowed: tuple[str, ...], where: str, out: list[Problem]) -> None:
    for key in node:
        if key not in allowed:
            out.append(Problem(f"{where}/{key}", f"unknown key {key!r}; allowed: {', '.join(allowed)}", "policy"))


def _selector(node: Any, where: str, out: list[Problem]) -> Selector:
    if not isinstance(node, dict):
        out.append(Problem(where, "select must be an object with labels, region, zone or service", "policy"))
        return Selector()
    _unknown_keys(node, _SELECTOR_KEYS, where, out)
    labels: tuple[tuple[str, str], ...] = ()
    if "labels" in node:
        raw = node["labels"]
        if isinstance(raw, dict) and all(isinstance(v, str) for v in raw.values()):
            labels = tuple(sorted(raw.items()))
        else:
            out.append(Problem(f"{where}/labels", 'labels must map names to strings, e.g. {canary: "true"}',
                               "policy"))
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("region", "zone", "service"):
        if key in node:
            values = _strings(node[key])
            if values is None:
                out.append(Problem(f"{where}/{key}", f"{key} must be a string or a non-empty list of strings",
                                   "policy"))
            else:
                lists[key] = values
    return Selector(labels=labels, **lists)


def _bake(node: Any, where: str, out: list[Problem]) -> tuple[float, float]:
    if node is None:
        return DEFAULT_BAKE_MIN, DEFAULT_BAKE_MAX
    if not isinstance(node, dict):
        out.append(Problem(where, "bake must be an object like {min: 2m, max: 10m}", "policy"))
        return DEFAULT_BAKE_MIN, DEFAULT_BAKE_MAX
    _unknown_keys(node, ("min", "max"), where, out)
    parsed: dict[str, float] = {}
    for key in ("min", "max"):
        if key in node:
            try:
                parsed[key] = parse_duration(node[key])
            except ValueError as exc:
                out.append(Problem(f"{where}/{key}", f"{node[key]!r} is {exc}: use 90s, 2m, 1h or a number of "
                                   "seconds", "policy"))
    low = parsed.get("min", min(DEFAULT_BAKE_MIN, parsed.get("max", DEFAULT_BAKE_MIN)))
    high = parsed.get("max", max(DEFAULT_BAKE_MAX, low))
    if low > high:
        out.append(Problem(where, f"bake min ({node.get('min')}) is longer than bake max ({node.get('max')})",
                           "policy"))
    return low, high


def _stage(node: Any, where: str, index: int, out: list[Problem]) -> Stage | None:
    if not isinstance(node, dict):
        out.append(Problem(where, "a stage must be an object with at least a name", "policy"))
        return None
    _unknown_keys(node, _STAGE_KEYS, where, out)
    name = node.get("name")
    if not isinstance(name, str) or not is_valid_name(name) or "/" in name:
        out.append(Problem(f"{where}/name", "each stage needs a name of lowercase letters, digits, '-' and '_'",
                           "policy"))
        name = f"stage-{index}"
    select = _selector(node["select"], f"{where}/select", out) if "select" in node else Selector()
    percent = node.get("percent", 100)
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 < percent <= 100:
        out.append(Problem(f"{where}/percent", f"percent must be a number above 0 and at most 100, not {percent!r}",
                           "policy"))
        percent = 100
    minimum = node.get("min_instances", 1)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        out.append(Problem(f"{where}/min_instances", f"min_instances must be a whole number >= 0, not {minimum!r}",
                           "policy"))
        minimum = 1
    low, high = _bake(node.get("bake"), f"{where}/bake", out)
    return Stage(name, select, float(percent), minimum, low, high)


def parse_policy(document: Any) -> Policy:
    """A Policy from its JSON form; InvalidInput listing every problem otherwise."""
    problems: list[Problem] = []
    if not isinstance(document, dict):
        raise InvalidInput("a policy must be an object with a 'stages' list",
                           [Problem("", "expected an object", "policy")])
    _unknown_keys(document, _POLICY_KEYS, "", problems)
    stages: list[Stage] = []
    raw = document.get("stages")
    if not isinstance(raw, list) or not raw:
        problems.append(Problem("/stages", "a policy needs a non-empty list of stages", "policy"))
    else:
        seen: set[str] = set()
        for index, node in enumerate(raw):
            stage = _stage(node, f"/stages/{index}", index, problems)
            if stage is not None:
                stages.append(stage)
            # Point at the stage as written (a broken stage before it is skipped in `stages`), and
            # only compare names the author wrote, not the placeholder an invalid name gets.
            name = node.get("name") if isinstance(node, dict) else None
            if stage is not None and stage.name == name:
                if name in seen:
                    problems.append(Problem(f"/stages/{index}/name", f"stage name {name!r} is used twice",
                                            "policy"))
                seen.add(name)
    on_failure = document.get("on_failure", "rollback")
    if on_failure not in ON_FAILURE:
        problems.append(Problem("/on_failure", f"on_failure must be rollback or pause, not {on_failure!r}", "policy"))
    gate = document.get("gate", "analysis")
    if gate not in GATES:
        problems.append(Problem("/gate", f"gate must be analysis (canary analysis decides) or bake (bake time "
                                         f"and liveness alone), not {gate!r}", "policy"))
    analysis = parse_analysis(document["analysis"], "/analysis", problems) if "analysis" in document else None
    if problems:
        first = problems[0]
        raise InvalidInput(f"the policy has {len(problems)} problem(s): {first.pointer or '(root)'}: {first.message}",
                           problems)
    return Policy(tuple(stages), on_failure, analysis, gate)


def policy_from_json(data: Mapping[str, Any]) -> Policy:
    """Inverse of Policy.to_json (for policies already checked, as stored in a rollout)."""
    stages = []
    for s in data["stages"]:
        select = s.get("select", {})
        stages.append(Stage(
            name=s["name"],
            select=Selector(labels=tuple(sorted(select.get("labels", {}).items())),
                            region=tuple(select.get("region", ())), zone=tuple(select.get("zone", ())),
                            service=tuple(select.get("service", ()))),
            percent=float(s["percent"]), min_instances=int(s["min_instances"]),
            bake_min=float(s["bake"]["min"]), bake_max=float(s["bake"]["max"]),
        ))
    analysis = AnalysisSettings.from_policy(data["analysis"], "/analysis") if "analysis" in data else None
    return Policy(tuple(stages), data.get("on_failure", "rollback"), analysis, data.get("gate", "analysis"))
