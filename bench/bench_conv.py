"""Conv and residual nets: fmsim's ``full`` kernels against PyTorch's convolution, and against the FMA peak.

Rows, all in one run with the same thread count:

* PyTorch CPU, what a researcher would write: per batch of 64 nets, ``torch.randn`` weights scaled to He,
  one grouped ``F.conv2d`` (``F.conv1d``) per layer (``groups`` = nets) on an input circularly padded by
  ``F.pad(mode="circular")``, ReLU, and ``M_j`` of every net, in float32 and float64 (skipped, with a note,
  when torch is not installed: ``pip install -e ".[bench]"``).
* fmsim ``full`` (He, Gaussian weights) in float64 and float32 at the same sizes.
* fmsim ``full`` on a residual net with ReLU-ending modules, uniform weights (32 random bits each in both
  precisions) and Gaussian ones (64 bits in float64, 32 in float32), in float64 and float32; and Philox alone
  producing the words the uniform weights take (the RNG ceiling, as in ``bench_fc.py``).

Every row prints nets/s, multiply-adds per second (a conv layer is ``C_out C_in k^dim H W`` of them, zero
inputs included; a residual module ``n k + k n``), its ratio to PyTorch float32 at the same size, and its
fraction of the machine's FMA peak for its precision:

    peak = cores x FMA lanes per core per cycle x clock.

The lanes per core per cycle are measured here (:func:`measured_fma_lanes`): independent chains of float32
vector fused multiply-adds, operands in registers, on every thread at once, in 256-bit and (where numba
compiles with AVX-512) 512-bit vectors, the better kept. That is 16 float32 lanes (8 float64) on cores with
two 256-bit FMA pipes or one 512-bit one (Intel client cores, AMD Zen 2 to Zen 4) and 32 on Xeons with two
512-bit FMA units; ``--fma-lanes`` sets the number instead, and ``bench/fma_peak.c`` measures it outside
numba. The clock is measured too: a chain of dependent scalar fused multiply-adds runs at one per 4 cycles
(their latency on every Intel core since Skylake and every AMD Zen), timed on all threads at once.

Run:  python bench/bench_conv.py [--nets 256] [--repeat 3]   (about 3 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

import fmsim
from fmsim.kernels.scalar import fused_multiply_add
from fmsim.kernels.simd import VECTOR_BITS
from fmsim.running.simulate import make_config, run_chunk

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fc import cpu_description, philox_ceiling, timed  # noqa: E402

#: (name, channels, spatial, kernel, depth) of the issue's table.
CONV_SIZES = [
    ("16 ch, 16x16, 3x3, d10", 16, (16, 16), 3, 10),
    ("32 ch, 32x32, 3x3, d8", 32, (32, 32), 3, 8),
    ("64 ch, 16x16, 3x3, d6", 64, (16, 16), 3, 6),
    ("64 ch, 1D 256, k5, d10", 64, (256,), 5, 10),
]
IN_CHANNELS = 4
FMA_LATENCY = 4  # cycles, scalar FMA: Intel Skylake and later, AMD Zen 1-4


@njit(parallel=True, cache=True)
def fma_chain(n, threads, out):
    """``threads`` independent chains of ``n`` dependent scalar fused multiply-adds (one per thread)."""
    for t in prange(threads):
        a = 1.0 + 1e-9 * t
        for _ in range(n):
            a = fused_multiply_add(a, 0.999999999, 1e-9)
        out[t] = a


def _fma_rounds_intrinsic(bits: int):
    """An intrinsic ``fma_rounds(n, out)``: ``ACCUMULATORS`` independent chains of ``n`` float32 vector fused
    multiply-adds in ``bits``-bit vectors, operands in registers (as ``bench/fma_peak.c``); ``out[0]`` a lane of
    their sum, so that none is optimized away."""
    lanes = bits // 32

    @intrinsic
    def fma_rounds(typingctx, n, out):
        sig = types.void(n, out)

        def codegen(context, builder, signature, args):
            n_v, out_v = args
            f32 = ir.FloatType()
            vty = ir.VectorType(f32, lanes)
            vfma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                                  f"llvm.fma.v{lanes}f32")
            mul = ir.Constant(vty, [ir.Constant(f32, 0.9999999)] * lanes)
            add = ir.Constant(vty, [ir.Constant(f32, 1e-8)] * lanes)
            slots = [cgutils.alloca_once_value(builder, ir.Constant(vty, [ir.Constant(f32, float(i))] * lanes))
                     for i in range(ACCUMULATORS)]
            count = context.cast(builder, n_v, signature.args[0], types.int64)
            with cgutils.for_range(builder, count):
                for slot in slots:
                    builder.store(builder.call(vfma, [builder.load(slot), mul, add]), slot)
            total = builder.load(slots[0])
            for slot in slots[1:]:
                total = builder.fadd(total, builder.load(slot))
            data = context.make_array(signature.args[1])(context, builder, out_v).data
            builder.store(builder.extract_element(total, ir.Constant(ir.IntType(32), 0)), data)
            return context.get_dummy_value()

        return sig, codegen

    return fma_rounds


#: Independent accumulators: enough to cover a 4-cycle FMA latency on two FMA pipes, and fewer than the vector
#: registers (16 with AVX2).
ACCUMULATORS = 12
_fma_rounds_256 = _fma_rounds_intrinsic(256)
_fma_rounds_512 = _fma_rounds_intrinsic(512)


@njit(parallel=True)
def _fma_rounds_on_threads(n, wide, out):
    for t in prange(out.shape[0]):
        if wide:
            _fma_rounds_512(n, out[t])
        else:
            _fma_rounds_256(n, out[t])


def measured_fma_lanes(clock: float, threads: int) -> float:
    """Float32 FMA lanes per core per cycle, measured on ``threads`` threads at once with operands in registers
    (``ACCUMULATORS`` independent vector chains; the clock from :func:`measured_clock`): the better of 256-bit and,
    where numba compiles with AVX-512, 512-bit vectors."""
    out = np.zeros((threads, 1), dtype=np.float32)
    best = 0.0
    for bits in (256, 512) if VECTOR_BITS == 512 else (256,):
        wide, n = bits == 512, 50_000_000 * 256 // bits
        _fma_rounds_on_threads(1000, wide, out)
        dt = timed(lambda wide=wide, n=n: _fma_rounds_on_threads(n, wide, out), 3)
        best = max(best, n * ACCUMULATORS * (bits // 32) / dt / clock)
    return best


def measured_clock(threads: int) -> float:
    """Clock in Hz from :func:`fma_chain` on every thread at once (a loaded core runs its all-core clock)."""
    out = np.empty(threads)
    fma_chain(1000, threads, out)
    n = 200_000_000
    dt = timed(lambda: fma_chain(n, threads, out), 3)
    return n * FMA_LATENCY / dt


def conv_macs(arch: fmsim.Conv) -> float:
    positions = float(np.prod(arch.spatial))
    return sum(arch.channels[j] * arch.fan_in(j) * positions for j in range(1, arch.depth + 1))


def torch_conv(torch, n_nets: int, arch: fmsim.Conv, dtype, batch: int = 64) -> np.ndarray:
    """``M_0..M_d`` of ``n_nets`` He nets, ``batch`` at a time as one grouped convolution per layer."""
    F = torch.nn.functional
    g = torch.Generator().manual_seed(0)
    dims = len(arch.spatial)
    conv = F.conv2d if dims == 2 else F.conv1d
    k = arch.kernel
    pad = (k // 2, k // 2) * dims
    c0 = arch.channels[0]
    x = torch.randn((c0,) + arch.spatial, generator=g, dtype=dtype)
    x *= x.numel() ** 0.5 / torch.linalg.norm(x)
    out = torch.empty((n_nets, arch.depth + 1), dtype=torch.float64)
    with torch.no_grad():
        for b0 in range(0, n_nets, batch):
            b = min(batch, n_nets - b0)
            z = x.repeat((1, b) + (1,) * dims)  # (1, b c0, *spatial)
            out[b0:b0 + b, 0] = 1.0
            for j in range(1, arch.depth + 1):
                c_in, c_out = arch.channels[j - 1], arch.channels[j]
                w = torch.randn((b * c_out, c_in) + (k,) * dims, generator=g, dtype=dtype)
                w.mul_((2.0 / arch.fan_in(j)) ** 0.5)
                z = torch.relu(conv(F.pad(z, pad, mode="circular"), w, groups=b))
                out[b0:b0 + b, j] = z.view(b, -1).square().mean(1).double()
    return out


def fmsim_chunk(arch, init, n_nets: int, precision: str):
    """The ``full`` kernel on one chunk of ``n_nets`` nets (what :func:`fmsim.simulate` runs, without the reduction)."""
    cfg = make_config(arch, init, n_nets, 1, method="full", precision=precision, chunk_size=1024 * -(-n_nets // 1024))
    run_chunk(make_config(arch, init, 2, 0, method="full", precision=precision), 0)  # compile
    return lambda: run_chunk(cfg, 0)


def simd_check() -> str:
    """Packed fused multiply-adds in the float32 and float64 conv kernels, by register width: each kernel compiled
    afresh with its own options less the cache (numba does not keep the assembly of cached code), on the
    arguments its run passes (``ConvFull.run_cpu``, caught at ``run_over_nets``)."""
    from fmsim.kernels import cpu
    from fmsim.running.launch import plan

    asm = ""
    for prec in ("float64", "float32"):
        cfg = make_config(fmsim.Conv((2, 3), (5, 5), 3), fmsim.Init(), 2, 0, method="full", precision=prec)
        calls = []
        original = cpu.run_over_nets
        cpu.run_over_nets = lambda kernel, args, net0_at, outputs=2, calls=calls: calls.append((kernel, args))
        try:
            plan(cfg, 0).run_cpu(np.empty((2, 2)), np.empty((2, 2)))  # the Gaussian kernel of this precision
        finally:
            cpu.run_over_nets = original
        (kernel, args), = calls
        options = {k: v for k, v in kernel.targetoptions.items() if k not in ("cache", "nopython")}  # (njit: nopython)
        fresh = njit(**options)(kernel.py_func)
        fresh(*args)
        asm += "".join(fresh.inspect_asm().values())
    counts = {r: len(re.findall(rf"vfmadd\w+p[sd]\s+[^\n]*%{r}", asm)) for r in ("xmm", "ymm", "zmm")}
    return (f"conv blocks in {VECTOR_BITS}-bit vectors (fmsim.kernels.simd.VECTOR_BITS); packed vfmadd in conv_full: "
            + ", ".join(f"{r} {c}" for r, c in counts.items()))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", type=int, default=256, help="nets per row (fmsim and PyTorch)")
    p.add_argument("--repeat", type=int, default=3, help="round-robin passes over all rows; best kept")
    p.add_argument("--fma-lanes", type=float, help="float32 FMA lanes per core per cycle (the peak; default: "
                   "measured)")
    a = p.parse_args(argv)
    threads = numba.get_num_threads()
    print(f"CPU: {cpu_description()}")
    clock = measured_clock(threads)
    lanes = a.fma_lanes if a.fma_lanes is not None else measured_fma_lanes(clock, threads)
    how = "given" if a.fma_lanes is not None else "measured: vector FMA chains, operands in registers"
    peak32 = threads * lanes * clock
    print(f"{os.cpu_count()} cores; numba and torch threads {threads}; clock {clock / 1e9:.2f} GHz (measured: "
          f"dependent FMA chain, {FMA_LATENCY} cycles each); {lanes:.1f} float32 FMA lanes per core per cycle "
          f"({how}); FMA peak = {threads} x {lanes:.1f} x clock = {peak32:.3g} MAC/s float32, {peak32 / 2:.3g} "
          "float64")

    try:
        import torch
    except ImportError:
        torch = None
        print("(PyTorch rows skipped: torch is not installed; pip install -e '.[bench]')")
    if torch is not None:
        torch.set_num_threads(threads)

    he = fmsim.Init.scheme("he")
    rows: list[tuple[str, str, str, float, object]] = []  # (group, name, precision, MACs per net, fn)
    for label, ch, spatial, k, d in CONV_SIZES:
        arch = fmsim.Conv((IN_CHANNELS,) + (ch,) * d, spatial, k)
        macs = conv_macs(arch)
        if torch is not None:
            for dt, prec in ((torch.float32, "float32"), (torch.float64, "float64")):
                torch_conv(torch, 64, arch, dt)  # warm up
                rows.append((label, f"PyTorch {torch.__version__} conv {prec}", prec, macs,
                             lambda arch=arch, dt=dt: torch_conv(torch, a.nets, arch, dt)))
        for prec in ("float64", "float32"):
            rows.append((label, f"fmsim full {prec}", prec, macs, fmsim_chunk(arch, he, a.nets, prec)))

    n, k, mods = 256, 256, 10
    res = fmsim.Residual(width=n, module_widths=(k,), etas=(1.0 / np.sqrt(mods),) * mods, ending="relu")
    res_rows = {}
    for law in ("uniform", "gaussian"):  # 32 bits per weight in both precisions; 64 in float64, 32 in float32
        res_label = f"residual n = k = {n}, {mods} ReLU-ending modules, {law}"
        for prec in ("float64", "float32"):
            res_rows[law, prec] = len(rows)
            rows.append((res_label, f"fmsim full {prec}", prec, float(mods * 2 * n * k),
                         fmsim_chunk(res, fmsim.Init(law, 2.0), 4 * a.nets, prec)))

    # The residual rows draw about n k + k n / 2 uniform weights per module (the hidden layer's input is the
    # stream, the output layer's a ReLU's: half zero), 4 per Philox call in both precisions (fmsim.laws).
    draws = mods * (n * k + k * n // 2) * 4 * a.nets
    k0, k1 = np.uint64(1), np.uint64(2)
    calls_per_row = 64
    philox_ceiling(64, calls_per_row, k0, k1)
    n_rows = draws // (4 * calls_per_row)
    ceiling = [np.inf]

    best = {i: np.inf for i in range(len(rows))}
    for _ in range(a.repeat):
        for i, row in enumerate(rows):
            best[i] = min(best[i], timed(row[4], 1))
        ceiling[0] = min(ceiling[0], timed(lambda: philox_ceiling(n_rows, calls_per_row, k0, k1), 1))

    print(f"\n{'row':<36} {'nets/s':>10} {'MAC/s':>10} {'vs torch f32':>13} {'of peak':>8}")
    group = None
    torch32 = {}
    above_peak = False
    for i, (g, name, prec, macs, _) in enumerate(rows):
        nets = (4 * a.nets) if g.startswith("residual") else a.nets
        rate = nets / best[i]
        if name.startswith("PyTorch") and prec == "float32":
            torch32[g] = rate
        if g != group:
            print(f"-- {g} ({macs:.3g} MACs per net)")
            group = g
        ratio = f"{rate / torch32[g]:.2f}x" if g in torch32 else "-"
        peak = peak32 if prec == "float32" else peak32 / 2
        above_peak |= rate * macs > peak
        print(f"{name:<36} {rate:>10.4g} {rate * macs:>10.3g} {ratio:>13} {rate * macs / peak:>8.1%}")
    if above_peak:
        print(f"(a row above 100% of the peak: this CPU retires more than {lanes:.1f} float32 FMA lanes a cycle; "
              "measure them with bench/fma_peak.c and pass that number as --fma-lanes)")
    print()
    for law in ("uniform", "gaussian"):
        ratio = best[res_rows[law, "float64"]] / best[res_rows[law, "float32"]]
        print(f"residual {law} float32 / float64: {ratio:.2f}x")
    i64, i32 = res_rows["uniform", "float64"], res_rows["uniform", "float32"]
    print(f"residual uniform: weight draws/s float64 "
          f"{draws / best[i64]:.3g}, float32 {draws / best[i32]:.3g}; Philox alone (RNG ceiling, 4 uniform "
          f"weights per call) {draws / ceiling[0]:.3g}: {ceiling[0] / best[i64]:.0%} and {ceiling[0] / best[i32]:.0%} "
          "of it")
    print(simd_check())


if __name__ == "__main__":
    main()
