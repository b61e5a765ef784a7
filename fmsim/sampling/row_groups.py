"""The Philox words of 8 rows of a layer at once, in vector lanes with no padding.

A row of ``n`` weights reads ``nb`` Philox blocks (:func:`fmsim.laws.blocks_read`: ``ceil(n / per)`` with
``per`` from :func:`fmsim.laws.weights_per_block`). Drawn alone (:func:`fmsim.laws.row_words`), a row's blocks run in
LLVM's vector lanes, 8 a step with AVX-512 (4 with AVX2), and a row whose ``nb`` is not a multiple of 8
is padded to one: a width-100 hidden row drew 32 blocks for the 25 it reads.

The rows of a layer all read the same number of blocks (one weight per nonzero input of the layer). So the
kernels draw the words of 8 consecutive rows together (:func:`group_words`): the ``8 nb`` blocks of the
group, laid out row after row, are drawn in vector lanes, 32 blocks a step
(:func:`~fmsim.sampling.rng.philox4x32_x32`) and the rest 8 a step
(:func:`~fmsim.sampling.rng.philox4x32_x8`), with the counter words of each block (block ``b``, row
``first_row + r``) read from the tables :func:`group_lanes` writes. Row ``first_row + r`` then finds its words at
``words[4 nb r : 4 nb (r + 1)]`` (:func:`group_row_words`), the words :func:`fmsim.laws.row_words` gives it:
only where they are computed changes, never a weight. A layer's last group may hold fewer rows than
:data:`ROW_GROUP` (a width-30 layer: 3 groups of 8, then one of 6); its blocks are drawn in the same loop,
rounded up to a multiple of 8. (Until fmsim 0.12 each of those rows drew its words alone, padded to whole
vector steps: a sixth of the kernel's time at width 30.) :func:`row_words_alone` draws one row's words alone,
for the conv kernel's rows, which come one at a time.

Scratch, from :func:`row_group_scratch`: ``words`` and ``lanes`` (both uint32), whose entry 0 holds the
``nb`` its tables are laid out for (:data:`NOT_LAID_OUT`: none), so a layer lays them out once, not once a group.

The tables are 32-bit, one vector load of 8 counter words each. (Until fmsim 0.13 the group was LLVM's
vector loop of :func:`~fmsim.sampling.rng.philox4x32` over ``8 nb`` iterations, the arrays passed as
arrays. With 64-bit tables LLVM had vectorized that loop in 256-bit steps where its tuning for the CPU
prefers them: 2.78 ns per block against 1.71 on the Intel Xeon we measured. The 8-lane block function on
the arrays' pointers runs 15% to 25% faster than that loop with 32-bit tables: docs, *Performance*.)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .laws import polynomial32, polynomial32_blocks, row_blocks, row_words
from .llvm_vectors import data_pointer
from .rng import X8_LANES, X32_LANES, philox4x32_x8, philox4x32_x32

__all__ = ["ROW_GROUP", "NOT_LAID_OUT", "row_group_scratch", "group_words", "group_row_words", "row_words_alone"]

#: Rows whose words :func:`group_words` draws together: a multiple of the blocks of one vector step
#: (:data:`~fmsim.sampling.rng.X8_LANES`).
ROW_GROUP = 8
#: ``lanes[0]`` of a scratch whose tables are laid out for no ``nb`` yet (``nb`` < 2^20 always).
NOT_LAID_OUT = np.uint32(0xFFFFFFFF)


@njit(inline="always", cache=True)
def row_group_scratch(n_max):
    """The scratch ``(words, lanes)`` of :func:`group_words` for rows of up to ``n_max`` weights.

    ``words`` (uint32) holds the words of :data:`ROW_GROUP` rows of up to ``ceil(n_max / 2)`` blocks, and 64
    more: a row's first step reads whole groups of 8 weights past its end, and a float32 polynomial row
    (:func:`~fmsim.laws.polynomial32_row_from_words`) whole groups of 32 (words it reads there belong to the
    next row or to nothing, and make weights past ``n`` that no one reads). ``lanes`` (uint32) holds the
    tables of :func:`group_lanes`, laid out for no ``nb`` yet.
    """
    max_blocks = (n_max + 1) // 2
    return (np.empty(ROW_GROUP * 4 * max_blocks + 64, dtype=np.uint32),
            np.full(1 + 2 * ROW_GROUP * max_blocks, NOT_LAID_OUT, dtype=np.uint32))


@njit(inline="always", cache=True)
def group_lanes(nb, lanes):
    """Lay out in ``lanes`` the counters of a group of rows of ``nb`` blocks, if not laid out already:
    iteration ``g = r nb + b`` of :func:`group_words` draws block ``lanes[1 + g] = b`` of row
    ``first_row + lanes[1 + ROW_GROUP nb + g] = first_row + r``. ``lanes[0]`` records ``nb``."""
    if lanes[0] == np.uint32(nb):
        return
    g = 0
    for r in range(ROW_GROUP):
        for b in range(nb):
            lanes[1 + g] = np.uint32(b)
            lanes[1 + ROW_GROUP * nb + g] = np.uint32(r)
            g += 1
    lanes[0] = np.uint32(nb)


@njit(inline="always", cache=True)
def group_words(nb, group_rows, first_row, c2, c3, k0, k1, words, lanes):
    """The words of rows ``first_row .. first_row + group_rows - 1`` of a layer, ``nb`` blocks each, into
    ``words``, row after row (row ``first_row + r``: :func:`group_row_words`); the same words as
    :func:`~fmsim.laws.row_words` for each row.

    A layer's last group may hold fewer rows than :data:`ROW_GROUP`: its ``group_rows nb`` blocks are drawn
    in the same vector loop, rounded up to a multiple of :data:`ROW_GROUP` blocks (the loop's vector steps
    divide it; the blocks past the group's rows are those of rows past the layer, which no one reads).

    Parameters
    ----------
    nb : int
        Blocks per row (:func:`~fmsim.laws.blocks_read`), ``0 <= nb <= ceil(n_max / 2)``.
    group_rows : int
        Rows of the group, ``1 <= group_rows <= ROW_GROUP``.
    first_row, c2, c3 : uint64
        The group's first row (counter word ``c1``), layer and net.
    k0, k1 : uint64
        Philox key.
    words : ndarray, uint32
        Written: ``words[: 4 m]``, ``m = group_rows nb`` rounded up to a multiple of ``ROW_GROUP``
        (``m <= ROW_GROUP nb``).
    lanes : ndarray, uint32
        Scratch from :func:`row_group_scratch`, laid out here for ``nb`` if it is not already.
    """
    # the arrays go to the called loop as pointers, which count no references (data_pointer): with owned
    # arrays, the counts on array arguments cost about 30 ns a group
    _group_words_at(nb, group_rows, first_row, c2, c3, k0, k1, data_pointer(words), data_pointer(lanes))


# Called, not inlined by numba (LLVM may inline it): inlined by numba into the FC kernel, LLVM kept the loop's
# constants in memory (21 stack operands in the loop) and the kernel ran no faster than with rows alone.
@njit(cache=True)
def _group_words_at(nb, group_rows, first_row, c2, c3, k0, k1, words, lanes):
    """:func:`group_words` on the scratch's pointers: 32 blocks a step (:func:`~fmsim.sampling.rng.philox4x32_x32`)
    while 32 are left, then 8 a step (:func:`~fmsim.sampling.rng.philox4x32_x8`), their counters from the tables
    of :func:`group_lanes`. Four chains of rounds in flight instead of one: on an AMD Zen 5 the words of a
    group of rows of 25 blocks took 0.84 instead of 1.1 ns a block (one core; docs, *Performance*)."""
    group_lanes(nb, lanes)
    n = ROW_GROUP * nb
    drawn = (group_rows * nb + ROW_GROUP - 1) // ROW_GROUP * ROW_GROUP
    wide = drawn - drawn % X32_LANES
    for g in range(0, wide, X32_LANES):
        philox4x32_x32(lanes, 1 + g, 1 + n + g, first_row, c2, c3, k0, k1, words, 4 * g)
    for g in range(wide, drawn, X8_LANES):
        philox4x32_x8(lanes, 1 + g, 1 + n + g, first_row, c2, c3, k0, k1, words, 4 * g)


@njit(inline="always", cache=True)
def group_row_words(words, nb, r):
    """The words of row ``r`` (``0 <= r < ROW_GROUP``) of the group :func:`group_words` drew, ``nb`` blocks a
    row: ``words[4 nb r:]`` (a view that runs on past the row, over the next rows' words)."""
    return words[4 * nb * r:]


@njit(cache=True)
def row_words_alone(law, bits32, n, c1, c2, c3, k0, k1, words):
    """The words of one row drawn alone into ``words`` (:func:`~fmsim.laws.row_words`, padded to whole vector
    steps as its row needs: :func:`~fmsim.laws.row_blocks`, or :func:`~fmsim.laws.polynomial32_blocks` for a
    float32 polynomial row), for a row that is not drawn in a group (the conv kernel's rows)."""
    n_blocks = polynomial32_blocks(n) if polynomial32(law, bits32) else row_blocks(law, bits32, n)
    row_words(n_blocks, c1, c2, c3, k0, k1, words)
