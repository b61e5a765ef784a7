"""The driver of the exact Gram-chain samplers (:mod:`fmsim.kernels.gram`): validate, allocate, call.

These are the seam that ``fmsim.simulate(..., inputs=X)`` and ``tangents=U`` will run through; they take a fully
connected Gaussian net without biases as its widths and ``c_j``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..kernels import gram
from ..kernels.scalar import mean_square
from ..sampling.rng import seed_to_key
from .launch import scaled_input

__all__ = ["TangentTraces", "InputTraces", "exact_tangents", "exact_inputs"]


@dataclass(frozen=True)
class TangentTraces:
    """An input's lengths and its tangents' images, layer by layer, for each net.

    Attributes
    ----------
    lengths, log_lengths : ndarray, shape (n_nets, d + 1)
        ``M_j`` of the input and ``log M_j``: bitwise ``method="exact"``'s for the same seed.
    log_jvp : ndarray, shape (n_nets, d + 1, m)
        ``log(||J_j u_i||^2 / n_j)`` of each tangent ``u_i`` (``-inf`` for a dead net).
    """

    lengths: np.ndarray
    log_lengths: np.ndarray
    log_jvp: np.ndarray

    @property
    def jvp(self) -> np.ndarray:
        """``||J u_i||^2 / n_d`` at the last layer, shape (n_nets, m)."""
        return np.exp(self.log_jvp[:, -1])


@dataclass(frozen=True)
class InputTraces:
    """The Gram matrices of several inputs, layer by layer, for each net.

    Attributes
    ----------
    gram : ndarray, shape (n_nets, d + 1, k, k)
        ``G_j / n_j``: each input's ``M_j`` on the diagonal (0 or inf beyond float64's range).
    log_lengths : ndarray, shape (n_nets, d + 1, k)
        ``log M_j`` of each input, at any depth.
    """

    gram: np.ndarray
    log_lengths: np.ndarray

    @property
    def cosine(self) -> np.ndarray:
        """Cosine between inputs 0 and 1 at every layer, shape (n_nets, d + 1) (NaN where one is zero)."""
        g = self.gram
        with np.errstate(invalid="ignore", divide="ignore"):
            return g[..., 0, 1] / np.sqrt(g[..., 0, 0] * g[..., 1, 1])


def _net(widths: Sequence[int], c: float | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(widths, dtype=np.int64)
    if w.ndim != 1 or w.size < 2 or np.any(w < 1):
        raise ValueError(f"widths must be n_0..n_d, each >= 1, with d >= 1; got {list(widths)}")
    cs = np.broadcast_to(np.asarray(c, dtype=float), (w.size - 1,)).copy()
    if np.any(~np.isfinite(cs)) or np.any(cs <= 0.0):
        raise ValueError(f"c must be positive and finite, got {c}")
    return w, cs


def _nets(n_nets: int, net0: int) -> None:
    if not 1 <= n_nets or not 0 <= net0 or net0 + n_nets > 2**32:
        raise ValueError(f"n_nets must be >= 1 and net0 >= 0 with net0 + n_nets <= 2**32, got {n_nets}, {net0}")


def exact_tangents(widths: Sequence[int], c: float | Sequence[float], x: np.ndarray, tangents: np.ndarray,
                   n_nets: int, seed: int, net0: int = 0) -> TangentTraces:
    """Sample an input's length and its tangents' ``||J_j u||^2`` exactly, O(m^3) per layer at any width.

    Parameters
    ----------
    widths : sequence of int
        ``n_0..n_d``.
    c : float or sequence of float
        ``c_j``: Gaussian weights of variance ``c_j / n_{j-1}``, no bias.
    x : ndarray, shape (n_0,)
        The input (nonzero).
    tangents : ndarray, shape (m, n_0)
        The directions ``u_i``, ``1 <= m <= 32``.
    n_nets : int
    seed : int
    net0 : int
        First net's index (nets ``net0 .. net0 + n_nets - 1``: a chunk of a bigger run has the same bits).

    Returns
    -------
    TangentTraces
    """
    w, cs = _net(widths, c)
    _nets(n_nets, net0)
    x = np.asarray(x, dtype=float)
    u = np.atleast_2d(np.asarray(tangents, dtype=float))
    if x.shape != (w[0],) or not np.all(np.isfinite(x)) or not np.any(x):
        raise ValueError(f"x must be a finite nonzero vector of shape ({w[0]},), got shape {x.shape}")
    if u.ndim != 2 or u.shape[1] != w[0] or not 1 <= u.shape[0] <= gram.MAX_TANGENTS or not np.all(np.isfinite(u)):
        raise ValueError(f"tangents must be finite, of shape (m, {w[0]}) with 1 <= m <= {gram.MAX_TANGENTS}, "
                         f"got shape {u.shape}")
    xs, shift = scaled_input(x)
    norm2 = float(xs @ xs)
    beta0 = (u @ xs) / norm2 / 2.0**shift
    perp = u / 2.0**shift - beta0[:, None] * xs
    p0 = perp @ perp.T / norm2
    k0, k1 = (np.uint64(v) for v in seed_to_key(seed))
    d = w.size - 1
    lengths, logs = np.empty((n_nets, d + 1)), np.empty((n_nets, d + 1))
    log_jvp = np.empty((n_nets, d + 1, u.shape[0]))
    gram.tangent_exact(float(mean_square(xs, xs.size)), 2 * shift, beta0, p0, w, cs, k0, k1, net0, lengths, logs,
                       log_jvp)
    return TangentTraces(lengths, logs, log_jvp)


def exact_inputs(widths: Sequence[int], c: float | Sequence[float], inputs: np.ndarray, n_nets: int, seed: int,
                 net0: int = 0) -> InputTraces:
    """Sample the Gram matrices of ``k`` inputs carried through the same Gaussian nets, exactly: O(n_j k^2) per
    layer.

    Parameters
    ----------
    widths, c, n_nets, seed, net0
        As in :func:`exact_tangents`.
    inputs : ndarray, shape (k, n_0)
        ``k >= 1`` finite inputs.

    Returns
    -------
    InputTraces
    """
    w, cs = _net(widths, c)
    _nets(n_nets, net0)
    xs = np.atleast_2d(np.asarray(inputs, dtype=float))
    if xs.ndim != 2 or xs.shape[1] != w[0] or not np.all(np.isfinite(xs)):
        raise ValueError(f"inputs must be finite, of shape (k, {w[0]}), got shape {xs.shape}")
    amax = float(np.max(np.abs(xs)))
    shift = 0 if amax == 0.0 else int(np.frexp(amax)[1])
    scaled = np.ldexp(xs, -shift)
    g0 = scaled @ scaled.T / w[0]
    k0, k1 = (np.uint64(v) for v in seed_to_key(seed))
    d, k = w.size - 1, xs.shape[0]
    logs = np.empty((n_nets, d + 1, k))
    grams = np.empty((n_nets, d + 1, k, k))
    gram.inputs_exact(g0, 2 * shift, w, cs, k0, k1, net0, logs, grams)
    return InputTraces(grams, logs)
