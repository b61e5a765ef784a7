"""CUDA backend: the same nets on an NVIDIA GPU through numba-cuda (optional extra ``fmsim[cuda]``).

Importing fmsim never needs a GPU; this module touches ``numba.cuda`` only
when a chunk is run. Each chunk is computed on the device and only its
``(chunk, d + 1)`` lengths come back, so host memory does not grow with
``n_nets``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["is_available", "run_chunk"]

_THREADS_EXACT = 128


def is_available() -> bool:
    """True if numba can see a CUDA device (or the CUDA simulator is on)."""
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # no driver, no numba-cuda: no GPU
        return False


def _threads_for(widths: np.ndarray) -> int:
    widest = int(widths[1:].max())
    return int(min(256, max(32, -(-widest // 32) * 32)))


def run_chunk(kernel: str, args: tuple, out_lengths: np.ndarray, out_fm2: np.ndarray) -> None:
    """Run one chunk on the GPU.

    Parameters
    ----------
    kernel : {"fc_exact", "fc_full", "fc_full_f32", "res_exact", "res_full", "conv_full"}
        Name of the CPU kernel in :mod:`fmsim.kernels.cpu` whose CUDA twin runs.
    args : tuple
        That kernel's inputs, as built by :func:`fmsim.simulate.kernel_args`;
        arrays are copied to the device.
    out_lengths : ndarray, shape (m, d + 1), float64
    out_fm2 : ndarray, shape (m,), float64
        Filled on return.
    """
    if not is_available():
        raise RuntimeError("backend='cuda' needs a CUDA GPU and numba-cuda (pip install 'fmsim[cuda]')")
    from numba import cuda

    from .kernels import cuda as kernels

    m = out_lengths.shape[0]
    d_lengths = cuda.device_array(out_lengths.shape, dtype=np.float64)
    d_fm2 = cuda.device_array(m, dtype=np.float64)
    d_args = tuple(cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args)
    one_thread_per_net = -(-m // _THREADS_EXACT), _THREADS_EXACT
    if kernel == "fc_exact":
        kernels.fc_exact_kernel[one_thread_per_net](*d_args, d_lengths, d_fm2)
    elif kernel == "res_exact":
        kernels.res_exact_kernel[one_thread_per_net](*d_args, d_lengths, d_fm2)
    elif kernel in ("fc_full", "fc_full_f32"):
        widths = args[1]
        f32 = kernel == "fc_full_f32"
        scratch = cuda.device_array((m, 2, int(widths.max())), dtype=np.float32 if f32 else np.float64)
        fn = kernels.fc_full_kernel_f32 if f32 else kernels.fc_full_kernel
        fn[m, _threads_for(widths)](*d_args, scratch, d_lengths, d_fm2)
    elif kernel == "res_full":
        x, mw = args[0], args[1]
        widest = max([x.size] + [int(k) for k in mw])
        scratch = cuda.device_array((m, 3, widest), dtype=np.float64)
        kernels.res_full_kernel[m, _threads_for(np.array([0, widest]))](*d_args, scratch, d_lengths, d_fm2)
    elif kernel == "conv_full":
        channels, height, width, kh, kw = args[1:6]
        cmax = int(channels.max())
        scratch = cuda.device_array((m, 2, cmax * height * width), dtype=np.float64)
        wscratch = cuda.device_array((m, cmax, cmax * kh * kw), dtype=np.float64)
        threads = int(min(256, max(32, -(-int(channels[1:].max()) // 32) * 32)))
        kernels.conv_full_kernel[m, threads](*d_args, scratch, wscratch, d_lengths, d_fm2)
    else:
        raise ValueError(f"unknown kernel {kernel!r}")
    d_lengths.copy_to_host(out_lengths)
    d_fm2.copy_to_host(out_fm2)
