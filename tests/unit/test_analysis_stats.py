"""The statistical pieces against known answers (SciPy, exact formulas, simulation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ringfence.core.analysis.histogram import edges, log_quantile_variance, quantile, rebin
from ringfence.core.analysis.kayenta import classify, mann_whitney, u_test
from ringfence.core.analysis.stats import binomial_sf, mixture_alpha, mixture_radius, t_ppf, t_sf


@pytest.mark.parametrize("df", [1, 2, 3.5, 7, 11, 30, 200])
@pytest.mark.parametrize("t", [-3.0, -0.5, 0.0, 0.7, 2.0, 4.5, 9.0])
def test_t_tail_matches_scipy(t: float, df: float) -> None:
    assert t_sf(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("df", [2, 5, 11, 40])
@pytest.mark.parametrize("q", [0.6, 0.9, 0.975, 0.999, 0.99999])
def test_t_quantile_matches_scipy(q: float, df: float) -> None:
    assert t_ppf(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-7)


@pytest.mark.parametrize(("k", "n", "p"), [(0, 5, 0.3), (3, 5, 0.2), (4, 4, 0.2), (7, 20, 0.1), (2, 3, 0.99)])
def test_binomial_tail_matches_scipy(k: int, n: int, p: float) -> None:
    assert binomial_sf(k, n, p) == pytest.approx(stats.binom.sf(k - 1, n, p), rel=1e-9)


def test_mann_whitney_u_and_p_match_scipy() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        x = np.round(rng.normal(0.3, 1.0, int(rng.integers(5, 40))), 1).tolist()   # rounding makes ties
        y = np.round(rng.normal(0.0, 1.0, int(rng.integers(5, 40))), 1).tolist()
        u, p = u_test(x, y)
        ref = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
        assert u == pytest.approx(ref.statistic)
        assert p == pytest.approx(ref.pvalue, rel=1e-9)


def test_the_kayenta_interval_brackets_the_hodges_lehmann_shift() -> None:
    rng = np.random.default_rng(9)
    x = (rng.normal(0, 1, 60) + 2.0).tolist()
    y = rng.normal(0, 1, 60).tolist()
    mw = mann_whitney(x, y, 0.98)
    hodges_lehmann = float(np.median(np.subtract.outer(x, y)))
    assert mw.estimate == pytest.approx(hodges_lehmann, abs=0.02)
    assert mw.low < mw.estimate < mw.high
    # the interval inverts the test: shifted by either end, the samples sit exactly at p = 2%
    for end in (mw.low, mw.high):
        shifted = [v - end for v in x]
        p = stats.mannwhitneyu(shifted, y, alternative="two-sided", method="asymptotic").pvalue
        assert p == pytest.approx(0.02, rel=0.05)   # the rank statistic moves in steps


def test_kayenta_classification() -> None:
    base = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 1.02, 0.98] * 5
    assert classify(base, base, 1.0)[0] == "Pass"
    assert classify([v * 2 for v in base], base, 1.0)[0] == "High"
    assert classify([v * 1.1 for v in base], base, 1.2)[0] == "Pass"       # below allowedIncrease
    assert classify([], base, 1.0)[0] == "Nodata"
    assert classify([v * 0.5 for v in base], base, 1.0)[0] == "Pass"       # direction: increase only


def test_quantiles_of_known_histograms() -> None:
    le = (5.0, 10.0, 25.0, 50.0, 100.0)
    log_edges = edges(le)
    # 100 values, all in (10, 25]: the median sits half-way through that bucket on the log scale
    value, density = quantile([0, 0, 100, 0, 0, 0], log_edges, 0.5)
    assert math.exp(value) == pytest.approx(math.sqrt(10 * 25))
    assert density == pytest.approx(1.0 / math.log(2.5))
    # the p99 of 99 fast values and 1 slow one is the top of the fast bucket
    value, _ = quantile([0, 99, 0, 0, 1, 0], log_edges, 0.99)
    assert math.exp(value) == pytest.approx(10.0)
    # overflow is extrapolated geometrically: (100, 200]
    value, _ = quantile([0, 0, 0, 0, 0, 10], log_edges, 0.5)
    assert math.exp(value) == pytest.approx(math.sqrt(100 * 200))
    assert math.isnan(quantile([0] * 6, log_edges, 0.5)[0])


def test_log_linear_interpolation_tracks_a_lognormal_median() -> None:
    le = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
    z = np.log(np.array(le))
    for median in (20.0, 35.0, 70.0):
        cdf = stats.norm.cdf((z - math.log(median)) / 0.5)
        counts = np.diff(np.concatenate([[0.0], cdf, [1.0]])) * 1e6
        value, density = quantile(counts.tolist(), edges(le), 0.5)
        assert math.exp(value) == pytest.approx(median, rel=0.06)  # coarse buckets: x2-x2.5 wide
        assert log_quantile_variance(0.5, 1000, density) == pytest.approx(0.25 / (1000 * density**2))


def test_rebin_keeps_every_count() -> None:
    moved = rebin((10.0, 100.0), [5, 10, 5], (5.0, 10.0, 25.0, 50.0, 100.0))
    assert sum(moved) == pytest.approx(20)
    assert moved[0] + moved[1] == pytest.approx(5)


def test_the_mixture_boundary_and_its_p_value_agree() -> None:
    for info in (1, 5, 30, 300):
        for alpha in (0.001, 0.01, 0.2):
            z = mixture_radius(alpha, info, 2.0)
            assert mixture_alpha(z, info, 2.0) == pytest.approx(alpha, rel=1e-6)
            assert z > stats.norm.isf(alpha)    # never tighter than a single look


def test_the_mixture_boundary_holds_over_every_look() -> None:
    """Gaussian random walks looked at after every step cross the boundary in under alpha of runs."""
    rng = np.random.default_rng(11)
    alpha, runs, steps = 0.05, 2000, 400
    sums = np.cumsum(rng.normal(size=(runs, steps)), axis=1)
    info = np.arange(1, steps + 1)
    bound = np.array([mixture_radius(alpha, float(v), 2.0) for v in info]) * np.sqrt(info)
    crossed = (sums >= bound).any(axis=1).mean()
    assert crossed <= alpha
    assert crossed > alpha / 10          # and it is not absurdly loose
