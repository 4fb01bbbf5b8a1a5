"""Statistical primitives, in pure Python so the core stays light and fast for a few dozen values.

- Student's t: `t_sf` (upper tail) and `t_ppf`, through the regularized incomplete beta function.
- `mixture_radius`: the normal-mixture boundary of a confidence sequence (Robbins 1970; Howard,
  Ramdas, McAuliffe & Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence
  sequences", eq. (14)): with probability 1 - alpha, for all times at once,
  |S_t| <= sqrt((V_t + rho) * (log(1 + V_t / rho) + 2 log(1 / alpha))).
- `look_z`: the constant boundary a standardized Gaussian random walk, looked at after each step
  from `first` to `last`, crosses with a given probability, computed exactly (up to a fine grid)
  by the recursion of group-sequential designs (Armitage, McPherson & Rowe 1969): the walk's
  density below the boundary, carried from look to look by a Gaussian convolution.
- `crossing_z`: a closed-form, conservative stand-in for `look_z` over ranges too long to compute
  (P(any look: S_I / sqrt(I) >= z) <= 1 - Phi(z) + (log(I1 / I0) + 0.1) z phi(z), twice Siegmund's
  large-z rate for the Ornstein-Uhlenbeck process B(I)/sqrt(I), which undershoots at small z).
- `binomial_sf`: exact upper tail of a binomial count.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

_NORMAL = NormalDist()


def norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def norm_ppf(p: float) -> float:
    return _NORMAL.inv_cdf(min(max(p, 1e-300), 1.0 - 1e-16))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom (df may be fractional; inf = normal)."""
    if math.isinf(df) or df > 1e7:
        return norm_sf(t)
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


@lru_cache(maxsize=4096)
def t_ppf(q: float, df: float) -> float:
    """The t with P(T <= t) = q (cached: callers ask for few distinct levels)."""
    if math.isinf(df) or df > 1e7:
        return norm_ppf(q)
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    upper = 1.0 - q
    lo, hi = 0.0, max(1.0, norm_ppf(q))
    while t_sf(hi, df) > upper:
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_sf(mid, df) > upper:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mixture_radius(alpha: float, info: float, rho: float) -> float:
    """One-sided normal-mixture boundary in standard units: P(any t: S_t / sqrt(V_t) >= this) <= alpha.

    Howard et al. (2021), one-sided normal mixture: S_t >= sqrt(2 (V + rho) log(sqrt((V + rho) / rho)
    / (2 alpha) + 1)). `info` is V_t and `rho` the mixture's tuning (both in windows of data here);
    the boundary is tightest near info ~ 3-10 rho and grows like sqrt(log info) after.
    """
    if info <= 0:
        return math.inf
    return _mixture(alpha, info, rho)


@lru_cache(maxsize=8192)
def _mixture(alpha: float, info: float, rho: float) -> float:
    ratio = 1.0 + info / rho
    return math.sqrt(2.0 * (1.0 + rho / info) * math.log(math.sqrt(ratio) / (2.0 * alpha) + 1.0))


def mixture_alpha(z: float, info: float, rho: float) -> float:
    """The smallest alpha with `mixture_radius(alpha, info, rho)` <= z: an always-valid p-value."""
    if info <= 0 or z <= 0:
        return 1.0
    exponent = z * z / (2.0 * (1.0 + rho / info))
    if exponent > 700:
        return 0.0
    return min(1.0, math.sqrt(1.0 + info / rho) / (2.0 * math.expm1(exponent)))


@lru_cache(maxsize=8192)
def sequential_t(alpha: float, info: float, rho: float, df: int) -> float:
    """The t quantile matching the mixture boundary's tail probability at `info`, for `df` degrees of freedom."""
    return t_ppf(1.0 - norm_sf(mixture_radius(alpha, info, rho)), float(df))


@lru_cache(maxsize=1024)
def crossing_z(alpha: float, span: float) -> float:
    """The z with 1 - Phi(z) + (span + 0.1) z phi(z) = alpha: a boundary that a standardized Gaussian
    sum looked at over information I0..I1 = I0 e^span crosses with probability at most about alpha.

    B(I)/sqrt(I) is an Ornstein-Uhlenbeck process in log I; Siegmund (1985) gives its crossing rate
    z phi(z) / 2 per unit of log I for large z. For the z ~ 1-2 of a pass bound that undershoots, so
    the rate is doubled and 0.1 added for the first looks (random-walk simulations in the tests: at
    most alpha for spans 0.03-2, and within a factor 2 of it). span = 0 is about one look."""
    span = max(0.0, span)

    def tail(z: float) -> float:
        return norm_sf(z) + (span + 0.1) * z * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    lo, hi = norm_ppf(1.0 - alpha), max(1.0, norm_ppf(1.0 - alpha))
    while tail(hi) > alpha:
        hi *= 1.5
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if tail(mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


LOOK_STEP = 0.25          # grid spacing of the walk's density, in step standard deviations
LOOK_DEPTH = 6.0          # the grid reaches this many of the walk's standard deviations below zero
MAX_EXACT_WORK = 1500     # looks x sqrt(last): past this (~1 s of pure Python) `look_z` uses the closed form


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def crossing_probability(z: float, first: int, last: int) -> float:
    """P(S_n / sqrt(n) >= z for some n in first..last), S a random walk of standard normal steps.

    The density of S_n on the paths that have not crossed yet lives on a grid aligned to the
    boundary z sqrt(n) (trapezoid weights, so the cut at the boundary is integrated exactly at
    its end); each step adds the mass that crosses at the next look and convolves the rest with
    the step's normal density. The grid reads about 0.3% of the probability low (halving the step
    moves it by that much at 0.2); simulations in the tests agree within their own error."""
    h = LOOK_STEP
    top = z * math.sqrt(first)
    spread = math.sqrt(first)
    size = math.ceil((top + LOOK_DEPTH * spread) / h) + 1
    grid = [top - i * h for i in range(size)]
    mass = [_phi(u / spread) / spread * h for u in grid]
    mass[0] *= 0.5
    mass[-1] *= 0.5
    crossed = norm_sf(z)
    reach = math.ceil(7.5 / h)  # the step's density is negligible past 7.5 standard deviations
    for n in range(first + 1, last + 1):
        new_top = z * math.sqrt(n)
        crossed += sum(m * norm_sf(new_top - u) for m, u in zip(mass, grid, strict=True))
        new_size = math.ceil((new_top + LOOK_DEPTH * math.sqrt(n)) / h) + 1
        shift = new_top - top  # new point i - old point j = shift + (j - i) h
        kernel = [_phi(shift + d * h) for d in range(-reach, reach + 1)]
        moved = []
        for i in range(new_size):
            lo, hi = max(0, i - reach), min(size - 1, i + reach)
            moved.append(h * sum(mass[j] * kernel[j - i + reach] for j in range(lo, hi + 1)))
        moved[0] *= 0.5
        moved[-1] *= 0.5
        mass, grid, top, size = moved, [new_top - i * h for i in range(new_size)], new_top, new_size
    return crossed


@lru_cache(maxsize=256)
def look_z(alpha: float, first: int, last: int) -> float:
    """The z that a standardized Gaussian random walk looked at after steps first..last crosses with
    probability alpha: exact while the recursion's work (looks x grid size, the grid growing like
    sqrt(last)) stays under MAX_EXACT_WORK, `crossing_z` (conservative) beyond."""
    first = max(1, first)
    last = max(first, last)
    if (last - first + 1) * math.sqrt(last) > MAX_EXACT_WORK:
        return crossing_z(alpha, math.log(last / first))
    lo, hi = norm_ppf(1.0 - alpha), norm_ppf(1.0 - alpha / (last - first + 1))  # one look; Bonferroni
    f_lo, f_hi = crossing_probability(lo, first, last) - alpha, crossing_probability(hi, first, last) - alpha
    side = 0
    for _ in range(40):  # regula falsi (Illinois): a handful of evaluations, each a full recursion
        if f_hi == f_lo:
            break
        z = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        f_z = crossing_probability(z, first, last) - alpha
        if abs(f_z) < 1e-3 * alpha or hi - lo < 1e-5:
            return z
        if (f_z > 0) == (f_hi > 0):
            hi, f_hi = z, f_z
            if side == -1:
                f_lo /= 2
            side = -1
        else:
            lo, f_lo = z, f_z
            if side == 1:
                f_hi /= 2
            side = 1
    return hi


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    return betainc(float(k), float(n - k + 1), p)
