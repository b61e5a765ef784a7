"""The law of a first-layer pre-activation, for a fixed input and any continuous weight law.

Every net sees the same input ``x``, and the rows of the first weight matrix are
independent, so the pre-activations of the first layer are i.i.d.:

    h_r = sigma sum_k W_rk x_k  =  sigma ||x|| S,    S = sum_k a_k W_k,   a = x / ||x||,

with ``sigma = sqrt(c_1 / n_0)`` and ``W_k`` i.i.d. of unit variance. Drawing ``S``
once from its law instead of drawing ``n_0`` weights turns the first layer's
``O(n_0 n_1)`` work into ``O(n_1)`` (``method="exact_first"``; with an MNIST-size input
the first layer is most of a narrow net's draws).

``S`` has the characteristic function ``phi_S(t) = prod_k phi_W(a_k t)`` (real: the
laws are symmetric), with ``phi_W`` in closed form for each law (:func:`standard_cf`).
Its CDF and density are inverted by the Gil-Pelaez formula at midpoints
``t_k = (k + 1/2) h`` (as in :mod:`fmsim.exact_law`),

    F(s) = 1/2 + (1/pi) sum_{k<K} phi_S(t_k) sin(t_k s) / (k + 1/2),
    f(s) = (h/pi) sum_{k<K} phi_S(t_k) cos(t_k s),

on a grid ``s_i = -L + i ds``; a draw is ``S = F^{-1}(u)`` through the piecewise cubic
Hermite interpolant of ``(F, f)`` (``law_quantile``). The errors, each kept far
below what any Monte Carlo run can see:

* the range: ``P(|S| > L) <= 2 exp(min_theta sum_k kappa(a_k theta) - theta L)``
  (Chernoff, with the closed-form log-MGF ``kappa`` of each law) is below ``1e-20``;
* the step ``h = 2 pi / (3 L)``: the midpoint sum reads the law folded with period
  ``3 L``, so on ``[-L, L]`` it errs by at most ``P(|S| > 2 L)``;
* the truncation ``K``: ``|phi_S(t)| <= E(t) = prod_k e(a_k t)`` with ``e`` a
  non-increasing envelope of ``|phi_W|`` (:func:`cf_envelope`), and ``K`` is the first
  term with ``E(t_K) < 1e-18``;
* the interpolation: ``F`` is also computed at the midpoints of the grid, and the
  Hermite interpolant must match it there to ``1e-12`` (else ``ds`` is halved).

So the sampled law is within about ``1e-12`` of the exact one in Kolmogorov distance.
If ``E`` decays too slowly (an input concentrated on a few coordinates, where ``S``
is far from smooth) the law is refused with a clear error: use ``method="full"``.
Rademacher weights make ``S`` discrete and are refused too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit

from .laws import TRUNCATED_NORMAL_VARIANCE

__all__ = ["FirstLayerLaw", "first_layer_law", "law_quantile", "standard_cf", "cf_envelope", "log_mgf",
           "FIRST_LAYER_LAWS"]

#: Weight laws whose first layer ``method="exact_first"`` can sample from its law.
FIRST_LAYER_LAWS = ("gaussian", "uniform", "laplace", "truncated_normal")

_TAIL = 1e-20  # bound on P(|S| > L)
_ENVELOPE = 1e-18  # bound on |phi_S| past the last term
_INTERPOLATION = 1e-12  # largest Hermite error allowed at the grid's midpoints
_MAX_TERMS = 1 << 14
_GUIDE = 4096  # buckets of u in the quantile's guide table
_SQRT3 = math.sqrt(3.0)
_TRUNC_A = 2.0  # N(0, 1) cut at +-2
_TRUNC_SD = math.sqrt(TRUNCATED_NORMAL_VARIANCE)
_TRUNC_MASS = math.erf(_TRUNC_A / math.sqrt(2.0))
# |phi_W(u)| <= 2 p(0) / |u| for a density p that is symmetric and non-increasing on [0, inf) (integrate
# by parts: the boundary terms and the total variation of p on each side add to 2 p(0)).
_ENVELOPE_C = {"uniform": 1.0 / _SQRT3, "truncated_normal": 2.0 * _TRUNC_SD / (math.sqrt(2 * math.pi) * _TRUNC_MASS)}


def standard_cf(law: str, u: np.ndarray) -> np.ndarray:
    """Characteristic function ``E[cos(u W)]`` of the unit-variance weight law.

    Parameters
    ----------
    law : {"gaussian", "uniform", "laplace", "truncated_normal"}
    u : ndarray, any shape

    Returns
    -------
    ndarray, the shape of ``u``, float64
    """
    from scipy import special

    u = np.asarray(u, dtype=float)
    if law == "gaussian":
        return np.exp(-0.5 * u * u)
    if law == "uniform":  # U(-sqrt 3, sqrt 3)
        return np.sinc(_SQRT3 * u / np.pi)
    if law == "laplace":  # scale 1 / sqrt 2
        return 1.0 / (1.0 + 0.5 * u * u)
    if law == "truncated_normal":
        # X ~ N(0, 1) on [-a, a], W = X / sd.  E[e^{ivX}] = e^{-v^2/2} Re erf((a + iv)/sqrt 2) / erf(a/sqrt 2),
        # and e^{-v^2/2} erf((a + iv)/sqrt 2) = e^{-v^2/2} - e^{-a^2/2} e^{-iav} w((-v + ia)/sqrt 2) (Faddeeva w),
        # which stays finite for large v.
        v = u / _TRUNC_SD
        a = _TRUNC_A
        tail = np.exp(-0.5 * a * a) * (np.exp(-1j * a * v) * special.wofz((-v + 1j * a) / math.sqrt(2.0))).real
        return (np.exp(-0.5 * v * v) - tail) / _TRUNC_MASS
    raise ValueError(f"law must be one of {FIRST_LAYER_LAWS}, got {law!r}")


def cf_envelope(law: str, u: np.ndarray) -> np.ndarray:
    """A bound ``e(|u|) >= |E[cos(u W)]|`` that does not increase with ``|u|``; shape of ``u``."""
    u = np.abs(np.asarray(u, dtype=float))
    if law in ("gaussian", "laplace"):
        return standard_cf(law, u)  # positive and decreasing already
    with np.errstate(divide="ignore"):
        return np.minimum(1.0, _ENVELOPE_C[law] / u)


def log_mgf(law: str, theta: np.ndarray) -> np.ndarray:
    """``log E[exp(theta W)]`` of the unit-variance law, ``theta >= 0`` (Laplace: ``theta < sqrt 2``)."""
    from scipy import special

    th = np.asarray(theta, dtype=float)
    if law == "gaussian":
        return 0.5 * th * th
    if law == "uniform":  # log(sinh(y) / y), y = sqrt(3) theta
        y = np.maximum(_SQRT3 * th, 1e-300)
        return np.where(y < 1e-4, y * y / 6.0, y + np.log1p(-np.exp(-2.0 * y)) - np.log(2.0 * y))
    if law == "laplace":
        return -np.log1p(-0.5 * th * th)
    if law == "truncated_normal":
        v = th / _TRUNC_SD
        hi, lo = special.log_ndtr(_TRUNC_A - v), special.log_ndtr(-_TRUNC_A - v)
        return 0.5 * v * v + hi + np.log1p(-np.exp(lo - hi)) - math.log(_TRUNC_MASS)
    raise ValueError(f"law must be one of {FIRST_LAYER_LAWS}, got {law!r}")


def _tail_bound(law: str, a: np.ndarray, s: float) -> float:
    """Chernoff bound on ``P(S > s)`` (``S`` is symmetric, so ``P(|S| > s)`` is at most twice it)."""
    from scipy import optimize

    top = math.sqrt(2.0) / np.abs(a).max() * (1.0 - 1e-9) if law == "laplace" else 50.0 * (1.0 + s)
    res = optimize.minimize_scalar(lambda th: float(np.sum(log_mgf(law, np.abs(a) * th))) - th * s,
                                   bounds=(0.0, top), method="bounded", options={"xatol": 1e-10})
    return math.exp(min(res.fun, 0.0))


def _range(law: str, a: np.ndarray) -> float:
    """Smallest ``L`` (to 1%) with ``2 P(S > L) <= 1e-20`` by :func:`_tail_bound`."""
    lo, hi = 0.0, 8.0
    while 2.0 * _tail_bound(law, a, hi) > _TAIL:
        lo, hi = hi, 2.0 * hi
    while hi - lo > 0.01 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if 2.0 * _tail_bound(law, a, mid) > _TAIL else (lo, mid)
    return hi


@njit(inline="always", cache=True)
def _hermite(F0, F1, m0, m1, t):
    """Cubic Hermite on one interval, local ``t`` in ``[0, 1]``, end slopes ``m = ds * f``: scalars in
    ``law_quantile``, arrays in the table's checks and :meth:`FirstLayerLaw.cdf_at` (one formula for both)."""
    t2 = t * t
    t3 = t2 * t
    return (2 * t3 - 3 * t2 + 1) * F0 + (t3 - 2 * t2 + t) * m0 + (-2 * t3 + 3 * t2) * F1 + (t3 - t2) * m1


@dataclass(frozen=True, eq=False)
class FirstLayerLaw:
    """The tabulated law of ``S = sum_k a_k W_k`` (unit variance).

    Attributes
    ----------
    law : str
        Weight law.
    s0, ds : float
        The grid ``s_i = s0 + i ds``, ``i = 0..N-1``, ``s0 = -L``.
    cdf : ndarray, shape (2, N), float64
        Row 0: ``F(s_i)`` (non-decreasing, exactly 0 and 1 at the ends); row 1: the density ``f(s_i)``.
    guide : ndarray, shape (G + 1,), int64
        ``guide[b]``: the last node with ``F(s_i) <= b / G`` (where the search for ``u`` starts).
    terms : int
        Terms of the Gil-Pelaez sum.
    interpolation_error : float
        Largest difference at the grid's midpoints between the Hermite interpolant and ``F``.
    """

    law: str
    s0: float
    ds: float
    cdf: np.ndarray
    guide: np.ndarray
    terms: int
    interpolation_error: float

    @property
    def grid(self) -> np.ndarray:
        """The nodes ``s_i``, shape (N,)."""
        return self.s0 + self.ds * np.arange(self.cdf.shape[1])

    def cdf_at(self, s: np.ndarray) -> np.ndarray:
        """The interpolated CDF (the law the samples follow) at ``s``, any shape; plain NumPy."""
        s = np.asarray(s, dtype=float)
        pos = np.clip((s - self.s0) / self.ds, 0.0, self.cdf.shape[1] - 1.0)
        i = np.minimum(pos.astype(np.int64), self.cdf.shape[1] - 2)
        F, f = self.cdf
        return _hermite(F[i], F[i + 1], self.ds * f[i], self.ds * f[i + 1], pos - i)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """``F^{-1}(u)`` by ``law_quantile`` (the kernels' own), for ``u`` in ``(0, 1)``; shape of ``u``."""
        u = np.asarray(u, dtype=float)
        out = np.array([law_quantile(v, self.cdf, self.guide, self.s0, self.ds) for v in u.ravel()])
        return out.reshape(u.shape)


def _gil_pelaez(phi: np.ndarray, h: float, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CDF and density at ``s`` from ``phi_S(t_k)``, ``t_k = (k + 1/2) h`` (module docstring)."""
    k = np.arange(phi.size) + 0.5
    F = np.empty(s.size)
    f = np.empty(s.size)
    for lo in range(0, s.size, 2048):  # blocks of (2048, K) keep memory small
        ts = np.outer(s[lo:lo + 2048], k * h)
        F[lo:lo + 2048] = 0.5 + np.sin(ts) @ (phi / k) / np.pi
        f[lo:lo + 2048] = np.cos(ts) @ phi * (h / np.pi)
    return F, f


def _monotone_slopes(F: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson: shrink the end slopes of each interval so that its cubic does not decrease."""
    m = np.maximum(m, 0.0)
    dF = np.diff(F)
    for i in np.flatnonzero(dF <= 0.0):
        m[i] = m[i + 1] = 0.0
    ok = dF > 0.0
    alpha = np.where(ok, m[:-1] / np.where(ok, dF, 1.0), 0.0)
    beta = np.where(ok, m[1:] / np.where(ok, dF, 1.0), 0.0)
    r = alpha * alpha + beta * beta
    for i in np.flatnonzero(r > 9.0):
        tau = 3.0 / math.sqrt(r[i])
        m[i] = min(m[i], tau * alpha[i] * dF[i])
        m[i + 1] = min(m[i + 1], tau * beta[i] * dF[i])
    return m


@lru_cache(maxsize=32)
def _first_layer_law_cached(law: str, a_bytes: bytes) -> FirstLayerLaw:
    a = np.frombuffer(a_bytes, dtype=np.float64)
    L = _range(law, a)
    h = 2.0 * math.pi / (3.0 * L)
    terms = 64
    while True:
        t_last = (terms - 0.5) * h
        log_env = float(np.sum(np.log(np.maximum(cf_envelope(law, a * t_last), 1e-300))))
        if log_env < math.log(_ENVELOPE):
            break
        if terms >= _MAX_TERMS:
            raise ValueError(
                f"method='exact_first': the first layer's law cannot be tabulated for this input with law={law!r}: "
                f"its characteristic function is still above {_ENVELOPE:g} after {_MAX_TERMS} terms, because the "
                f"input is concentrated on few coordinates (largest |x_k| / ||x|| = {np.abs(a).max():.3g}). "
                "Use method='full'.")
        terms *= 2
    t = (np.arange(terms) + 0.5) * h
    block = max(1, (1 << 21) // a.size)  # (block, n_0) at a time: at most 16 MB
    phi = np.concatenate([np.prod(standard_cf(law, np.outer(t[i:i + block], a)), axis=1)
                          for i in range(0, t.size, block)])
    ds = 1.0 / 64
    while True:
        n = int(math.ceil(2.0 * L / ds)) + 1
        s = -L + ds * np.arange(n)
        F, f = _gil_pelaez(phi, h, s)
        F = np.maximum.accumulate(np.clip(F, 0.0, 1.0))
        F[0], F[-1] = 0.0, 1.0
        m = _monotone_slopes(F, ds * f)
        Fmid, _ = _gil_pelaez(phi, h, s[:-1] + 0.5 * ds)
        err = float(np.max(np.abs(_hermite(F[:-1], F[1:], m[:-1], m[1:], 0.5) - Fmid)))
        if err <= _INTERPOLATION:
            break
        if ds < 1.0 / 4096:
            raise ValueError(f"method='exact_first': the first layer's law with law={law!r} is not smooth enough to "
                             f"tabulate to {_INTERPOLATION:g} (error {err:.2g}); use method='full'")
        ds /= 2.0
    cdf = np.stack([F, m / ds])  # writable: numba compiles read-only arrays as another type
    guide = np.searchsorted(F, np.arange(_GUIDE + 1) / _GUIDE, side="right") - 1
    return FirstLayerLaw(law=law, s0=-L, ds=ds, cdf=cdf, guide=guide, terms=terms, interpolation_error=err)


def first_layer_law(law: str, x: np.ndarray) -> FirstLayerLaw:
    """The tabulated law of ``S = sum_k a_k W_k``, ``a = x / ||x||``, for unit-variance weights of ``law``.

    Parameters
    ----------
    law : {"gaussian", "uniform", "laplace", "truncated_normal"}
    x : ndarray, shape (n_0,)
        The input, not all zero. Only its direction matters (and the order of its entries does not).

    Returns
    -------
    FirstLayerLaw
        Cached: a run's chunks share one table.

    Raises
    ------
    ValueError
        For Rademacher weights, or an input on too few coordinates for the law to be tabulated (see the
        module docstring).
    """
    if law not in FIRST_LAYER_LAWS:
        raise ValueError(f"method='exact_first' needs a continuous weight law, one of {FIRST_LAYER_LAWS} "
                         f"(law={law!r} makes the first layer's sum discrete); use method='full'")
    x = np.asarray(x, dtype=float)
    norm = math.sqrt(float(x @ x))
    if norm == 0.0:
        raise ValueError("method='exact_first' needs an input that is not all zero")
    a = np.sort(np.abs(x[x != 0.0])) / norm  # the law depends on |a_k| only, in any order
    return _first_layer_law_cached(law, a.tobytes())


@njit(inline="always", cache=True)
def law_quantile(u, cdf, guide, s0, ds):
    """``F^{-1}(u)`` of a :class:`FirstLayerLaw` table, ``0 < u < 1``.

    Finds the interval ``F(s_i) <= u < F(s_{i+1})`` by bisection between the guide table's
    bounds for ``u`` (one or two nodes near the center), then solves the interval's cubic
    Hermite ``H(t) = u`` by Newton's method kept inside a shrinking bracket.

    Parameters
    ----------
    u : float
    cdf : ndarray, shape (2, N), float64
        ``F`` and ``f`` at the grid nodes.
    guide : ndarray, shape (G + 1,), int64
        :attr:`FirstLayerLaw.guide`.
    s0, ds : float
        First node and step of the grid.

    Returns
    -------
    float
    """
    n = cdf.shape[1]
    n_buckets = guide.size - 1
    bucket = min(int(u * n_buckets), n_buckets - 1)
    lo, hi = guide[bucket], min(guide[bucket + 1] + 1, n - 1)
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if cdf[0, mid] <= u:
            lo = mid
        else:
            hi = mid
    F0, F1 = cdf[0, lo], cdf[0, lo + 1]
    m0, m1 = ds * cdf[1, lo], ds * cdf[1, lo + 1]
    a, b = 0.0, 1.0
    t = (u - F0) / (F1 - F0) if F1 > F0 else 0.5  # (F1 > F0 whenever 0 <= u < 1)
    for _ in range(60):
        t2 = t * t
        g = _hermite(F0, F1, m0, m1, t) - u
        dg = (6 * t2 - 6 * t) * F0 + (3 * t2 - 4 * t + 1) * m0 + (6 * t - 6 * t2) * F1 + (3 * t2 - 2 * t) * m1
        if g > 0.0:
            b = t
        else:
            a = t
        step = g / dg if dg > 0.0 else 2.0  # no slope: bisect
        tn = t - step
        if not (a < tn < b):
            tn = 0.5 * (a + b)
        if abs(tn - t) <= 1e-13 or b - a <= 1e-13:  # H's rounding moves t by ~1e-14 near the center
            t = tn
            break
        t = tn
    return s0 + (lo + t) * ds
