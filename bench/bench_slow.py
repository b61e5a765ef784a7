"""The ziggurat's slow draws one at a time against two at a time, in the rows of a row group, on one core.

A row group's first step lists the weights that need the slow path; ``fmsim.laws._ziggurat_row`` finishes
them two at a time (``_ziggurat_slow_pair``: the two first retries side by side, so that their Philox chains
overlap). This script times that against the same rows with each listed weight finished alone by
``_ziggurat_slow`` (as up to fmsim 0.13's development at 533d3d8), in one process, alternated, on the same words
(random 32-bit words: groups of 8 rows of 50 float64 weights, as a width-100 row after a ReLU), and checks that
both give the same bits. It prints ns per row and per slow draw, best of ``--repeat`` passes.

Run:  python bench/bench_slow.py [--repeat 9] [--groups 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_fc import cpu_description
from numba import njit

from fmsim.sampling import laws

ROWS, WEIGHTS = 8, 50


@njit
def _alone(law, bits32, n_rows, row_weights, n, c1, c2, c3, k0, k1, words, slow, out):
    """The listed weights finished one at a time (the loop before the pairs)."""
    kn9, wn9, table = laws._ziggurat_tables(law, bits32)
    scale = laws._unit_scale(law)
    n_slow = laws._ziggurat_fast_row(words, n_rows * row_weights, bits32, kn9, wn9, table, scale, out, slow)
    for j in range(n_slow):
        kg = slow[j]
        r = kg // row_weights if n_rows > 1 else 0
        k = kg - r * row_weights
        if k < n:
            x, _, i = laws._signed_candidate(words, kg, bits32, wn9)
            out[kg] = laws._ziggurat_slow(law, x, i & 255, np.uint64(k // 2), k % 2, c1 + np.uint64(r), c2, c3, k0,
                                          k1) * scale
    return n_slow


@njit
def _paired(law, bits32, n_rows, row_weights, n, c1, c2, c3, k0, k1, words, slow, out):
    laws._ziggurat_row(law, bits32, n_rows, row_weights, n, c1, c2, c3, k0, k1, words, slow, out)
    return 0


@njit
def _groups(rows, law, words, slow, out, kept):
    """Every group's rows; ``kept`` gets each group's weights. Returns the slow draws listed (``_alone`` only)."""
    u = np.uint64
    listed = 0
    for g in range(words.shape[0]):
        listed += rows(law, False, ROWS, WEIGHTS, WEIGHTS, u(ROWS * g), u(1), u(2), u(3), u(4), words[g], slow, out)
        kept[g, :] = out[:ROWS * WEIGHTS]
    return listed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--groups", type=int, default=20000)
    a = p.parse_args()
    print(f"CPU: {cpu_description()}; one core; groups of {ROWS} rows of {WEIGHTS} "
          f"float64 weights; best of {a.repeat}")
    words = np.random.default_rng(1).integers(0, 2**32, (a.groups, 2 * ROWS * WEIGHTS + 64),
                                              dtype=np.uint64).astype(np.uint32)
    slow = np.zeros(ROWS * WEIGHTS + 8, np.intp)
    out = np.zeros(ROWS * WEIGHTS + 8)
    alone, paired = np.zeros((a.groups, ROWS * WEIGHTS)), np.zeros((a.groups, ROWS * WEIGHTS))
    print(f"{'law':18}{'ns/row alone':>14}{'paired':>9}{'saved':>8}{'slow/row':>10}{'ns saved/slow draw':>20}")
    for name in ("gaussian", "laplace", "truncated_normal"):
        law = laws.LAW_CODES[name]
        listed = _groups(_alone, law, words, slow, out, alone)
        _groups(_paired, law, words, slow, out, paired)
        assert np.array_equal(alone.view(np.uint64), paired.view(np.uint64)), "the two loops differ in bits"
        best = {_alone: np.inf, _paired: np.inf}
        for _ in range(a.repeat):
            for rows in best:
                t = time.perf_counter()
                _groups(rows, law, words, slow, out, paired)
                best[rows] = min(best[rows], (time.perf_counter() - t) / (a.groups * ROWS) * 1e9)
        per_row = listed / (a.groups * ROWS)
        saved = best[_alone] - best[_paired]
        print(f"{name:18}{best[_alone]:14.1f}{best[_paired]:9.1f}{saved:8.1f}{per_row:10.2f}{saved / per_row:20.1f}")


if __name__ == "__main__":
    main()
