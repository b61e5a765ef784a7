"""CUDA kernels (numba-cuda). Imported only by :mod:`fmsim.running.cuda_backend`.

They call the same scalar functions as the CPU kernels (Philox streams, laws,
row dot products, exact-layer sampler), so a net's ``M_j`` agree with the CPU
to float rounding (the GPU may fuse multiply-adds).
"""

from __future__ import annotations

import math
import types

import numpy as np
from numba import cuda

from ..sampling import laws
from ..sampling.laws import RADEMACHER
from . import carry, epilogue, exact, gram, moments, scalar


def device_function(fn, **helpers):
    """``fn``'s Python source compiled as a CUDA device function, the helpers it calls by the given names bound to
    their device versions (under the CUDA simulator a CPU-compiled helper cannot take device arrays)."""
    py = fn.py_func
    namespace = dict(py.__globals__)
    namespace.update(helpers)
    clone = types.FunctionType(py.__code__, namespace, py.__name__, py.__defaults__, py.__closure__)
    clone.__doc__ = py.__doc__
    return cuda.jit(device=True)(clone)


# The shared njit helpers, compiled again as CUDA device functions from their Python source.
# (Also what lets the CUDA simulator pass its device arrays to them.)
row_dot = cuda.jit(device=True)(scalar.row_dot.py_func)
row_dot_f32 = cuda.jit(device=True)(scalar.row_dot_f32.py_func)
bias_draw = cuda.jit(device=True)(scalar.bias_draw.py_func)
mean_square = cuda.jit(device=True)(scalar.mean_square_body)
nonzero_inputs = cuda.jit(device=True)(scalar.nonzero_inputs.py_func)
rademacher_chunk = cuda.jit(device=True)(scalar.rademacher_chunk.py_func)
length_and_log = cuda.jit(device=True)(scalar.length_and_log.py_func)
renorm_shift = cuda.jit(device=True)(scalar.renorm_shift.py_func)
renorm_shift_within = cuda.jit(device=True)(scalar.renorm_shift_within.py_func)
renormalized = cuda.jit(device=True)(scalar.renormalized.py_func)
scale_bias = cuda.jit(device=True)(scalar.scale_bias.py_func)
residual_layer = cuda.jit(device=True)(laws.residual_layer.py_func)
fc_exact_trace = cuda.jit(device=True)(exact.fc_exact_trace.py_func)
unit_preactivation = cuda.jit(device=True)(scalar.make_unit_preactivation(np.float64, row_dot, bias_draw))
unit_preactivation_f32 = cuda.jit(device=True)(scalar.make_unit_preactivation(np.float32, row_dot_f32, bias_draw))


@cuda.jit
def fc_exact_kernel(m0, m0_shift, widths, cs, bias_vars, k0, k1, net0, out_lengths, out_log):
    """One thread per net; arguments as :func:`fmsim.kernels.cpu.fc_exact`."""
    i = cuda.grid(1)
    if i >= out_lengths.shape[0]:
        return
    fc_exact_trace(m0, m0_shift, widths, cs, bias_vars, np.uint64(net0 + i), k0, k1, out_lengths[i], out_log[i])


@cuda.jit(device=True)
def gather_inputs(law, z, n, active, signs, n_active, t, n_threads):
    """A layer's nonzero inputs into ``active`` (thread 0) and their count into ``n_active[0]``, then for
    Rademacher rows their table into ``signs`` (threads over chunks); as the CPU kernels'. Every thread calls it."""
    if t == 0:
        n_active[0] = nonzero_inputs(z, n, active)
    cuda.syncthreads()
    if law == RADEMACHER:
        for c in range(t, (n_active[0] + 3) // 4, n_threads):
            rademacher_chunk(active, n_active[0], c, signs)
        cuda.syncthreads()


@cuda.jit(device=True)
def record_and_renormalize(z, n, shift, j, t, n_threads, e_shared, lengths_row, log_row):
    """After layer ``j`` of a net held divided by ``2^shift``, every thread of its block: thread 0 writes ``M_j`` and
    ``log M_j`` of ``z[:n]`` and the renormalizing exponent into ``e_shared[0]``; then the threads divide ``z`` by
    that power of two. Returns the new shift. As :func:`fmsim.kernels.cpu.record_and_renormalize`."""
    if t == 0:
        ms = mean_square(z, n)
        lengths_row[j], log_row[j] = length_and_log(ms, 2 * shift)
        e_shared[0] = renorm_shift(ms)
    cuda.syncthreads()
    e = int(e_shared[0])
    if e != 0:
        f = math.ldexp(1.0, -e)
        for k in range(t, n, n_threads):
            z[k] *= f
        shift += e
    return shift


def _make_fc_full_kernel(ftype, preact):
    """The ``full`` FC kernel with activations and dot products in ``ftype`` (as the CPU kernel)."""

    @cuda.jit
    def fc_full_kernel(x, x_shift, widths, scales, bias_sds, law, k0, k1, net0, scratch, signs_scratch, out_lengths,
                       out_log):
        """One thread block per net, threads over the rows of each layer.

        ``scratch`` : device array, shape (n, 3, max width), ``ftype``: the two
        activation buffers of each net and its nonzero inputs; ``signs_scratch``: shape
        (n, 4 max width + 16), each net's Rademacher table. Other arguments as
        :func:`fmsim.kernels.cpu.fc_full` (renormalized as it is).
        """
        i = cuda.blockIdx.x
        if i >= out_lengths.shape[0]:
            return
        t = cuda.threadIdx.x
        n_threads = cuda.blockDim.x
        net = np.uint64(net0 + i)
        d = widths.shape[0] - 1
        z = scratch[i, 0]
        znew = scratch[i, 1]
        active = scratch[i, 2]
        signs = signs_scratch[i]
        n_active = cuda.shared.array(1, dtype=np.int64)
        e_shared = cuda.shared.array(1, dtype=np.int64)
        for k in range(t, widths[0], n_threads):
            z[k] = x[k]
        if t == 0:
            out_lengths[i, 0], out_log[i, 0] = length_and_log(mean_square(x, widths[0]), 2 * x_shift)
        shift = x_shift  # every thread keeps it
        cuda.syncthreads()
        for j in range(1, d + 1):
            layer = np.uint64(j)
            bias_j = scale_bias(bias_sds[j - 1], shift)
            gather_inputs(law, z, widths[j - 1], active, signs, n_active, t, n_threads)
            for r in range(t, widths[j], n_threads):
                pre = preact(law, active, signs, n_active[0], np.uint64(r), layer, net, scales[j - 1], bias_j, k0,
                             k1)
                znew[r] = pre if pre > 0.0 else ftype(0.0)
            cuda.syncthreads()
            shift = record_and_renormalize(znew, widths[j], shift, j, t, n_threads, e_shared, out_lengths[i],
                                           out_log[i])
            z, znew = znew, z
            cuda.syncthreads()

    return fc_full_kernel


fc_full_kernel = _make_fc_full_kernel(np.float64, unit_preactivation)
fc_full_kernel_f32 = _make_fc_full_kernel(np.float32, unit_preactivation_f32)


residual_exact_trace = cuda.jit(device=True)(exact.residual_exact_trace.py_func)
record_and_renormalize_stream = device_function(exact.record_and_renormalize_stream)
residual_relu_exact_trace = device_function(exact.residual_relu_exact_trace,
                                            record_and_renormalize_stream=record_and_renormalize_stream)
conv_channel = cuda.jit(device=True)(scalar.conv_channel.py_func)
fill_standard = cuda.jit(device=True)(laws.fill_standard.py_func)


@cuda.jit
def res_exact_kernel(m0, m0_shift, n, module_widths, etas, c, c_out, bias_vars, k0, k1, net0, out_lengths, out_log):
    """One thread per net; arguments as :func:`fmsim.kernels.cpu.res_exact`."""
    i = cuda.grid(1)
    if i >= out_lengths.shape[0]:
        return
    residual_exact_trace(m0, m0_shift, n, module_widths, etas, c, c_out, bias_vars, np.uint64(net0 + i), k0, k1,
                         out_lengths[i], out_log[i])


@cuda.jit
def res_relu_exact_kernel(x, x_shift, module_widths, etas, c, c_out, bias_vars, k0, k1, net0, scratch, out_lengths,
                          out_log):
    """One thread per net; ``scratch`` (nets, n) holds each net's stream.

    Other arguments as :func:`fmsim.kernels.cpu.res_relu_exact`.
    """
    i = cuda.grid(1)
    if i >= out_lengths.shape[0]:
        return
    residual_relu_exact_trace(x, x_shift, module_widths, etas, c, c_out, bias_vars, np.uint64(net0 + i), k0, k1,
                              scratch[i], out_lengths[i], out_log[i])


fc_orthogonal_exact_trace = cuda.jit(device=True)(exact.fc_orthogonal_exact_trace.py_func)
orthogonal_module_gain = device_function(exact.orthogonal_module_gain)
residual_orthogonal_exact_trace = device_function(exact.residual_orthogonal_exact_trace,
                                                  orthogonal_module_gain=orthogonal_module_gain)
residual_orthogonal_relu_exact_trace = device_function(exact.residual_orthogonal_relu_exact_trace,
                                                       orthogonal_module_gain=orthogonal_module_gain,
                                                       record_and_renormalize_stream=record_and_renormalize_stream)


@cuda.jit
def fc_orthogonal_exact_kernel(m0, m0_shift, widths, cs, k0, k1, net0, out_lengths, out_log):
    """One thread per net; arguments as :func:`fmsim.kernels.cpu_orthogonal.fc_orthogonal_exact`."""
    i = cuda.grid(1)
    if i >= out_lengths.shape[0]:
        return
    fc_orthogonal_exact_trace(m0, m0_shift, widths, cs, np.uint64(net0 + i), k0, k1, out_lengths[i], out_log[i])


@cuda.jit
def res_orthogonal_exact_kernel(m0, m0_shift, n, module_widths, etas, c, c_out, k0, k1, net0, out_lengths, out_log):
    """One thread per net; arguments as :func:`fmsim.kernels.cpu_orthogonal.res_orthogonal_exact`."""
    i = cuda.grid(1)
    if i >= out_lengths.shape[0]:
        return
    residual_orthogonal_exact_trace(m0, m0_shift, n, module_widths, etas, c, c_out, np.uint64(net0 + i), k0, k1,
                                    out_lengths[i], out_log[i])


@cuda.jit
def res_orthogonal_relu_exact_kernel(x, x_shift, module_widths, etas, c, c_out, k0, k1, net0, scratch, out_lengths,
                                     out_log):
    """One thread per net; ``scratch`` (nets, 2, n) holds each net's stream and its output direction.
    Other arguments as :func:`fmsim.kernels.cpu_orthogonal.res_orthogonal_relu_exact`."""
    i = cuda.grid(1)
    if i >= out_lengths.shape[0]:
        return
    residual_orthogonal_relu_exact_trace(x, x_shift, module_widths, etas, c, c_out, np.uint64(net0 + i), k0, k1,
                                         scratch[i, 0], scratch[i, 1], out_lengths[i], out_log[i])


def _make_res_full_kernel(ftype, preact):
    """The ``full`` residual kernel in ``ftype`` (as :func:`fmsim.kernels.cpu.res_full`)."""

    @cuda.jit
    def res_full_kernel(x, x_shift, module_widths, etas, hidden_scale, out_scale, relu_end, bias_sds, law, k0, k1, net0,
                        scratch, signs_scratch, out_lengths, out_log):
        """One thread block per net, threads over rows; arguments as :func:`fmsim.kernels.cpu.res_full`.

        ``scratch`` : device array, shape (nets, 4, max(n, k_max)): the stream, two hidden
        buffers and the nonzero inputs of a layer; ``signs_scratch``: shape (nets, 4 max(n, k_max) + 16),
        each net's Rademacher table.
        """
        i = cuda.blockIdx.x
        if i >= out_lengths.shape[0]:
            return
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        net = np.uint64(net0 + i)
        n = x.shape[0]
        m = module_widths.shape[0]
        y = scratch[i, 0]
        h = scratch[i, 1]
        hnew = scratch[i, 2]
        active = scratch[i, 3]
        signs = signs_scratch[i]
        n_active = cuda.shared.array(1, dtype=np.int64)
        e_shared = cuda.shared.array(1, dtype=np.int64)
        for k in range(t, n, nt):
            y[k] = x[k]
        if t == 0:
            out_lengths[i, 0], out_log[i, 0] = length_and_log(mean_square(x, n), 2 * x_shift)
        shift = x_shift
        cuda.syncthreads()
        for mod in range(etas.shape[0]):
            for k in range(t, n, nt):
                h[k] = y[k]
            cuda.syncthreads()
            n_in = n
            for j in range(m):
                layer = residual_layer(mod, m, j)
                gather_inputs(law, h, n_in, active, signs, n_active, t, nt)
                for r in range(t, module_widths[j], nt):
                    pre = preact(law, active, signs, n_active[0], np.uint64(r), layer, net, hidden_scale[j],
                                 scale_bias(bias_sds[j], shift), k0, k1)
                    hnew[r] = pre if pre > 0.0 else ftype(0.0)
                cuda.syncthreads()
                h, hnew = hnew, h
                n_in = module_widths[j]
            layer = residual_layer(mod, m, m)
            gather_inputs(law, h, n_in, active, signs, n_active, t, nt)
            for r in range(t, n, nt):
                f = preact(law, active, signs, n_active[0], np.uint64(r), layer, net, out_scale,
                           scale_bias(bias_sds[m], shift), k0, k1)
                if relu_end and f < 0.0:
                    f = ftype(0.0)
                hnew[r] = f
            cuda.syncthreads()
            for r in range(t, n, nt):
                y[r] += ftype(etas[mod]) * hnew[r]
            cuda.syncthreads()
            shift = record_and_renormalize(y, n, shift, mod + 1, t, nt, e_shared, out_lengths[i], out_log[i])
            cuda.syncthreads()

    return res_full_kernel


res_full_kernel = _make_res_full_kernel(np.float64, unit_preactivation)
res_full_kernel_f32 = _make_res_full_kernel(np.float32, unit_preactivation_f32)


def _make_conv_full_kernel(ftype, bits32):
    """The ``full`` conv kernel in ``ftype`` (as :func:`fmsim.kernels.cpu.conv_full`)."""

    @cuda.jit
    def conv_full_kernel(x, x_shift, channels, height, width, kh, kw, scales, bias_sds, law, k0, k1, net0, scratch,
                         wscratch, out_lengths, out_log):
        """One thread block per net, threads over output channels; arguments as :func:`fmsim.kernels.cpu.conv_full`.

        ``scratch`` : shape (nets, 2, C_max H W), the activations; ``wscratch`` :
        shape (nets, C_max, C_max kh kw), each channel's kernel row.
        """
        i = cuda.blockIdx.x
        if i >= out_lengths.shape[0]:
            return
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        net = np.uint64(net0 + i)
        d = channels.shape[0] - 1
        P = height * width
        taps = kh * kw
        z = scratch[i, 0]
        znew = scratch[i, 1]
        e_shared = cuda.shared.array(1, dtype=np.int64)
        for k in range(t, x.shape[0], nt):
            z[k] = x[k]
        if t == 0:
            out_lengths[i, 0], out_log[i, 0] = length_and_log(mean_square(x, x.shape[0]), 2 * x_shift)
        shift = x_shift
        cuda.syncthreads()
        for j in range(1, d + 1):
            layer = np.uint64(j)
            c_in = channels[j - 1]
            bias_j = scale_bias(bias_sds[j - 1], shift)
            for r in range(t, channels[j], nt):
                w = wscratch[i, r]
                fill_standard(law, bits32, k0, k1, np.uint64(r), layer, net, w[: c_in * taps])
                b = ftype(bias_j * bias_draw(law, np.uint64(r), layer, net, k0, k1) if bias_j > 0.0 else 0.0)
                conv_channel(w, z, c_in, height, width, kh, kw, ftype(scales[j - 1]), b, r, znew)
            cuda.syncthreads()
            shift = record_and_renormalize(znew, channels[j] * P, shift, j, t, nt, e_shared, out_lengths[i], out_log[i])
            z, znew = znew, z
            cuda.syncthreads()

    return conv_full_kernel


conv_full_kernel = _make_conv_full_kernel(np.float64, False)
conv_full_kernel_f32 = _make_conv_full_kernel(np.float32, True)


# ----------------------------------------------------------------- carried vectors (the Gram chain)
psd_cholesky = device_function(gram.psd_cholesky)
bartlett = device_function(gram.bartlett)
add_gram = device_function(gram.add_gram)
tangent_layer = device_function(gram.tangent_layer, psd_cholesky=psd_cholesky, bartlett=bartlett)
forward_solve = device_function(gram.forward_solve)
orthogonal_tangent_layer = device_function(gram.orthogonal_tangent_layer, psd_cholesky=psd_cholesky, bartlett=bartlett,
                                           forward_solve=forward_solve, add_gram=add_gram)
tangent_exact_trace = device_function(gram.tangent_exact_trace, tangent_layer=tangent_layer,
                                      orthogonal_tangent_layer=orthogonal_tangent_layer, length_and_log=length_and_log)
record_gram_layer = device_function(gram.record_gram_layer, length_and_log=length_and_log)
lower_product = device_function(gram.lower_product)
carried_activations = device_function(gram.carried_activations, lower_product=lower_product)
add_unit = device_function(gram.add_unit, carried_activations=carried_activations)
average_units = device_function(gram.average_units)
unit_normals = device_function(gram.unit_normals)
carried_hidden_layer = device_function(gram.carried_hidden_layer, psd_cholesky=psd_cholesky,
                                       unit_normals=unit_normals, add_unit=add_unit, average_units=average_units)
inputs_exact_trace = device_function(gram.inputs_exact_trace, psd_cholesky=psd_cholesky, bartlett=bartlett,
                                     add_gram=add_gram, unit_normals=unit_normals, forward_solve=forward_solve,
                                     add_unit=add_unit, average_units=average_units,
                                     carried_hidden_layer=carried_hidden_layer, record_gram_layer=record_gram_layer)
stream_gram = device_function(gram.stream_gram)
residual_carried_trace = device_function(gram.residual_carried_trace, carried_hidden_layer=carried_hidden_layer,
                                         psd_cholesky=psd_cholesky, residual_layer=residual_layer,
                                         unit_normals=unit_normals, carried_activations=carried_activations,
                                         lower_product=lower_product, stream_gram=stream_gram,
                                         record_gram_layer=record_gram_layer)
gather_union = device_function(carry.gather_union)
record_carried = device_function(carry.record_gram, mean_square=mean_square, length_and_log=length_and_log)


@cuda.jit
def tangent_exact_kernel(orthogonal, m0, m0_shift, beta0, p0, widths, cs, k0, k1, net0, vectors, matrices, out_lengths,
                         out_log, out_jvp_log):
    """One thread per net (:func:`fmsim.kernels.gram.tangent_exact`); ``vectors`` (nets, 5, m) and ``matrices``
    (nets, 6, m, m): each net's scratch."""
    i = cuda.grid(1)
    if i >= out_lengths.shape[0]:
        return
    tangent_exact_trace(orthogonal, m0, m0_shift, beta0, p0, widths, cs, np.uint64(net0 + i), k0, k1, vectors[i, 4],
                        matrices[i, 4], matrices[i, 5], vectors[i, :4], matrices[i, :4], out_lengths[i], out_log[i],
                        out_jvp_log[i])


@cuda.jit
def inputs_exact_kernel(orthogonal, g0, shift0, widths, cs, k0, k1, net0, vectors, matrices, out_log, out_gram):
    """One thread per net (:func:`fmsim.kernels.gram.inputs_exact`); ``vectors`` (nets, 3, k) and ``matrices``
    (nets, 6, k, k): each net's scratch."""
    i = cuda.grid(1)
    if i >= out_log.shape[0]:
        return
    inputs_exact_trace(orthogonal, g0, shift0, widths, cs, np.uint64(net0 + i), k0, k1, matrices[i, 0],
                       matrices[i, 1], matrices[i, 2], matrices[i, 3], matrices[i, 4], matrices[i, 5], vectors[i, 0],
                       vectors[i, 1], vectors[i, 2], out_log[i], out_gram[i])


@cuda.jit
def residual_carried_kernel(tangent, relu_end, xs, x_shift, module_widths, etas, c, c_out, k0, k1, net0, streams,
                            vectors, matrices, out_log, out_gram):
    """One thread per net (:func:`fmsim.kernels.gram.residual_carried`); ``streams`` (nets, k, n), ``vectors``
    (nets, 2, k) and ``matrices`` (nets, 3, k, k): each net's scratch."""
    i = cuda.grid(1)
    if i >= out_log.shape[0]:
        return
    residual_carried_trace(tangent, relu_end, xs, x_shift, module_widths, etas, c, c_out, np.uint64(net0 + i), k0, k1,
                           streams[i], matrices[i, 0], matrices[i, 1], matrices[i, 2], vectors[i, 0], vectors[i, 1],
                           out_log[i], out_gram[i])


def _make_carry_kernel(ftype, preact):
    """The ``full`` kernel that carries several vectors, in ``ftype`` (as :func:`fmsim.kernels.carry.fc_full_carry`).
    Each vector's row sum is drawn and summed by ``preact`` (the one-vector kernel's), so on the GPU the weights
    are drawn once per vector: the same bits, not the CPU kernel's one draw for all."""

    @cuda.jit
    def fc_full_carry_kernel(xs, x_shift, widths, scales, bias_sds, law, k0, k1, net0, tangents, scratch,
                             signs_scratch, out_log, out_gram, out_first):
        """One thread block per net, threads over the rows of each layer. ``scratch`` : (nets, 3, k, max width),
        ``ftype``: the two activation buffers and the union's inputs of each vector; ``signs_scratch`` :
        (nets, k, 4 max width + 16), each vector's Rademacher table."""
        i = cuda.blockIdx.x
        if i >= out_log.shape[0]:
            return
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        net = np.uint64(net0 + i)
        k = xs.shape[0]
        d = widths.shape[0] - 1
        z = scratch[i, 0]
        znew = scratch[i, 1]
        active = scratch[i, 2]
        signs = signs_scratch[i]
        n_active = cuda.shared.array(1, dtype=np.int64)
        e_shared = cuda.shared.array(1, dtype=np.int64)
        for v in range(k):
            for c in range(t, widths[0], nt):
                z[v, c] = xs[v, c]
        if t == 0:
            record_carried(xs, k, widths[0], x_shift, 0, out_log[i], out_gram[i])
        shift = x_shift
        cuda.syncthreads()
        for j in range(1, d + 1):
            layer = np.uint64(j)
            bias_j = scale_bias(bias_sds[j - 1], shift)
            if t == 0:
                n_active[0] = gather_union(z, k, widths[j - 1], active)
            cuda.syncthreads()
            n_in = n_active[0]
            if law == RADEMACHER:
                for v in range(k):
                    for c in range(t, (n_in + 3) // 4, nt):
                        rademacher_chunk(active[v], n_in, c, signs[v])
                cuda.syncthreads()
            for r in range(t, widths[j], nt):
                row = np.uint64(r)
                p0 = preact(law, active[0], signs[0], n_in, row, layer, net, scales[j - 1], bias_j, k0, k1)
                znew[0, r] = p0 if p0 > 0.0 else ftype(0.0)
                for v in range(1, k):
                    pv = preact(law, active[v], signs[v], n_in, row, layer, net, scales[j - 1],
                                0.0 if tangents else bias_j, k0, k1)
                    keep = p0 > 0.0 if tangents else pv > 0.0
                    znew[v, r] = pv if keep else ftype(0.0)
            cuda.syncthreads()
            if t == 0:
                e_shared[0] = renorm_shift(record_carried(znew, k, widths[j], shift, j, out_log[i], out_gram[i]))
            cuda.syncthreads()
            e = int(e_shared[0])
            if e != 0:
                f = math.ldexp(1.0, -e)
                for v in range(k):
                    for c in range(t, widths[j], nt):
                        znew[v, c] *= f
                shift += e
            z, znew = znew, z
            cuda.syncthreads()
        if t == 0:
            for v in range(k):
                out_first[i, v] = length_and_log(np.float64(z[v, 0]) * np.float64(z[v, 0]), 2 * shift)[0]

    return fc_full_carry_kernel


fc_full_carry_kernel = _make_carry_kernel(np.float64, unit_preactivation)
fc_full_carry_kernel_f32 = _make_carry_kernel(np.float32, unit_preactivation_f32)


# ----------------------------------------------------------------- epilogue
net_statistics = device_function(epilogue.net_statistics, net_fm2=device_function(epilogue.net_fm2))


@cuda.jit
def statistics_kernel(lengths, logs, out):
    """The per-net statistics of every net (:func:`fmsim.kernels.epilogue.net_statistics`), one thread per net:
    ``lengths``, ``logs`` of shape (m, d + 1) into ``out`` of shape (s, m)."""
    i = cuda.grid(1)
    if i < lengths.shape[0]:
        net_statistics(lengths[i], logs[i], out, i)


# ----------------------------------------------------------------- reduction
welford_range = cuda.jit(device=True)(moments.welford_range.py_func)


@cuda.jit
def block_moments_kernel(logs, stats, stats_from_logs, block, out):
    """Per-block Welford moments on the device, as :func:`fmsim.running.summary.block_moments`.

    One thread per (block, column); columns ``0..d`` are ``log M_0..log M_d``, then one per row of ``stats``
    (shape (s, m)). ``out`` : shape (n_blocks, d + 1 + s, 7).
    """
    t = cuda.grid(1)
    n, n_layers = logs.shape
    n_cols = n_layers + stats.shape[0]
    if t >= out.shape[0] * n_cols:
        return
    b = t // n_cols
    col = t % n_cols
    r0 = b * block
    r1 = min(n, r0 + block)
    if col < n_layers:
        welford_range(logs[:, col], r0, r1, True, out[b, col])
    else:
        welford_range(stats[col - n_layers], r0, r1, stats_from_logs[col - n_layers], out[b, col])


@cuda.jit
def last_column_kernel(lengths, out):
    """``out[i] = lengths[i, -1]`` (a contiguous copy of ``M_d`` to send back)."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = lengths[i, lengths.shape[1] - 1]
