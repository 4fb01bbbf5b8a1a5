"""The pieces of one metric's contrast against known answers: the pass boundary over a range of looks,
the fail and pass bounds, and the rules that keep one bad host from failing a change."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ringfence.core.analysis.contrast import contrast
from ringfence.core.analysis.stats import MAX_EXACT_WORK, crossing_z, look_z, mixture_radius


def test_crossing_z_is_about_the_normal_quantile_for_one_look_and_grows_with_the_span() -> None:
    for alpha in (0.01, 0.2):
        assert stats.norm.isf(alpha) < crossing_z(alpha, 0.0) < stats.norm.isf(alpha) + 0.25
    zs = [crossing_z(0.2, span) for span in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert zs == sorted(zs)
    # the boundary it solves: 1 - Phi(z) + (span + 0.1) z phi(z) = alpha
    z = crossing_z(0.2, 0.75)
    assert stats.norm.sf(z) + 0.85 * z * stats.norm.pdf(z) == pytest.approx(0.2, abs=1e-9)
    # a pass looked at from 300 s to 600 s is far tighter than the always-valid mixture at that level
    assert z < 0.75 * mixture_radius(0.2, 27.0, 2.0)


@pytest.mark.parametrize(("first", "last"), [(27, 57), (10, 100), (40, 57), (50, 57), (3, 60)])
@pytest.mark.parametrize("alpha", [0.2, 0.05])
def test_crossing_z_holds_over_every_look_of_the_range(first: int, last: int, alpha: float) -> None:
    """Gaussian random walks looked at after every step from `first` to `last` cross it in under alpha of runs."""
    rng = np.random.default_rng(first * 1000 + last)
    runs = 20000
    walks = np.cumsum(rng.normal(size=(runs, last)), axis=1) / np.sqrt(np.arange(1, last + 1))
    crossed = (walks[:, first - 1:] >= crossing_z(alpha, math.log(last / first))).any(axis=1).mean()
    assert crossed <= alpha + 3 * math.sqrt(alpha / runs)
    assert crossed > alpha / 4          # and not absurdly loose


def measured(raw_canary: list[float], raw_baseline: list[float], variance: float = 0.0
             ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """What the fleet hands `contrast` for these instance values (equal traffic): each baseline instance
    against the mean of the *other* baseline instances, each canary against the whole baseline."""
    total, nb = sum(raw_baseline), len(raw_baseline)
    baseline = [(x - (total - x) / (nb - 1), variance) for x in raw_baseline]
    canary = [(x - total / nb, variance) for x in raw_canary]
    return canary, baseline


@pytest.mark.parametrize(("first", "last"), [(27, 57), (10, 57), (40, 57), (3, 60), (1, 1)])
@pytest.mark.parametrize("alpha", [0.2, 0.05])
def test_look_z_is_crossed_by_exactly_alpha_of_random_walks_over_its_looks(first: int, last: int,
                                                                           alpha: float) -> None:
    """The exact boundary: simulated walks cross it in alpha of runs, no more and (unlike crossing_z) not
    much less."""
    rng = np.random.default_rng(first * 1000 + last + int(alpha * 100))
    runs = 40000
    walks = np.cumsum(rng.normal(size=(runs, last)), axis=1) / np.sqrt(np.arange(1, last + 1))
    z = look_z(alpha, first, last)
    crossed = (walks[:, first - 1:] >= z).any(axis=1).mean()
    assert abs(crossed - alpha) <= 4 * math.sqrt(alpha * (1 - alpha) / runs) + 0.002
    if first == last:
        assert z == pytest.approx(stats.norm.isf(alpha), abs=1e-3)   # one look: the normal quantile
    else:
        assert z < crossing_z(alpha, math.log(last / first))        # tighter than the closed form


def test_look_z_falls_back_to_the_closed_form_where_the_recursion_would_be_slow() -> None:
    # a two-hour stage, a pass allowed over its second hour: 360 looks of 10 s windows
    assert 361 * math.sqrt(720) > MAX_EXACT_WORK
    assert look_z(0.2, 360, 720) == crossing_z(0.2, math.log(720 / 360))
    # a 30-minute stage from settle on (10 s windows): still exact, and tighter
    assert 91 * math.sqrt(177) <= MAX_EXACT_WORK
    assert look_z(0.2, 87, 177) < crossing_z(0.2, math.log(177 / 87)) - 0.1


def test_fail_bound_uses_the_baseline_spread_and_the_t_quantile() -> None:
    xs = [-0.3, -0.1, 0.0, 0.1, 0.2, 0.3, -0.2, 0.05]
    canary, baseline = measured([1.0, 1.1, 0.9], xs)
    c = contrast(canary, baseline, info=10.0, tolerance=math.log(1.2), rho=2.0)
    assert c is not None
    sd = float(np.std(xs, ddof=1))
    # the host spread is the instances' own, not the wider spread of the leave-one-out values
    assert float(np.std([x for x, _ in baseline], ddof=1)) == pytest.approx(sd * 8 / 7)
    assert c.tau == pytest.approx(sd)
    assert c.estimate == pytest.approx(1.0 - float(np.mean(xs)))
    between = sd * math.sqrt(1 / 3 + 1 / 8)
    assert c.low(0.01) == pytest.approx(c.estimate - stats.t.ppf(0.99, 7) * between, rel=1e-6)
    # a pass bound with no sampling noise is the t bound of the (pooled, here larger) spread
    pooled = math.sqrt((7 * sd**2 + 2 * float(np.var([1.0, 1.1, 0.9], ddof=1))) / 9)
    expected = max(sd, pooled) * math.sqrt(1 / 3 + 1 / 8) * stats.t.ppf(0.8, 7)
    assert c.pass_high(0.2, 1.5) == pytest.approx(c.estimate + expected, rel=1e-6)


def test_the_host_spread_is_unbiased_when_only_some_baseline_instances_have_enough_data() -> None:
    """Twelve baseline instances make each reference, but only four have enough requests for a p99 of
    their own: the spread is shrunk back by each one's share of its reference (1/12), not by 1/4."""
    rng = np.random.default_rng(7)
    tau = 0.3
    by_share, by_count = [], []
    for _ in range(4000):
        canary, baseline = measured([0.0, 0.0], list(rng.normal(0, tau, 12)))
        kept = baseline[:4]
        with_shares = contrast(canary, kept, info=10.0, tolerance=0.1, rho=2.0, shares=[1 / 12] * 4)
        by_default = contrast(canary, kept, info=10.0, tolerance=0.1, rho=2.0)
        assert with_shares is not None and by_default is not None
        by_share.append(with_shares.tau ** 2)
        by_count.append(by_default.tau ** 2)
    assert float(np.mean(by_share)) == pytest.approx(tau ** 2, rel=0.05)
    assert float(np.mean(by_count)) < 0.8 * tau ** 2   # what assuming the four were the whole reference gives


def test_canaries_that_disagree_do_not_widen_the_fail_bound_but_do_widen_the_pass_bound() -> None:
    baseline = [(x, 0.001) for x in np.linspace(-0.25, 0.25, 16)]
    region = [(-0.05, 0.001), (0.05, 0.001), (1.6, 0.001), (1.7, 0.001)]   # errors x5 on 2 of 4 canaries
    c = contrast(region, baseline, info=20.0, tolerance=math.log(1.2), rho=2.0)
    assert c is not None
    assert c.beyond == 2
    assert c.fails(math.log(1.2), 0.0025)
    assert c.cautious.between > 2 * c.full.between


def test_one_canary_far_out_is_not_a_fail_on_its_own() -> None:
    baseline = [(x, 0.001) for x in np.linspace(-0.25, 0.25, 12)]
    bad_host = [(0.0, 0.001), (0.05, 0.001), (2.2, 0.001)]                 # one canary on a very bad host
    c = contrast(bad_host, baseline, info=20.0, tolerance=math.log(1.2), rho=2.0)
    assert c is not None
    assert c.low(0.0025) > math.log(1.2)          # the mean alone would fail it
    assert c.beyond == 1
    assert not c.fails(math.log(1.2), 0.0025)
    assert c.outliers == (2,)                      # and it blocks a pass


@pytest.mark.parametrize(("m", "nb"), [(1, 8), (3, 12), (4, 16), (6, 18)])
def test_at_the_tolerance_fail_and_pass_keep_their_error_rates(m: int, nb: int) -> None:
    """Instances drawn from one population, the canary shifted by exactly the tolerance: the fail test
    rejects in under alpha of draws and the pass bound comes inside the tolerance in under alpha_pass."""
    rng = np.random.default_rng(m * 100 + nb)
    tol, alpha, alpha_pass, runs = math.log(1.2), 0.01, 0.2, 6000
    fails = passes = 0
    for _ in range(runs):
        tau = 0.3
        c_, b = measured(list(rng.normal(tol, tau, m) + rng.normal(0, 0.063, m)),
                         list(rng.normal(0, tau, nb) + rng.normal(0, 0.063, nb)), variance=0.004)
        c = contrast(c_, b, info=30.0, tolerance=tol, rho=2.0)
        assert c is not None
        fails += c.fails(tol, alpha)
        passes += c.pass_high(alpha_pass, look_z(alpha_pass, 27, 57)) < tol
    assert fails / runs <= alpha + 3 * math.sqrt(alpha / runs)
    assert passes / runs <= alpha_pass
