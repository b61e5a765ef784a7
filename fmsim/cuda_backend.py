"""CUDA backend: the same nets on an NVIDIA GPU through numba-cuda (optional extra ``fmsim[cuda]``).

Importing fmsim never needs a GPU; this module touches ``numba.cuda`` only
when a chunk is run. Each chunk is computed on the device and only its
``(chunk, d + 1)`` lengths come back, so host memory does not grow with
``n_nets``.
"""

from __future__ import annotations

import numpy as np

from .config import RunConfig
from .laws import LAW_CODES

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


def run_chunk(config: RunConfig, x: np.ndarray, widths: np.ndarray, cs: np.ndarray, k0: np.uint64,
              k1: np.uint64, start: int, out_lengths: np.ndarray, out_fm2: np.ndarray) -> None:
    """Fill ``out_lengths`` (m, d + 1) and ``out_fm2`` (m,) for nets ``start .. start + m - 1`` on the GPU."""
    if not is_available():
        raise RuntimeError("backend='cuda' needs a CUDA GPU and numba-cuda (pip install 'fmsim[cuda]')")
    from numba import cuda

    from .kernels import cuda as kernels

    m = out_lengths.shape[0]
    d_lengths = cuda.device_array(out_lengths.shape, dtype=np.float64)
    d_fm2 = cuda.device_array(m, dtype=np.float64)
    d_widths = cuda.to_device(widths)
    if config.method == "exact":
        blocks = -(-m // _THREADS_EXACT)
        kernels.fc_exact_kernel[blocks, _THREADS_EXACT](
            float(x @ x / x.size), d_widths, cuda.to_device(cs), k0, k1, start, d_lengths, d_fm2)
    else:
        scratch = cuda.device_array((m, 2, int(widths.max())), dtype=np.float64)
        scales = np.sqrt(cs / widths[:-1])
        kernels.fc_full_kernel[m, _threads_for(widths)](
            cuda.to_device(x), d_widths, cuda.to_device(scales), float(np.sqrt(config.init.bias_var)),
            LAW_CODES[config.init.law], k0, k1, start, scratch, d_lengths, d_fm2)
    d_lengths.copy_to_host(out_lengths)
    d_fm2.copy_to_host(out_fm2)
