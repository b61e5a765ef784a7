"""Plain-NumPy reference: one net at a time, on the same Philox streams.

Written to be obviously right, not fast. The kernels are tested against it.
It materializes each weight matrix from :func:`fmsim.laws.draw_standard_array`
(the kernels' own per-row sampler) and multiplies with ``@``. In fully connected
and residual nets a row's stream gives the weights of the layer's nonzero inputs
only, in order (``fmsim.laws``, layout 4); the weights on zero inputs are
never drawn, and stand at 0 in the matrix (they multiply 0).
"""

from __future__ import annotations

import numpy as np

from ..config import Conv, Residual, RunConfig, carried_vectors, input_vector
from ..sampling.laws import BIAS_BLOCK, draw_standard_array, draw_standard_one, residual_layer
from ..sampling.rng import philox4x32, seed_to_key

__all__ = ["reference_lengths", "reference_residual_lengths", "reference_conv_lengths",
           "reference_orthogonal_lengths", "reference_carried"]


def _bias_var(init, j: int, fan_in: int) -> float:
    """The bias variance of layer ``j`` (0-based; in a residual module, its layer ``j``) whose input has ``fan_in``
    entries: ``bias_var``, or ``bias_c / fan_in`` (one value for every layer, or one per layer)."""
    def at(value):
        return value[j] if isinstance(value, tuple) else value

    return at(init.bias_var) + at(init.bias_c) / fan_in


def _bias(law: str, n: int, key: tuple[int, int], layer: int, net: int) -> np.ndarray:
    # The bias of unit r is the first draw of block BIAS_BLOCK of row r.
    return np.array([draw_standard_one(law, key, int(BIAS_BLOCK), 0, r, layer, net) for r in range(n)])


def reference_lengths(config: RunConfig, nets: np.ndarray | range) -> np.ndarray:
    """``M_0..M_d`` of the given nets (method ``"full"`` or ``"exact_first"``), computed densely in float64.

    With ``config.precision == "float32"`` the weights are those of the float32
    stream layout; the arithmetic stays float64.

    Parameters
    ----------
    config : RunConfig
    nets : sequence of int
        Global net indices.

    Returns
    -------
    ndarray, shape (len(nets), d + 1), float64
    """
    key = seed_to_key(config.seed)
    widths = config.arch.widths
    cs = config.init.layer_c(config.arch)
    x = input_vector(config)
    out = np.empty((len(nets), len(widths)))
    for i, net in enumerate(nets):
        z = x
        out[i, 0] = z @ z / z.size
        for j in range(1, len(widths)):
            if j == 1 and config.method == "exact_first":
                pre = np.sqrt(cs[0] / widths[0]) * np.sqrt(x @ x) * _first_layer_sums(config, widths[1], int(net))
            else:
                w = _weights_on_nonzero(config.init.law, z, widths[j], key, j, int(net), config.precision)
                pre = np.sqrt(cs[j - 1] / widths[j - 1]) * (w @ z)
            bias_var = _bias_var(config.init, j - 1, widths[j - 1])
            if bias_var > 0:
                pre = pre + np.sqrt(bias_var) * _bias(config.init.law, widths[j], key, j, int(net))
            z = np.maximum(pre, 0.0)
            out[i, j] = z @ z / z.size
    return out


def reference_carried(config: RunConfig, nets: np.ndarray | range) -> np.ndarray:
    """The Gram matrices ``G_j / n_j`` of the vectors a run with ``inputs`` or ``tangents`` carries (method
    ``"full"``), all of them through one weight matrix per layer with ``@``, densely in float64.

    A layer's weights fill the columns where any carried vector is nonzero (their union), in order. Inputs go
    through the ReLU and the bias; tangents (after the input, vector 0) are masked by the input's
    pre-activations and get no bias.

    Returns
    -------
    ndarray, shape (len(nets), d + 1, k, k)
        ``k``: the inputs, or the input and the tangents.
    """
    key = seed_to_key(config.seed)
    widths = config.arch.widths
    cs = config.init.layer_c(config.arch)
    tangents = config.tangents is not None
    vectors = carried_vectors(config)
    out = np.empty((len(nets), len(widths), *[vectors.shape[0]] * 2))
    for i, net in enumerate(nets):
        z = vectors.T  # (n_0, k)
        out[i, 0] = z.T @ z / z.shape[0]
        for j in range(1, len(widths)):
            union = np.any(z != 0.0, axis=1).astype(float)
            w = _weights_on_nonzero(config.init.law, union, widths[j], key, j, int(net), config.precision)
            pre = np.sqrt(cs[j - 1] / widths[j - 1]) * (w @ z)
            bias_var = _bias_var(config.init, j - 1, widths[j - 1])
            bias = (np.sqrt(bias_var) * _bias(config.init.law, widths[j], key, j, int(net)) if bias_var > 0
                    else np.zeros(widths[j]))
            if tangents:
                h = pre[:, 0] + bias
                z = np.where((h > 0.0)[:, None], np.column_stack([h, pre[:, 1:]]), 0.0)
            else:
                z = np.maximum(pre + bias[:, None], 0.0)
            out[i, j] = z.T @ z / z.shape[0]
    return out


def _first_layer_sums(config: RunConfig, n: int, net: int) -> np.ndarray:
    """``method="exact_first"``: the unit-variance sums ``S_r``, ``r < n``, of net ``net``'s first layer, each
    ``F^{-1}(u_r)`` solved by bisection on the table's NumPy CDF (not the kernels' Newton solver); ``u_r`` from
    words 0 and 1 of block 0 of row ``r``'s layer-1 stream, at the midpoints of a 52-bit grid."""
    from ..sampling.first_layer import first_layer_law

    table = first_layer_law(config.init.law, input_vector(config))
    k0, k1 = (np.uint64(w) for w in seed_to_key(config.seed))
    words = [philox4x32(np.uint64(0), np.uint64(r), np.uint64(1), np.uint64(net), k0, k1)[:2] for r in range(n)]
    u = np.array([((int(a) >> 6) * 2**26 + (int(b) >> 6) + 0.5) * 2.0**-52 for a, b in words])
    lo, hi = np.full(n, table.s0), np.full(n, -table.s0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        below = table.cdf_at(mid) <= u
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _weights_on_nonzero(law: str, z: np.ndarray, n_out: int, key: tuple[int, int], layer: int, net: int,
                        precision: str = "float64") -> np.ndarray:
    """Unit-variance weights ``(n_out, z.size)`` of a layer with input ``z``: row ``r`` of the stream
    ``(r, layer, net)`` fills the columns where ``z != 0``, in order; the other columns are 0."""
    columns = np.flatnonzero(z)
    w = np.zeros((n_out, z.size))
    w[:, columns] = _dense(law, n_out, columns.size, key, layer, net, precision)
    return w


def _dense(law: str, n_out: int, n_in: int, key: tuple[int, int], layer: int, net: int,
           precision: str = "float64") -> np.ndarray:
    """Unit-variance weight matrix ``(n_out, n_in)``: row ``r`` is the row stream ``(r, layer, net)``."""
    return np.stack([draw_standard_array(law, n_in, key, r, layer, net, precision) for r in range(n_out)])


def reference_residual_lengths(config: RunConfig, nets: np.ndarray | range) -> np.ndarray:
    """``M_0..M_L`` of residual nets (method ``"full"``), densely in float64; shape (len(nets), L + 1). With
    ``config.precision == "float32"`` the weights are those of the float32 stream layout."""
    arch, init = config.arch, config.init
    assert isinstance(arch, Residual)
    key = seed_to_key(config.seed)
    x = input_vector(config)
    m = len(arch.module_widths)
    out = np.empty((len(nets), arch.depth + 1))
    for i, net in enumerate(nets):
        y = x.copy()
        out[i, 0] = y @ y / y.size
        for mod, eta in enumerate(arch.etas):
            h = y
            for j, k in enumerate(arch.module_widths):
                layer = int(residual_layer(mod, m, j))
                w = _weights_on_nonzero(init.law, h, k, key, layer, int(net), config.precision)
                pre = np.sqrt(float(init.c) / h.size) * (w @ h)
                bias_var = _bias_var(init, j, h.size)
                if bias_var > 0:
                    pre = pre + np.sqrt(bias_var) * _bias(init.law, k, key, layer, int(net))
                h = np.maximum(pre, 0.0)
            layer = int(residual_layer(mod, m, m))
            w = _weights_on_nonzero(init.law, h, arch.width, key, layer, int(net), config.precision)
            f = np.sqrt(arch.c_out / h.size) * (w @ h)
            bias_var = _bias_var(init, m, h.size)
            if bias_var > 0:
                f = f + np.sqrt(bias_var) * _bias(init.law, arch.width, key, layer, int(net))
            if arch.ending == "relu":
                f = np.maximum(f, 0.0)
            y = y + eta * f
            out[i, mod + 1] = y @ y / y.size
    return out


def conv_weights(config: RunConfig, layer: int, net: int) -> np.ndarray:
    """Unit-variance kernel of layer ``layer``: shape ``(C_j, C_{j-1}, kh, kw)`` (1D: ``kh = 1``)."""
    arch = config.arch
    assert isinstance(arch, Conv)
    kh = 1 if len(arch.spatial) == 1 else arch.kernel
    c_out, c_in = arch.channels[layer], arch.channels[layer - 1]
    w = _dense(config.init.law, c_out, c_in * kh * arch.kernel, seed_to_key(config.seed), layer, net,
               config.precision)
    return w.reshape(c_out, c_in, kh, arch.kernel)


def reference_conv_lengths(config: RunConfig, nets: np.ndarray | range) -> np.ndarray:
    """``M_0..M_d`` of periodic conv nets, with ``np.roll``, in float64 (the weights of ``config.precision``'s
    stream layout); shape (len(nets), d + 1)."""
    arch, init = config.arch, config.init
    assert isinstance(arch, Conv)
    key = seed_to_key(config.seed)
    shape2d = (1, arch.spatial[0]) if len(arch.spatial) == 1 else arch.spatial
    cs = init.layer_c(arch)
    out = np.empty((len(nets), arch.depth + 1))
    for i, net in enumerate(nets):
        z = input_vector(config).reshape((arch.channels[0],) + shape2d)
        out[i, 0] = np.mean(z**2)
        for j in range(1, arch.depth + 1):
            w = conv_weights(config, j, int(net))
            kh, kw = w.shape[2:]
            pre = np.zeros((arch.channels[j],) + shape2d)
            for ty in range(kh):
                for tx in range(kw):
                    # tap (ty, tx) reads position p + (t - k//2): roll by -(t - k//2)
                    shifted = np.roll(z, (-(ty - kh // 2), -(tx - kw // 2)), axis=(1, 2))
                    pre += np.einsum("oc,chw->ohw", w[:, :, ty, tx], shifted)
            pre *= np.sqrt(cs[j - 1] / arch.fan_in(j))
            bias_var = _bias_var(init, j - 1, w.shape[1] * kh * kw)  # fan-in: input channels x taps
            if bias_var > 0:
                pre += np.sqrt(bias_var) * _bias(init.law, arch.channels[j], key, j, int(net))[:, None, None]
            z = np.maximum(pre, 0.0)
            out[i, j] = np.mean(z**2)
    return out


def reference_orthogonal_lengths(config: RunConfig, nets: np.ndarray | range) -> np.ndarray:
    """``M_0..M_d`` of nets with orthogonal weights (``method="full"``; fully connected, residual or conv), with
    each weight matrix from ``np.linalg.qr`` (:func:`fmsim.orthogonal.orthogonal_weights`) and dense products.

    Returns
    -------
    ndarray, shape (len(nets), d + 1), float64
    """
    from ..config import FullyConnected
    from ..sampling.haar import orthogonal_weights

    arch, init = config.arch, config.init
    key = seed_to_key(config.seed)
    x = input_vector(config)
    cs = init.layer_c(arch)
    out = np.empty((len(nets), arch.depth + 1))
    for i, net in enumerate(nets):
        net = int(net)
        out[i, 0] = x @ x / x.size
        if isinstance(arch, FullyConnected):
            z = x
            for j in range(1, arch.depth + 1):
                w = orthogonal_weights(arch.widths[j], arch.widths[j - 1], key, j, net)
                z = np.maximum(np.sqrt(cs[j - 1]) * (w @ z), 0.0)
                out[i, j] = z @ z / z.size
        elif isinstance(arch, Residual):
            m = len(arch.module_widths)
            y = x.copy()
            for mod, eta in enumerate(arch.etas):
                h = y
                for j, k in enumerate(arch.module_widths):
                    w = orthogonal_weights(k, h.size, key, int(residual_layer(mod, m, j)), net)
                    h = np.maximum(np.sqrt(float(init.c)) * (w @ h), 0.0)
                w = orthogonal_weights(arch.width, h.size, key, int(residual_layer(mod, m, m)), net)
                f = np.sqrt(arch.c_out) * (w @ h)
                if arch.ending == "relu":
                    f = np.maximum(f, 0.0)
                y = y + eta * f
                out[i, mod + 1] = y @ y / y.size
        else:
            shape2d = (1, arch.spatial[0]) if len(arch.spatial) == 1 else arch.spatial
            kh = 1 if len(arch.spatial) == 1 else arch.kernel
            z = x.reshape((arch.channels[0],) + shape2d)
            for j in range(1, arch.depth + 1):
                w = orthogonal_weights(arch.channels[j], arch.fan_in(j), key, j, net)
                w = w.reshape(arch.channels[j], arch.channels[j - 1], kh, arch.kernel)
                pre = np.zeros((arch.channels[j],) + shape2d)
                for ty in range(kh):
                    for tx in range(arch.kernel):
                        shifted = np.roll(z, (-(ty - kh // 2), -(tx - arch.kernel // 2)), axis=(1, 2))
                        pre += np.einsum("oc,chw->ohw", w[:, :, ty, tx], shifted)
                z = np.maximum(np.sqrt(cs[j - 1]) * pre, 0.0)
                out[i, j] = np.mean(z**2)
    return out
