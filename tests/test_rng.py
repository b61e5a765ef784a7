import numpy as np
import pytest
from fmsim.rng import philox4x32, seed_to_key, u01_from_words
from numba import njit

from fmsim import laws
from fmsim.sampling.llvm_vectors import data_pointer
from fmsim.sampling.rng import philox4x32_x8, philox4x32_x32

# Random123 kat_vectors, "philox4x32 10": counter (4 words), key (2 words) -> output (4 words).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize(("ctr", "key", "expected"), KAT)
def test_philox_known_answers(ctr, key, expected):
    out = philox4x32(*(np.uint64(v) for v in ctr), *(np.uint64(v) for v in key))
    assert tuple(int(v) for v in out) == expected


def _philox_numpy(ctr, key):
    """Philox4x32-10 in NumPy (Salmon et al. 2011, Random123's ``philox4x32_R``), vectorized over rows of
    ``ctr`` (n, 4) and ``key`` (n, 2): an independent reference for the LLVM-IR rounds fmsim compiles."""
    c = [ctr[:, i].astype(np.uint64) for i in range(4)]
    k0, k1 = key[:, 0].astype(np.uint64), key[:, 1].astype(np.uint64)
    mask = np.uint64(0xFFFFFFFF)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        c = [((p1 >> np.uint64(32)) ^ c[1] ^ k0) & mask, p1 & mask, ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & mask,
             p0 & mask]
        k0, k1 = (k0 + np.uint64(0x9E3779B9)) & mask, (k1 + np.uint64(0xBB67AE85)) & mask
    return np.stack(c, axis=1)


@njit
def _philox_many(ctr, key, out):
    for i in range(ctr.shape[0]):
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = philox4x32(ctr[i, 0], ctr[i, 1], ctr[i, 2], ctr[i, 3],
                                                                key[i, 0], key[i, 1])


def test_philox_matches_numpy_reference_over_random_keys_and_counters():
    rng = np.random.default_rng(20261206)
    n = 20_000
    ctr = rng.integers(0, 2**32, size=(n, 4), dtype=np.uint64)
    key = rng.integers(0, 2**32, size=(n, 2), dtype=np.uint64)
    ctr[:100] = np.arange(100, dtype=np.uint64)[:, None]  # small counters, as a row's blocks are
    out = np.empty((n, 4), dtype=np.uint64)
    _philox_many(ctr, key, out)
    np.testing.assert_array_equal(out, _philox_numpy(ctr, key))


@pytest.mark.parametrize("n_blocks", [1, 7, 8, 9, 33])
def test_row_words_vector_loop_matches_numpy_reference(n_blocks):
    """laws.row_words runs Philox in LLVM's vector lanes (8 or 4 blocks a step) plus a scalar remainder:
    every word must be the reference's."""
    c1, c2, c3, k0, k1 = (np.uint64(v) for v in (12, 3, 2**32 - 5, 0xDEADBEEF, 0x12345678))
    words = np.empty(4 * n_blocks, dtype=np.uint32)
    _row_words(n_blocks, c1, c2, c3, k0, k1, words)
    ctr = np.array([[b, c1, c2, c3] for b in range(n_blocks)], dtype=np.uint64)
    key = np.array([[k0, k1]] * n_blocks, dtype=np.uint64)
    np.testing.assert_array_equal(words.reshape(n_blocks, 4), _philox_numpy(ctr, key).astype(np.uint32))


@njit
def _row_words(n_blocks, c1, c2, c3, k0, k1, words):
    laws.row_words(n_blocks, c1, c2, c3, k0, k1, words)


def test_u01_range_edges():
    assert u01_from_words(np.uint64(0), np.uint64(0)) == 0.0
    top = u01_from_words(np.uint64(0xFFFFFFFF), np.uint64(0xFFFFFFFF))
    assert top < 1.0 and top == 1.0 - 2.0**-53


def test_seed_to_key_roundtrip_and_errors():
    assert seed_to_key(2**40 + 7) == (7, 2**8)
    with pytest.raises(ValueError, match="seed"):
        seed_to_key(-1)
    with pytest.raises(ValueError, match="seed"):
        seed_to_key(2**64)
    with pytest.raises(TypeError, match="seed"):
        seed_to_key(1.5)


@njit
def _philox_x8(table, c0_at, c1_at, c1_base, c2, c3, k0, k1, out, out_at):
    philox4x32_x8(data_pointer(table), c0_at, c1_at, c1_base, c2, c3, k0, k1, data_pointer(out), out_at)


@njit
def _philox_x32(table, c0_at, c1_at, c1_base, c2, c3, k0, k1, out, out_at):
    philox4x32_x32(data_pointer(table), c0_at, c1_at, c1_base, c2, c3, k0, k1, data_pointer(out), out_at)


@pytest.mark.parametrize("lanes, call", [(8, _philox_x8), (32, _philox_x32)], ids=["x8", "x32"])
def test_philox_lanes_match_numpy_reference_over_random_counters_and_keys(lanes, call):
    """The 8- and 32-lane block functions (the kernels' group words) against the NumPy reference: counter words
    from a table at any offset (over the whole 32-bit range), the other words and the key over 64 bits (only
    their low 32 bits count, as in ``philox4x32``), and nothing written outside its ``4 lanes`` words."""
    rng = np.random.default_rng(20261207 + lanes)
    n_words = 4 * lanes
    for trial in range(300):
        table = rng.integers(0, 2**32, size=lanes + 32, dtype=np.uint64).astype(np.uint32)
        if trial < 20:
            table[:] = np.arange(lanes + 32, dtype=np.uint32)  # small counters, as a group's blocks and rows are
        c0_at, c1_at, out_at = (int(v) for v in rng.integers(0, 16, size=3))
        c1_base, c2, c3, k0, k1 = (np.uint64(v) for v in rng.integers(0, 2**64, size=5, dtype=np.uint64))
        out = np.full(n_words + 32, 0xA5A5A5A5, dtype=np.uint32)
        call(table, c0_at, c1_at, c1_base, c2, c3, k0, k1, out, out_at)
        mask = np.uint64(0xFFFFFFFF)
        ctr = np.stack([table[c0_at:c0_at + lanes].astype(np.uint64),
                        (table[c1_at:c1_at + lanes].astype(np.uint64) + c1_base) & mask,
                        np.full(lanes, c2 & mask), np.full(lanes, c3 & mask)], axis=1)
        key = np.tile(np.array([k0 & mask, k1 & mask], dtype=np.uint64), (lanes, 1))
        expected = _philox_numpy(ctr, key).astype(np.uint32).ravel()
        np.testing.assert_array_equal(out[out_at:out_at + n_words], expected, err_msg=f"trial {trial}")
        assert (out[:out_at] == 0xA5A5A5A5).all() and (out[out_at + n_words:] == 0xA5A5A5A5).all()
