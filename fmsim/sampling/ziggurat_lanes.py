"""The ziggurat's first step in 8 AVX-512 vector lanes, with the same weights as the scalar step.

The first step (:func:`fmsim.laws._ziggurat_fast_row`) of weight ``k`` of a row reads a 64-bit word
(words ``2k``, ``2k + 1``) or a 32-bit one (word ``k``); its low 9 bits ``i`` pick the signed width
``wn9[i]`` and the threshold ``kn9[i]`` (tables of 512 entries), its magnitude bits ``rabs`` make the
candidate ``float(rabs) * wn9[i] * scale`` (computed in float64, rounded once to ``out``'s type), and the
weight needs the slow path if ``rabs >= kn9[i]``.

:func:`first_step_lanes64` (and :func:`first_step_lanes32`) does this for 8 weights in LLVM
``<8 x i64>`` and ``<8 x double>`` operations: one vector load of the words, then the shifts, the
conversion, the products and the comparison in lanes. The two tables are read as one
(:func:`pair_table`: ``wn9[i]`` and the bits of ``kn9[i]`` side by side): 8 scalar 16-byte loads,
put together into two vectors by shuffles. The intrinsics hold the tables themselves
(:func:`first_step_intrinsics`), as one constant aligned to 64 bytes: numba aligns a global array only to
its entries (8 bytes), and then a quarter of the 16-byte loads cross a cache line (the FC kernel
ran 6% slower). On the AMD EPYC (Zen 4) we measured, that beats the scalar
step, 16 scalar loads into vectors, and the gather instructions (``bench/bench_row.py``). The rejected
lanes' columns are packed by ``vpcompressq`` into a register and stored as one vector at the end of the
slow list (its memory form is microcoded on Zen 4: with it the step took twice the scalar one). Each lane's
arithmetic is the scalar step's, operation for operation, so the weights and the slow list are bitwise the
same (``tests/test_ziggurat_lanes.py``).

Only for machines where numba compiles with AVX-512 (:func:`fmsim.laws.numba_compiles_avx512`): the
compress instruction has no AVX2 form, and there fmsim keeps the scalar step.
"""

from __future__ import annotations

import hashlib

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .llvm_vectors import splat, undef

__all__ = ["LANES", "first_step_intrinsics", "pair_table"]

#: Weights per call of a first-step intrinsic.
LANES = 8
_MASK52 = (1 << 52) - 1


def pair_table(kn9: np.ndarray, wn9: np.ndarray) -> np.ndarray:
    """The tables of the first step side by side: entry ``2 i`` is ``wn9[i]``, entry ``2 i + 1`` the bits of
    ``kn9[i]`` (read as float64), so that one 16-byte load fetches both.

    Parameters
    ----------
    kn9, wn9 : ndarray, shape (512,), uint64 and float64
        Thresholds and signed widths (``fmsim.laws._signed_tables``).

    Returns
    -------
    ndarray, shape (1024,), float64
    """
    pairs = np.empty(2 * len(wn9))
    pairs[0::2] = wn9
    pairs[1::2] = np.ascontiguousarray(kn9, dtype=np.uint64).view(np.float64)
    return pairs


def _typed_arrays(words, out, slow) -> bool:
    return (all(isinstance(a, types.Array) and a.ndim == 1 for a in (words, out, slow))
            and words.dtype == types.uint32 and out.dtype in (types.float64, types.float32)
            and slow.dtype == types.intp)


def _aligned_tables(builder, name: str, data: bytes):
    """A pointer (``double*``) to the float64 tables ``data`` as the internal constant ``name`` of the
    function's module, 64-byte aligned."""
    module = builder.module
    try:
        table = module.get_global(name)
    except KeyError:
        table = cgutils.global_constant(module, name, cgutils.create_constant_array(ir.IntType(8), bytearray(data)))
        table.align = 64
    return builder.bitcast(table, ir.DoubleType().as_pointer())


def _first_step_intrinsic(wide: bool, tables: np.ndarray):
    """The intrinsic of 64-bit (``wide``) or 32-bit weights over the pair tables ``tables`` (one per row)."""
    n_tables, entries_per_table = tables.shape
    table_bytes = np.ascontiguousarray(tables, dtype=np.float64).tobytes()
    table_name = "fmsim.ziggurat_pairs." + hashlib.sha256(table_bytes).hexdigest()[:16]

    @intrinsic
    def first_step(typingctx, words, k, n, table, scale, out, slow, n_slow):
        if not (_typed_arrays(words, out, slow) and isinstance(table, types.Integer)):
            return None
        sig = types.intp(words, k, n, table, scale, out, slow, n_slow)

        def codegen(context, builder, signature, args):
            words_v, k_v, n_v, table_v, scale_v, out_v, slow_v, ns_v = args
            wt, kt, nt, tt, _, ot, st, nst = signature.args
            i1, i8, i32, i64, f64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64), ir.DoubleType()
            vi32, vi64, vf64 = ir.VectorType(i32, LANES), ir.VectorType(i64, LANES), ir.VectorType(f64, LANES)
            const = lambda ty, v: ir.Constant(ty, [v] * LANES)  # noqa: E731

            data = {name: context.make_array(t)(context, builder, v).data
                    for name, t, v in (("w", wt, words_v), ("out", ot, out_v), ("slow", st, slow_v))}
            kk = context.cast(builder, k_v, kt, types.int64)
            ns = context.cast(builder, ns_v, nst, types.int64)
            base = builder.gep(_aligned_tables(builder, table_name, table_bytes),
                               [builder.mul(context.cast(builder, table_v, tt, types.int64),
                                            ir.Constant(i64, entries_per_table))])
            if wide:  # 64-bit word of weight k: words[2k] high, words[2k + 1] low; as one little-endian load, rotated
                first = builder.gep(data["w"], [builder.mul(kk, ir.Constant(i64, 2))])
                pairs = builder.load(builder.bitcast(first, vi64.as_pointer()), align=4)
                r = builder.or_(builder.shl(pairs, const(vi64, 32)), builder.lshr(pairs, const(vi64, 32)))
                rabs = builder.and_(builder.lshr(r, const(vi64, 9)), const(vi64, _MASK52))
                low_word = 1  # the word whose low 9 bits are the index: words[2k + 1]
            else:
                first = builder.gep(data["w"], [kk])
                r = builder.zext(builder.load(builder.bitcast(first, vi32.as_pointer()), align=4), vi64)
                rabs = builder.lshr(r, const(vi64, 9))
                low_word = 0
            # The tables: lane l's entry pair (wn9[i], kn9[i]) by one 16-byte load (its index from a scalar load
            # of the word), two lanes to a 256-bit vector, four to a 512-bit one, then even and odd entries apart.
            v2f, v4i32 = ir.VectorType(f64, 2), ir.VectorType(i32, 4)
            stride = 2 if wide else 1
            entries = []
            for lane in range(LANES):
                word = builder.load(builder.gep(first, [ir.Constant(i64, stride * lane + low_word)]), align=4)
                i = builder.zext(builder.and_(word, ir.Constant(i32, 0x1FF)), i64)
                at = builder.gep(base, [builder.shl(i, ir.Constant(i64, 1))])
                entries.append(builder.load(builder.bitcast(at, v2f.as_pointer()), align=16))
            two = [builder.shuffle_vector(entries[2 * j], entries[2 * j + 1], ir.Constant(v4i32, list(range(4))))
                   for j in range(4)]
            four = [builder.shuffle_vector(two[2 * j], two[2 * j + 1], ir.Constant(vi32, list(range(8))))
                    for j in range(2)]
            wn_lanes = builder.shuffle_vector(four[0], four[1], ir.Constant(vi32, list(range(0, 16, 2))))
            odd = ir.Constant(vi32, list(range(1, 16, 2)))
            kn_lanes = builder.bitcast(builder.shuffle_vector(four[0], four[1], odd), vi64)
            # float(rabs) * wn9[i], then * scale: the scalar step's two roundings (rabs < 2^52: sitofp is exact)
            x = builder.fmul(builder.fmul(builder.sitofp(rabs, vf64), wn_lanes), splat(builder, scale_v, vf64))
            if ot.dtype == types.float32:
                vf32 = ir.VectorType(ir.FloatType(), LANES)
                x = builder.fptrunc(x, vf32)
                builder.store(x, builder.bitcast(builder.gep(data["out"], [kk]), vf32.as_pointer()), align=4)
            else:
                builder.store(x, builder.bitcast(builder.gep(data["out"], [kk]), vf64.as_pointer()), align=8)
            columns = builder.add(splat(builder, kk, vi64), ir.Constant(vi64, list(range(LANES))))
            row_length = context.cast(builder, n_v, nt, types.int64)
            in_row = builder.icmp_signed("<", columns, splat(builder, row_length, vi64))
            rejected = builder.and_(builder.icmp_unsigned(">=", rabs, kn_lanes), in_row)
            compress = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vi64, [vi64, vi64, ir.VectorType(i1, LANES)]),
                "llvm.x86.avx512.mask.compress.v8i64")
            packed = builder.call(compress, [columns, undef(vi64), rejected])
            builder.store(packed, builder.bitcast(builder.gep(data["slow"], [ns]), vi64.as_pointer()), align=8)
            popcount = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i8, [i8]), "llvm.ctpop.i8")
            count = builder.call(popcount, [builder.bitcast(rejected, i8)])
            return builder.add(ns, builder.zext(count, i64))

        return sig, codegen

    first_step.__doc__ = f"""The first step of the {'64' if wide else '32'}-bit weights ``k .. k + 7`` of a row
    (words ``{'2k .. 2k + 15' if wide else 'k .. k + 7'}``, {'52' if wide else '23'}-bit magnitudes): ``out[k + l]``
    is weight ``k + l``'s candidate, and the columns ``k + l < n`` that need the slow path are appended to
    ``slow`` from ``slow[n_slow]`` on, in order.

    Parameters
    ----------
    words : ndarray, uint32
        The row's Philox words (read for all 8 columns, ``n`` or not: the rows' words come in whole steps of 16
        64-bit or 32 32-bit weights).
    k : int
        First column.
    n : int
        Row length: columns from ``n`` on are written to ``out`` but never listed as slow.
    table : int
        Which of the {n_tables} pair tables (rows of the ``tables`` given to :func:`first_step_intrinsics`).
    scale : float
        The law's unit scale.
    out : ndarray, shape (>= k + 8,), float64 or float32
        Written at ``k .. k + 7``.
    slow : ndarray, shape (>= n_slow + 8,), intp
        The slow list; the call writes 8 entries from ``slow[n_slow]`` on, of which the first (as many as the
        rejected lanes) are the list's new entries. (With ``n_slow <= k``, a list of ``k + 8`` entries fits.)
    n_slow : int
        Length of the list before the call.

    Returns
    -------
    int
        Length of the list after the call.
    """
    return first_step


def first_step_intrinsics(tables: np.ndarray):
    """The first step's intrinsics ``(lanes64, lanes32)`` over the pair tables ``tables``.

    Parameters
    ----------
    tables : ndarray, shape (n_tables, 1024), float64
        One :func:`pair_table` per row; the intrinsics embed them as one 64-byte aligned constant, and their
        argument ``table`` picks a row.

    Returns
    -------
    tuple of two numba intrinsics
        ``lanes64(words, k, n, table, scale, out, slow, n_slow)`` for 64-bit weights (words ``2k .. 2k + 15``,
        52-bit magnitudes) and ``lanes32`` (the same arguments) for 32-bit weights (words ``k .. k + 7``,
        23-bit magnitudes); each returns the slow list's new length.
    """
    tables = np.array(tables, dtype=np.float64)
    if tables.ndim != 2 or tables.shape[1] != 1024:
        raise ValueError(f"tables: expected shape (n_tables, 1024), got {tables.shape}")
    return _first_step_intrinsic(True, tables), _first_step_intrinsic(False, tables)
