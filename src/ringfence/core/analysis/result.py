"""What the analyzer says: a decision, when it became final, why, and the evidence per metric.

`Result.to_json()` is exactly the output format of formats/observations.md; each metric carries
its verdict, the canary and baseline values, the effect with its always-valid confidence
interval, the tolerance, instances and requests per group, and the rule that decided.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Decision = Literal["pass", "fail", "continue", "inconclusive"]
Verdict = Literal["pass", "fail", "continue", "no_data", "inconclusive"]


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, floats are rounded to 6 significant digits."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.6g}")
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class MetricResult:
    name: str
    verdict: Verdict
    rule: str                                   # what decided, in a few words
    canary: float | None = None                 # the canary group's value (error fraction, ms, gauge units, count)
    baseline: float | None = None
    unit: str = ""
    effect: float | None = None                 # canary / baseline, the estimate the rule used
    effect_low: float | None = None             # its always-valid confidence interval
    effect_high: float | None = None
    confidence: float | None = None
    tolerance: Mapping[str, float] = field(default_factory=dict)
    canary_instances: int = 0
    baseline_instances: int = 0
    canary_requests: float = 0
    baseline_requests: float = 0
    p_value: float | None = None                # always-valid p-value of "no regression beyond tolerance"
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict, "rule": self.rule, "canary": self.canary,
                               "baseline": self.baseline, "unit": self.unit}
        if self.effect is not None:
            out["effect"] = {"ratio": self.effect, "low": self.effect_low, "high": self.effect_high,
                             "confidence": self.confidence}
        out["tolerance"] = dict(self.tolerance)
        out["instances"] = {"canary": self.canary_instances, "baseline": self.baseline_instances}
        out["requests"] = {"canary": int(self.canary_requests), "baseline": int(self.baseline_requests)}
        if self.p_value is not None:
            out["p_value"] = self.p_value
        out.update(self.details)
        return _clean(out)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Result:
    decision: Decision
    decided_at: float | None
    reasons: tuple[str, ...]
    metrics: Mapping[str, MetricResult]
    windows_read: int
    method: str = "sequential"

    @property
    def final(self) -> bool:
        return self.decision != "continue"

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "decided_at": _clean(self.decided_at), "reasons": list(self.reasons),
                "metrics": {name: m.to_json() for name, m in self.metrics.items()},
                "windows_read": self.windows_read}


def percent(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.2f}%"


def ratio(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"x{x:.2f}" if x < 100 else f"x{x:.0f}"


def pvalue(p: float | None) -> str:
    if p is None:
        return ""
    return "always-valid p < 0.001" if p < 0.001 else f"always-valid p = {p:.3f}"


def value(x: float | None, unit: str) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if unit == "fraction":
        return percent(x)
    if unit == "ms":
        return f"{x:.0f} ms" if x >= 10 else f"{x:.1f} ms"
    return f"{x:.4g}{' ' + unit if unit and unit != 'count' else ''}"
