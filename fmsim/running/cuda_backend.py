"""CUDA backend: the same nets on an NVIDIA GPU through numba-cuda (optional extra ``fmsim[cuda]``).

Importing fmsim never needs a GPU; this module touches ``numba.cuda`` only
when a chunk is run. Each chunk is computed and reduced on the device: only
each net's ``M_d`` and fm2 and the per-block summary moments come back (the
full ``(chunk, d + 1)`` traces only with ``record="layers"``), so host memory
and bus traffic do not grow with depth or ``n_nets``.
"""

from __future__ import annotations

import numpy as np

from . import statistics
from .launch import KernelCall

__all__ = ["is_available", "run_chunk", "run_chunk_reduced", "run_kernel"]

#: Threads per block of the kernels that give each net one thread (the exact samplers).
THREADS_PER_BLOCK_EXACT = 128


def is_available() -> bool:
    """True if numba can see a CUDA device (or the CUDA simulator is on)."""
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # no driver, no numba-cuda: no GPU
        return False


def _launch(call: KernelCall, m: int, n_layers: int):
    """Run ``call`` for ``m`` nets as it declares (:class:`~fmsim.running.launch.KernelCall`: kernel, threads,
    scratch), then the statistics epilogue; return the device arrays ``(lengths, log_lengths (m, n_layers),
    stats (s, m))``."""
    from numba import cuda

    from ..kernels import cuda as kernels

    d_lengths = cuda.device_array((m, n_layers), dtype=np.float64)
    d_logs = cuda.device_array((m, n_layers), dtype=np.float64)
    inputs = tuple(cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in call.arguments())
    scratch = tuple(cuda.device_array(shape, dtype=dtype) for shape, dtype in call.cuda_scratch(m))
    kernel = call.cuda_kernel(kernels)
    threads = call.cuda_threads()
    if threads is None:  # one thread per net
        grid = -(-m // THREADS_PER_BLOCK_EXACT), THREADS_PER_BLOCK_EXACT
    else:  # one block per net, its threads over the rows (or channels) of each layer
        grid = m, threads
    kernel[grid](*inputs, *scratch, d_lengths, d_logs)
    d_stats = cuda.device_array((len(statistics.STATISTICS), m), dtype=np.float64)
    kernels.statistics_kernel[-(-m // THREADS_PER_BLOCK_EXACT), THREADS_PER_BLOCK_EXACT](d_lengths, d_logs, d_stats)
    return d_lengths, d_logs, d_stats


def _require_gpu() -> None:
    if not is_available():
        raise RuntimeError("backend='cuda' needs a CUDA GPU and numba-cuda (pip install 'fmsim[cuda]')")


def run_chunk(call: KernelCall, out_lengths: np.ndarray, out_log: np.ndarray, out_stats: np.ndarray) -> None:
    """Run one chunk on the GPU and bring back every net's trace.

    Parameters
    ----------
    call : KernelCall
        The chunk's kernel inputs (:func:`fmsim.running.launch.plan`); arrays are copied to the device.
    out_lengths, out_log : ndarray, shape (m, d + 1), float64
    out_stats : ndarray, shape (s, m), float64
        Filled on return.
    """
    _require_gpu()
    d_lengths, d_logs, d_stats = _launch(call, out_lengths.shape[0], out_lengths.shape[1])
    d_lengths.copy_to_host(out_lengths)
    d_logs.copy_to_host(out_log)
    d_stats.copy_to_host(out_stats)


def run_chunk_reduced(call: KernelCall, m: int, n_layers: int, keep_lengths: bool
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Run one chunk and reduce it on the device.

    Only ``M_d``, ``log M_d`` and the statistics of each net and the per-block moments (shape
    ``(ceil(m / 1024), d + 1 + s, 7)``, the summary's input) cross the bus; the
    ``(m, d + 1)`` traces stay on the GPU unless ``keep_lengths``.

    Returns
    -------
    final, log_final : ndarray, shape (m,)
    stats : ndarray, shape (s, m)
    moments : ndarray, shape (n_blocks, d + 1 + s, 7)
    lengths, log_lengths : ndarray, shape (m, d + 1), or None
    """
    _require_gpu()
    from numba import cuda

    from ..config import SUMMARY_BLOCK
    from ..kernels import cuda as kernels

    d_lengths, d_logs, d_stats = _launch(call, m, n_layers)
    n_blocks = -(-m // SUMMARY_BLOCK)
    n_cols = n_layers + d_stats.shape[0]
    d_moments = cuda.device_array((n_blocks, n_cols, 7), dtype=np.float64)
    tasks = n_blocks * n_cols
    kernels.block_moments_kernel[-(-tasks // 128), 128](d_logs, d_stats, cuda.to_device(statistics.from_logs()),
                                                         SUMMARY_BLOCK, d_moments)
    d_final = cuda.device_array(m, dtype=np.float64)
    d_log_final = cuda.device_array(m, dtype=np.float64)
    kernels.last_column_kernel[-(-m // 256), 256](d_lengths, d_final)
    kernels.last_column_kernel[-(-m // 256), 256](d_logs, d_log_final)
    lengths = d_lengths.copy_to_host() if keep_lengths else None
    logs = d_logs.copy_to_host() if keep_lengths else None
    return (d_final.copy_to_host(), d_log_final.copy_to_host(), d_stats.copy_to_host(), d_moments.copy_to_host(),
            lengths, logs)


def run_kernel(name: str, inputs: tuple, scratch: tuple, outputs: tuple, m: int, threads: int | None = None
               ) -> tuple[np.ndarray, ...]:
    """Run the kernel ``name`` of :mod:`fmsim.kernels.cuda` for ``m`` nets and bring its outputs back.

    Parameters
    ----------
    name : str
    inputs : tuple
        The kernel's leading arguments (arrays are copied to the device).
    scratch, outputs : tuple of (shape, dtype)
        Device arrays passed after the inputs, in this order; the outputs come back.
    m : int
        Nets.
    threads : int, optional
        Threads of the one block per net; None: one thread per net.

    Returns
    -------
    tuple of ndarray
        The outputs, in order.
    """
    _require_gpu()
    from numba import cuda

    from ..kernels import cuda as kernels

    args = tuple(cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in inputs)
    scratch_d = tuple(cuda.device_array(shape, dtype=dtype) for shape, dtype in scratch)
    outputs_d = tuple(cuda.device_array(shape, dtype=dtype) for shape, dtype in outputs)
    grid = (-(-m // THREADS_PER_BLOCK_EXACT), THREADS_PER_BLOCK_EXACT) if threads is None else (m, threads)
    getattr(kernels, name)[grid](*args, *scratch_d, *outputs_d)
    return tuple(a.copy_to_host() for a in outputs_d)
