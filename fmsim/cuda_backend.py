"""CUDA backend: the same nets on an NVIDIA GPU through numba-cuda (optional extra ``fmsim[cuda]``).

Importing fmsim never needs a GPU; this module touches ``numba.cuda`` only
when a chunk is run. Each chunk is computed and reduced on the device: only
each net's ``M_d`` and fm2 and the per-block summary moments come back (the
full ``(chunk, d + 1)`` traces only with ``record="layers"``), so host memory
and bus traffic do not grow with depth or ``n_nets``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["is_available", "run_chunk", "run_chunk_reduced"]

_THREADS_EXACT = 128


def is_available() -> bool:
    """True if numba can see a CUDA device (or the CUDA simulator is on)."""
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # no driver, no numba-cuda: no GPU
        return False


def _threads_for(widest: int) -> int:
    """Threads per block when threads share out ``widest`` rows (or channels): whole warps, 32 to 256."""
    return int(min(256, max(32, -(-int(widest) // 32) * 32)))


def _launch(kernel: str, args: tuple, m: int, n_layers: int):
    """Run ``kernel`` for ``m`` nets; return the device arrays ``(lengths, log_lengths (m, n_layers), fm2 (m,))``."""
    from numba import cuda

    from .kernels import cuda as kernels

    d_lengths = cuda.device_array((m, n_layers), dtype=np.float64)
    d_logs = cuda.device_array((m, n_layers), dtype=np.float64)
    d_fm2 = cuda.device_array(m, dtype=np.float64)
    d_args = tuple(cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args)
    one_thread_per_net = -(-m // _THREADS_EXACT), _THREADS_EXACT
    if kernel == "fc_exact":
        kernels.fc_exact_kernel[one_thread_per_net](*d_args, d_lengths, d_logs, d_fm2)
    elif kernel == "res_exact":
        kernels.res_exact_kernel[one_thread_per_net](*d_args, d_lengths, d_logs, d_fm2)
    elif kernel == "res_relu_exact":
        scratch = cuda.device_array((m, args[0].size), dtype=np.float64)
        kernels.res_relu_exact_kernel[one_thread_per_net](*d_args, scratch, d_lengths, d_logs, d_fm2)
    elif kernel == "fc_orthogonal_exact":
        kernels.fc_orthogonal_exact_kernel[one_thread_per_net](*d_args, d_lengths, d_logs, d_fm2)
    elif kernel == "res_orthogonal_exact":
        kernels.res_orthogonal_exact_kernel[one_thread_per_net](*d_args, d_lengths, d_logs, d_fm2)
    elif kernel == "res_orthogonal_relu_exact":
        scratch = cuda.device_array((m, 2, args[0].size), dtype=np.float64)
        kernels.res_orthogonal_relu_exact_kernel[one_thread_per_net](*d_args, scratch, d_lengths, d_logs, d_fm2)
    elif kernel in ("fc_full", "fc_full_f32"):
        widths = args[2]
        f32 = kernel == "fc_full_f32"
        dtype, widest = (np.float32 if f32 else np.float64), int(widths.max())
        scratch = cuda.device_array((m, 3, widest), dtype=dtype)
        signs = cuda.device_array((m, 4 * widest + 16), dtype=dtype)
        fn = kernels.fc_full_kernel_f32 if f32 else kernels.fc_full_kernel
        fn[m, _threads_for(widths[1:].max())](*d_args, scratch, signs, d_lengths, d_logs, d_fm2)
    elif kernel in ("res_full", "res_full_f32"):
        x, mw = args[0], args[2]
        f32 = kernel == "res_full_f32"
        dtype, widest = (np.float32 if f32 else np.float64), max([x.size] + [int(k) for k in mw])
        scratch = cuda.device_array((m, 4, widest), dtype=dtype)
        signs = cuda.device_array((m, 4 * widest + 16), dtype=dtype)
        fn = kernels.res_full_kernel_f32 if f32 else kernels.res_full_kernel
        fn[m, _threads_for(widest)](*d_args, scratch, signs, d_lengths, d_logs, d_fm2)
    elif kernel in ("conv_full", "conv_full_f32"):
        channels, height, width, kh, kw = args[2:7]
        f32 = kernel == "conv_full_f32"
        dtype, cmax = (np.float32 if f32 else np.float64), int(channels.max())
        scratch = cuda.device_array((m, 2, cmax * height * width), dtype=dtype)
        wscratch = cuda.device_array((m, cmax, cmax * kh * kw), dtype=dtype)
        fn = kernels.conv_full_kernel_f32 if f32 else kernels.conv_full_kernel
        fn[m, _threads_for(channels[1:].max())](*d_args, scratch, wscratch, d_lengths, d_logs, d_fm2)
    else:
        raise ValueError(f"unknown kernel {kernel!r}")
    return d_lengths, d_logs, d_fm2


def _require_gpu() -> None:
    if not is_available():
        raise RuntimeError("backend='cuda' needs a CUDA GPU and numba-cuda (pip install 'fmsim[cuda]')")


def run_chunk(kernel: str, args: tuple, out_lengths: np.ndarray, out_log: np.ndarray, out_fm2: np.ndarray) -> None:
    """Run one chunk on the GPU and bring back every net's trace.

    Parameters
    ----------
    kernel : {"fc_exact", "fc_full", "fc_full_f32", "res_exact", "res_relu_exact", "res_full", "res_full_f32", \
"conv_full", "conv_full_f32", "fc_orthogonal_exact", "res_orthogonal_exact", "res_orthogonal_relu_exact"}
        Name of the CPU kernel in :mod:`fmsim.kernels.cpu` or :mod:`fmsim.kernels.orthogonal` whose CUDA twin runs.
    args : tuple
        That kernel's inputs, as built by :func:`fmsim.simulate.kernel_args`;
        arrays are copied to the device.
    out_lengths, out_log : ndarray, shape (m, d + 1), float64
    out_fm2 : ndarray, shape (m,), float64
        Filled on return.
    """
    _require_gpu()
    d_lengths, d_logs, d_fm2 = _launch(kernel, args, out_lengths.shape[0], out_lengths.shape[1])
    d_lengths.copy_to_host(out_lengths)
    d_logs.copy_to_host(out_log)
    d_fm2.copy_to_host(out_fm2)


def run_chunk_reduced(kernel: str, args: tuple, m: int, n_layers: int, keep_lengths: bool
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Run one chunk and reduce it on the device.

    Only ``M_d``, ``log M_d`` and fm2 of each net and the per-block moments (shape
    ``(ceil(m / 1024), d + 2, 7)``, the summary's input) cross the bus; the
    ``(m, d + 1)`` traces stay on the GPU unless ``keep_lengths``.

    Returns
    -------
    final, log_final, fm2 : ndarray, shape (m,)
    moments : ndarray, shape (n_blocks, d + 2, 7)
    lengths, log_lengths : ndarray, shape (m, d + 1), or None
    """
    _require_gpu()
    from numba import cuda

    from .config import SUMMARY_BLOCK
    from .kernels import cuda as kernels

    d_lengths, d_logs, d_fm2 = _launch(kernel, args, m, n_layers)
    n_blocks = -(-m // SUMMARY_BLOCK)
    d_moments = cuda.device_array((n_blocks, n_layers + 1, 7), dtype=np.float64)
    tasks = n_blocks * (n_layers + 1)
    kernels.block_moments_kernel[-(-tasks // 128), 128](d_logs, d_fm2, SUMMARY_BLOCK, d_moments)
    d_final = cuda.device_array(m, dtype=np.float64)
    d_log_final = cuda.device_array(m, dtype=np.float64)
    kernels.last_column_kernel[-(-m // 256), 256](d_lengths, d_final)
    kernels.last_column_kernel[-(-m // 256), 256](d_logs, d_log_final)
    lengths = d_lengths.copy_to_host() if keep_lengths else None
    logs = d_logs.copy_to_host() if keep_lengths else None
    return (d_final.copy_to_host(), d_log_final.copy_to_host(), d_fm2.copy_to_host(), d_moments.copy_to_host(),
            lengths, logs)
