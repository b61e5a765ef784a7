"""An independent NumPy reference for the Gram chain: whole nets with NumPy's own Gaussian weights.

Several vectors go through the same drawn weights by batched matmul (``np.matmul`` over nets); the tangents'
images are ``D_j W_j v_{j-1}`` with the masks of the input's forward pass. Nothing here uses fmsim's streams or
kernels, so agreement with :mod:`fmsim.kernels.gram` is agreement in law.
"""

from __future__ import annotations

import numpy as np


def weights(rng: np.random.Generator, n_nets: int, widths, c) -> list[np.ndarray]:
    """Gaussian weights, one (n_nets, n_j, n_{j-1}) array per layer, ``Var = c_j / n_{j-1}``."""
    cs = np.broadcast_to(np.asarray(c, dtype=float), (len(widths) - 1,))
    return [rng.standard_normal((n_nets, widths[j], widths[j - 1])) * np.sqrt(cs[j - 1] / widths[j - 1])
            for j in range(1, len(widths))]


def haar(rng: np.random.Generator, n_nets: int, n_out: int, n_in: int) -> np.ndarray:
    """Haar-orthogonal matrices (n_nets, n_out, n_in): orthonormal columns, or rows if ``n_out < n_in``; the Q of a
    Gaussian matrix's QR with the signs of R's diagonal moved into it (Mezzadri 2007), batched."""
    wide = n_out < n_in
    g = rng.standard_normal((n_nets, n_in, n_out) if wide else (n_nets, n_out, n_in))
    q, r = np.linalg.qr(g)
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    return np.swapaxes(q, 1, 2) if wide else q


def orthogonal_weights(rng: np.random.Generator, n_nets: int, widths, c) -> list[np.ndarray]:
    """Haar-orthogonal weights times ``sqrt(c_j)``, one (n_nets, n_j, n_{j-1}) array per layer."""
    cs = np.broadcast_to(np.asarray(c, dtype=float), (len(widths) - 1,))
    return [haar(rng, n_nets, widths[j], widths[j - 1]) * np.sqrt(cs[j - 1]) for j in range(1, len(widths))]


def forward(ws: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Post-activations of the last layer for inputs ``x`` (n_nets, n_0, k) -> (n_nets, n_d, k)."""
    z = x
    for w in ws:
        z = np.maximum(w @ z, 0.0)
    return z


def pair_grams(ws: list[np.ndarray], inputs: np.ndarray) -> np.ndarray:
    """``G_j / n_j`` of ``k`` inputs (``inputs``: k x n_0) at every layer: shape (n_nets, d + 1, k, k)."""
    n_nets = ws[0].shape[0]
    z = np.broadcast_to(inputs.T, (n_nets, *inputs.T.shape))
    grams = [np.swapaxes(z, 1, 2) @ z / z.shape[1]]
    for w in ws:
        z = np.maximum(w @ z, 0.0)
        grams.append(np.swapaxes(z, 1, 2) @ z / z.shape[1])
    return np.stack(grams, axis=1)


def tangents(ws: list[np.ndarray], x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The input's ``M_j`` (n_nets, d + 1), the tangents' ``||J_j u_i||^2 / n_j`` (n_nets, d + 1, m), and the
    last layer's Jacobian applied to the tangents, ``J u_i`` (n_nets, n_d, m). ``x``: (n_0,), ``u``: (m, n_0)."""
    n_nets = ws[0].shape[0]
    z = np.broadcast_to(x[:, None], (n_nets, x.size, 1))
    v = np.broadcast_to(u.T, (n_nets, *u.T.shape))
    lengths = [np.sum(z[:, :, 0] ** 2, axis=1) / x.size]
    jvps = [np.sum(v**2, axis=1) / x.size]
    for w in ws:
        h = w @ z
        mask = h > 0.0
        z = np.where(mask, h, 0.0)
        v = np.where(mask, w @ v, 0.0)
        lengths.append(np.sum(z[:, :, 0] ** 2, axis=1) / z.shape[1])
        jvps.append(np.sum(v**2, axis=1) / z.shape[1])
    return np.stack(lengths, axis=1), np.stack(jvps, axis=1), v


def _carried(h: np.ndarray, tangent: bool) -> np.ndarray:
    """A layer's carried values from its pre-activations ``h`` (n_nets, n, k): the ReLU of each input, or the
    input's ReLU and the tangents masked by the sign of the input's pre-activation."""
    if tangent:
        return np.where(h[:, :, :1] > 0.0, h, 0.0)
    return np.maximum(h, 0.0)


def residual_grams(rng: np.random.Generator, n_nets: int, arch, c: float, vectors: np.ndarray,
                   tangent: bool) -> tuple[np.ndarray, np.ndarray]:
    """``G_l / n`` of ``k`` vectors (``vectors``: k x n) after each module of Gaussian residual nets without biases,
    ``y_l = y_{l-1} + eta_l F(y_{l-1})``: shape (n_nets, L + 1, k, k), and the last streams (n_nets, n, k). With
    ``tangent``, vector 0 is the input and the others are carried as ``J u`` (the masks of the input's
    pre-activations). The same ``rng`` state and shapes give the same weights."""
    n = arch.width
    y = np.array(np.broadcast_to(vectors.T, (n_nets, *vectors.T.shape)))
    grams = [np.swapaxes(y, 1, 2) @ y / n]
    for eta in arch.etas:
        z, fan = y, n
        for width in arch.module_widths:
            w = rng.standard_normal((n_nets, width, fan)) * np.sqrt(c / fan)
            z, fan = _carried(w @ z, tangent), width
        o = (rng.standard_normal((n_nets, n, fan)) * np.sqrt(arch.c_out / fan)) @ z
        y = y + eta * (_carried(o, tangent) if arch.ending == "relu" else o)
        grams.append(np.swapaxes(y, 1, 2) @ y / n)
    return np.stack(grams, axis=1), y
