"""Where one row of the ``full`` kernel spends its time, on one core: the profile behind ``bench_fc``.

A row of a hidden layer of width 100 draws about 50 weights (one per nonzero
input, stream layouts 4 and 5). Its cost splits into stages that this script times
apart, single-threaded, in one process, round-robin (best of ``--repeat``):

* ``words``: the row's Philox words (:func:`fmsim.laws.row_words`, whole vector steps of 4 or 8 blocks);
  ``(grouped)`` the same words per row drawn 8 rows at a time, unpadded, as the FC kernels draw them
  (:func:`fmsim.sampling.row_groups.group_words`);
* ``first step``: the ziggurat's first step on those words (``_ziggurat_fast_row``: in 8 AVX-512 vector
  lanes where numba compiles with AVX-512, :mod:`fmsim.sampling.ziggurat_lanes`; column ``1st step, scalar``
  times the one-weight-at-a-time step that AVX2 machines run, on this machine);
* ``slow path``: the whole row minus the same row with the slow draws stubbed
  out (about 1.5% of draws, each one more Philox call, an ``exp`` and
  mispredicted branches); ``slow draws/row`` counts them;
* ``row``: :func:`fmsim.laws.standard_row`, all of the above plus calls;
  the float32 Gaussian and Laplace have no ziggurat: their ``first step`` is a
  float32 polynomial transform of the words (Box-Muller, or the Laplace inverse
  CDF: :func:`fmsim.laws.polynomial32_row`, 8 lanes), with no slow path;
* ``kernel rest``: per row, the FC kernel at depth = width = 100 with every
  row's draw replaced by a cheap stub (gathering inputs, the dot product, the
  ReLU, ``M_j``); ``kernel`` is the real kernel, per row, and ``row called``
  the same kernel with :func:`fmsim.laws.rows_from_words` and its per-law pass
  called instead of inlined (as fmsim 0.4.0 compiled them), and ``rows alone`` with each
  row's words drawn alone and padded, and its weights made alone (as before row groups).

It also times two alternatives, after checking that they give the same words and weights: a row's words
alone in fmsim's 8-lane block function (``bench/_philox_lanes.py``; the kernels draw a group of rows' words
with it, ``(grouped)``, but a row alone with LLVM's loop of the scalar function, ``words``), alone and inside
the row, columns ``(lanes)``; and the 64-bit ziggurats' first step in 8 vector lanes with its table lookups
as gathers (``bench/_ziggurat_lanes.py``, column ``1st step, gathers``). The last
lines give the float32 / float64 ratio the measured parts allow.

The stubs and clones are built from the private functions of this fmsim
version; the script is a profile of this version, not a stable API.

Run:  python bench/bench_row.py [--repeat 7]   (about 2 minutes)
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # one core: before numba is imported

import argparse  # noqa: E402
import time  # noqa: E402
import types as pytypes  # noqa: E402

import numpy as np  # noqa: E402
from _philox_lanes import row_words_lanes  # noqa: E402
from _ziggurat_lanes import fast_row_lanes  # noqa: E402
from bench_fc import cpu_description  # noqa: E402
from numba import njit  # noqa: E402

from fmsim import laws  # noqa: E402
from fmsim.kernels import cpu  # noqa: E402
from fmsim.kernels.scalar import RENORM_HIGH  # noqa: E402
from fmsim.sampling import row_groups  # noqa: E402

K0, K1 = np.uint64(0x1234), np.uint64(0x5678)
LAWS = {"gaussian": 0, "laplace": 3, "truncated_normal": 4}


def clone(fn, jit=njit, **replace):
    """A fresh compilation (by ``jit``) of the numba function ``fn`` with some of its globals replaced (its
    closure variables kept)."""
    g = dict(fn.py_func.__globals__)
    g.update(replace)
    return jit(pytypes.FunctionType(fn.py_func.__code__, g, fn.py_func.__name__ + "_clone", fn.py_func.__defaults__,
                                    fn.py_func.__closure__))


@njit
def _no_slow(law, x, idx, block, lane, c1, c2, c3, k0, k1):
    return x


@njit(inline="always")
def _stub_row(law, bits32, n, c1, c2, c3, k0, k1, words, slow, out):
    """Weights +-1 from a hash of the row, layer and net: cheap, and a net's units and layers all differ, so
    about half the inputs stay nonzero, as with drawn weights."""
    h = (c1 * np.uint64(2654435761) + c2 * np.uint64(40503) + c3) * np.uint64(0x9E3779B97F4A7C15)
    for k in range(n):
        out[k] = 1.0 if ((h >> np.uint64(k & 63)) ^ np.uint64(k >> 6)) & np.uint64(1) else -1.0


@njit(inline="always")
def _stub_rows(law, bits32, n_rows, row_weights, n, c1, c2, c3, k0, k1, words, slow, out):
    _stub_row(law, bits32, n_rows * row_weights, c1, c2, c3, k0, k1, words, slow, out)


@njit(inline="always")
def _stub_polynomial_row(law, n, words, out):
    """As :func:`_stub_row`, hashed from a count of the calls kept in ``words[0]`` (the stub kernel draws no
    words): with the same weights for every group, a net's units were all alike and died within a few layers."""
    count = np.uint64(words[0])
    words[0] = np.uint32(count + np.uint64(1))
    _stub_row(0, True, n, count, np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0), words, words, out)


@njit(inline="always")
def _no_group_words(nb, group_rows, first_row, c2, c3, k0, k1, words, lanes):
    pass


# standard_row is inlined where it is called; so are its variants here, to compare like with like.
row_no_slow = clone(laws.standard_row, jit=njit(inline="always"),
                    row_from_words=clone(laws.row_from_words, jit=njit(inline="always"),
                                         rows_from_words=clone(laws.rows_from_words, jit=njit(inline="always"),
                                                               _ziggurat_row=clone(laws._ziggurat_row,
                                                                                   jit=njit(inline="always"),
                                                                                   _ziggurat_slow=_no_slow))))
row_lanes = clone(laws.standard_row, jit=njit(inline="always"), row_words=row_words_lanes)


def kernel_with_rows(**rows):
    """``cpu.fc_full`` compiled with its row functions (``cpu.drawn_row``'s globals) replaced: called with
    ``cpu.fc_full``'s arguments, it compiles the clone of ``cpu.fc_full_for_law(law, bits32)``."""
    drawn = clone(cpu.drawn_row, jit=njit(inline="always"), **rows)
    preactivation = clone(cpu.row_preactivation, jit=njit(inline="always"), drawn_row=drawn)
    kernels = {}

    def kernel(x, x_shift, widths, scales, bias_sds, law, k0, k1, net0, zero, bits32, *rest):
        if (law, bits32) not in kernels:
            kernels[law, bits32] = clone(cpu.fc_full_for_law(law, bits32), jit=njit(parallel=True),
                                         row_preactivation=preactivation)
        kernels[law, bits32](x, x_shift, widths, scales, bias_sds, k0, k1, net0, zero, *rest)
    return kernel


kernel_stub = kernel_with_rows(rows_from_words=_stub_rows, float32_polynomial_from_words=_stub_polynomial_row,
                               group_words=_no_group_words)
# The kernel as fmsim 0.4.0 compiled it: the row's weights and their per-law pass two called functions per row.
kernel_row_called = kernel_with_rows(float32_polynomial_from_words=njit(laws.polynomial32_row_from_words.py_func),
                                     rows_from_words=clone(laws.rows_from_words,
                                                           _ziggurat_row=njit(laws._ziggurat_row.py_func),
                                                           _uniform_row=njit(laws._uniform_row.py_func)))
# The kernel with each row's words drawn alone (laws.row_words, padded to whole vector steps), as before
# row groups: the group draws nothing, and each row draws its own words into the group's scratch.


@njit(inline="always")
def _whole_words(words, nb, r):
    return words


@njit(inline="always")
def _row_from_own_words(law, bits32, n_rows, row_weights, n, c1, c2, c3, k0, k1, words, slow, out):
    # (called for one row at a time: _one_row_at_a_time)
    laws.row_words(laws.row_blocks(law, bits32, n), c1, c2, c3, k0, k1, words)
    laws.row_from_words(law, bits32, n, c1, c2, c3, k0, k1, words, slow, out)


@njit(inline="always")
def _one_row_at_a_time(law, bits32, row_weights):
    return laws.polynomial32(law, bits32)


@njit(inline="always")
def _polynomial_from_own_words(law, n, words, out):
    # (its counters are not at hand here: every row gets the words of row n of layer 0, and the nets die,
    # so the float32 kernel with rows alone is not reported)
    laws.row_words(laws.polynomial32_blocks(n), np.uint64(n), np.uint64(0), np.uint64(0), K0, K1, words)
    cpu.float32_polynomial_from_words(law, n, words, out)


kernel_rows_alone = kernel_with_rows(rows_from_words=_row_from_own_words, made_by_groups=_one_row_at_a_time,
                                     float32_polynomial_from_words=_polynomial_from_own_words,
                                     group_words=_no_group_words, group_row_words=_whole_words)


def dispatching(row_fn):
    """``row_fn`` (``standard_row`` or a variant) for the ziggurat laws; the float32 Gaussian and Laplace rows
    from ``polynomial32_row``, as the kernels choose."""
    @njit(inline="always")
    def row(law, bits32, n, c1, c2, c3, k0, k1, words, slow, out):
        if laws.polynomial32(law, bits32):
            laws.polynomial32_row(law, n, c1, c2, c3, k0, k1, words, out)
        else:
            row_fn(law, bits32, n, c1, c2, c3, k0, k1, words, slow, out)
    return row


def row_loop(row_fn):
    @njit
    def loop(law, bits32, n, reps, words, slow, out):
        s = 0.0
        for r in range(reps):
            row_fn(law, bits32, n, np.uint64(r), np.uint64(3), np.uint64(5), K0, K1, words, slow, out)
            s += out[0]
        return s
    return loop


def words_loop(words_fn):
    @njit
    def loop(n_blocks, reps, words):
        s = np.uint32(0)
        for r in range(reps):
            words_fn(n_blocks, np.uint64(r), np.uint64(3), np.uint64(5), K0, K1, words)
            s ^= words[0]
        return s
    return loop


@njit
def group_loop(nb, reps, words, lanes):
    """``reps`` rows' words, drawn :data:`~fmsim.sampling.row_groups.ROW_GROUP` rows at a time."""
    s = np.uint32(0)
    for r in range(0, reps, row_groups.ROW_GROUP):
        row_groups.group_words(nb, row_groups.ROW_GROUP, np.uint64(r), np.uint64(3), np.uint64(5), K0, K1, words,
                               lanes)
        s ^= words[0]
    return s


def first_step_loop_of(step):
    @njit
    def loop(n_blocks, bits32, n, reps, words, kn, wn, table, scale, out, slow):
        """A row's words and its first step; returns the slow draws listed (time it, minus ``words``)."""
        t = 0
        for r in range(reps):
            laws.row_words(n_blocks, np.uint64(r), np.uint64(3), np.uint64(5), K0, K1, words)
            t += step(words, n, bits32, kn, wn, table, scale, out, slow)
        return t
    return loop


first_step_loop = first_step_loop_of(laws._ziggurat_fast_row)
first_step_scalar_loop = first_step_loop_of(laws._ziggurat_fast_row_scalar)


@njit
def first_step_lanes_loop(n_blocks, n, reps, words, kn, wn, scale, out, slow):
    """:func:`first_step_loop` with the first step in vector lanes, table lookups by gathers
    (``bench/_ziggurat_lanes.py``); 64-bit words, float64 weights."""
    t = 0
    for r in range(reps):
        laws.row_words(n_blocks, np.uint64(r), np.uint64(3), np.uint64(5), K0, K1, words)
        t += fast_row_lanes(words, n, kn, wn, scale, out, slow)
    return t


def check_lanes_first_step() -> None:
    """The gathers' first step lists the same slow draws and writes the same weights as fmsim's."""
    for law in (0, 3, 4):
        kn, wn, table = laws._ziggurat_tables.py_func(law, False)
        scale = laws._unit_scale.py_func(law)
        for n in (1, 7, 8, 9, 50, 301):
            nb = laws.row_blocks.py_func(law, False, n)
            words, slow, out, _ = laws.row_scratch.py_func(n)
            slow2, out2 = slow.copy(), out.copy()
            for r in range(300):
                laws.row_words(nb, np.uint64(r), np.uint64(3), np.uint64(5), K0, K1, words)
                a = laws._ziggurat_fast_row(words, n, False, kn, wn, table, scale, out, slow)
                b = fast_row_lanes(words, n, kn, wn, scale, out2, slow2)
                if a != b or not (np.array_equal(slow[:a], slow2[:b]) and
                                  np.array_equal(out[:n].view(np.uint64), out2[:n].view(np.uint64))):
                    raise AssertionError(f"the gathers' first step differs from fmsim's (law {law}, n {n})")


def best_of(fns: dict, repeat: int) -> dict:
    best = {k: np.inf for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def check_lanes_words() -> None:
    scalar, lanes = words_loop(laws.row_words), words_loop(row_words_lanes)
    for n_blocks in (0, 1, 7, 8, 9, 25, 200):
        a = np.zeros(4 * n_blocks + 4, np.uint32)
        b = a.copy()
        scalar(n_blocks, 3, a)
        lanes(n_blocks, 3, b)
        if not np.array_equal(a, b):
            raise AssertionError(f"vector-lane Philox words differ from the scalar ones ({n_blocks} blocks)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--n", type=int, default=50, help="weights drawn per row (default 50)")
    p.add_argument("--reps", type=int, default=100_000, help="rows per timing")
    a = p.parse_args(argv)
    print(f"CPU: {cpu_description()}; numba threads: {os.environ['NUMBA_NUM_THREADS']}")
    check_lanes_words()
    check_lanes_first_step()
    n, reps = a.n, a.reps
    words, slow, out, out32 = laws.row_scratch.py_func(max(n, 8))
    words = np.zeros(len(words) + 64, np.uint32)
    group_words, lanes = row_groups.row_group_scratch.py_func(max(n, 8))
    loops = {"row": row_loop(dispatching(laws.standard_row)), "row, no slow path": row_loop(dispatching(row_no_slow)),
             "row, vector-lane Philox": row_loop(dispatching(row_lanes))}
    wl, wv = words_loop(laws.row_words), words_loop(row_words_lanes)
    print(f"\nns per row of {n} weights (one core, best of {a.repeat}; {reps} rows per timing)")
    print(f"{'law':17s} {'prec':7s} {'words':>6s} {'(lanes)':>8s} {'(grouped)':>10s} {'1st step':>9s} "
          f"{'slow path':>10s} {'row':>6s} {'(lanes)':>8s} {'slow draws/row':>15s} {'1st step, scalar':>17s} "
          f"{'1st step, gathers':>18s}")
    rows = {}
    for law_name, law in LAWS.items():
        for bits32 in (False, True):
            poly32 = laws.polynomial32.py_func(law, bits32)  # no ziggurat: the words, then laws.polynomial32_row
            nb = (laws.polynomial32_blocks.py_func(n) if poly32 else  # the blocks the kernels' rows draw
                  laws.row_blocks.py_func(law, bits32, n))
            kn, wn, table = laws._ziggurat_tables.py_func(law, bits32)
            scale = laws._unit_scale.py_func(law)
            o = out32 if bits32 else out  # the kernels' scratch: float32 in float32 runs
            fns = {k: (lambda f=f, c=law, b=bits32, o=o: f(c, b, n, reps, words, slow, o)) for k, f in loops.items()}
            fns["words"] = lambda m=nb: wl(m, reps, words)
            fns["words, lanes"] = lambda m=nb: wv(m, reps, words)
            nb_grouped = laws.blocks_read.py_func(law, bits32, n)  # no padding
            fns["words, grouped"] = lambda m=nb_grouped: group_loop(m, reps, group_words, lanes)
            fns["words + 1st step"] = (fns["row"] if poly32 else
                                       lambda m=nb, b=bits32, kn=kn, wn=wn, p=table, s=scale, o=o:
                                       first_step_loop(m, b, n, reps, words, kn, wn, p, s, o, slow))
            if not poly32:
                fns["words + 1st step, scalar"] = (lambda m=nb, b=bits32, kn=kn, wn=wn, p=table, s=scale, o=o:
                                                   first_step_scalar_loop(m, b, n, reps, words, kn, wn, p, s, o,
                                                                          slow))
            if not bits32:  # the 64-bit ziggurats: the first step with gathers too
                fns["words + 1st step, gathers"] = (lambda m=nb, kn=kn, wn=wn, s=scale:
                                                    first_step_lanes_loop(m, n, reps, words, kn, wn, s, out, slow))
            for f in fns.values():
                f()
            n_slow = (0.0 if poly32 else
                      first_step_loop(nb, bits32, n, reps, words, kn, wn, table, scale, o, slow) / reps)
            t = {k: v / reps * 1e9 for k, v in best_of(fns, a.repeat).items()}
            prec = "float32" if bits32 else "float64"
            rows[law_name, prec] = t
            print(f"{law_name:17s} {prec:7s} {t['words']:6.0f} {t['words, lanes']:8.0f} {t['words, grouped']:10.0f} "
                  f"{t['words + 1st step'] - t['words']:9.0f} {t['row'] - t['row, no slow path']:10.0f} "
                  f"{t['row']:6.0f} {t['row, vector-lane Philox']:8.0f} {n_slow:15.2f} "
                  + (f"{t['words + 1st step, scalar'] - t['words']:17.0f} " if not poly32 else f"{'-':>17s} ")
                  + (f"{t['words + 1st step, gathers'] - t['words']:18.0f}" if not bits32 else f"{'-':>18s}"))

    # The kernel, per row: depth = width = 100, Gaussian, real rows and stub rows.
    d = w = 100
    widths = np.full(d + 1, w, dtype=np.int64)
    scales = np.full(d, np.sqrt(2.0 / w))
    x = np.random.default_rng(0).standard_normal(w)
    x *= np.sqrt(w) / np.linalg.norm(x)
    nets = 128
    lengths, logs = np.empty((nets, d + 1)), np.empty((nets, d + 1))
    no_first_layer = np.empty((2, 0)), np.zeros(1, dtype=np.int64), np.zeros(3)
    kern = {}
    for prec, zero, b32 in (("float64", 0.0, False), ("float32", np.float32(0.0), True)):
        for name, k in (("kernel", cpu.fc_full), ("kernel rest", kernel_stub),
                        ("kernel, row called", kernel_row_called), ("kernel, rows alone", kernel_rows_alone)):
            kern[name, prec] = (lambda k=k, zero=zero, b32=b32:
                                k(x, 0, widths, scales, np.zeros(d), 0, K0, K1, 0, zero, b32, *no_first_layer,
                                  RENORM_HIGH, lengths, logs))
    for f in kern.values():
        f()
    tk = {k: v / (nets * d * w) * 1e9 for k, v in best_of(kern, a.repeat).items()}
    print(f"\nFC kernel, Gaussian, depth = width = {w} (about {w // 2} draws per row), ns per row:")
    for prec in ("float64", "float32"):
        print(f"  {prec}: kernel {tk['kernel', prec]:.0f}, of which rest (stub rows) {tk['kernel rest', prec]:.0f}; "
              f"with the row's functions called (as in 0.4.0) {tk['kernel, row called', prec]:.0f}"
              + (f"; each row's words drawn alone (padded to whole vector steps, as before row groups) "
                 f"{tk['kernel, rows alone', prec]:.0f}" if prec == "float64" else ""))
    print(f"  float32 / float64 speed of the kernel: {tk['kernel', 'float64'] / tk['kernel', 'float32']:.2f}x")
    g64, g32 = rows["gaussian", "float64"], rows["gaussian", "float32"]
    rest = tk["kernel rest", "float64"]
    print(f"  with the kernel rest ({rest:.0f} ns) and the measured Gaussian rows: "
          f"{(g64['row'] + rest) / (g32['row'] + rest):.2f}x; with no slow path either: "
          f"{(g64['row, no slow path'] + rest) / (g32['row, no slow path'] + rest):.2f}x; "
          f"with words and first step alone: "
          f"{g64['words + 1st step'] / g32['words + 1st step']:.2f}x")


if __name__ == "__main__":
    main()
