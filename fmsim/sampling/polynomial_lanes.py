"""The float32 polynomial rows (Box-Muller Gaussian, Laplace) in 16 vector lanes, with the scalar steps' bits.

The float32 Gaussian and Laplace weights of the CPU rows (:func:`fmsim.laws.gauss32_from_words`,
:func:`fmsim.laws.laplace32_from_words`) are branch-free float32 polynomials of each weight's words. Written
as numba loops, LLVM vectorizes them; but on the Intel Xeon we measured, numba's host CPU (``rocketlake``)
asks LLVM to prefer 256-bit vectors, and the loops ran 8 lanes wide, about 1 ns per weight. Here the same
steps are written in LLVM IR on ``<16 x float>`` and ``<16 x i32>``, which AVX-512 holds in one register
(the loop over a row of 64 weights: 47 against 64 ns; of 1024: 476 against 852, with LLVM's own loop compiled
for a CPU without that preference).

Each lane does the scalar steps' operations, one IEEE operation for each, in the same order, with no fused
multiply-adds (LLVM contracts nothing that is not marked), so every weight is bitwise the scalar one
(``tests/test_polynomial_lanes.py`` against :func:`fmsim.laws.gauss32_pair` and :func:`fmsim.laws.laplace32`
on random and edge words). Only where numba compiles with AVX-512 (:func:`fmsim.laws.numba_compiles_avx512`):
elsewhere fmsim keeps the loops.
"""

from __future__ import annotations

from collections.abc import Mapping

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["LANES", "polynomial_intrinsics"]

#: Weights (Laplace) or pairs of weights (Gaussian) per call of an intrinsic.
LANES = 16

#: The float32 constants the steps read, by name (the values come from :mod:`fmsim.sampling.laws`).
CONSTANT_NAMES = ("LN_P1", "LN_P2", "LN_P3", "LN_P4", "LN_P5", "LN_P6", "LN_P7", "LN_P8", "LN_P9", "SIN_P1",
                  "SIN_P2", "SIN_P3", "COS_P1", "COS_P2", "COS_P3", "HALF", "ONE", "TWO", "SQRT2", "INV_SQRT2",
                  "LN2", "TWO_M31", "ANGLE_STEP")


class _Lanes:
    """Elementwise float32 and int32 operations on ``LANES``-wide vectors, named as the scalar steps' operators."""

    def __init__(self, builder: ir.IRBuilder, constants: Mapping[str, float]) -> None:
        self.b = builder
        self.f = ir.VectorType(ir.FloatType(), LANES)
        self.i = ir.VectorType(ir.IntType(32), LANES)
        self.c = {name: self.fconst(float(constants[name])) for name in CONSTANT_NAMES}

    def fconst(self, v: float) -> ir.Constant:
        return ir.Constant(self.f, [v] * LANES)

    def iconst(self, v: int) -> ir.Constant:
        return ir.Constant(self.i, [v] * LANES)

    def add(self, x, y):
        return self.b.fadd(x, y)

    def sub(self, x, y):
        return self.b.fsub(x, y)

    def mul(self, x, y):
        return self.b.fmul(x, y)

    def to_float(self, k):
        """``float32(k)`` of an int32 ``k`` (rounded to nearest, as numba's ``np.float32(np.int32)``)."""
        return self.b.sitofp(k, self.f)

    def select(self, cond, x, y):
        return self.b.select(cond, x, y)

    def neg(self, x):
        return self.b.fneg(x)


def _bm32_t(v: _Lanes, a):
    """:func:`fmsim.laws._bm32_t`: ``((a >> 2) << 1) | 1``, an odd int32 in ``[1, 2^31)``."""
    b = v.b
    return b.or_(b.shl(b.lshr(a, v.iconst(2)), v.iconst(1)), v.iconst(1))


def _exponent_mantissa(v: _Lanes, ft):
    """:func:`fmsim.laws._exponent_mantissa_bits`: ``(e, m)`` of ``ft = m 2^e`` from its bits."""
    b = v.b
    bits = b.bitcast(ft, v.i)
    m = b.bitcast(b.or_(b.and_(bits, v.iconst(0x7FFFFF)), v.iconst(0x3F800000)), v.f)
    return b.sub(b.ashr(bits, v.iconst(23)), v.iconst(127)), m


def _neg_log_u31(v: _Lanes, t, e, m, t_top: int):
    """:func:`fmsim.laws._neg_log_u31`, operation for operation."""
    b, c = v.b, v.c
    fold = b.fcmp_ordered(">", m, c["SQRT2"])
    x = v.select(fold, v.sub(v.mul(m, c["HALF"]), c["ONE"]), v.sub(m, c["ONE"]))
    ef = v.select(fold, b.add(e, v.iconst(1)), e)
    top = b.icmp_signed(">", t, v.iconst(t_top))
    # np.int32(int64(t) - 2^31): t in [1, 2^31), so the int32 difference t - 2^31 (wrapping) is the same number
    x = v.select(top, v.mul(v.to_float(b.sub(t, v.iconst(-(2**31)))), c["TWO_M31"]), x)
    ef = v.select(top, v.iconst(31), ef)
    z = v.mul(x, x)
    z2 = v.mul(z, z)
    p = v.add(v.add(v.add(c["LN_P9"], v.mul(c["LN_P8"], x)), v.mul(v.add(c["LN_P7"], v.mul(c["LN_P6"], x)), z)),
              v.mul(v.add(v.add(v.add(c["LN_P5"], v.mul(c["LN_P4"], x)),
                                v.mul(v.add(c["LN_P3"], v.mul(c["LN_P2"], x)), z)),
                          v.mul(c["LN_P1"], z2)), z2))
    ln1p = v.add(x, v.sub(v.mul(v.mul(x, z), p), v.mul(c["HALF"], z)))
    return v.sub(v.mul(v.to_float(b.sub(v.iconst(31), ef)), c["LN2"]), ln1p)


def _bm32_pair(v: _Lanes, t, e, m, w, t_top: int):
    """:func:`fmsim.laws._bm32_pair`, operation for operation: the pair ``(r cos, r sin)``."""
    b, c = v.b, v.c
    sqrt = cgutils.get_or_insert_function(b.module, ir.FunctionType(v.f, [v.f]), f"llvm.sqrt.v{LANES}f32")
    r = b.call(sqrt, [v.mul(c["TWO"], _neg_log_u31(v, t, e, m, t_top))])
    q = b.lshr(w, v.iconst(30))
    angle_bits = b.sub(b.and_(b.lshr(w, v.iconst(7)), v.iconst(0x7FFFFF)), v.iconst(1 << 22))
    th = v.mul(v.add(v.to_float(angle_bits), c["HALF"]), c["ANGLE_STEP"])
    z = v.mul(th, th)
    s = v.add(v.mul(v.mul(v.add(v.mul(v.add(v.mul(c["SIN_P1"], z), c["SIN_P2"]), z), c["SIN_P3"]), z), th), th)
    co = v.add(v.sub(v.mul(v.mul(v.add(v.mul(v.add(v.mul(c["COS_P1"], z), c["COS_P2"]), z), c["COS_P3"]), z), z),
                     v.mul(c["HALF"], z)), c["ONE"])
    zero = v.iconst(0)
    odd = b.icmp_unsigned("!=", b.and_(q, v.iconst(1)), zero)  # quadrants 1, 3: cos and sin swap
    u = v.select(odd, s, co)
    w2 = v.select(odd, co, s)
    neg_u = b.icmp_unsigned("!=", b.and_(b.xor(q, b.lshr(q, v.iconst(1))), v.iconst(1)), zero)
    neg_v = b.icmp_unsigned(">", q, v.iconst(1))
    return v.mul(r, v.select(neg_u, v.neg(u), u)), v.mul(r, v.select(neg_v, v.neg(w2), w2))


def _typed(words, k, out) -> bool:
    return (isinstance(words, types.Array) and words.ndim == 1 and words.dtype == types.uint32
            and isinstance(out, types.Array) and out.ndim == 1 and out.dtype in (types.float32, types.float64)
            and isinstance(k, types.Integer))


def _store(builder, values, out_type, at):
    """Store the float32 vector ``values`` at pointer ``at`` of an array of ``out_type``: as they are, or
    widened exactly to float64 (the loops' stores into float64 arrays)."""
    if out_type.dtype == types.float64:
        values = builder.fpext(values, ir.VectorType(ir.DoubleType(), values.type.count))
    builder.store(values, builder.bitcast(at, values.type.as_pointer()), align=4)


def polynomial_intrinsics(constants: Mapping[str, float], t_top: int):
    """The intrinsics ``(gauss32_lanes, laplace32_lanes)`` over the float32 constants ``constants``.

    Parameters
    ----------
    constants : mapping of str to float
        The float32 values named in :data:`CONSTANT_NAMES` (polynomial coefficients, 0.5, 1, 2, sqrt 2,
        1/sqrt 2, ln 2, 2^-31, the angle step), as :mod:`fmsim.sampling.laws` defines them.
    t_top : int
        ``t`` above which ``ln u1`` is computed from the exact ``u1 - 1`` (``laws._T_TOP``).

    Returns
    -------
    tuple of two numba intrinsics
        ``gauss32_lanes(words, j, out)``: the Gaussian weights ``2j .. 2j + 31`` from words ``2j .. 2j + 31``
        (pairs ``j .. j + 15``); ``laplace32_lanes(words, k, out)``: the Laplace weights ``k .. k + 15`` from
        words ``k .. k + 15``. ``words`` uint32; ``out`` float32 (or float64: the float32 weights, widened);
        both return nothing.
    """
    missing = set(CONSTANT_NAMES) - set(constants)
    if missing:
        raise ValueError(f"constants: missing {sorted(missing)}")

    def lanes_intrinsic(body, name: str):
        """An intrinsic ``(words, k, out)`` whose code is ``body(v, words_p, k, out_p, store)``: ``v`` the
        :class:`_Lanes` of its builder, pointers to the arrays' data, ``k`` an int64, ``store(values, at)``."""
        def lanes(typingctx, words, k, out):
            if not _typed(words, k, out):
                return None

            def codegen(context, builder, signature, args):
                wt, kt, ot = signature.args
                words_p = context.make_array(wt)(context, builder, args[0]).data
                out_p = context.make_array(ot)(context, builder, args[2]).data
                k = context.cast(builder, args[1], kt, types.int64)
                body(_Lanes(builder, constants), words_p, k, out_p,
                     lambda values, at: _store(builder, values, ot, at))
                return context.get_dummy_value()

            return types.none(words, k, out), codegen

        lanes.__name__ = lanes.__qualname__ = name
        return intrinsic(lanes)

    def gauss_pairs(v, words_p, j, out_p, store):
        b, i32 = v.b, ir.IntType(32)
        first = b.mul(j, ir.Constant(ir.IntType(64), 2))
        both = b.load(b.bitcast(b.gep(words_p, [first]), ir.VectorType(i32, 2 * LANES).as_pointer()), align=4)
        a = b.shuffle_vector(both, both, ir.Constant(v.i, list(range(0, 2 * LANES, 2))))
        w = b.shuffle_vector(both, both, ir.Constant(v.i, list(range(1, 2 * LANES, 2))))
        t = _bm32_t(v, a)
        e, m = _exponent_mantissa(v, v.to_float(t))
        x, y = _bm32_pair(v, t, e, m, w, t_top)
        interleave = ir.Constant(ir.VectorType(i32, 2 * LANES), [k for p in range(LANES) for k in (p, p + LANES)])
        store(b.shuffle_vector(x, y, interleave), b.gep(out_p, [first]))

    def laplace_weights(v, words_p, k, out_p, store):
        b = v.b
        a = b.load(b.bitcast(b.gep(words_p, [k]), v.i.as_pointer()), align=4)
        t = _bm32_t(v, a)
        e, m = _exponent_mantissa(v, v.to_float(t))
        mag = v.mul(_neg_log_u31(v, t, e, m, t_top), v.c["INV_SQRT2"])
        negative = b.icmp_unsigned("!=", b.and_(a, v.iconst(1)), v.iconst(0))
        store(v.select(negative, v.neg(mag), mag), b.gep(out_p, [k]))

    gauss32_lanes = lanes_intrinsic(gauss_pairs, "gauss32_lanes")
    laplace32_lanes = lanes_intrinsic(laplace_weights, "laplace32_lanes")
    return gauss32_lanes, laplace32_lanes
