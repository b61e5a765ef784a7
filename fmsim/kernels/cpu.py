"""CPU kernels. They only loop over their nets and write into ``out``.

Each kernel computes its nets one after the other; :mod:`fmsim.kernels.over_nets` shares a chunk's nets out among
numba's thread count. One net is computed start to finish by one thread, and every random number is a function
of its counter, so the output is bit-identical for any number of threads.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from ..sampling.first_layer import law_quantile
from ..sampling.laws import (
    LAW_CODES,
    RADEMACHER,
    UNIFORM,
    blocks_read,
    draw_scratch,
    polynomial32,
    polynomial32_row_from_words,
    residual_layer,
    row_scratch,
    rows_from_words,
    standard_row,
    weights_per_block,
)
from ..sampling.rng import philox4x32, u01_mid_from_words
from ..sampling.row_groups import (
    ROW_GROUP,
    group_row_words,
    group_words,
    row_group_scratch,
    row_words_alone,
)
from .borrowed import borrowed, keep_alive
from .exact import fc_exact_trace, residual_exact_trace, residual_relu_exact_trace
from .over_nets import over_nets, run_over_nets
from .partial_sums import partial_sums
from .scalar import (
    RENORM_HIGH,
    RENORM_LOW,
    bias_draw,
    mean_square,
    nonzero_inputs,
    rademacher_chunk,
    record_length,
    renorm_shift_within,
    scale_bias,
)
from .scalar import fused_multiply_add as fma
from .simd import CONV_BLOCK, block_positions, conv_block


def cast_like(value, like):
    """``value`` converted to the floating type of ``like`` (float64 or float32)."""
    return type(like)(value)


@overload(cast_like, inline="always")
def _cast_like_jit(value, like):
    to = np.float32 if like == types.float32 else np.float64
    return lambda value, like: to(value)


@njit(inline="always", cache=True)
def rademacher_table(z, n, signs):
    """The layer's Rademacher table (:func:`~fmsim.kernels.scalar.rademacher_chunk`), every chunk."""
    for c in range((n + 3) // 4):
        rademacher_chunk(z, n, c, signs)


@njit(inline="always", cache=True)
def gather_inputs(law, z, n, active, signs):
    """A layer's nonzero inputs ``z[:n]`` into ``active`` (and for Rademacher rows their table into
    ``signs``); returns how many there are, the fan-in the layer's rows draw."""
    n_active = nonzero_inputs(z, n, active)
    if law == RADEMACHER:
        rademacher_table(active, n_active, signs)
    return n_active


@njit(inline="always", cache=True)
def rademacher_dot(signs, n_in, words):
    """``sum_k w[k] z[k]`` of a Rademacher row from its words and the layer's table, bitwise ``row_dot``'s:
    one table entry per chunk of four weights, four partial sums over the chunk index mod 4."""
    a0 = cast_like(0.0, signs[0])
    a1, a2, a3 = a0, a0, a0
    n_chunks = (n_in + 3) // 4
    m = n_chunks - n_chunks % 4
    f = np.uint32(15)
    for c in range(0, m, 4):  # chunks c..c+3 lie in one word (eight chunks a word)
        word = words[c >> 3]
        sh = np.uint32(4 * (c & 7))
        a0 += signs[16 * c + np.intp((word >> sh) & f)]
        a1 += signs[16 * c + 16 + np.intp((word >> (sh + np.uint32(4))) & f)]
        a2 += signs[16 * c + 32 + np.intp((word >> (sh + np.uint32(8))) & f)]
        a3 += signs[16 * c + 48 + np.intp((word >> (sh + np.uint32(12))) & f)]
    for c in range(m, n_chunks):
        t = signs[16 * c + np.intp((words[c >> 3] >> np.uint32(4 * (c & 7))) & f)]
        if c == m:
            a0 += t
        elif c == m + 1:
            a1 += t
        else:
            a2 += t
    return (a0 + a1) + (a2 + a3)


@njit(inline="always", cache=True)
def drawn_dot(w, z, n_in):
    """``sum_k w[k] z[k]`` of a drawn row, in the precision of ``z``: four partial sums over ``k mod 4``
    (:func:`~fmsim.kernels.partial_sums.partial_sums`, the four in one vector register), combined
    ``(s0 + s1) + (s2 + s3)``. ``w`` is in the precision of ``z`` (:func:`weight_scratch`)."""
    m = n_in - n_in % 4
    a0, a1, a2, a3 = partial_sums(w, z, m)
    if m < n_in:
        a0 += w[m] * z[m]
    if m + 1 < n_in:
        a1 += w[m + 1] * z[m + 1]
    if m + 2 < n_in:
        a2 += w[m + 2] * z[m + 2]
    return (a0 + a1) + (a2 + a3)


def weight_scratch(z, w, w32):
    """The row scratch in the precision of the activations ``z``: ``w`` (float64) or ``w32`` (float32). Float32
    rows are drawn into float32 scratch: float64 would cost a store, a reload and a conversion per weight."""
    return w32 if z.dtype == np.float32 else w


@overload(weight_scratch, inline="always")
def _weight_scratch_jit(z, w, w32):
    if z.dtype == types.float32:
        return lambda z, w, w32: w32
    return lambda z, w, w32: w


def float32_polynomial_from_words(law, n, words, out):
    """:func:`~fmsim.laws.polynomial32_row_from_words` into ``out`` where it is float32 scratch; nothing into
    float64 scratch."""
    raise NotImplementedError("a numba kernel helper: see its overload")


@overload(float32_polynomial_from_words, inline="always")
def _float32_polynomial_from_words_jit(law, n, words, out):
    if out.dtype != types.float32:
        # Float64 kernels never draw polynomial rows (bits32 comes with float32 activations); compiling the
        # polynomial loops into them too made the FC kernel's first compile 1.8x longer.
        return lambda law, n, words, out: None
    return lambda law, n, words, out: polynomial32_row_from_words(law, n, words, out)


#: The longest rows (in weights their words hold) whose ziggurat weights :func:`drawn_row` makes a group at once.
GROUPED_ZIGGURAT_ROW_WEIGHTS = 128


@njit(inline="always", cache=True)
def layer_scratch(n_max):
    """The scratch ``(words, lanes, slow, w, w32)`` of :func:`drawn_row` for a layer's rows of up to ``n_max``
    weights (:func:`~fmsim.sampling.row_groups.row_group_scratch`). ``w32`` (float32) holds a group's float32
    polynomial or uniform rows, ``8 (n_max + 3)`` weights and 32 more (whole vector steps); ``slow`` and ``w``
    (float64) hold a row, or a group's ziggurat rows of up to :data:`GROUPED_ZIGGURAT_ROW_WEIGHTS` weights
    (:func:`made_by_groups`), and 8 more (:func:`~fmsim.laws.draw_scratch`)."""
    words, lanes = row_group_scratch(n_max)
    slow, w, _ = draw_scratch(max(n_max, ROW_GROUP * GROUPED_ZIGGURAT_ROW_WEIGHTS))
    w32 = np.empty(ROW_GROUP * (n_max + 3) + 32, dtype=np.float32)  # rows of up to n_max + 3: whole blocks of 4
    return words, lanes, slow, w, w32


@njit(inline="always", cache=True)
def made_by_groups(law, bits32, row_weights):
    """Whether :func:`drawn_row` makes the weights of a group of rows of ``row_weights`` weights at once: the
    float32 Gaussian, Laplace and uniform rows always; the ziggurats' rows (Gaussian, Laplace and truncated
    normal in float64, the truncated normal in float32) up to :data:`GROUPED_ZIGGURAT_ROW_WEIGHTS`; never the
    float64 uniform rows (grouped, no faster at width 100 in two measurements: docs, *Performance*) nor
    Rademacher rows (no weights: a table)."""
    if law == RADEMACHER:
        return False
    if law == UNIFORM:
        return bits32
    return polynomial32(law, bits32) or row_weights <= GROUPED_ZIGGURAT_ROW_WEIGHTS


@njit(inline="always", cache=True)
def drawn_row(law, bits32, z, n_in, row, n_rows, layer, net, k0, k1, words, lanes, slow, w, w32):
    """Draw row ``row`` of a layer of ``n_rows`` rows for its ``n_in`` inputs ``z``: returns ``(wz, row_words)``,
    the row's weights in the scratch of ``z``'s precision (:func:`weight_scratch`; from
    :func:`~fmsim.laws.rows_from_words`, or :func:`float32_polynomial_from_words`; none for a Rademacher row,
    whose table does the rest, :func:`rademacher_dot`) and its Philox words.

    The words are drawn for :data:`~fmsim.sampling.row_groups.ROW_GROUP` rows at once
    (:func:`~fmsim.sampling.row_groups.group_words`), at each row that starts a group (``row % 8 == 0``), so
    a layer's rows must come here in order from row 0, all with the same ``n_in``, as every kernel's loop
    over them does. A layer's last group holds the rows left, ``n_rows % 8`` when that is not 0.

    Where :func:`made_by_groups` says so, the weights are made there too, for the whole group at once: its
    words are one long row, whose weight ``row_weights r + k`` is weight ``k`` of the group's row ``r``
    (``row_weights = nb`` blocks times :func:`~fmsim.laws.weights_per_block`; the float32 Gaussian transform
    pairs words ``2j, 2j + 1``, and ``4 nb r`` is even), so each row gets the weights
    :func:`float32_polynomial_from_words` or :func:`~fmsim.laws.row_from_words` give it alone (a ziggurat's
    slow draws come from their own row's streams). A row's short transform (two vector steps of the float32
    Gaussian at width 100) is bound by its latency and its per-row costs; the group's runs at the lanes'
    throughput. Other rows' weights are made one row at a time. Scratch ``words``, ``lanes``, ``slow``,
    ``w``, ``w32``: :func:`layer_scratch`.
    """
    wz = weight_scratch(z, w, w32)
    r = np.intp(row % np.uint64(ROW_GROUP))
    nb = blocks_read(law, bits32, n_in)
    row_weights = nb * weights_per_block(law, bits32)  # the weights a row's words hold
    polynomial = polynomial32(law, bits32)
    by_groups = made_by_groups(law, bits32, row_weights)
    group_rows = min(ROW_GROUP, np.intp(n_rows) - np.intp(row))
    if r == 0:
        group_words(nb, group_rows, row, layer, net, k0, k1, words, lanes)
        if polynomial:
            float32_polynomial_from_words(law, group_rows * row_weights, words, wz)
    rw = group_row_words(words, nb, r)
    if law != RADEMACHER and not polynomial and (r == 0 or not by_groups):
        # one call for a group's rows and a row alone: each inlined copy lengthens the first compile
        if by_groups:
            n_made, stride, made_words = group_rows, row_weights, words
        else:
            n_made, stride, made_words = 1, n_in, rw
        rows_from_words(law, bits32, n_made, stride, n_in, row, layer, net, k0, k1, made_words, slow, wz)
    if by_groups:
        return wz[row_weights * r:], rw
    return wz, rw


@njit(inline="always", cache=True)
def row_preactivation(law, bits32, z, signs, n_in, row, n_rows, layer, net, scale, bias_sd, k0, k1, words, lanes,
                      slow, w, w32):
    """``scale * sum_k w[row, k] z[k] (+ bias)`` of one unit, in the precision of ``z``, before the nonlinearity.

    Bitwise the CUDA kernels' per-block path (:func:`~fmsim.kernels.scalar.make_unit_preactivation`
    over ``row_dot`` or ``row_dot_f32``): row ``row`` of ``n_rows`` drawn by :func:`drawn_row` (its words for 8
    rows at once: rows must come in order from row 0 of the layer) into the scratch of :func:`layer_scratch`, and summed
    by :func:`drawn_dot`; ``bits32`` (float32 runs) takes 32 bits per weight. Rademacher rows
    (``law == RADEMACHER``) read the layer's table ``signs`` (:func:`rademacher_table`) instead, one entry
    per four weights.
    """
    wz, rw = drawn_row(law, bits32, z, n_in, row, n_rows, layer, net, k0, k1, words, lanes, slow, w, w32)
    if law == RADEMACHER:
        acc = rademacher_dot(signs, n_in, rw)
    else:
        acc = drawn_dot(wz, z, n_in)
    pre = cast_like(scale, acc) * acc
    if bias_sd > 0.0:
        pre += cast_like(bias_sd * bias_draw(law, row, layer, net, k0, k1), acc)
    return pre


@njit(cache=True)  # called once per net: inlined, it made the kernels' first compile 1.5x longer
def first_layer_from_law(law, law1, law1_guide, law1_grid, n, net, bias_sd, k0, k1, zero, out):
    """The first layer's pre-activations ``sd * F^{-1}(u_r) (+ bias)`` through the ReLU into ``out[:n]``
    (``method="exact_first"``): ``u_r`` from words 0 and 1 of block 0 of row ``r``'s layer-1 stream, which
    no weight uses then; ``F`` the tabulated law ``law1`` (``fmsim.first_layer``), and
    ``law1_grid = (s0, ds, sd)``. Computed in float64, rounded to the precision of ``zero``."""
    layer = np.uint64(1)
    for r in range(n):
        row = np.uint64(r)
        w0, w1, _, _ = philox4x32(np.uint64(0), row, layer, net, k0, k1)
        s = law_quantile(u01_mid_from_words(w0, w1), law1, law1_guide, law1_grid[0], law1_grid[1])
        pre = law1_grid[2] * s
        if bias_sd > 0.0:
            pre += bias_sd * bias_draw(law, row, layer, net, k0, k1)
        pre = cast_like(pre, zero)
        out[r] = pre if pre > 0.0 else zero


@njit(inline="always", cache=True)
def divide_by_power_of_two(z, n, e):
    """``z[:n] /= 2^e`` (exact: a power of two) by one multiplication each."""
    f = cast_like(math.ldexp(1.0, -e), z[0])
    for k in range(n):
        z[k] *= f


@njit(inline="always", cache=True)
def record_and_renormalize(z, n, shift, j, low, high, out_lengths, out_log):
    """After layer ``j`` of a net held divided by ``2^shift``: write ``M_j`` and ``log M_j`` (of the mean square of
    ``z[:n]``) into ``out_lengths[j]`` and ``out_log[j]``, and if that mean square left ``[low, high]`` divide
    ``z[:n]`` by the power of two :func:`~fmsim.kernels.scalar.renorm_shift_within` gives. Returns the new shift.
    Every CPU ``full`` kernel ends its layers (or modules) with it."""
    ms = mean_square(z, n)
    record_length(ms, 2 * shift, j, out_lengths, out_log)
    e = renorm_shift_within(ms, low, high)
    if e != 0:
        divide_by_power_of_two(z, n, e)
    return shift + e


def fc_full(x, x_shift, widths, scales, bias_sds, law, k0, k1, net0, zero, bits32, law1, law1_guide, law1_grid,
            renorm_high, out_lengths, out_log):
    """Forward passes of fully connected ReLU nets, weights drawn on the fly.

    Each layer draws weights only for its nonzero inputs (:func:`~fmsim.kernels.scalar.nonzero_inputs`):
    the same law, half the draws after a ReLU.

    Each ``(law, bits32)`` runs its own kernel (:func:`fc_full_for_law`), compiled the first time a run needs
    it: one law's code alone compiles in about two thirds of the time that every law's did, and runs the
    same weights.

    The activations are held divided by ``2^shift``: after a layer whose mean
    square leaves ``[1/renorm_high, renorm_high]`` they are divided by a power
    of two (:func:`~fmsim.kernels.scalar.renorm_shift_within`) and ``shift``
    grows by its exponent; biases are divided by ``2^shift`` as they are added.
    Every operation then gives its unscaled result times a power of two,
    exactly (barring subnormals), so a net that stays inside the window has the
    bits it had without renormalization, and none underflows, overflows or dies
    by rounding at any depth.

    Parameters
    ----------
    x : ndarray, shape (n_0,), float64
        Input, shared by all nets, divided by ``2^x_shift``.
    x_shift : int
    widths : ndarray, shape (d + 1,), int64
    scales : ndarray, shape (d,), float64
        Weight standard deviation per layer, ``sqrt(c_j / n_{j-1})``.
    bias_sds : ndarray, shape (d,), float64
        Each layer's bias standard deviation (0 for none).
    law : int
        Weight-law code.
    k0, k1 : uint64
        Philox key.
    net0 : int
        Global index of the first net of this chunk.
    zero : float64 or float32
        Zero in the precision of the activations and dot products.
    bits32 : bool
        32 bits per weight (the float32 stream layout, ``fmsim.laws``).
    law1 : ndarray, shape (2, N), float64
        ``method="exact_first"``: the first layer's tabulated law (:func:`first_layer_from_law`);
        shape (2, 0) to draw the first layer's weights instead.
    law1_guide : ndarray, shape (G + 1,), int64
        Its guide table (:attr:`fmsim.first_layer.FirstLayerLaw.guide`).
    law1_grid : ndarray, shape (3,), float64
        ``(s0, ds, sd)``: the table's first node and step, and the pre-activations' standard deviation
        (for the input as given, divided by ``2^x_shift``).
    renorm_high : float
        The window's upper end (:data:`~fmsim.kernels.scalar.RENORM_HIGH`; ``inf``: never renormalize).
    out_lengths : ndarray, shape (n, d + 1), float64
        Written: ``M_0..M_d`` of each net (0 or inf beyond float64's range).
    out_log : ndarray, shape (n, d + 1), float64
        Written: ``log M_0..log M_d`` (``-inf`` only for a dead net).
    """
    run_over_nets(fc_full_for_law(int(law), bool(bits32)), (x, x_shift, widths, scales, bias_sds, k0, k1, net0, zero,
                  law1, law1_guide, law1_grid, renorm_high, out_lengths, out_log), 7)


def compiled_for_law(kernel, name: str, law: int, bits32: bool):
    """``njit(nogil=True, cache=True)`` of the kernel ``kernel`` of one law, renamed ``name_<law>`` (``_bits32``
    for the 32-bit layout) first: the name the first run's compile notice shows and numba's cache files carry.
    A ``law`` that is not a weight-law code (``fmsim.laws.LAW_CODES``) raises ``ValueError``, before any compile."""
    law_names = {code: law_name for law_name, code in LAW_CODES.items()}
    if law not in law_names:
        raise ValueError(f"law: expected one of the codes {sorted(law_names)}, got {law}")
    kernel.__name__ = kernel.__qualname__ = f"{name}_{law_names[law]}" + ("_bits32" if bits32 else "")
    return njit(nogil=True, cache=True)(kernel)  # its nets shared out by run_over_nets


@functools.cache
def fc_full_for_law(law: int, bits32: bool):
    """The numba kernel of :func:`fc_full` for one weight law and stream layout, compiled (or loaded from numba's
    cache) on its first call.

    ``law`` and ``bits32`` are constants of the kernel (closure variables, which numba's cache keys on), so
    numba and LLVM drop every other law's code before they optimize. For the float64 truncated normal
    (``method="exact_first"``) on an Intel Xeon: 10.1 s to compile against 16.1 s for the kernel that took
    the law as an argument.

    Parameters
    ----------
    law : int
        Weight-law code (``fmsim.laws.LAW_CODES``).
    bits32 : bool
        32 bits per weight (the float32 stream layout).

    Returns
    -------
    numba dispatcher
        Called with :func:`fc_full`'s arguments less ``law`` and ``bits32``.
    """
    def fc_full_of_law(x, x_shift, widths, scales, bias_sds, k0, k1, net0, zero, law1, law1_guide, law1_grid,
                       renorm_high, out_lengths, out_log):
        n = out_lengths.shape[0]
        d = widths.shape[0] - 1
        renorm_low = 1.0 / renorm_high
        wmax = np.intp(0)  # not the literal 0: numba would type the helpers for Literal[int](0) too
        for j in range(d + 1):
            wmax = max(wmax, widths[j])
        m0 = mean_square(x, widths[0])
        # allocated once for the nets of the call (a net writes every entry it reads first: the golden cases and
        # the thread-count tests, whose splits leave other nets' values in them, hold it); the layers see views
        # that count no references (fmsim.kernels.borrowed), kept alive to the end
        activations = (np.full(wmax, zero), np.full(wmax, zero), np.full(wmax, zero), np.full(4 * wmax + 16, zero))
        scratch = layer_scratch(wmax)
        z0, z1, active, signs = borrowed(activations)
        words, lanes, slow, w, w32 = borrowed(scratch)
        for i in range(n):
            net = np.uint64(net0 + i)
            z, znew = z0, z1
            lengths_i, log_i = borrowed(out_lengths[i]), borrowed(out_log[i])
            z[: widths[0]] = x
            shift = x_shift
            record_length(m0, 2 * shift, 0, lengths_i, log_i)
            for j in range(1, d + 1):
                layer = np.uint64(j)
                bias_j = scale_bias(bias_sds[j - 1], shift)
                if j == 1 and law1.shape[1] > 0:
                    first_layer_from_law(law, law1, law1_guide, law1_grid, widths[1], net, bias_j, k0, k1, zero, znew)
                else:
                    n_active = gather_inputs(law, z, widths[j - 1], active, signs)
                    for r in range(widths[j]):
                        pre = row_preactivation(law, bits32, active, signs, n_active, np.uint64(r), widths[j], layer,
                                                net, scales[j - 1], bias_j, k0, k1, words, lanes, slow, w, w32)
                        znew[r] = pre if pre > 0.0 else zero
                z, znew = znew, z
                shift = record_and_renormalize(z, widths[j], shift, j, renorm_low, renorm_high, lengths_i, log_i)
        keep_alive(activations)
        keep_alive(scratch)

    return compiled_for_law(fc_full_of_law, "fc_full", law, bits32)


@over_nets(7)
def fc_exact(m0, m0_shift, widths, cs, bias_vars, k0, k1, net0, out_lengths, out_log):
    """Exact Gaussian sampler: ``M_j = (c_j M_{j-1} + bias_var)/n_j chi2(K_j)``, O(n_j/128 + 1) per layer.

    Parameters
    ----------
    m0, m0_shift : float, int
        ``M_0 = m0 2^m0_shift`` of the input.
    widths : ndarray, shape (d + 1,), int64
    cs : ndarray, shape (d,), float64
        ``c_j`` per layer.
    bias_vars : ndarray, shape (d,), float64
        Each layer's variance of its Gaussian biases (0 for none).
    k0, k1, net0, out_lengths, out_log
        As in :func:`fc_full`.
    """
    for i in range(out_lengths.shape[0]):
        fc_exact_trace(m0, m0_shift, widths, cs, bias_vars, np.uint64(net0 + i), k0, k1, out_lengths[i], out_log[i])


# ------------------------------------------------------------------ residual
def res_full(x, x_shift, module_widths, etas, hidden_scale, out_scales, relu_end, bias_sds, law, k0, k1, net0, zero,
                 bits32, out_lengths, out_log):
    """Forward passes of residual nets ``y_l = y_{l-1} + eta_l F_l(y_{l-1})``, weights drawn on the fly.

    Layer ``i = 0..m`` of module ``l = 1..L`` (``i = m`` is the output layer)
    uses counter word ``layer = (l - 1)(m + 1) + i + 1``. As in :func:`fc_full`, each layer
    draws weights only for its nonzero inputs; the stream is renormalized by
    powers of two as the activations of :func:`fc_full` are.

    Each ``(law, bits32)`` runs its own kernel (:func:`res_full_for_law`), compiled the first time a run
    needs it, as :func:`fc_full`'s.

    Parameters
    ----------
    x : ndarray, shape (n,), float64
        Input divided by ``2^x_shift``.
    x_shift : int
    module_widths : ndarray, shape (m,), int64
        Hidden widths of every module (``m`` may be 0).
    etas : ndarray, shape (L,), float64
    hidden_scale : ndarray, shape (m,), float64
        ``sqrt(c / fan_in)`` of each hidden layer.
    out_scales : float
        ``sqrt(c_out / k_m)`` of the output layer.
    relu_end : bool
        Apply ReLU to the module output.
    bias_sds : ndarray, shape (m + 1,), float64
        Bias standard deviation of a module's hidden layers, then of its output layer.
    law, k0, k1, net0, zero, bits32
        As in :func:`fc_full`: ``zero`` sets the precision of the stream, the module and the dot products.
    out_lengths, out_log : ndarray, shape (nets, L + 1)
    """
    run_over_nets(res_full_for_law(int(law), bool(bits32)), (x, x_shift, module_widths, etas, hidden_scale,
                  out_scales, relu_end, bias_sds, k0, k1, net0, zero, out_lengths, out_log), 10)


@functools.cache
def res_full_for_law(law: int, bits32: bool):
    """The numba kernel of :func:`res_full` for one weight law and stream layout (as :func:`fc_full_for_law`):
    called with :func:`res_full`'s arguments less ``law`` and ``bits32``."""
    def res_full_of_law(x, x_shift, module_widths, etas, hidden_scale, out_scales, relu_end, bias_sds, k0, k1,
                        net0, zero, out_lengths, out_log):
        nets = out_lengths.shape[0]
        n = x.shape[0]
        m = module_widths.shape[0]
        L = etas.shape[0]
        kmax = n
        for i in range(m):
            kmax = max(kmax, module_widths[i])
        m0 = mean_square(x, n)
        # allocated once for the nets of the call, as in fc_full; the modules see views that count no references
        # (fmsim.kernels.borrowed), kept alive to the end
        activations = (np.full(n, zero), np.full(kmax, zero), np.full(kmax, zero), np.full(kmax, zero),
                       np.full(4 * kmax + 16, zero))
        scratch = layer_scratch(kmax)
        y, h0, h1, active, signs = borrowed(activations)
        words, lanes, slow, w, w32 = borrowed(scratch)
        for i in range(nets):
            net = np.uint64(net0 + i)
            h, hnew = h0, h1
            lengths_i, log_i = borrowed(out_lengths[i]), borrowed(out_log[i])
            for k in range(n):
                y[k] = cast_like(x[k], zero)
            shift = x_shift
            record_length(m0, 2 * shift, 0, lengths_i, log_i)
            for mod in range(L):
                h[:n] = y
                n_in = n
                for j in range(m + 1):  # hidden layers, then (j = m) the output layer: one inlined row path
                    last = j == m
                    layer = residual_layer(mod, m, j)
                    n_out = n if last else module_widths[j]
                    sc = out_scales if last else hidden_scale[j]
                    bias_l = scale_bias(bias_sds[j], shift)
                    n_active = gather_inputs(law, h, n_in, active, signs)
                    for r in range(n_out):
                        pre = row_preactivation(law, bits32, active, signs, n_active, np.uint64(r), n_out, layer, net,
                                                sc, bias_l, k0, k1, words, lanes, slow, w, w32)
                        if last:
                            if relu_end and pre < 0.0:
                                pre = zero
                        elif not pre > 0.0:
                            pre = zero
                        hnew[r] = pre
                    h, hnew = hnew, h
                    n_in = n_out
                eta = cast_like(etas[mod], zero)
                for r in range(n):
                    y[r] += eta * h[r]
                shift = record_and_renormalize(y, n, shift, mod + 1, RENORM_LOW, RENORM_HIGH, lengths_i, log_i)
        keep_alive(activations)
        keep_alive(scratch)

    return compiled_for_law(res_full_of_law, "res_full", law, bits32)


@over_nets(10)
def res_exact(m0, m0_shift, n, module_widths, etas, c, c_out, bias_vars, k0, k1, net0, out_lengths, out_log):
    """Exact sampler for residual nets with linear-ending modules and Gaussian weights.

    Given ``M``, the module's last hidden length is ``R = M prod_i (c/k_i) chi2(Bin(k_i, 1/2))``
    (``R = M`` without hidden layers), and ``n M' = (sqrt(n M) + eta sqrt(c_out R) g)^2
    + eta^2 c_out R chi2_{n-1}`` with ``g ~ N(0, 1)``: ``W_out h`` is isotropic
    Gaussian given ``h``. O(1 + k/128) per module. Counters as in :func:`res_full`.
    With Gaussian biases (every layer of a module), see :func:`~fmsim.kernels.exact.residual_exact_trace`.
    """
    for i in range(out_lengths.shape[0]):
        residual_exact_trace(m0, m0_shift, n, module_widths, etas, c, c_out, bias_vars, np.uint64(net0 + i), k0, k1,
                             out_lengths[i], out_log[i])


@over_nets(9)
def res_relu_exact(x, x_shift, module_widths, etas, c, c_out, bias_vars, k0, k1, net0, out_lengths, out_log):
    """Sampler for residual nets with ReLU-ending Gaussian modules, O(n + k/128) per module (not O(n k)).

    The hidden lengths are drawn by the chi-square-binomial law from the
    stream's length; the ``n`` output coordinates are drawn directly
    (:func:`~fmsim.kernels.exact.residual_relu_exact_trace`).
    """
    y = np.empty(x.shape[0])  # scratch, every entry written before it is read
    for i in range(out_lengths.shape[0]):
        residual_relu_exact_trace(x, x_shift, module_widths, etas, c, c_out, bias_vars, np.uint64(net0 + i), k0, k1,
                                  y, out_lengths[i], out_log[i])


# ---------------------------------------------------------------- convolution
@njit(inline="always", cache=True)
def periodic_pad(z, c_in, height, width, kh, kw, zpad):
    """``zpad[(ci, y, x)] = z[(ci, (y - kh//2) mod H, (x - kw//2) mod W)]`` on the ``(H + kh - 1, W + kw - 1)`` grid.

    With the kernel's sizes known only at run time, the row copy indexed ``dst[left + x]`` kept a negative-index
    check per element and a ``%`` per row and wrapped column: the padding of a 32-channel 32x32 float32 layer
    took 24 us against 7 with the sizes as constants. Here the copy reads and writes views indexed from 0, the
    source row steps through ``mod H``, and the few wrapped columns step back by ``W``."""
    hp, wp = height + kh - 1, width + kw - 1
    left = kw // 2
    first = (-(kh // 2)) % height  # the source row of padded row 0 (one division per call)
    for ci in range(c_in):
        sy = first
        for y in range(hp):
            src = z[(ci * height + sy) * width:]
            dst = zpad[(ci * hp + y) * wp:]
            body = dst[left:]  # the row itself, one contiguous copy (indexed from 0 up: no negative-index
            for x in range(width):  # checks, so LLVM vectorizes it); then the wrapped columns
                body[x] = src[x]
            for x in range(left):
                sx = x - left
                while sx < 0:
                    sx += width
                dst[x] = src[sx]
            for x in range(left + width, wp):
                sx = x - left
                while sx >= width:
                    sx -= width
                dst[x] = src[sx]
            sy += 1
            if sy == height:
                sy = 0


_NO_WEIGHTS = np.empty(0)

#: Positions per pass of the conv kernel (whole rows of the padded grid, at least one): a block's
#: ``CONV_BLOCK`` rows of sums stay in L1 (8 x 2048 x 4 bytes in float32).
CONV_SPAN = 2048


@njit(inline="always", cache=True)
def conv_scratch(cmax, height, width, kh, kw, zero):
    """Per-net buffers of :func:`conv_layer` in the precision of ``zero``: the padded input (with a zeroed tail a
    block may read past the last position), the block's sums, one drawn row (room for a padded float32
    polynomial row, as in :func:`~fmsim.laws.row_scratch`), the block's weights ordered ``(tap, channel)``, and
    the taps' offsets."""
    taps = kh * kw
    hp, wp = height + kh - 1, width + kw - 1
    pt = block_positions(zero)
    zpad = np.full(cmax * hp * wp + 2 * pt, zero)
    acc = np.full((CONV_BLOCK, max(CONV_SPAN, wp) + pt), zero)
    wrow = np.full(cmax * taps + 32, zero)
    wblock = np.full(cmax * taps * CONV_BLOCK, zero)
    offsets = np.empty(cmax * taps, dtype=np.int64)
    return zpad, acc, wrow, wblock, offsets


@njit(inline="always", cache=True)
def conv_layer(law, bits32, given, zpad, c_in, c_out, height, width, kh, kw, scale, bias_sd, layer, net, k0, k1,
               words, slow, wrow, wblock, offsets, acc, out):
    """One conv layer of a net through the ReLU: ``out[(r, py, px)]`` for every output channel ``r``, from the
    padded input ``zpad`` (buffers from :func:`conv_scratch`).

    Channels go ``CONV_BLOCK`` at a time; a last, partial block computes the missing channels with zero weights
    and drops them. Each channel's row is drawn by :func:`~fmsim.laws.standard_row` (float32 Gaussian and
    Laplace: :func:`float32_polynomial_from_words`), or copied from ``given`` (shape ``(c_out c_in kh kw,)``, row after
    row) where that is not empty, into ``wrow``, then laid out ``(tap, channel)`` in ``wblock``.

    Positions are indexed on the padded grid, ``q = py wp + px`` (``wp = width + kw - 1``), so tap
    ``(ci, ty, tx)`` reads ``zpad[q + offset]``. :func:`~fmsim.kernels.simd.conv_block` sums a block of
    channels x positions in registers, each position's taps in ``(c_in, ty, tx)`` order by fused multiply-adds,
    bitwise :func:`~fmsim.kernels.scalar.conv_channel`'s, whichever positions a block holds. A block holds two
    vectors of positions: a run of ``q`` within a row; or, where a vector spans a row with fewer positions to
    spare, one vector in each of two rows (the last row of an odd count computed twice); or a run over whole
    rows, where rows are too short for either (the ``kw - 1`` columns between rows are then computed and
    dropped). The pre-activation is ``fma(scale, sum, bias)``."""
    hp, wp = height + kh - 1, width + kw - 1
    span = (height - 1) * wp + width
    pt = block_positions(acc)
    lanes = pt // 2
    rows = max(1, (acc.shape[1] - pt) // wp)
    row_cost = pt * ((width + pt - 1) // pt)  # positions computed per row, blocks within rows
    pair_cost = lanes * ((width + lanes - 1) // lanes)  # vectors within rows, a block in two rows
    # (Within a row, no block or vector runs past the row's padded width: the columns it computes beyond the
    # row are those between rows. Over whole rows, a row costs wp.)
    by_rows = height > 1 and row_cost <= wp and row_cost <= pair_cost
    by_pairs = height > 1 and not by_rows and pair_cost < wp
    P = height * width
    n = c_in * kh * kw
    for ci in range(c_in):
        for ty in range(kh):
            for tx in range(kw):
                offsets[(ci * kh + ty) * kw + tx] = (ci * hp + ty) * wp + tx
    one = acc[0, 0]
    zero = cast_like(0.0, one)
    sc = cast_like(scale, one)
    bias = np.empty(CONV_BLOCK, dtype=acc.dtype)
    for r0 in range(0, c_out, CONV_BLOCK):
        for k in range(CONV_BLOCK):
            r = r0 + k
            row = wrow
            if r >= c_out:
                row[:n] = 0.0
            elif given.shape[0] > 0:
                row[:n] = given[r * n:(r + 1) * n]
            elif polynomial32(law, bits32):
                row_words_alone(law, bits32, n, np.uint64(r), layer, net, k0, k1, words)
                float32_polynomial_from_words(law, n, words, row)
            else:
                standard_row(law, bits32, n, np.uint64(r), layer, net, k0, k1, words, slow, row)
            for t in range(n):
                wblock[t * CONV_BLOCK + k] = row[t]
        for k in range(CONV_BLOCK):
            r = min(r0 + k, c_out - 1)
            bias[k] = cast_like(bias_sd * bias_draw(law, np.uint64(r), layer, net, k0, k1) if bias_sd > 0.0 else 0.0,
                                one)
        for py0 in range(0, height, rows):  # a pass covers whole rows of positions
            py1 = min(height, py0 + rows)
            q0 = py0 * wp
            if by_rows:  # blocks within each row: none computes the columns between rows
                for py in range(py0, py1):
                    for px in range(0, width, pt):
                        conv_block(zpad, py * wp + px, offsets, n, wblock, acc, (py - py0) * wp + px, lanes)
            elif by_pairs:  # a vector in row py, one in row py + 1 (in row py again where that is the last)
                for py in range(py0, py1, 2):
                    step = wp if py + 1 < py1 else 0
                    for px in range(0, width, lanes):
                        conv_block(zpad, py * wp + px, offsets, n, wblock, acc, (py - py0) * wp + px, step)
            else:
                for t in range(0, min(span, py1 * wp) - q0, pt):
                    conv_block(zpad, q0 + t, offsets, n, wblock, acc, t, lanes)
            for k in range(min(CONV_BLOCK, c_out - r0)):
                a = acc[k]
                b = bias[k]
                for py in range(py0, py1):
                    src = a[(py - py0) * wp:]  # views indexed from 0 up: no negative-index checks, so LLVM
                    dst = out[(r0 + k) * P + py * width:]  # vectorizes with plain loads and stores
                    for px in range(width):
                        pre = fma(sc, src[px], b)
                        dst[px] = pre if pre > 0.0 else zero


def conv_full(x, x_shift, channels, height, width, kh, kw, scales, bias_sds, law, k0, k1, net0, zero, bits32,
                  out_lengths, out_log):
    """Forward passes of 2D periodic convolutional ReLU nets (1D: ``height = kh = 1``).

    The weights of output channel ``r`` of layer ``j`` are one row of
    ``C_{j-1} kh kw`` draws (counter ``(r, j, net)``), ordered
    ``(c_in, ty, tx)``; tap ``(ty, tx)`` reads position
    ``((py + ty - kh//2) mod H, (px + tx - kw//2) mod W)``. Each position sums its taps in that order by fused
    multiply-adds, in the precision of ``zero`` (:func:`conv_layer`).

    Each ``(law, bits32)`` runs its own kernel (:func:`conv_full_for_law`), compiled the first time a run
    needs it, as :func:`fc_full`'s.

    Parameters
    ----------
    x : ndarray, shape (C_0 H W,), float64
        Input, ``(C_0, H, W)`` flattened in C order, divided by ``2^x_shift``
        (activations are renormalized as in :func:`fc_full`).
    x_shift : int
    channels : ndarray, shape (d + 1,), int64
    height, width, kh, kw : int
    scales : ndarray, shape (d,), float64
        ``sqrt(c_j / (kh kw C_{j-1}))``.
    bias_sds, law, k0, k1, net0
        As in :func:`fc_full`.
    zero : float64 or float32
        Zero in the precision of the activations, weights and sums.
    bits32 : bool
        32 bits per weight (the float32 stream layout, ``fmsim.laws``).
    out_lengths, out_log
        As in :func:`fc_full`.
    """
    run_over_nets(conv_full_for_law(int(law), bool(bits32)), (x, x_shift, channels, height, width, kh, kw, scales,
                  bias_sds, k0, k1, net0, zero, out_lengths, out_log), 11)


@functools.cache
def conv_full_for_law(law: int, bits32: bool):
    """The numba kernel of :func:`conv_full` for one weight law and stream layout (as :func:`fc_full_for_law`):
    called with :func:`conv_full`'s arguments less ``law`` and ``bits32``."""
    def conv_full_of_law(x, x_shift, channels, height, width, kh, kw, scales, bias_sds, k0, k1, net0, zero,
                         out_lengths, out_log):
        nets = out_lengths.shape[0]
        d = channels.shape[0] - 1
        P = height * width
        taps = kh * kw
        cmax = np.intp(0)
        for j in range(d + 1):
            cmax = max(cmax, channels[j])
        m0 = mean_square(x, x.shape[0])
        # Buffers once per call, not once per net (the next net finds the last one's values: a layer reads only
        # what it, or the layer before, wrote, and past the ends only sums that no one keeps, as a net's narrower
        # layers already do after its wider ones)
        z = np.full(cmax * P, zero)
        znew = np.full(cmax * P, zero)
        zpad, acc, wrow, wblock, offsets = conv_scratch(cmax, height, width, kh, kw, zero)
        words, slow, _, _ = row_scratch(cmax * taps)
        for i in range(nets):
            net = np.uint64(net0 + i)
            for k in range(x.shape[0]):
                z[k] = cast_like(x[k], zero)
            shift = x_shift
            record_length(m0, 2 * shift, 0, out_lengths[i], out_log[i])
            for j in range(1, d + 1):
                c_in = channels[j - 1]
                periodic_pad(z, c_in, height, width, kh, kw, zpad)
                conv_layer(law, bits32, _NO_WEIGHTS, zpad, c_in, channels[j], height, width, kh, kw, scales[j - 1],
                           scale_bias(bias_sds[j - 1], shift), np.uint64(j), net, k0, k1, words, slow, wrow, wblock,
                           offsets, acc, znew)
                z, znew = znew, z
                shift = record_and_renormalize(z, channels[j] * P, shift, j, RENORM_LOW, RENORM_HIGH, out_lengths[i],
                                               out_log[i])

    return compiled_for_law(conv_full_of_law, "conv_full", law, bits32)
