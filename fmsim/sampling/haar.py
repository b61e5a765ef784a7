"""Haar-orthogonal weight matrices in NumPy, as PyTorch's ``nn.init.orthogonal_`` makes them.

The training code (:mod:`fmsim.mlp`) and the NumPy reference of the kernels
(:mod:`fmsim.reference`) use these; the kernels build the same matrices by
their own Householder QR (:mod:`fmsim.kernels.cpu_orthogonal`).
"""

from __future__ import annotations

import numpy as np

from .laws import draw_standard_array

__all__ = ["haar_from_gaussian", "orthogonal_weights"]


def haar_from_gaussian(g: np.ndarray) -> np.ndarray:
    """The Haar-orthogonal matrix that ``nn.init.orthogonal_`` makes from the Gaussian matrix ``g``.

    ``g`` (``out x in``) is transposed if ``out < in``, factored ``Q R`` by
    ``np.linalg.qr``, the columns of ``Q`` multiplied by the signs of
    ``diag(R)`` (which makes ``Q`` Haar distributed: Mezzadri 2007), and the
    result transposed back: orthonormal rows if ``out < in``, orthonormal
    columns otherwise.

    Parameters
    ----------
    g : ndarray, shape (out, in)

    Returns
    -------
    ndarray, shape (out, in), float64
    """
    g = np.asarray(g, dtype=float)
    if g.ndim != 2 or min(g.shape) < 1:
        raise ValueError(f"g must be a non-empty matrix, got shape {g.shape}")
    wide = g.shape[0] < g.shape[1]
    q, r = np.linalg.qr(g.T if wide else g)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    return q.T if wide else q


def orthogonal_weights(n_out: int, n_in: int, key: tuple[int, int], layer: int, net: int) -> np.ndarray:
    """Unit-gain orthogonal weights ``(n_out, n_in)`` of layer ``layer`` of net ``net``: row ``r`` of the Gaussian
    matrix is the Gaussian row stream ``(r, layer, net)`` (:func:`fmsim.laws.draw_standard_array`), the stream
    the ``full`` kernels draw from (``fmsim.laws``).

    Returns
    -------
    ndarray, shape (n_out, n_in), float64
    """
    g = np.stack([draw_standard_array("gaussian", n_in, key, r, layer, net) for r in range(n_out)])
    return haar_from_gaussian(g)
