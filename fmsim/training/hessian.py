"""Curvature of the MLP loss: exact Hessian-vector products and norm estimates.

- :func:`hvp`: ``H v`` by Pearlmutter's R-operator (exact, about the cost of
  one more gradient); ``gauss_newton=True`` gives ``G v`` for the
  generalized Gauss-Newton matrix ``J^T H_out J`` instead.
- :func:`power_iteration`: eigenvalue of largest magnitude of a symmetric operator.
- :func:`hutchinson`: unbiased trace and squared-Frobenius estimates from
  Rademacher probes, with standard errors from the sample.
- :func:`layer_block_frobenius`: exact Frobenius norm of one layer's diagonal
  weight block of the Gauss-Newton matrix from its per-sample Kronecker form,
  without forming the block. For ReLU nets this *is* the Hessian block
  (the net is piecewise linear in any single ``W_l``).
- :func:`fmsim.hessian.hessian_norm_variance` and :func:`hessian_norm_init`: the
  initialization that keeps the Frobenius norm of the curvature constant
  through depth (Skorski, Temperoni & Theobald, arXiv 2004.09506; the documentation's theory page,
  *The Hessian norm rule*).

Notation as in :mod:`fmsim.mlp`: ``A_l = H_{l-1} W_l + b_l``, ``W_l`` of shape
``(n_{l-1}, n_l)``, vectors flat in the layout of ``theta``. Everything runs in
the dtype of ``theta``; use float64 for diagnostics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..config import Init
from .mlp import MLP

__all__ = ["hvp", "power_iteration", "hutchinson", "HutchinsonEstimate", "layer_block_frobenius",
           "dense_hessian", "hessian_norm_variance", "hessian_norm_init", "mean_dphi_squared"]


def _output_curvature(mlp: MLP, rz: np.ndarray, probs: np.ndarray | None) -> np.ndarray:
    """``R(delta_L)``: the per-sample output Hessian applied to ``R(z)`` (shape (B, K)), divided by ``B``."""
    B = rz.shape[0]
    if mlp.loss == "xent":
        pr = probs * rz
        return (pr - probs * pr.sum(axis=1, keepdims=True)) / B
    return rz / B


def hvp(mlp: MLP, theta: np.ndarray, x: np.ndarray, y: np.ndarray, v: np.ndarray, gauss_newton: bool = False
        ) -> np.ndarray:
    """Exact Hessian-vector product of the mean loss on ``(x, y)``.

    Parameters
    ----------
    mlp : MLP
    theta, v : ndarray, shape (n_params,)
        Point and direction (same layout).
    x : ndarray, shape (B, n_0)
    y : ndarray, shape (B,), int
    gauss_newton : bool
        Return ``G v`` (Gauss-Newton, positive semi-definite) instead of ``H v``.

    Returns
    -------
    ndarray, shape (n_params,)
    """
    if v.shape != theta.shape:
        raise ValueError(f"v must have shape {theta.shape}, got {v.shape}")
    fwd = mlp.forward(theta, x)
    _, delta, probs = mlp.output_delta(fwd.logits, y)
    layers, vlayers = mlp.layers(theta), mlp.layers(v)
    L = len(layers)
    # forward R-pass: R(A_l), R(H_l)
    r_pre, r_post = [], [np.zeros_like(x)]
    for k in range(L):
        (W, _), (V, c) = layers[k], vlayers[k]
        ra = fwd.post[k] @ V + c
        if k > 0:
            ra += r_post[k] @ W
        r_pre.append(ra)
        if k < L - 1:
            r_post.append(mlp.dphi(fwd.pre[k]) * ra)
    # backward R-pass
    out = np.empty_like(theta)
    olayers = mlp.layers(out)
    r_delta = _output_curvature(mlp, r_pre[-1], probs)
    for k in range(L - 1, -1, -1):
        (W, _), (V, _), (oW, ob) = layers[k], vlayers[k], olayers[k]
        np.matmul(fwd.post[k].T, r_delta, out=oW)
        if not gauss_newton and k > 0:
            oW += r_post[k].T @ delta
        r_delta.sum(axis=0, out=ob)
        if k > 0:
            dphi = mlp.dphi(fwd.pre[k - 1])
            back = r_delta @ W.T
            if not gauss_newton:
                back += delta @ V.T
            new_r_delta = back * dphi
            g = delta @ W.T
            if not gauss_newton and mlp.activation != "relu":
                new_r_delta += g * mlp.d2phi(fwd.pre[k - 1]) * r_pre[k - 1]
            delta, r_delta = g * dphi, new_r_delta
    return out


def dense_hessian(op: Callable[[np.ndarray], np.ndarray], n: int, dtype: type = np.float64) -> np.ndarray:
    """The ``n x n`` matrix of a linear operator, column by column (small problems and tests only)."""
    out = np.empty((n, n), dtype=dtype)
    e = np.zeros(n, dtype=dtype)
    for i in range(n):
        e[i] = 1
        out[:, i] = op(e)
        e[i] = 0
    return out


def power_iteration(op: Callable[[np.ndarray], np.ndarray], n: int, seed: int = 0, max_iter: int = 500,
                    tol: float = 1e-10) -> tuple[float, np.ndarray, int]:
    """Eigenvalue of largest magnitude of a symmetric operator, and its unit eigenvector.

    Iterates ``v <- Av / |Av|``, ``lambda = v.Av`` until the relative change of
    ``lambda`` is below ``tol``. For an indefinite Hessian the result may be
    negative; use the Gauss-Newton operator for the top positive curvature.

    Returns
    -------
    eigenvalue : float
    vector : ndarray, shape (n,)
    iterations : int
    """
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(n)
    v /= np.linalg.norm(v)
    lam = 0.0
    for it in range(1, max_iter + 1):
        w = op(v)
        new = float(v @ w)
        norm = np.linalg.norm(w)
        if norm == 0:
            return 0.0, v, it
        v = w / norm
        if it > 1 and abs(new - lam) <= tol * abs(new):
            return new, v, it
        lam = new
    return lam, v, max_iter


@dataclass(frozen=True)
class HutchinsonEstimate:
    """Trace and squared Frobenius norm from ``probes`` Rademacher probes (mean +- standard error)."""

    trace: float
    trace_se: float
    frobenius_sq: float
    frobenius_sq_se: float
    probes: int

    @property
    def frobenius(self) -> float:
        return math.sqrt(max(self.frobenius_sq, 0.0))


def hutchinson(op: Callable[[np.ndarray], np.ndarray], n: int, probes: int = 100, seed: int = 0,
               support: np.ndarray | None = None) -> HutchinsonEstimate:
    """Hutchinson estimates of ``tr A`` and ``|A|_F^2`` from Rademacher probes ``z``.

    ``tr A = E[z.Az]`` and ``|A|_F^2 = E[|Az|^2]`` for any ``z`` with ``E[z z^T] = I``.
    With ``support`` (boolean mask, shape (n,)), the probes live on those
    coordinates and only those rows of ``Az`` are read: the estimates are then
    for the diagonal block ``A[support][:, support]``.

    Returns
    -------
    HutchinsonEstimate
        Standard errors are the sample standard deviations over the probes / sqrt(probes).
    """
    if probes < 2:
        raise ValueError(f"probes must be >= 2, got {probes}")
    rng = np.random.default_rng(seed)
    mask = np.ones(n, dtype=bool) if support is None else np.asarray(support, dtype=bool)
    tr, fr = np.empty(probes), np.empty(probes)
    for i in range(probes):
        z = np.zeros(n)
        z[mask] = rng.choice([-1.0, 1.0], size=int(mask.sum()))
        az = op(z)[mask]
        tr[i] = z[mask] @ az
        fr[i] = az @ az
    s = math.sqrt(probes)
    return HutchinsonEstimate(float(tr.mean()), float(tr.std(ddof=1) / s), float(fr.mean()),
                              float(fr.std(ddof=1) / s), probes)


def _output_jacobians(mlp: MLP, theta: np.ndarray, fwd, layer: int) -> np.ndarray:
    """``d logits / d A_layer`` per sample, shape (B, K, n_layer)."""
    layers = mlp.layers(theta)
    B, K = fwd.logits.shape
    jac = np.broadcast_to(np.eye(K, dtype=theta.dtype), (B, K, K)).copy()
    for k in range(mlp.n_layers - 1, layer - 1, -1):
        W = layers[k][0]
        jac = (jac @ W.T) * mlp.dphi(fwd.pre[k - 1])[:, None, :]
    return jac


def layer_block_frobenius(mlp: MLP, theta: np.ndarray, x: np.ndarray, y: np.ndarray, layer: int,
                          chunk: int = 64) -> float:
    """Exact ``|G_{W_l}|_F``: the Gauss-Newton diagonal block of layer ``layer``'s weights.

    With ``U_x = P_x R_x`` (``P_x = dz/dA_l`` transposed, ``R_x R_x^T`` the
    per-sample output Hessian), the block is ``(1/B) sum_x (h_x h_x^T) kron (U_x U_x^T)``
    and ``|G|_F^2 = B^-2 sum_{x,x'} (h_x . h_x')^2 |U_x^T U_x'|_F^2``; the
    ``B x B`` pairs are summed in chunks of ``chunk`` rows. Cost ``O(B^2 K^2 n_l)``.
    For ReLU this equals the Hessian block exactly.

    Parameters
    ----------
    layer : int
        1-based layer index, ``1..L``.

    Returns
    -------
    float
    """
    if not 1 <= layer <= mlp.n_layers:
        raise ValueError(f"layer must be in [1, {mlp.n_layers}], got {layer}")
    fwd = mlp.forward(theta, x)
    B = x.shape[0]
    P = _output_jacobians(mlp, theta, fwd, layer)  # (B, K, n_l)
    if mlp.loss == "xent":
        _, _, p = mlp.output_delta(fwd.logits, y)
        sp = np.sqrt(p)
        R = np.einsum("bk,kj->bkj", sp, np.eye(p.shape[1])) - p[:, :, None] * sp[:, None, :]  # (B, K, K)
        U = np.einsum("bkn,bkj->bnj", P, R)  # (B, n_l, K)
    else:
        U = np.transpose(P, (0, 2, 1))
    h = fwd.post[layer - 1]
    K = U.shape[2]
    Ut = np.ascontiguousarray(np.transpose(U, (0, 2, 1))).reshape(B * K, -1)  # rows (x, j): U_x[:, j]
    total = 0.0
    for i in range(0, B, chunk):
        c = min(chunk, B - i)
        gram_h = h[i:i + c] @ h.T  # (c, B)
        cross = (Ut[i * K:(i + c) * K] @ Ut.T).reshape(c, K, B, K)  # U_x^T U_x' for all pairs
        total += float(np.sum(gram_h**2 * np.einsum("ajbk,ajbk->ab", cross, cross)))
    return math.sqrt(total) / B


# ---------------------------------------------------------------- the rule
def mean_dphi_squared(activation: str, q: float | None = None) -> float:
    """``E[phi'(a)^2]`` for ``a ~ N(0, q)``; ``q=None`` linearizes at 0 for smooth ``phi``.

    ReLU: 1/2 for every ``q``; linear: 1; tanh: ``phi'(0)^2 = 1`` when
    linearized, else ``E[sech^4(sqrt(q) Z)]`` by Gauss-Hermite quadrature.
    """
    if activation == "relu":
        return 0.5
    if activation == "linear":
        return 1.0
    if activation == "tanh":
        if q is None:
            return 1.0
        if q < 0:
            raise ValueError(f"q must be >= 0, got {q}")
        z, w = np.polynomial.hermite_e.hermegauss(80)
        return float(np.sum(w * np.cosh(np.sqrt(q) * z) ** -4) / np.sqrt(2 * np.pi))
    raise ValueError(f"activation must be 'relu', 'tanh' or 'linear', got {activation!r}")


def hessian_norm_variance(fan_in: int, activation: str = "relu", keep_prob: float = 1.0,
                          q: float | None = None) -> float:
    """Weight variance that keeps the curvature's Frobenius norm constant through one layer.

    One layer maps the curvature ``A`` of its outputs to ``D W^T A W D`` on its
    inputs; for low-rank ``A`` (e.g. from a K-class softmax) this multiplies
    ``|A|_F`` by ``rho = sigma^2 n_in E[phi'^2] / p`` (inverted dropout with
    keep-probability ``p``). Setting ``rho = 1``:

        sigma^2 = p / (n_in E[phi'(a)^2])

    which is He (``2/n_in``) for ReLU, ``2p/n_in`` for ReLU with dropout, and
    LeCun (``1/n_in``) for linear or linearized tanh.

    Parameters
    ----------
    fan_in : int
        ``n_in >= 1``.
    activation : {"relu", "tanh", "linear"}
    keep_prob : float
        Dropout keep-probability ``p`` in (0, 1]; 1 = no dropout.
    q : float, optional
        Pre-activation variance for the exact tanh factor (see ``mean_dphi_squared``).
    """
    if isinstance(fan_in, bool) or not isinstance(fan_in, (int, np.integer)) or fan_in < 1:
        raise ValueError(f"fan_in must be an int >= 1, got {fan_in!r}")
    if not 0 < keep_prob <= 1:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
    return keep_prob / (fan_in * mean_dphi_squared(activation, q))


def hessian_norm_init(mlp: MLP, keep_prob: float = 1.0) -> Init:
    """A Gaussian :class:`fmsim.Init` with :func:`fmsim.hessian.hessian_norm_variance` in every layer of ``mlp``.

    Every weight layer gets ``c_l = n_{l-1} sigma_l^2 = p / E[phi'^2]`` (ReLU:
    ``2p``; tanh linearized at 0: ``p``). For the layers above the first this is
    the curvature rule; the first layer, whose input is not an activation,
    takes the same ``c`` so that its forward gain (``c/2`` on ``|h|^2`` for
    ReLU) does not rescale every block above it.
    """
    c = hessian_norm_variance(1, mlp.activation, keep_prob)
    name = f"hessian-norm ({mlp.activation}, p={keep_prob:g})"
    return Init(law="gaussian", c=c, name=name)
