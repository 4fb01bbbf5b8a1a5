"""The dashboard's pure parts: chart sums and SVG, session lifetimes, CSRF checks, login redirects."""

from __future__ import annotations

import datetime as dt

import pytest

from ringfence.core.analysis.settings import AnalysisSettings
from ringfence.core.model import Role, Token
from ringfence.errors import Forbidden
from ringfence.server.ui import charts, session
from ringfence.server.ui.auth import _next

HIST = {"le": [10, 50, 100], "counts": [0, 90, 9, 1]}


def token() -> Token:
    return Token("tok_1", "ada", Role.VIEWER, ("*",), dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "test")


def test_a_slot_adds_requests_errors_and_histograms_and_reads_p99_inside_its_bucket() -> None:
    slot = charts.Slot()
    slot.add(100, 2, HIST)
    slot.add(100, 0, HIST)
    assert slot.error_rate() == 0.01
    # 99% of 200 = 198: the 180 under 50 ms and 18 of the 20 in (50, 100]: 50 + 50 * 18 / 18
    assert slot.p99() == pytest.approx(100.0)
    assert charts.Slot().p99() is None and charts.Slot().error_rate() is None


def test_panels_draw_canary_baseline_and_the_tolerance_per_service_and_metric() -> None:
    series = charts.Series(width=1.0)
    for t in range(10):
        for group, errors in (("canary", 5), ("baseline", 1)):
            slot = series.slots.setdefault(("shop", group), {}).setdefault(1000.0 + t, charts.Slot())
            slot.add(100, errors, HIST)
    series.stage_starts.add(1000.0)
    panels = charts.panels(series, AnalysisSettings())
    assert [p["title"] for p in panels] == ["shop: error rate", "shop: latency p99"]
    for panel in panels:
        svg = panel["svg"]
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert all(f"line-{g}" in svg for g in ("canary", "baseline", "tolerance"))
        assert "style=" not in svg, "no inline styles: the CSP forbids them"


def test_the_tolerance_is_the_ratio_and_the_floor_above_the_baseline() -> None:
    settings = AnalysisSettings()
    assert charts._tolerance("error_rate", 1.0, settings, "%") == pytest.approx(1.2)
    assert charts._tolerance("error_rate", 0.1, settings, "%") == pytest.approx(0.2)  # +0.1 pp wins
    assert charts._tolerance("latency_p99", 100.0, settings, "ms") == pytest.approx(110.0)


def test_csrf_tokens_must_match() -> None:
    session.check_csrf("abc", {"csrf": "abc"})
    for form in ({}, {"csrf": ""}, {"csrf": "abd"}):
        with pytest.raises(Forbidden):
            session.check_csrf("abc", form)


@pytest.mark.parametrize(("given", "expected"), [
    ("/ui/rollouts/3", "/ui/rollouts/3"), ("https://evil.example/ui", "/ui/rollouts"),
    ("//evil.example", "/ui/rollouts"),
    ("/v1/tokens", "/ui/rollouts"), (None, "/ui/rollouts"), ("/ui\\@evil", "/ui/rollouts"),
])
def test_login_returns_only_to_dashboard_paths(given: str | None, expected: str) -> None:
    assert _next(given) == expected
