"""The words of 8 rows drawn at once (``fmsim.sampling.row_groups``) against each row drawn alone: the same
words and, through the kernels' row path (``fmsim.kernels.cpu.drawn_row``), the same weights, bit for bit."""

import numpy as np
import pytest
from numba import njit

from fmsim.kernels import cpu
from fmsim.sampling import laws, row_groups
from fmsim.sampling.row_groups import ROW_GROUP

K0, K1 = np.uint64(0xDEADBEEF), np.uint64(0x12345678)


@njit
def _group(nb, group_rows, first_row, c2, c3, k0, k1, words, lanes):
    row_groups.group_words(nb, group_rows, first_row, c2, c3, k0, k1, words, lanes)


@njit
def _alone(nb, row, c2, c3, k0, k1, words):
    laws.row_words(nb, row, c2, c3, k0, k1, words)


def _row_alone(nb, row, c2, c3):
    words = np.zeros(4 * nb + 32, dtype=np.uint32)  # row_words pads to whole vector steps: room for them
    _alone(nb, np.uint64(row), np.uint64(c2), np.uint64(c3), K0, K1, words)
    return words[:4 * nb]


def test_group_words_are_each_rows_own():
    # Every row of the group (of 8 rows, and of fewer: a layer's last), for block counts below, at and
    # around the vector steps (4, 8, 32) and the row counter near 2^32 (Philox keeps its low 32 bits); the lanes
    # laid out again when nb changes, and kept when it does not (the sequence revisits 25).
    n_max = 2 * 64
    words, lanes = row_groups.row_group_scratch.py_func(n_max)
    for nb in (25, 0, 1, 2, 3, 4, 7, 8, 9, 25, 25, 64, 13):
        for first_row, c2, c3 in ((0, 1, 0), (8, 7, 3), (2**32 - 8, 2, 2**32 - 1)):
            for group_rows in (ROW_GROUP, 1, 3, ROW_GROUP - 1):  # a whole group, and a layer's last rows
                words[:] = 0xA5A5A5A5
                _group(nb, group_rows, np.uint64(first_row), np.uint64(c2), np.uint64(c3), K0, K1, words, lanes)
                assert lanes[0] == nb
                for r in range(group_rows):
                    got = words[4 * nb * r: 4 * nb * (r + 1)]
                    np.testing.assert_array_equal(got, _row_alone(nb, first_row + r, c2, c3),
                                                  err_msg=f"nb={nb} r={r} of {group_rows}")
                # blocks drawn: the group's, rounded up to whole groups of 8 blocks; nothing written past them
                drawn = -(-group_rows * nb // ROW_GROUP) * ROW_GROUP
                assert drawn <= ROW_GROUP * nb
                assert (words[4 * drawn:] == 0xA5A5A5A5).all()


def test_scratch_holds_every_law_s_group_and_its_reads_past_the_rows():
    # Rows read past their words: the first step in lanes up to 8 weights (16 words at 64 bits), a float32
    # polynomial row up to 32 ceil(n / 32) words; the last row of a group must find them inside the scratch,
    # and so must a row drawn alone, padded to whole vector steps (8 blocks, the wider of AVX-512 and AVX2).
    for n in range(0, 601):
        words, lanes = row_groups.row_group_scratch.py_func(max(n, 1))
        for law in laws.LAW_CODES.values():
            for bits32 in (False, True):
                nb = laws.blocks_read.py_func(law, bits32, n)
                assert 1 + 2 * ROW_GROUP * nb <= lanes.size
                last_row = 4 * nb * (ROW_GROUP - 1)
                per = laws.weights_per_block.py_func(law, bits32)
                words_read = 32 * ((n + 31) // 32) if per == 4 else 2 * (8 * ((n + 7) // 8))
                assert last_row + max(words_read, 4 * nb) <= words.size, (n, law, bits32)
                # a row drawn alone (a conv kernel's), at the start of the scratch, padded
                alone = (laws.polynomial32_blocks.py_func(n) if laws.polynomial32.py_func(law, bits32) else
                         8 * ((nb + 7) // 8) if law != laws.RADEMACHER else nb)
                assert max(4 * alone, words_read) <= words.size, (n, law, bits32)


def test_layer_scratch_holds_every_law_s_rows_made_at_once():
    # cpu.made_by_groups decides which rows cpu.drawn_row makes a group at once (the first step writes whole
    # vector steps of 8 weights past them, the float32 polynomials whole steps of 32); those and a row made
    # alone must fit cpu.layer_scratch (numba does not check bounds: an overrun would corrupt, not fail).
    for n in [*range(0, 300), 1000, 4097]:
        _, _, slow, w, w32 = cpu.layer_scratch.py_func(max(n, 1))
        for law in laws.LAW_CODES.values():
            for bits32 in (False, True):
                out = w32 if bits32 else w
                row_weights = (laws.blocks_read.py_func(law, bits32, n)
                               * laws.weights_per_block.py_func(law, bits32))
                if laws.polynomial32.py_func(law, bits32):
                    assert 32 * -(-ROW_GROUP * row_weights // 32) <= w32.size, (n, law)
                elif law == laws.UNIFORM and bits32:  # one word a weight, no slow path
                    assert cpu.made_by_groups.py_func(law, bits32, row_weights)
                    assert ROW_GROUP * row_weights <= w32.size, n
                elif cpu.made_by_groups.py_func(law, bits32, row_weights):
                    assert ROW_GROUP * row_weights + 8 <= min(slow.size, out.size), (n, law, bits32)
                else:
                    assert n + 8 <= min(slow.size, out.size), (n, law, bits32)


@njit
def _layer(law, bits32, z, n_in, n_rows, layer, net, k0, k1, out, out_words):
    # A layer's rows in order, as the kernels visit them.
    words, lanes, slow, w, w32 = cpu.layer_scratch(n_in)
    for r in range(n_rows):
        wz, rw = cpu.drawn_row(law, bits32, z, n_in, np.uint64(r), n_rows, layer, net, k0, k1, words, lanes, slow, w,
                               w32)
        for k in range(n_in):
            out[r, k] = wz[k]
        for k in range(out_words.shape[1]):
            out_words[r, k] = rw[k]


@njit
def _standard(law, bits32, n, row, layer, net, k0, k1, out):
    words, slow, w, _ = laws.row_scratch(n)
    laws.standard_row(law, bits32, n, row, layer, net, k0, k1, words, slow, w)
    for k in range(n):
        out[k] = w[k]


@njit
def _polynomial(law, n, row, layer, net, k0, k1, out):
    words, _, _, w32 = laws.row_scratch(n)
    laws.polynomial32_row(law, n, row, layer, net, k0, k1, words, w32)
    for k in range(n):
        out[k] = w32[k]


@pytest.mark.parametrize("law", sorted(laws.LAW_CODES))
@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("n_rows", [19, 8, 3])
def test_rows_drawn_in_groups_are_the_rows_drawn_alone(law, precision, n_rows):
    # 19 rows: two whole groups, then a group of three; 8: one group; 3: one group of three.
    # Row lengths with and without slow draws and with partial vector steps.
    code, bits32 = laws.LAW_CODES[law], precision == "float32"
    dtype = np.float32 if bits32 else np.float64
    layer, net = np.uint64(3), np.uint64(2**32 - 2)
    for n_in in (1, 5, 50, 63, 128, 257):
        z = np.ones(n_in, dtype=dtype)
        out = np.empty((n_rows, n_in), dtype=dtype)
        n_words = (n_in + 31) // 32
        out_words = np.empty((n_rows, n_words), dtype=np.uint32)
        _layer(code, bits32, z, n_in, n_rows, layer, net, K0, K1, out, out_words)
        for r in range(n_rows):
            ref = np.empty(n_in, dtype=dtype)
            if laws.polynomial32.py_func(code, bits32):
                _polynomial(code, n_in, np.uint64(r), layer, net, K0, K1, ref)
            else:
                ref64 = np.empty(n_in)
                _standard(code, bits32, n_in, np.uint64(r), layer, net, K0, K1, ref64)
                ref = ref64.astype(dtype)
            if code != laws.RADEMACHER:  # Rademacher rows leave their weights to the layer's table
                np.testing.assert_array_equal(out[r].view(np.uint8), ref.view(np.uint8), err_msg=f"n={n_in} r={r}")
            nb = laws.blocks_read.py_func(code, bits32, n_in)
            np.testing.assert_array_equal(out_words[r], _row_alone(nb, r, layer, net)[:n_words])


@njit
def _rows_at_once(law, bits32, n_rows, row_weights, n, c1, c2, c3, k0, k1, words, out):
    slow = np.empty(n_rows * row_weights + 8, dtype=np.intp)
    laws.rows_from_words(law, bits32, n_rows, row_weights, n, c1, c2, c3, k0, k1, words, slow, out)


@njit
def _row_alone_from_words(law, bits32, n, c1, c2, c3, k0, k1, words, out):
    slow = np.empty(n + 8, dtype=np.intp)
    laws.row_from_words(law, bits32, n, c1, c2, c3, k0, k1, words, slow, out)


@njit
def _slow_draws(law, bits32, n, words):
    # how many of the row's weights the first step leaves to the slow path
    kn9, wn9, table = laws._ziggurat_tables(law, bits32)
    slow = np.empty(n + 8, dtype=np.intp)
    out = np.empty(n + 8)
    return laws._ziggurat_fast_row(words, n, bits32, kn9, wn9, table, 1.0, out, slow)


@pytest.mark.parametrize(("law", "precision"), [("gaussian", "float64"), ("laplace", "float64"),
                                                ("truncated_normal", "float64"), ("truncated_normal", "float32")])
def test_a_group_s_ziggurat_rows_made_at_once_are_each_row_s_own(law, precision):
    # laws.rows_from_words over a group's words (8 rows, and a layer's last 3) against laws.row_from_words
    # on each row's words alone, bit for bit: the slow draws of rows after the first must come from their
    # own row's streams and columns (the test counts them, so that it cannot pass without any).
    code, bits32 = laws.LAW_CODES[law], precision == "float32"
    c2, c3 = np.uint64(4), np.uint64(2**32 - 3)
    slow_after_first_row = 0
    for n in (1, 7, 50, 101, 128):
        nb = laws.blocks_read.py_func(code, bits32, n)
        row_weights = nb * laws.weights_per_block.py_func(code, bits32)
        words, lanes = row_groups.row_group_scratch.py_func(n)
        for first_row, group_rows in ((np.uint64(16), ROW_GROUP), (np.uint64(2**32 - 2), 3)):
            _group(nb, group_rows, first_row, c2, c3, K0, K1, words, lanes)
            at_once = np.full(group_rows * row_weights + 8, np.nan)
            _rows_at_once(code, bits32, group_rows, row_weights, n, first_row, c2, c3, K0, K1, words, at_once)
            for r in range(group_rows):
                own_words = np.ascontiguousarray(row_groups.group_row_words.py_func(words, nb, r))
                alone = np.empty(n + 8)
                _row_alone_from_words(code, bits32, n, first_row + np.uint64(r), c2, c3, K0, K1, own_words, alone)
                got = at_once[row_weights * r: row_weights * r + n]
                np.testing.assert_array_equal(got.view(np.uint64), alone[:n].view(np.uint64),
                                              err_msg=f"n={n} r={r} of {group_rows}")
                if r > 0:
                    slow_after_first_row += _slow_draws(code, bits32, n, own_words)
    assert slow_after_first_row >= 3, slow_after_first_row
