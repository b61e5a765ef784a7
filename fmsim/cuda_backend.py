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


def run_chunk(method: str, args: tuple, out_lengths: np.ndarray, out_fm2: np.ndarray) -> None:
    """Run one chunk on the GPU.

    Parameters
    ----------
    method : {"full", "exact"}
    args : tuple
        The CPU kernel's inputs (:func:`fmsim.kernels.cpu.fc_full` or ``fc_exact``),
        as built by :func:`fmsim.simulate.run_chunk`; arrays are copied to the device.
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
    if method == "exact":
        blocks = -(-m // _THREADS_EXACT)
        kernels.fc_exact_kernel[blocks, _THREADS_EXACT](*d_args, d_lengths, d_fm2)
    else:
        widths = args[1]
        scratch = cuda.device_array((m, 2, int(widths.max())), dtype=np.float64)
        kernels.fc_full_kernel[m, _threads_for(widths)](*d_args, scratch, d_lengths, d_fm2)
    d_lengths.copy_to_host(out_lengths)
    d_fm2.copy_to_host(out_fm2)
