"""Gradients and pairs of inputs: closed forms of the Gram chain.

Fully connected nets, Gaussian weights with ``Var = c_j / n_{j-1}``, no bias, ReLU at every layer (the last
included), a fixed input ``x``. ``J`` is the Jacobian of the last layer's post-activations at ``x``,
``J u = D_d W_d ... D_1 W_1 u`` with ``D_j`` the ReLU masks of ``x``'s forward pass.

**Tangents.** Split a tangent's image ``v_j = J_j u`` along the input's activations ``z_j``:
``v_j = beta_j z_j + v_perp``. Given the past, ``W_j z`` and ``W_j v_perp`` are independent Gaussian vectors, the
mask depends on ``W_j z`` alone, and rotating the ``K_j`` active coordinates so that ``z_{j+1}`` is the first
gives (``chi2_K`` the length's own chi-square, ``xi`` normal, ``chi2_{K-1}`` independent):

    ||z_j||^2 = (c_j / n_{j-1}) ||z_{j-1}||^2 chi2_K,
    ||v_j||^2 = (c_j / n_{j-1}) ||v_{j-1}||^2 [(b chi_K + a xi)^2 + a^2 chi2_{K-1}]  (a^2 + b^2 = 1)
              = (c_j / n_{j-1}) ||v_{j-1}||^2 chi2'_K   in law, given K.

So ``||J u||^2 / n_d`` has exactly the law of ``M_d`` started from ``||u||^2 / n_0``, and shares the ``K_j`` with
the input's own length. With several tangents the orthogonal parts' Gram matrix moves by a Wishart step: see
:mod:`fmsim.kernels.gram`, which samples the joint chain in O(m^3) per layer at any width.

**Entries of the Jacobian.** ``(J e_p)_q = 1{a_q > 0} (beta a_q + b_q)``, with ``beta a_q + b_q`` normal of
variance ``(c_d / n_{d-1}) ||J_{d-1} e_p||^2`` and the sign symmetry ``(a, b) -> (-a, -b)``: the mask halves every
even moment. Hence :func:`jacobian_entry_moments`; for He weights ``E[(J e_p)_q^2] = 1 / n_0`` at every depth,
and ``E[(J e_p)_q^4] / E[(J e_p)_q^2]^2 = 6 prod_{0<j<d} (1 + 5 / n_j)``, which grows like ``6 exp(5 beta)``
(Hanin 2018 bounds it by ``exp(C beta)``).

**Orthogonal weights** keep the chain exact (a uniform frame split into active, inactive and dropped
coordinates; :func:`fmsim.kernels.gram.orthogonal_tangent_layer`); the means follow
:func:`fmsim.theory.mean_length` with ``weights="orthogonal"`` for the inputs and the tangents alike.

**Pairs of inputs.** ``E[relu(h) relu(g)] = sqrt(q_h q_g) (sin t + (pi - t) cos t) / (2 pi)`` with
``cos t = corr(h, g)`` (Cho & Saul 2009): at infinite width the cosine between two inputs' activations follows
:func:`relu_cosine_map`, whose only fixed point is 1, reached like ``1 - rho_l ~ 9 pi^2 / (2 l^2)``. At finite
width the cosine is random; its law is sampled exactly by :func:`fmsim.kernels.gram.inputs_exact` (its mean's
``1/n`` correction is not derived here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .closed_forms import _layer_c, gaussian_moments

__all__ = ["relu_cosine_map", "mean_field_cosine", "jvp_moments", "jacobian_entry_moments"]


def relu_cosine_map(rho: float | np.ndarray) -> float | np.ndarray:
    """The cosine of two inputs' activations one layer on, at infinite width: the degree-1 arc-cosine kernel.

    ``rho' = (sqrt(1 - rho^2) + (pi - arccos rho) rho) / pi``; the scale ``c`` cancels.

    Parameters
    ----------
    rho : float or ndarray
        Cosines in ``[-1, 1]``.

    Returns
    -------
    float or ndarray
        Of ``rho``'s shape, in ``[0, 1]``.
    """
    r = np.clip(np.asarray(rho, dtype=float), -1.0, 1.0)
    out = (np.sqrt(1.0 - r * r) + (np.pi - np.arccos(r)) * r) / np.pi
    return float(out) if np.ndim(out) == 0 else out


def mean_field_cosine(depth: int, rho0: float) -> np.ndarray:
    """The infinite-width cosine between two inputs' activations after layers ``0..depth``.

    Parameters
    ----------
    depth : int
        ``d >= 0``.
    rho0 : float
        Cosine of the two inputs, in ``[-1, 1]``.

    Returns
    -------
    ndarray, shape (depth + 1,)
        :func:`relu_cosine_map` iterated from ``rho0`` (entry 0 is ``rho0``).
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
        raise ValueError(f"depth must be an integer >= 0, got {depth!r}")
    if not -1.0 <= rho0 <= 1.0:
        raise ValueError(f"rho0 must be in [-1, 1], got {rho0}")
    out = np.empty(depth + 1)
    out[0] = rho0
    for j in range(depth):
        out[j + 1] = relu_cosine_map(out[j])
    return out


def jvp_moments(widths: Sequence[int], k: int, c: float | Sequence[float] = 2.0, u_m0: float = 1.0) -> np.ndarray:
    """``E[(||J_j u||^2 / n_j)^k]`` for ``j = 0..d`` (Gaussian weights): the moments of ``M_j`` started from
    ``||u||^2 / n_0``.

    Parameters
    ----------
    widths : sequence of int
        ``n_0..n_d``.
    k : int
        Moment order, ``k >= 1``.
    c : float or sequence of float
        ``c_j`` (one per layer, or one for all).
    u_m0 : float
        ``||u||^2 / n_0``.

    Returns
    -------
    ndarray, shape (d + 1,)
    """
    return gaussian_moments(widths, k, c, u_m0)


def jacobian_entry_moments(widths: Sequence[int], c: float | Sequence[float] = 2.0) -> tuple[float, float]:
    """``E[X]`` and ``E[X^2]`` for ``X = (J e_p)_q^2``, one squared entry of the input-output Jacobian.

    ``E[X] = (c_d / (2 n_{d-1})) prod_{0<j<d} c_j n_j / (2 n_{j-1})`` and
    ``E[X^2] = (3/2) (c_d / n_{d-1})^2 prod_{0<j<d} (c_j / n_{j-1})^2 n_j (n_j + 5) / 4``
    (``E[K (K + 2)] = n (n + 5) / 4`` for ``K ~ Bin(n, 1/2)``).

    Parameters
    ----------
    widths : sequence of int
        ``n_0..n_d``, ``d >= 1``.
    c : float or sequence of float

    Returns
    -------
    (float, float)
        ``E[X]``, ``E[X^2]``; ``Var X = E[X^2] - E[X]^2``.
    """
    n = [int(v) for v in widths]
    d = len(n) - 1
    if d < 1:
        raise ValueError(f"widths must hold n_0..n_d with d >= 1, got {list(widths)}")
    cs = _layer_c(c, d)
    mean_v, square_v = 1.0, 1.0  # E ||J_{d-1} e_p||^2 and its second moment
    for j in range(1, d):
        s = cs[j - 1] / n[j - 1]
        mean_v *= s * n[j] / 2.0
        square_v *= s * s * n[j] * (n[j] + 5) / 4.0
    s = cs[d - 1] / n[d - 1]
    return s * mean_v / 2.0, 1.5 * s * s * square_v
