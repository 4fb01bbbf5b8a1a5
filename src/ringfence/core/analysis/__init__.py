"""Canary analysis: observation windows in, a verdict out (pure, incremental; see docs/analysis.md).

    from ringfence.core.analysis import parse_observations, AnalysisSettings, Analyzer, analyze

    records = parse_observations(lines)                    # InvalidInput names line and field
    settings = AnalysisSettings(min_bake=120, max_bake=600)
    result = analyze(records, settings, method="sequential")   # or "kayenta"
    result.decision, result.decided_at, result.reasons, result.to_json()
"""

from __future__ import annotations

from ringfence.core.analysis.analyzer import METHODS, Analyzer, Method, analyze
from ringfence.core.analysis.records import Event, Histogram, Record, Window, parse_observations
from ringfence.core.analysis.result import MetricResult, Result
from ringfence.core.analysis.settings import AnalysisSettings

__all__ = [
    "METHODS", "AnalysisSettings", "Analyzer", "Event", "Histogram", "Method", "MetricResult", "Record",
    "Result", "Window", "analyze", "parse_observations",
]
