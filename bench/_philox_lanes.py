"""A row's Philox words alone, in fmsim's vector block functions, for ``bench_row.py`` and ``bench_fc.py``.

The FC kernels draw a group of 8 rows' words with ``fmsim.sampling.rng.philox4x32_x32`` (32 blocks a step)
and ``philox4x32_x8`` (the rest, 8 a step: ``fmsim.sampling.row_groups.group_words``); a row drawn alone
(``fmsim.laws.row_words``, as the conv kernels' rows are) still runs LLVM's vector loop of the scalar block
function. This module draws one row with the block functions instead, 32 blocks a step while 32 are left, then 8
(only 8 with an fmsim that has no 32-lane function), its counters from a table of block indices, so that
``bench_row.py`` can time the two on the same row; the words are bitwise the same (it checks that before timing).
"""

from __future__ import annotations

import numpy as np
from fmsim.rng import philox4x32
from numba import njit

from fmsim.sampling.llvm_vectors import data_pointer
from fmsim.sampling.rng import X8_LANES, philox4x32_x8

try:
    from fmsim.sampling.rng import X32_LANES, philox4x32_x32
except ImportError:  # an older fmsim: 8 lanes a step only
    X32_LANES, philox4x32_x32 = None, None

LANES = X8_LANES
_MAX_BLOCKS = 1 << 12
# blocks 0 .. _MAX_BLOCKS - 1, then as many row offsets 0: the counter table of one row
_TABLE = np.concatenate([np.arange(_MAX_BLOCKS, dtype=np.uint32), np.zeros(_MAX_BLOCKS, dtype=np.uint32)])


@njit(inline="always")
def _row_words_from(b0, n_blocks, c1, c2, c3, k0, k1, words):
    """Blocks ``b0 .. n_blocks - 1`` of the row: whole steps of 8 in the 8-lane function, the rest one at a time."""
    n_vec = n_blocks - (n_blocks - b0) % LANES
    table, out = data_pointer(_TABLE), data_pointer(words)
    for b in range(b0, n_vec, LANES):
        philox4x32_x8(table, b, _MAX_BLOCKS + b, c1, c2, c3, k0, k1, out, 4 * b)
    for b in range(n_vec, n_blocks):
        w0, w1, w2, w3 = philox4x32(np.uint64(b), c1, c2, c3, k0, k1)
        words[4 * b] = np.uint32(w0)
        words[4 * b + 1] = np.uint32(w1)
        words[4 * b + 2] = np.uint32(w2)
        words[4 * b + 3] = np.uint32(w3)


@njit(inline="always")
def row_words_x8(n_blocks, c1, c2, c3, k0, k1, words):
    """As :func:`fmsim.laws.row_words` (``n_blocks <= 4096``): 8 blocks a step, the rest one at a time (a group's
    words as they were drawn before the 32-lane function)."""
    _row_words_from(0, n_blocks, c1, c2, c3, k0, k1, words)


@njit(inline="always")
def _row_words_x32(n_blocks, c1, c2, c3, k0, k1, words):
    n_wide = n_blocks - n_blocks % X32_LANES
    table, out = data_pointer(_TABLE), data_pointer(words)
    for b in range(0, n_wide, X32_LANES):
        philox4x32_x32(table, b, _MAX_BLOCKS + b, c1, c2, c3, k0, k1, out, 4 * b)
    _row_words_from(n_wide, n_blocks, c1, c2, c3, k0, k1, words)


#: As :func:`fmsim.laws.row_words` (``n_blocks <= 4096``), as the kernels draw a group's words: 32 blocks a step
#: while 32 are left, then 8, then one at a time (:func:`row_words_x8` itself with an fmsim that has no 32-lane
#: function).
row_words_lanes = _row_words_x32 if philox4x32_x32 is not None else row_words_x8
