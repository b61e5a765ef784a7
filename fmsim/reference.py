"""Plain-NumPy reference: one net at a time, on the same Philox streams.

Written to be obviously right, not fast. The kernels are tested against it.
It materializes each weight matrix from :func:`fmsim.laws.draw_standard_array`
(the kernels' own per-row sampler) and multiplies with ``@``.
"""

from __future__ import annotations

import numpy as np

from .config import RunConfig
from .laws import BIAS_BLOCK, draw_standard_array, draw_standard_one
from .rng import seed_to_key
from .simulate import input_vector

__all__ = ["reference_lengths"]


def _bias(law: str, n: int, key: tuple[int, int], layer: int, net: int) -> np.ndarray:
    # The bias of unit r is the first draw of block BIAS_BLOCK of row r.
    return np.array([draw_standard_one(law, key, int(BIAS_BLOCK), 0, r, layer, net) for r in range(n)])


def reference_lengths(config: RunConfig, nets: np.ndarray | range) -> np.ndarray:
    """``M_0..M_d`` of the given nets (method ``"full"``), computed densely.

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
            w = np.stack([draw_standard_array(config.init.law, widths[j - 1], key, r, j, int(net))
                          for r in range(widths[j])])
            pre = np.sqrt(cs[j - 1] / widths[j - 1]) * (w @ z)
            if config.init.bias_var > 0:
                pre = pre + np.sqrt(config.init.bias_var) * _bias(config.init.law, widths[j], key, j, int(net))
            z = np.maximum(pre, 0.0)
            out[i, j] = z @ z / z.size
    return out
