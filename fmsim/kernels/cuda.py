"""CUDA kernels (numba-cuda). Imported only by :mod:`fmsim.cuda_backend`.

They call the same scalar functions as the CPU kernels (Philox streams, laws,
row dot products, exact-layer sampler), so a net's ``M_j`` agree with the CPU
to float rounding (the GPU may fuse multiply-adds).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import scalar

# The shared njit helpers, compiled again as CUDA device functions from their Python source.
# (Also what lets the CUDA simulator pass its device arrays to them.)
row_dot = cuda.jit(device=True)(scalar.row_dot.py_func)
bias_draw = cuda.jit(device=True)(scalar.bias_draw.py_func)
mean_square = cuda.jit(device=True)(scalar.mean_square.py_func)
across_layer_variance = cuda.jit(device=True)(scalar.across_layer_variance.py_func)
exact_layer_ratio = cuda.jit(device=True)(scalar.exact_layer_ratio.py_func)


@cuda.jit
def fc_exact_kernel(m0, widths, cs, k0, k1, net0, out_lengths, out_fm2):
    """One thread per net; arguments as :func:`fmsim.kernels.cpu.fc_exact`."""
    i = cuda.grid(1)
    if i >= out_lengths.shape[0]:
        return
    net = np.uint64(net0 + i)
    d = widths.shape[0] - 1
    m = m0
    out_lengths[i, 0] = m
    for j in range(1, d + 1):
        if m > 0.0:
            m *= exact_layer_ratio(widths[j], cs[j - 1], np.uint64(j), net, k0, k1)
        out_lengths[i, j] = m
    out_fm2[i] = across_layer_variance(out_lengths[i])


@cuda.jit
def fc_full_kernel(x, widths, scales, bias_sd, law, k0, k1, net0, scratch, out_lengths, out_fm2):
    """One thread block per net, threads over the rows of each layer.

    ``scratch`` : device array, shape (n, 2, max width), float64: the two
    activation buffers of each net. Other arguments as :func:`fmsim.kernels.cpu.fc_full`.
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
    for k in range(t, widths[0], n_threads):
        z[k] = x[k]
    if t == 0:
        out_lengths[i, 0] = mean_square(x, widths[0])
    cuda.syncthreads()
    for j in range(1, d + 1):
        layer = np.uint64(j)
        for r in range(t, widths[j], n_threads):
            row = np.uint64(r)
            pre = scales[j - 1] * row_dot(law, z, widths[j - 1], row, layer, net, k0, k1)
            if bias_sd > 0.0:
                pre += bias_sd * bias_draw(law, row, layer, net, k0, k1)
            znew[r] = pre if pre > 0.0 else 0.0
        cuda.syncthreads()
        if t == 0:
            out_lengths[i, j] = mean_square(znew, widths[j])
        z, znew = znew, z
        cuda.syncthreads()
    if t == 0:
        out_fm2[i] = across_layer_variance(out_lengths[i])
