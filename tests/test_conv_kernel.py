"""The CPU conv layer (register-blocked, fmsim.kernels.simd.conv_block) against the scalar conv the CUDA kernel
runs (fmsim.kernels.scalar.conv_channel), bit for bit, and the micro-kernel against an exact computation.

The shapes cover: blocks within rows and over whole rows, a row's last block computing the columns between
rows, channel counts that leave a partial block, 1D and 2D, kernels 1 to 5, both precisions.
"""

import numpy as np
import pytest
from fmsim.laws import numba_compiles_avx512, row_scratch
from numba import njit

from fmsim.kernels import cpu, simd
from fmsim.kernels.scalar import conv_channel, fused_multiply_add
from fmsim.kernels.simd import CONV_BLOCK, block_positions, conv_block_256, conv_block_512


@njit(cache=True)
def _blocked(given, z, c_in, c_out, height, width, kh, kw, scale, zero):
    zpad, acc, wrow, wblock, offsets = cpu.conv_scratch(max(c_in, c_out), height, width, kh, kw, zero)
    words, slow, _, _ = row_scratch(max(c_in, c_out) * kh * kw)
    out = np.full(c_out * height * width, zero)
    cpu.periodic_pad(z, c_in, height, width, kh, kw, zpad)
    cpu.conv_layer(0, False, given, zpad, c_in, c_out, height, width, kh, kw, scale, 0.0, np.uint64(1),
                   np.uint64(0), np.uint32(1), np.uint32(2), words, slow, wrow, wblock, offsets, acc, out)
    return out


@njit(cache=True)
def _scalar(given, z, c_in, c_out, height, width, kh, kw, scale, zero):
    out = np.full(c_out * height * width, zero)
    n = c_in * kh * kw
    for r in range(c_out):
        conv_channel(given[r * n:(r + 1) * n], z, c_in, height, width, kh, kw, scale, zero, r, out)
    return out


# (c_in, c_out, height, width, kernel): 30 wide with 3 taps is a padded row of 32, so float32 blocks (16 or 32
# positions, block_positions) tile it within rows, the last one computing the 2 columns between rows; 14 wide
# does so in float64 blocks of 8, and 30 in float64 blocks of 16; 62 wide (a padded row of 64) with two blocks
# of 32 or four of 16; 33 wide and 3 taps needs whole rows with blocks of 32 (and of 16 in float64). Blocks in
# two rows, a vector in each: 16 wide (padded 18) with float32 vectors of 16 lanes (512-bit), 8 wide (padded
# 10) with float64 ones of 8 and float32 ones of 8 (256-bit); odd heights compute their last row twice.
SHAPES = [
    (3, 5, 30, 30, 3),
    (4, 11, 14, 14, 3),
    (2, 9, 6, 62, 3),
    (3, 4, 5, 33, 3),
    (3, 5, 7, 16, 3),
    (4, 9, 9, 8, 3),
    (2, 3, 6, 16, 5),
    (2, 5, 3, 3, 3),  # kernels as wide as the image: the padding wraps its whole width
    (3, 2, 5, 5, 5),
    (8, 8, 16, 16, 3),
    (2, 9, 5, 7, 3),
    (5, 3, 9, 20, 5),
    (6, 17, 1, 100, 5),
    (3, 4, 1, 37, 1),
    (2, 3, 12, 12, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_conv_layer_equals_scalar_conv_bitwise(shape, dtype):
    c_in, c_out, height, width, k = shape
    kh = 1 if height == 1 else k
    rng = np.random.default_rng(7)
    given = rng.standard_normal(c_out * c_in * kh * k).astype(dtype)
    z = np.abs(rng.standard_normal(c_in * height * width)).astype(dtype)
    z[rng.random(z.size) < 0.5] = 0.0  # as after a ReLU
    scale = dtype(0.37)
    blocked = _blocked(given, z, c_in, c_out, height, width, kh, k, scale, dtype(0.0))
    scalar = _scalar(given, z, c_in, c_out, height, width, kh, k, scale, dtype(0.0))
    assert blocked.dtype == dtype
    assert np.count_nonzero(scalar) > scalar.size // 10  # not a net of dead units (ReLU zeros are correlated
    # across positions with this few weights per channel: 20% to 50% are nonzero)
    np.testing.assert_array_equal(blocked, scalar)


@njit(cache=True)
def _one_block_256(z, base, offsets, count, weights, acc, col, stride):
    conv_block_256(z, base, offsets, count, weights, acc, col, stride)


@njit(cache=True)
def _one_block_512(z, base, offsets, count, weights, acc, col, stride):
    conv_block_512(z, base, offsets, count, weights, acc, col, stride)


@pytest.mark.parametrize("spread", [False, True])  # the second vector right after the first, or 37 further
@pytest.mark.parametrize("bits", [256, 512])  # both widths on any x86-64 machine: LLVM splits wider vectors
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_block_is_a_chain_of_exact_fused_multiply_adds(dtype, bits, spread):
    """Each lane sums ``weights[i k] z[base + q + offsets[i]]`` in the order of ``i``, rounded once per term
    (the Python fused_multiply_add: exact rational arithmetic, rounded once to ``dtype``), and writes nothing
    outside its two vectors, ``q = v stride + p``."""
    rng = np.random.default_rng(3)
    count, base, col = 23, 5, 3
    z = rng.standard_normal(400).astype(dtype)
    offsets = rng.integers(0, 300, count).astype(np.int64)
    weights = rng.standard_normal(count * CONV_BLOCK).astype(dtype)
    lanes = bits // (8 * np.dtype(dtype).itemsize)
    stride = lanes + 37 if spread else lanes
    acc = np.full((CONV_BLOCK, col + stride + lanes + 4), dtype(7.0))
    (_one_block_512 if bits == 512 else _one_block_256)(z, base, offsets, count, weights, acc, col, stride)
    written = np.zeros(acc.shape[1], dtype=bool)
    for q in [v * stride + p for v in range(2) for p in range(lanes)]:
        written[col + q] = True
        for k in range(CONV_BLOCK):
            s = dtype(0.0)
            for i in range(count):  # from Python: exact rational arithmetic, rounded once to dtype
                s = fused_multiply_add(weights[i * CONV_BLOCK + k], z[base + q + offsets[i]], s)
            assert acc[k, col + q] == s
    assert isinstance(s, np.float32) == (dtype == np.float32)  # the reference rounded to float32 where it should
    assert written.sum() == 2 * lanes and np.all(acc[:, ~written] == 7.0)


@njit(cache=True)
def _positions(x):
    return block_positions(x)


def test_block_positions():
    assert simd.VECTOR_BITS == (512 if numba_compiles_avx512() else 256)
    wide = simd.VECTOR_BITS // 256
    assert _positions(np.zeros(1, np.float32)) == 16 * wide
    assert _positions(np.float64(0.0)) == 8 * wide
