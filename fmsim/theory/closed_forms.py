"""Closed forms for random fully connected ReLU nets, next to the Monte Carlo.

Conventions match the simulator: ReLU at every layer, weights i.i.d.
symmetric with variance ``c_j / n_{j-1}``, input ``x`` fixed,
``M_j = ||z_j||^2 / n_j``. Derivations: the documentation's theory page
(Hanin & Rolnick 2018 give bounds of the form ``exp(C sum_j 1/n_j)``; these
are the exact finite-width values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .exact_law import LengthLaw, length_law, residual_length_law

__all__ = [
    "mean_length",
    "bias_fixed_point",
    "gaussian_ratio_moment",
    "gaussian_moments",
    "second_moment",
    "expected_fm2",
    "fm2_constant_width_limit",
    "dead_probability",
    "length_law",
    "residual_length_law",
    "LengthLaw",
    "residual_mean_length",
    "residual_second_moment",
    "conv_second_moment_bounds",
    "gaussian_log_length_moments",
    "orthogonal_ratio_moment",
    "orthogonal_moments",
    "log_length_moments",
]


def _layer_c(c: float | Sequence[float], depth: int) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(c, dtype=float), (depth,))
    return np.array(arr)


def mean_length(widths: Sequence[int], c: float | Sequence[float] = 2.0, m0: float = 1.0,
                bias_var: float | Sequence[float] = 0.0, weights: str = "iid") -> np.ndarray:
    """``E[M_j]``, exact for any symmetric i.i.d. law of weights and biases:
    ``E[M_j] = (c_j E[M_{j-1}] + sigma_b,j^2) / 2``; or for Haar-orthogonal weights times ``sqrt(c_j)``:
    ``E[M_j] = E[M_{j-1}] (c_j/2) min(n_{j-1}, n_j) / n_j``.

    With biases the recursion has, for constant ``c < 2`` and ``sigma_b^2``, the fixed point
    ``M* = sigma_b^2 / (2 - c)``, approached geometrically at the rate ``c/2``: the mean length no longer
    vanishes with depth, it settles where the biases hold it (:func:`bias_fixed_point`).

    Orthogonal weights keep the squared length when ``n_j >= n_{j-1}`` and
    spread it over ``n_j`` units, so every widening layer loses the factor
    ``n_{j-1}/n_j`` of ``M``, where i.i.d. weights of variance ``c/n_{j-1}``
    lose nothing; a narrowing layer keeps the fraction ``n_j/n_{j-1}`` of the
    squared length in ``n_j`` units, as i.i.d. weights do.

    Parameters
    ----------
    widths : sequence of int, length d + 1
    c : float or sequence of float (length d)
    m0 : float
        ``M_0 = ||x||^2 / n_0``.
    bias_var : float or sequence of float (length d)
        ``sigma_b,j^2``, the biases' variance: one value, or one per layer (``bias_c / n_{j-1}`` for biases
        scaled by fan-in: :meth:`fmsim.Init.layer_bias_var`). i.i.d. weights only.
    weights : {"iid", "orthogonal"}

    Returns
    -------
    ndarray, shape (d + 1,)
        ``E[M_0], ..., E[M_d]``; with zero bias and i.i.d. weights ``E[M_d] = M_0 prod_j (c_j / 2)``.
    """
    cs = _layer_c(c, len(widths) - 1)
    out = np.empty(len(widths))
    out[0] = m0
    bv = np.broadcast_to(np.asarray(bias_var, dtype=float), (len(widths) - 1,))
    if weights == "orthogonal":
        if np.any(bv):
            raise ValueError(f"bias_var must be 0 for orthogonal weights, got {bias_var}")
        for j, cj in enumerate(cs, start=1):
            out[j] = out[j - 1] * 0.5 * cj * min(widths[j - 1], widths[j]) / widths[j]
        return out
    if weights != "iid":
        raise ValueError(f"weights must be 'iid' or 'orthogonal', got {weights!r}")
    for j, cj in enumerate(cs, start=1):
        out[j] = 0.5 * (cj * out[j - 1] + bv[j - 1])
    return out


def bias_fixed_point(c: float, bias_var: float) -> float:
    """``M* = sigma_b^2 / (2 - c)``: where ``E[M_j] = (c E[M_{j-1}] + sigma_b^2) / 2`` settles with depth, for
    ``0 < c < 2`` (``inf`` for ``c >= 2``: the mean grows without bound, by ``sigma_b^2 / 2`` a layer at ``c = 2``).

    For PyTorch's default (``nn.Linear``: ``c = 1/3`` and ``sigma_b^2 = 1/(3 n)`` at width ``n``) it is
    ``1 / (5 n)``: the mean length settles there instead of vanishing like ``6^-d`` as the weights alone make it.
    """
    return float(bias_var / (2.0 - c)) if c < 2.0 else math.inf


def gaussian_ratio_moment(n: int, k: int, c: float = 2.0) -> float:
    """``E[Y^k]`` for ``Y = (c/n) chi2(K)``, ``K ~ Bin(n, 1/2)``: one Gaussian layer's ratio.

    Uses ``E[chi2_K^k | K] = K (K+2) ... (K+2k-2)``. For ``k = 2``,
    ``E[Y^2] = (c/2)^2 (1 + 5/n)``.
    """
    kk = np.arange(n + 1, dtype=float)
    prod = np.ones_like(kk)
    for i in range(k):
        prod *= kk + 2 * i
    from scipy import stats
    return float((c / n) ** k * (stats.binom.pmf(np.arange(n + 1), n, 0.5) @ prod))


def gaussian_moments(widths: Sequence[int], k: int, c: float | Sequence[float] = 2.0,
                     m0: float = 1.0) -> np.ndarray:
    """``E[M_j^k]`` for Gaussian weights, zero bias: ``M_0^k prod_{i<=j} E[Y_i^k]``.

    Returns
    -------
    ndarray, shape (d + 1,)
    """
    cs = _layer_c(c, len(widths) - 1)
    ratios = [gaussian_ratio_moment(int(n), k, float(cj)) for n, cj in zip(widths[1:], cs)]
    return m0**k * np.concatenate([[1.0], np.cumprod(ratios)])


def orthogonal_ratio_moment(n_in: int, n: int, k: int, c: float = 2.0) -> float:
    """``E[Y^k]`` for one orthogonal layer, ``Y = ||ReLU(W z)||^2 / ||z||^2`` with ``W`` (``n x n_in``) Haar times
    ``sqrt(c)``: ``Y = c B Beta(K/2, (n - K)/2)``, ``K ~ Bin(n, 1/2)`` (:class:`~fmsim.exact_law.OrthogonalFactor`).

    Uses ``E[Beta(a, b)^k] = prod_{i<k} (a + i)/(a + b + i)``. For ``k = 1`` this is ``(c/2) min(1, n/n_in)``;
    for square layers and ``k = 2``, ``(c/2)^2 (1 + 3/(n + 2))``.
    """
    from scipy import stats
    kk = np.arange(n + 1, dtype=float)
    ratio = np.ones_like(kk)
    for i in range(k):
        ratio *= (kk / 2 + i) / (n / 2 + i)
    moment = float(stats.binom.pmf(np.arange(n + 1), n, 0.5) @ ratio)
    if n < n_in:
        for i in range(k):
            moment *= (n / 2 + i) / (n_in / 2 + i)
    return c**k * moment


def orthogonal_moments(widths: Sequence[int], k: int, c: float | Sequence[float] = 2.0, m0: float = 1.0
                       ) -> np.ndarray:
    """``E[M_j^k]`` for Haar-orthogonal weights times ``sqrt(c_j)``, no bias (exact):
    ``M_0^k prod_{i<=j} (n_{i-1}/n_i)^k E[Y_i^k]`` (:func:`orthogonal_ratio_moment`).

    For square layers, ``E[M_d^2]/M_0^2 = prod_j (c_j/2)^2 (1 + 3/(n_j + 2))``, against Gaussian weights'
    ``prod_j (c_j/2)^2 (1 + 5/n_j)`` (:func:`gaussian_moments`).

    Returns
    -------
    ndarray, shape (d + 1,)
    """
    cs = _layer_c(c, len(widths) - 1)
    ratios = [(n_in / n) ** k * orthogonal_ratio_moment(int(n_in), int(n), k, float(cj))
              for n_in, n, cj in zip(widths[:-1], widths[1:], cs)]
    return m0**k * np.concatenate([[1.0], np.cumprod(ratios)])


def log_length_moments(widths: Sequence[int], c: float | Sequence[float] = 2.0, m0: float = 1.0,
                       weights: str = "gaussian") -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``log M_j`` given ``M_j > 0`` for Gaussian or orthogonal weights, zero bias (exact):
    sums over the layers of their factors' ``log_mean_var`` (:func:`length_law`).

    Returns
    -------
    mean, var : ndarray, shape (d + 1,)
    """
    law = length_law(widths, c, m0, weights=weights) if len(widths) > 1 else None
    means, variances = [math.log(m0)], [0.0]
    for f in law.factors if law is not None else ():
        fm, fv = f.log_mean_var()
        means.append(means[-1] + fm)
        variances.append(variances[-1] + fv)
    return np.array(means), np.array(variances)


def second_moment(x: np.ndarray, widths: Sequence[int], m4: float, c: float | Sequence[float] = 2.0,
                  bias_var: float = 0.0, bias_m4: float = 3.0) -> np.ndarray:
    """``E[M_j^2]`` for any symmetric weight law: the exact fourth-moment recursion.

    Tracks ``s_j = E[M_j^2]``, ``q_j = E[sum_i z_j[i]^4]`` and ``m_j = E[M_j]``
    (hanin_rolnick.md section 4.3). The law enters through its standardized
    fourth moment ``m4`` (Gaussian 3, uniform 1.8, Rademacher 1, Laplace 6).

    Parameters
    ----------
    x : ndarray, shape (n_0,)
        The fixed input.
    widths : sequence of int, length d + 1
    m4 : float
        Standardized fourth moment of the weights.
    c : float or sequence of float
    bias_var : float or sequence of float (length d)
        Bias variance, one value or one per layer.
    bias_m4 : float
        Standardized fourth moment of the biases (same law as weights in fmsim).

    Returns
    -------
    ndarray, shape (d + 1,)
    """
    x = np.asarray(x, dtype=float)
    cs = _layer_c(c, len(widths) - 1)
    s = (x @ x / x.size) ** 2
    q = float((x**4).sum())
    m = x @ x / x.size
    bvs = np.broadcast_to(np.asarray(bias_var, dtype=float), (len(widths) - 1,))
    out = [s]
    n_prev = x.size
    for n, cj, bias_var in zip(widths[1:], cs, bvs):
        mu4_b = bias_m4 * bias_var**2
        kappa = (cj / n_prev) ** 2 * (m4 - 3.0)
        e4 = 3 * cj * cj * s + kappa * q + 6 * cj * bias_var * m + mu4_b
        e22 = cj * cj * s + 2 * cj * bias_var * m + bias_var**2
        s = e4 / (2 * n) + (1 - 1 / n) * e22 / 4
        q = n * e4 / 2
        m = 0.5 * (cj * m + bias_var)
        out.append(s)
        n_prev = n
    return np.array(out)


def expected_fm2(second_moments: np.ndarray, c: float | Sequence[float] = 2.0) -> float:
    """``E[Varhat]`` of ``M_1..M_d`` across layers, zero bias, any symmetric law.

    Uses ``E[M_j M_k] = s_j prod_{i=j+1..k} (c_i/2)`` for ``j <= k`` (the
    martingale property of section 4.4).

    Parameters
    ----------
    second_moments : ndarray, shape (d + 1,)
        ``E[M_0^2], ..., E[M_d^2]`` from :func:`second_moment` or :func:`gaussian_moments`.
    c : float or sequence of float (length d)

    Returns
    -------
    float
    """
    s = np.asarray(second_moments, dtype=float)[1:]
    d = s.size
    half = _layer_c(c, d) / 2.0
    cross = 0.0
    for j in range(d):
        prod = 1.0
        for k in range(j, d):
            if k > j:
                prod *= half[k]
            cross += (1.0 if k == j else 2.0) * s[j] * prod
    return float(s.mean() - cross / d**2)


def fm2_constant_width_limit(beta: float) -> float:
    """``lim E[Varhat]/M_0^2`` for He Gaussian nets of constant width ``n = d/beta``, ``d -> inf``.

    ``(e^a + 1)/a - 2(e^a - 1)/a^2`` with ``a = 5 beta``: exponential in beta (FM2).
    """
    a = 5.0 * beta
    return (math.exp(a) + 1) / a - 2 * (math.exp(a) - 1) / a**2


def dead_probability(widths: Sequence[int]) -> float:
    """``P(M_d = 0) = 1 - prod_j (1 - 2^{-n_j})`` for zero bias and any symmetric law without atoms."""
    # -expm1(sum log1p(-p)) rather than 1 - prod(1 - p): exact to the last digit when P(dead) is tiny
    return float(-np.expm1(np.sum(np.log1p([-(2.0 ** (-int(n))) for n in widths[1:]]))))


# ------------------------------------------------------------ residual nets
def residual_mean_length(etas: Sequence[float], module_widths: Sequence[int] = (), c: float = 2.0,
                         c_out: float = 2.0, m0: float = 1.0,
                         bias_var: float | Sequence[float] = 0.0) -> np.ndarray:
    """``E[M_l]`` of a residual net with linear-ending modules, any symmetric law of weights and biases.

    ``E[M_l] = E[M_{l-1}] + eta_l^2 (c_out R_m + sigma_out^2)``: the cross term ``<y, F(y)>`` has mean 0 (the
    output weights and biases are symmetric and independent of ``y``), and the module's hidden ReLU layers follow
    the fully connected recursion ``R_i = (c R_{i-1} + sigma_i^2) / 2`` from ``R_0 = M_{l-1}``. Without biases
    ``E[M_l] = E[M_{l-1}] (1 + c_out eta_l^2 (c/2)^m)`` (``(c/2)^m = 1`` under He).

    Parameters
    ----------
    etas : sequence of float, length L
    module_widths : sequence of int, length m
    c, c_out : float
    m0 : float
    bias_var : float or sequence of float (length m + 1)
        The biases' variance in each layer of a module: its ``m`` hidden layers, then its output layer (one
        value for all; :meth:`fmsim.Init.layer_bias_var` for biases scaled by fan-in).

    Returns
    -------
    ndarray, shape (L + 1,)
    """
    bv = np.broadcast_to(np.asarray(bias_var, dtype=float), (len(module_widths) + 1,))
    out = np.empty(len(etas) + 1)
    out[0] = m0
    for module, eta in enumerate(np.asarray(etas, dtype=float), start=1):
        r = out[module - 1]
        for sigma2 in bv[:-1]:
            r = 0.5 * (c * r + sigma2)
        out[module] = out[module - 1] + eta * eta * (c_out * r + bv[-1])
    return out


def residual_second_moment(n: int, etas: Sequence[float], module_widths: Sequence[int] = (), c: float = 2.0,
                           c_out: float = 2.0, m0: float = 1.0) -> np.ndarray:
    """``E[M_l^2]`` of a residual net with linear-ending modules and Gaussian weights (exact).

    With ``a^2 = eta^2 c_out R`` (``R`` the module's last hidden length),
    ``E[M'^2 | M, R] = M^2 + 2 M a^2 (1 + 2/n) + a^4 (1 + 2/n)``, and
    ``E[R | M] = M (c/2)^m``, ``E[R^2 | M] = M^2 prod_i (c^2/4)(1 + 5/k_i)``, so

        E[M_l^2] = E[M_{l-1}^2] [1 + 2 eta^2 c_out (1 + 2/n)(c/2)^m + eta^4 c_out^2 (1 + 2/n) rho],

    ``rho = prod_i (c^2/4)(1 + 5/k_i)``. For ``c = c_out = 2`` this is
    hanin_rolnick.md 4.6: ``1 + 4 eta^2 (1 + 2/n) + 4 eta^4 (1 + 2/n) rho``.

    Returns
    -------
    ndarray, shape (L + 1,)
    """
    g = (c / 2.0) ** len(module_widths)
    rho = float(np.prod([(c * c / 4.0) * (1.0 + 5.0 / k) for k in module_widths]))
    e2 = np.asarray(etas, dtype=float) ** 2
    q = 1.0 + 2.0 / n
    factors = 1.0 + 2.0 * e2 * c_out * q * g + e2**2 * c_out**2 * q * rho
    return m0**2 * np.concatenate([[1.0], np.cumprod(factors)])


# ------------------------------------------------------------- conv nets
def conv_second_moment_bounds(channels: Sequence[int], positions: int, c: float = 2.0, m0: float = 1.0
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on ``E[M_j^2]`` of a periodic conv net with Gaussian weights (hanin_rolnick.md 4.7).

    Per layer ``(c^2/4)(1 + 5/(C_j P)) <= E[M_j^2]/E[M_{j-1}^2] <= (c^2/4)(1 + 5/C_j)``;
    the upper bound holds for every layer and is attained for a spatially
    constant input; the lower bound holds for ``j >= 2`` (nonnegative inputs).
    Returned as cumulative products from ``E[M_1^2]``'s own bounds: index 0 is ``M_0^2``.

    Returns
    -------
    lower, upper : ndarray, shape (d + 1,)
    """
    ch = np.asarray(channels[1:], dtype=float)
    up = (c * c / 4.0) * (1.0 + 5.0 / ch)
    lo = (c * c / 4.0) * (1.0 + 5.0 / (ch * positions))
    return (m0**2 * np.concatenate([[1.0], np.cumprod(lo)]), m0**2 * np.concatenate([[1.0], np.cumprod(up)]))


def gaussian_log_length_moments(widths: Sequence[int], c: float | Sequence[float] = 2.0, m0: float = 1.0
                                ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``log M_j`` given ``M_j > 0``, Gaussian weights, zero bias (exact).

    Given the net is alive, the layer ratios ``Y_j = (c_j/n_j) chi2(K_j)`` are
    independent with ``K_j ~ Bin(n_j, 1/2)`` conditioned on ``K_j >= 1``, and
    ``log chi2_k`` has mean ``psi(k/2) + log 2`` and variance ``psi'(k/2)``.
    Unlike the moments of ``M_j`` these are light-tailed, so a Monte Carlo
    pins them down even when ``beta = sum 1/n_j`` is large. To leading order
    ``Var[log M_d] ~ 5 beta`` (per layer, ``Var[log chi2_K] ~ 4/n_j`` and ``Var[log K_j] ~ 1/n_j``): set by
    ``beta`` alone, not by the width profile, as ``log E[M_d^2] ~ 5 beta``.

    Returns
    -------
    mean, var : ndarray, shape (d + 1,)
    """
    from scipy import special, stats

    cs = _layer_c(c, len(widths) - 1)
    means, variances = [math.log(m0)], [0.0]
    for n, cj in zip(widths[1:], cs):
        k = np.arange(1, int(n) + 1)
        p = stats.binom.pmf(k, int(n), 0.5)
        p = p / p.sum()
        mu_k = special.digamma(k / 2) + math.log(2.0)
        mu = float(p @ mu_k)
        var = float(p @ special.polygamma(1, k / 2) + p @ (mu_k - mu) ** 2)
        means.append(means[-1] + math.log(cj / n) + mu)
        variances.append(variances[-1] + var)
    return np.array(means), np.array(variances)
