"""The drivers of runs that carry several vectors: validate, allocate, call.

:func:`exact_tangents` and :func:`exact_inputs` run the exact Gram-chain samplers (:mod:`fmsim.kernels.gram`)
for a fully connected Gaussian net without biases, given as its widths and ``c_j``, and :func:`exact_residual`
for a Gaussian residual net without biases (:class:`~fmsim.Residual`); :func:`carried_chunk` runs
one chunk of a run with ``inputs`` or ``tangents`` (:class:`~fmsim.RunConfig`) by its method, ``exact`` or
``full`` (:func:`fmsim.kernels.carry.fc_full_carry`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..config import MAX_TANGENTS, Residual, RunConfig, carried_vectors, input_vector
from ..kernels import gram
from ..kernels.carry import fc_full_carry
from ..kernels.scalar import RENORM_HIGH, mean_square
from ..sampling.rng import seed_to_key
from .launch import plan, scaled_input

__all__ = ["TangentTraces", "InputTraces", "CarriedChunk", "exact_tangents", "exact_inputs", "exact_residual",
           "carried_chunk"]


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


def _power_of_two_scaled(xs: np.ndarray) -> tuple[np.ndarray, int]:
    """``xs`` (k x n) divided by ``2^shift`` so that its largest magnitude lies in ``[1/2, 1)`` (0 for all-zero
    ``xs``): the carried vectors as the Gram kernels hold them, and ``shift``."""
    amax = float(np.max(np.abs(xs)))
    shift = 0 if amax == 0.0 else int(np.frexp(amax)[1])
    return np.ldexp(xs, -shift), shift


def _nets(n_nets: int, net0: int) -> None:
    if not 1 <= n_nets or not 0 <= net0 or net0 + n_nets > 2**32:
        raise ValueError(f"n_nets must be >= 1 and net0 >= 0 with net0 + n_nets <= 2**32, got {n_nets}, {net0}")


def exact_tangents(widths: Sequence[int], c: float | Sequence[float], x: np.ndarray, tangents: np.ndarray,
                   n_nets: int, seed: int, net0: int = 0, backend: str = "cpu", orthogonal: bool = False
                   ) -> TangentTraces:
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
    backend : {"cpu", "cuda"}
    orthogonal : bool
        Haar-orthogonal weights times ``sqrt(c_j)`` instead of Gaussian ones (``m + 1`` at most the narrowest
        width).

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
    if u.ndim != 2 or u.shape[1] != w[0] or not 1 <= u.shape[0] <= MAX_TANGENTS or not np.all(np.isfinite(u)):
        raise ValueError(f"tangents must be finite, of shape (m, {w[0]}) with 1 <= m <= {MAX_TANGENTS}, "
                         f"got shape {u.shape}")
    xs, shift = scaled_input(x)
    norm2 = float(xs @ xs)
    beta0 = (u @ xs) / norm2 / 2.0**shift
    perp = u / 2.0**shift - beta0[:, None] * xs
    p0 = perp @ perp.T / norm2
    k0, k1 = (np.uint64(v) for v in seed_to_key(seed))
    d, m = w.size - 1, u.shape[0]
    if orthogonal and m + 1 > w.min():
        raise ValueError(f"tangents: orthogonal weights carry at most (narrowest width - 1) = {w.min() - 1} tangents "
                         f"exactly, got {m}")
    m0 = float(mean_square(xs, xs.size))
    outputs = (((n_nets, d + 1), np.float64), ((n_nets, d + 1), np.float64), ((n_nets, d + 1, m), np.float64))
    if backend == "cuda":
        from . import cuda_backend

        scratch = (((n_nets, 5, m), np.float64), ((n_nets, 6, m, m), np.float64))
        return TangentTraces(*cuda_backend.run_kernel(
            "tangent_exact_kernel", (orthogonal, m0, 2 * shift, beta0, p0, w, cs, k0, k1, net0), scratch, outputs,
            n_nets))
    lengths, logs, log_jvp = (np.empty(shape) for shape, _ in outputs)
    gram.tangent_exact(orthogonal, m0, 2 * shift, beta0, p0, w, cs, k0, k1, net0, lengths, logs, log_jvp)
    return TangentTraces(lengths, logs, log_jvp)


def exact_inputs(widths: Sequence[int], c: float | Sequence[float], inputs: np.ndarray, n_nets: int, seed: int,
                 net0: int = 0, backend: str = "cpu", orthogonal: bool = False) -> InputTraces:
    """Sample the Gram matrices of ``k`` inputs carried through the same Gaussian nets, exactly: O(n_j k^2) per
    layer.

    Parameters
    ----------
    widths, c, n_nets, seed, net0, backend, orthogonal
        As in :func:`exact_tangents` (orthogonal weights: ``k`` at most the narrowest width).
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
    scaled, shift = _power_of_two_scaled(xs)
    g0 = scaled @ scaled.T / w[0]
    k0, k1 = (np.uint64(v) for v in seed_to_key(seed))
    d, k = w.size - 1, xs.shape[0]
    if orthogonal and k > w.min():
        raise ValueError(f"inputs: orthogonal weights carry at most (narrowest width) = {w.min()} inputs exactly, "
                         f"got {k}")
    outputs = (((n_nets, d + 1, k), np.float64), ((n_nets, d + 1, k, k), np.float64))
    if backend == "cuda":
        from . import cuda_backend

        scratch = (((n_nets, 3, k), np.float64), ((n_nets, 6, k, k), np.float64))
        logs, grams = cuda_backend.run_kernel("inputs_exact_kernel", (orthogonal, g0, 2 * shift, w, cs, k0, k1, net0),
                                              scratch, outputs, n_nets)
        return InputTraces(grams, logs)
    logs, grams = (np.empty(shape) for shape, _ in outputs)
    gram.inputs_exact(orthogonal, g0, 2 * shift, w, cs, k0, k1, net0, logs, grams)
    return InputTraces(grams, logs)


def exact_residual(arch: Residual, c: float, vectors: np.ndarray, n_nets: int, seed: int, net0: int = 0,
                   backend: str = "cpu", tangents: bool = False) -> InputTraces | TangentTraces:
    """Sample the Gram matrices of ``k`` vectors carried through the same Gaussian residual nets, exactly:
    O((n + k_1 + ... + k_m) k^2) per module (the kernel ``fmsim.kernels.gram.residual_carried_trace``).

    Parameters
    ----------
    arch : Residual
        The net: stream width ``n``, module scales ``eta_l``, hidden widths, ending (``"linear"`` or ``"relu"``)
        and ``c_out``.
    c : float
        ``Var(W) = c / fan-in`` in the modules' hidden layers (no bias).
    vectors : ndarray, shape (k, n)
        ``k >= 1`` finite inputs; with ``tangents``, the input (nonzero) and then ``1 <= k - 1 <= 32`` tangents.
    n_nets, seed, net0, backend
        As in :func:`exact_tangents`.
    tangents : bool
        Vectors ``1..k-1`` are directions at vector 0 (forward-mode Jacobian-vector products), else inputs.

    Returns
    -------
    InputTraces or TangentTraces
        Per module ``l = 0..L``: the inputs' ``G_l / n``, or the input's ``M_l`` and its tangents'
        ``||J_l u||^2 / n``. The input's ``M_l`` is the same in both (vector 0 meets the same draws).
    """
    if not isinstance(arch, Residual):
        raise ValueError(f"arch must be a Residual net, got {type(arch).__name__}")
    if not math.isfinite(c) or c <= 0.0:
        raise ValueError(f"c must be positive and finite, got {c}")
    _nets(n_nets, net0)
    xs = np.atleast_2d(np.asarray(vectors, dtype=float))
    n = arch.width
    low, high = (2, MAX_TANGENTS + 1) if tangents else (1, None)
    if (xs.ndim != 2 or xs.shape[1] != n or xs.shape[0] < low or (high is not None and xs.shape[0] > high)
            or not np.all(np.isfinite(xs))):
        raise ValueError(f"vectors must be finite, of shape (k, {n}) with k >= {low}"
                         f"{f' and k <= {high}' if high else ''}, got shape {xs.shape}")
    if tangents and not np.any(xs[0]):
        raise ValueError("the input (vector 0) must be nonzero to carry tangents")
    scaled, shift = _power_of_two_scaled(xs)
    mw = np.asarray(arch.module_widths, dtype=np.int64)
    etas = np.asarray(arch.etas, dtype=float)
    k0, k1 = (np.uint64(v) for v in seed_to_key(seed))
    k, depth = xs.shape[0], len(etas)
    relu_end = arch.ending == "relu"
    arguments = (tangents, relu_end, scaled, shift, mw, etas, float(c), float(arch.c_out), k0, k1, net0)
    outputs = (((n_nets, depth + 1, k), np.float64), ((n_nets, depth + 1, k, k), np.float64))
    if backend == "cuda":
        from . import cuda_backend

        scratch = (((n_nets, k, n), np.float64), ((n_nets, 2, k), np.float64), ((n_nets, 3, k, k), np.float64))
        logs, grams = cuda_backend.run_kernel("residual_carried_kernel", arguments, scratch, outputs, n_nets)
    else:
        logs, grams = (np.empty(shape) for shape, _ in outputs)
        gram.residual_carried(*arguments, logs, grams)
    if tangents:
        return TangentTraces(grams[:, :, 0, 0].copy(), logs[:, :, 0].copy(), logs[:, :, 1:].copy())
    return InputTraces(grams, logs)


@dataclass(frozen=True)
class CarriedChunk:
    """One chunk of a run with ``inputs`` or ``tangents``.

    Attributes
    ----------
    lengths, log_lengths : ndarray, shape (m, d + 1)
        ``M_j`` and ``log M_j`` of the input (of input 0 with ``inputs``).
    carried : ndarray, shape (m, d + 1, k, k) or (m, d + 1, n_tangents)
        ``G_j / n_j`` of the inputs, or ``||J_j u_i||^2 / n_j`` of the tangents.
    entries : ndarray, shape (m, n_tangents), or None
        ``(J u_i)_0^2``, the first coordinate of each tangent's image, squared (``method="full"`` with
        tangents; None otherwise).
    """

    lengths: np.ndarray
    log_lengths: np.ndarray
    carried: np.ndarray
    entries: np.ndarray | None


def _full_carried(config: RunConfig, start: int, m: int, backend: str) -> CarriedChunk:
    call = plan(replace(config, inputs=None, tangents=None, x=None), start)  # the one-vector call: its key,
    # scales, biases and law code
    tangents = config.tangents is not None
    vectors = carried_vectors(config)
    _, shift = scaled_input(vectors[0])  # the first vector's scale, as its one-vector run's
    xs = np.ldexp(vectors, -shift)
    k, d = xs.shape[0], config.arch.depth
    if backend == "cuda":
        from . import cuda_backend
        from .launch import threads_for

        ftype = np.float32 if call.float32 else np.float64
        widest = int(call.widths.max())
        out_log, out_gram, out_first = cuda_backend.run_kernel(
            "fc_full_carry_kernel_f32" if call.float32 else "fc_full_carry_kernel",
            (xs, shift, call.widths, call.scales, call.bias_sds, call.law, call.k0, call.k1, start, tangents),
            (((m, 3, k, widest), ftype), ((m, k, 4 * widest + 16), ftype)),
            (((m, d + 1, k), np.float64), ((m, d + 1, k, k), np.float64), ((m, k), np.float64)), m,
            threads_for(call.widths[1:].max()))
    else:
        out_log, out_gram, out_first = np.empty((m, d + 1, k)), np.empty((m, d + 1, k, k)), np.empty((m, k))
        zero = np.float32(0.0) if call.float32 else 0.0
        fc_full_carry(xs, shift, call.widths, call.scales, call.bias_sds, call.law, call.k0, call.k1, start, zero,
                      call.float32, tangents, RENORM_HIGH, out_log, out_gram, out_first)
    lengths, logs = out_gram[:, :, 0, 0].copy(), out_log[:, :, 0].copy()
    if tangents:
        jvp = np.diagonal(out_gram, axis1=2, axis2=3)[:, :, 1:].copy()
        return CarriedChunk(lengths, logs, jvp, out_first[:, 1:].copy())
    return CarriedChunk(lengths, logs, out_gram, None)


def carried_chunk(config: RunConfig, start: int, m: int, backend: str = "cpu") -> CarriedChunk:
    """Nets ``start .. start + m - 1`` of a run with ``inputs`` or ``tangents``, by the run's method, on
    ``backend`` (``"cpu"`` or ``"cuda"``: the same bits under the CUDA simulator)."""
    if config.method == "full":
        return _full_carried(config, start, m, backend)
    tangents = config.tangents is not None
    if isinstance(config.arch, Residual):
        traces = exact_residual(config.arch, float(config.init.c), carried_vectors(config), m, config.seed, start,
                                backend, tangents)
    elif tangents:
        traces = exact_tangents(config.arch.widths, config.init.layer_c(config.arch), input_vector(config),
                                np.asarray(config.tangents), m, config.seed, start, backend, config.init.orthogonal)
    else:
        traces = exact_inputs(config.arch.widths, config.init.layer_c(config.arch), np.asarray(config.inputs), m,
                              config.seed, start, backend, config.init.orthogonal)
    if tangents:
        return CarriedChunk(traces.lengths, traces.log_lengths, np.exp(traces.log_jvp), None)
    return CarriedChunk(traces.gram[:, :, 0, 0].copy(), traces.log_lengths[:, :, 0].copy(), traces.gram, None)
