"""The ``full`` kernel against what a user would write (NumPy, PyTorch) and against the RNG ceiling.

Work: ``M_j`` of random ReLU nets with depth = width = ``--size`` (``size**3``
weights per net). ``weights/s`` counts a net's weights, as the NumPy and PyTorch rows
draw them; since stream layout 4 fmsim draws only the weights that meet a nonzero
input (about half after a ReLU), so its ``draws/s`` column, and the fraction of the
RNG ceiling, count the draws it makes. Rows, all in one run with the same thread count:

* NumPy batched (float64): a fresh ``standard_normal((b, n, n))`` per layer, ``matmul``, ReLU.
* PyTorch CPU ``torch.randn(b, n, n)`` + ``bmm``, float32 and float64 (skipped, with a
  note, when torch is not installed: ``pip install -e ".[bench]"``).
* fmsim ``full`` for every law, in float64 and float32.
* fmsim ``full`` on a periodic conv net and on a ReLU-ending residual net (weight draws
  per second; a conv weight is drawn once and used at every position).
* RNG ceiling: Philox4x32-10 alone, producing words as the kernels do (a ``prange`` loop
  storing each row's words), in the fastest form this fmsim has: its block functions, 32 blocks a step
  then 8 (``fmsim.sampling.rng.philox4x32_x32``; 8 a step alone, ``philox4x32_x8``, as the
  commits before it drew them, is timed beside it), else LLVM's vector loop of the scalar block
  function. Every fmsim row shows its fraction of the ceiling for its bit budget (2, 4 or 128
  weights per Philox call, ``fmsim.laws``). LLVM's loop, and the same loop compiled without its
  vectorizers in a subprocess (the scalar generator), are timed beside it.
* fmsim ``exact`` (nets per second; it draws no weights).
* Carrying vectors (``--gram-only`` runs just these): ``full`` with an input and 1 or 2 tangents,
  and with 2 inputs, against the input alone on the same nets; the exact Gram chain against
  ``exact`` k = 1; PyTorch's JVP written as one ``bmm`` of the stacked pair per layer; the same on a
  ReLU-ending residual net (``full`` k = 1, its one-vector sampler, its Gram chain, PyTorch's JVP).
* SIMD check: what LLVM made of a row's Philox pass, of a row group's (its multiplies and shuffles
  on `zmm`), of the ziggurat's first step, of the float32
  Gaussian row's transform (its square roots: 16 lanes to a `zmm`, 8 to a `ymm`) and of a row's
  float64 dot product (its partial sums' adds in one `ymm`, and the scalar ones of its last terms).
* Renormalization cost (``--renorm-only`` runs just this): the Gaussian ``full`` kernel with
  its window (``[2^-64, 2^64]``), never renormalizing, and renormalizing after every layer,
  for He (M stays near 1) and LeCun (M halves per layer: crosses the window), interleaved.

Run:  python bench/bench_fc.py [--size 100] [--nets 2048] [--repeat 3]   (about 8 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np
from fmsim.rng import philox4x32
from numba import njit, prange

import fmsim

LAWS = ["gaussian", "uniform", "rademacher", "laplace", "truncated_normal"]


def cpu_description() -> str:
    """CPU model and its SIMD flags, from /proc/cpuinfo, and the features numba compiles for where
    ``NUMBA_CPU_FEATURES`` sets them (e.g. AVX-512 switched off to time the AVX2 path)."""
    model, flags = platform.processor() or "unknown CPU", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    flags = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl")
                             if f in have]
                    break
    except OSError:
        pass
    target = ""
    if os.environ.get("NUMBA_CPU_FEATURES"):  # numba compiles for other features than the CPU's own
        on = set(os.environ["NUMBA_CPU_FEATURES"].split(","))
        target = "; numba compiles for (NUMBA_CPU_FEATURES): " + (
            " ".join(f for f in ("avx", "avx2", "fma", "avx512f") if "+" + f in on) or "no AVX")
    return f"{model}; SIMD: {' '.join(flags) or 'unknown'}{target}"


def numpy_batched(n_nets: int, depth: int, width: int, seed: int, batch: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(width)
    x *= np.sqrt(width) / np.linalg.norm(x)
    out = np.empty((n_nets, depth + 1))
    scale = np.sqrt(2.0 / width)
    for b0 in range(0, n_nets, batch):
        b = min(batch, n_nets - b0)
        z = np.broadcast_to(x, (b, width))
        out[b0:b0 + b, 0] = 1.0
        for j in range(1, depth + 1):
            w = rng.standard_normal((b, width, width))
            w *= scale
            z = np.maximum(np.matmul(w, z[:, :, None])[:, :, 0], 0.0)
            out[b0:b0 + b, j] = (z * z).mean(1)
    return out


def torch_batched(torch, n_nets: int, depth: int, width: int, dtype, batch: int = 256):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(width, generator=g, dtype=dtype)
    x *= width**0.5 / torch.linalg.norm(x)
    out = torch.empty((n_nets, depth + 1), dtype=torch.float64)
    scale = (2.0 / width) ** 0.5
    with torch.no_grad():
        for b0 in range(0, n_nets, batch):
            b = min(batch, n_nets - b0)
            z = x.expand(b, width).unsqueeze(2)
            out[b0:b0 + b, 0] = 1.0
            for j in range(1, depth + 1):
                w = torch.randn((b, width, width), generator=g, dtype=dtype)
                w.mul_(scale)
                z = torch.relu(torch.bmm(w, z))
                out[b0:b0 + b, j] = (z * z).mean((1, 2)).double()
    return out


def torch_carried(torch, n_nets: int, depth: int, width: int, dtype, batch: int = 256) -> None:
    """An input and one tangent through the same PyTorch nets, as a user would write the JVP: one ``bmm`` of the
    stacked pair per layer, the tangent masked by the input's pre-activations."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(width, generator=g, dtype=dtype)
    u = torch.randn(width, generator=g, dtype=dtype)
    scale = (2.0 / width) ** 0.5
    with torch.no_grad():
        for b0 in range(0, n_nets, batch):
            b = min(batch, n_nets - b0)
            zv = torch.stack([x, u], dim=1).expand(b, width, 2)
            for _ in range(depth):
                w = torch.randn((b, width, width), generator=g, dtype=dtype)
                w.mul_(scale)
                h = torch.bmm(w, zv)
                zv = h * (h[:, :, :1] > 0)
            (zv * zv).mean(1)


def torch_residual_carried(torch, n_nets: int, modules: int, width: int, dtype, batch: int = 256) -> None:
    """An input and one tangent through the same PyTorch residual nets (ReLU-ending modules with one hidden layer of
    ``width``, ``eta = 1 / sqrt(modules)``, He): one ``bmm`` of the stacked pair per layer, the tangent masked by the
    input's pre-activations."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(width, generator=g, dtype=dtype)
    u = torch.randn(width, generator=g, dtype=dtype)
    scale, eta = (2.0 / width) ** 0.5, modules**-0.5
    with torch.no_grad():
        for b0 in range(0, n_nets, batch):
            b = min(batch, n_nets - b0)
            y = torch.stack([x, u], dim=1).expand(b, width, 2)
            for _ in range(modules):
                zv = y
                for _ in range(2):
                    w = torch.randn((b, width, width), generator=g, dtype=dtype)
                    w.mul_(scale)
                    h = torch.bmm(w, zv)
                    zv = h * (h[:, :, :1] > 0)
                y = y + eta * zv
            (y * y).mean(1)


def gram_rows(n: int, nets: int, repeat: int, torch) -> None:
    """Carrying vectors: ``full`` with k = 2 and 3 against k = 1 on the same nets, the exact Gram chain, and a
    PyTorch JVP by ``bmm``; best of ``repeat`` round-robin passes, nets/s."""
    fc = fmsim.FullyConnected.constant(depth=n, width=n)
    he = fmsim.Init.scheme("he")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n)
    u = rng.standard_normal((2, n))
    exact_nets = 200 * nets
    cases = [
        ("full, k = 1 (the input alone)", nets, dict(x=x, method="full")),
        ("full, k = 2: input + 1 tangent", nets, dict(x=x, tangents=u[:1], method="full")),
        ("full, k = 3: input + 2 tangents", nets, dict(x=x, tangents=u, method="full")),
        ("full, k = 2 inputs", nets, dict(inputs=np.stack([x, u[0]]), method="full")),
        ("exact, k = 1", exact_nets, dict(x=x, method="exact")),
        ("exact Gram chain: input + 1 tangent", exact_nets, dict(x=x, tangents=u[:1], method="exact")),
        ("exact Gram chain: k = 2 inputs", nets * 4, dict(inputs=np.stack([x, u[0]]), method="exact")),
        ("exact Gram chain, orthogonal: input + 1 tangent", exact_nets // 4,
         dict(x=x, tangents=u[:1], method="exact", init=fmsim.Init(law="orthogonal", c=2.0))),
    ]
    # A residual net of n // 2 ReLU-ending modules, each with one hidden layer of width n (n^2 weights per layer,
    # as the fully connected rows): its full kernel, its one-vector sampler and its Gram chain.
    modules = n // 2
    res = fmsim.Residual(n, (modules**-0.5,) * modules, module_widths=(n,), ending="relu")
    cases += [
        (f"residual ({modules} modules), full, k = 1", nets, dict(x=x, method="full", arch=res)),
        (f"residual ({modules} modules), exact, k = 1", exact_nets // 4, dict(x=x, method="exact", arch=res)),
        (f"residual ({modules} modules), exact Gram chain: input + 1 tangent", exact_nets // 20,
         dict(x=x, tangents=u[:1], method="exact", arch=res)),
        (f"residual ({modules} modules), exact Gram chain: k = 2 inputs", exact_nets // 20,
         dict(inputs=np.stack([x, u[0]]), method="exact", arch=res)),
    ]

    def run(m: int, kw: dict) -> None:
        fmsim.simulate(kw.get("arch", fc), kw.get("init", he), m, 1, chunk_size=16384,
                       **{k: v for k, v in kw.items() if k not in ("init", "arch")})

    runs = [(name, m, (lambda m=m, kw=kw: run(m, kw))) for name, m, kw in cases]
    if torch is not None:
        for dt, label in ((torch.float32, "float32"), (torch.float64, "float64")):
            torch_carried(torch, 16, n, n, dt)
            runs.append((f"PyTorch {torch.__version__} bmm JVP (input + 1 tangent) {label}", nets,
                         lambda dt=dt: torch_carried(torch, nets, n, n, dt)))
        torch_residual_carried(torch, 16, 2, n, torch.float32)
        runs.append((f"residual ({modules} modules), PyTorch bmm JVP (input + 1 tangent) float32", nets,
                     lambda: torch_residual_carried(torch, nets, modules, n, torch.float32)))
    for _, _, kw in cases:  # compile
        run(64, kw)
    best = [np.inf] * len(runs)
    for _ in range(repeat):
        for i, (_, _, fn) in enumerate(runs):
            best[i] = min(best[i], timed(fn, 1))
    rate = [m / t for (_, m, _), t in zip(runs, best)]
    print(f"\nCarrying vectors (depth = width = {n}, He, float64 unless named; nets/s, best of {repeat}):")
    for (name, _, _), r in zip(runs, rate):
        print(f"  {name:68s} {r:10.4g} nets/s   {r / rate[0]:8.3g}x full k = 1")
    print(f"  cost of k = 2 over k = 1 (full): {rate[0] / rate[1]:.2f}x; k = 3: {rate[0] / rate[2]:.2f}x; "
          f"exact chain with a tangent over exact k = 1: {rate[4] / rate[5]:.2f}x")
    first = next(i for i, (name, _, _) in enumerate(runs) if name.startswith("residual"))
    line = (f"  residual: the Gram chain with a tangent runs at {rate[first + 2] / rate[first]:.3g}x full k = 1 and "
            f"{rate[first + 2] / rate[first + 1]:.3g}x its one-vector sampler")
    if torch is not None:
        line += f", {rate[first + 2] / rate[-1]:.3g}x PyTorch's JVP float32"
    print(line)


def _ceiling_of(row_words, steps_of):
    """A ``prange`` loop of ``n_rows`` rows whose words ``row_words(n_blocks, row, layer, 7, k0, k1, words)`` draws
    (the signature of ``fmsim.laws.row_words``; ``n_blocks = steps_of(calls_per_row)``, whole vector steps where
    the function needs them), each into a buffer (one per 1024 rows, as the kernels allocate once per net); one
    word per row is folded in so that nothing is optimized away."""
    blocks_of = njit(inline="always")(steps_of)

    @njit(parallel=True, cache=True)
    def ceiling(n_rows: int, calls_per_row: int, k0, k1) -> np.uint64:
        per_task = 1024
        n_tasks = (n_rows + per_task - 1) // per_task
        n_blocks = blocks_of(calls_per_row)
        acc = np.zeros(n_tasks, dtype=np.uint64)
        for t in prange(n_tasks):
            words = np.empty(4 * n_blocks, dtype=np.uint32)
            a = np.uint64(0)
            for r in range(t * per_task, min(n_rows, (t + 1) * per_task)):
                row_words(n_blocks, np.uint64(r & 0xFFFF), np.uint64(r >> 16), np.uint64(7), k0, k1, words)
                a ^= np.uint64(words[r % (4 * calls_per_row)])
            acc[t] = a
        x = np.uint64(0)
        for t in range(n_tasks):
            x ^= acc[t]
        return x
    return ceiling


@njit(inline="always")
def _llvm_row_words(n_blocks, c1, c2, c3, k0, k1, words):
    """The kernels' first pass (``fmsim.laws.row_words``), written out here so that this script also times
    older fmsim versions: LLVM's vector loop of the scalar block function."""
    for b in range(n_blocks):
        w0, w1, w2, w3 = philox4x32(np.uint64(b), c1, c2, c3, k0, k1)
        words[4 * b] = np.uint32(w0)
        words[4 * b + 1] = np.uint32(w1)
        words[4 * b + 2] = np.uint32(w2)
        words[4 * b + 3] = np.uint32(w3)


def _all_blocks(calls: int) -> int:
    return calls


#: Philox alone: the words of ``n_rows`` rows of ``calls_per_row`` calls each, in LLVM's loop (:func:`_ceiling_of`).
philox_ceiling = _ceiling_of(_llvm_row_words, _all_blocks)


def _block_function_ceilings():
    """``(ceiling, blocks_of, x8_only)``: :func:`philox_ceiling` with each row's blocks in this fmsim's block
    functions, as its kernels draw a group of rows' words (``bench/_philox_lanes.py``: 32 blocks a step, then 8,
    a row's last step padded to 8), the blocks it draws for a row of ``calls`` calls, and the same with 8 blocks a
    step only (``fmsim.sampling.rng.philox4x32_x8``, as the commits before the 32-lane function drew them; None
    where this fmsim has no 32-lane function); or None where this fmsim has no block function (before 0.13)."""
    try:
        from _philox_lanes import LANES, row_words_lanes, row_words_x8
    except ImportError:
        return None

    def whole_steps(calls: int) -> int:
        return (calls + LANES - 1) // LANES * LANES

    x8_only = _ceiling_of(row_words_x8, whole_steps) if row_words_lanes is not row_words_x8 else None
    return _ceiling_of(row_words_lanes, whole_steps), whole_steps, x8_only


def scalar_philox_rate(calls_per_row: int, n_rows: int = 400_000) -> float:
    """Calls/s of :func:`philox_ceiling` compiled with LLVM's loop and SLP vectorizers off
    (``NUMBA_LOOP_VECTORIZE=0``, ``NUMBA_SLP_VECTORIZE=0``, in a fresh process with its own numba cache): one
    Philox4x32-10 at a time, what the ceiling would be without vector lanes."""
    import subprocess
    import sys
    import tempfile

    code = (f"import sys, time; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            "import numpy as np; from bench_fc import philox_ceiling; "
            "k = np.uint64(1), np.uint64(2); "
            f"philox_ceiling(64, {calls_per_row}, *k); best = 1e9\n"
            "for _ in range(3):\n"
            f"    t = time.perf_counter(); philox_ceiling({n_rows}, {calls_per_row}, *k); "
            "best = min(best, time.perf_counter() - t)\n"
            f"print({n_rows * calls_per_row} / best)")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_LOOP_VECTORIZE="0", NUMBA_SLP_VECTORIZE="0", NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def simd_check() -> str:
    """What LLVM made of the two hot loops of a row, from fresh (uncached) compilations: vector multiplies
    in the Philox pass (``fmsim.laws.row_words``), and vector or scalar code in the ziggurat's first step."""
    import re

    from fmsim import laws

    if not (hasattr(laws, "row_words") and hasattr(laws, "_ziggurat_fast_row")):
        return "SIMD check: skipped (this fmsim has no staged rows)"

    def words(n_blocks, c1, c2, c3, k0, k1, out):
        laws.row_words(n_blocks, c1, c2, c3, k0, k1, out)

    if hasattr(laws, "_PAIR_TABLES"):  # the first step in vector lanes: its tables side by side
        def fast(w, n, kn, wn, out, slow):
            return laws._ziggurat_fast_row(w, n, False, kn, wn, 0, 1.0, out, slow)
    else:
        def fast(w, n, kn, wn, out, slow):
            return laws._ziggurat_fast_row(w, n, False, kn, wn, 1.0, out, slow)

    u = np.uint64
    fw, ff = njit(words), njit(fast)
    try:
        fw(3, u(1), u(2), u(3), u(4), u(5), np.empty(12, np.uint32))
        ff(np.zeros(32, np.uint32), 16, laws._ZK9, laws._ZW9, np.empty(16), np.empty(16, np.intp))
    except numba.core.errors.TypingError:  # an fmsim whose staged rows had other signatures
        return "SIMD check: skipped (this fmsim's staged rows have other signatures)"
    asm = "".join(fw.inspect_asm().values())
    asm2 = "".join(ff.inspect_asm().values())
    lanes = {"xmm": 2, "ymm": 4, "zmm": 8}  # 64-bit lanes per register (AVX-512 CPUs may use zmm)
    vector_mul = {r: len(re.findall(rf"vpmuludq\s+%{r}", asm)) for r in lanes}
    widest = max((r for r in lanes if vector_mul[r]), key=lanes.get, default="ymm")
    scalar_mul = len(re.findall(r"\n\s+imul", asm))
    scalar_cvt = len(re.findall(r"vcvtsi2sd", asm2))
    packed_cvt = len(re.findall(r"vcvt\w*pd\s+%[yz]mm", asm2))
    gathers = len(re.findall(r"gather", asm2))
    return (f"SIMD check (fresh compilations): Philox pass {vector_mul[widest]} vpmuludq on {widest} "
            f"({lanes[widest]} lanes; {scalar_mul} "
            f"scalar imul in its remainder loop); ziggurat first step {scalar_cvt} scalar vcvtsi2sd, "
            f"{packed_cvt} packed converts, {gathers} gathers; {polynomial_sqrt_check(laws)}; {dot_check()}; "
            f"{group_words_check()}")


def group_words_check() -> str:
    """The FC kernels' group words (``fmsim.sampling.row_groups``) from a fresh compilation: their multiplies and
    the shuffles that bring a product's high half down in the block functions (on the AMD Zen 5 we measured: 19 and 76
    ``vpmuludq`` for the 8- and the 32-lane function, 95 in all)."""
    import re

    try:
        from fmsim.sampling import row_groups
    except ImportError:
        return "group words: none in this fmsim"
    if not hasattr(row_groups, "_group_words_at"):
        return "group words: LLVM's loop of the scalar block function"
    at = njit(row_groups._group_words_at.py_func)
    words, lanes = row_groups.row_group_scratch.py_func(64)
    u = np.uint64
    from fmsim.sampling.llvm_vectors import data_pointer as ptr

    @njit
    def call(words, lanes, nb):  # nb an argument: as a literal it would fold the 32-block steps away
        at(nb, 8, u(0), u(1), u(2), u(3), u(4), ptr(words), ptr(lanes))

    call(words, lanes, 25)
    asm = "".join(at.inspect_asm().values())
    multiplies, shuffles = len(re.findall(r"vpmuludq\s+%zmm", asm)), len(re.findall(r"vpshufd\s+\$\d+, %zmm", asm))
    return f"group words {multiplies} vpmuludq and {shuffles} vpshufd on zmm"


def dot_check() -> str:
    """A drawn row's float64 dot product (``cpu.drawn_dot``) from a fresh compilation: its adds in ``ymm``
    (the four partial sums in one register) or scalar (``vaddsd``: fmsim before its vector partial sums)."""
    import re

    try:
        from fmsim.kernels import cpu
    except ImportError:  # fmsim before its kernels/ folder
        from fmsim import cpu
    if not hasattr(cpu, "drawn_dot"):
        return "float64 dot product: no drawn_dot in this fmsim"

    @njit
    def dot(w, z, n):
        return cpu.drawn_dot(w, z, n)

    dot(np.ones(8), np.ones(8), 8)
    asm = "".join(dot.inspect_asm().values())
    vector, scalar = len(re.findall(r"vaddpd\s+%ymm", asm)), len(re.findall(r"vaddsd", asm))
    return f"float64 dot product {vector} vaddpd on ymm, {scalar} vaddsd"


def polynomial_sqrt_check(laws) -> str:
    """The float32 Gaussian row's square roots (one per pair of weights) by register width, from a fresh
    compilation of its transform: 16 lanes in ``zmm``, 8 in ``ymm``."""
    import re

    if not hasattr(laws, "gauss32_from_words"):
        return "float32 Gaussian row: none in this fmsim"

    @njit
    def transform(n, words, out):
        laws.gauss32_from_words(n, words, out)

    transform(32, np.zeros(64, np.uint32), np.empty(32, np.float32))
    asm = "".join(transform.inspect_asm().values())
    counts = {r: len(re.findall(rf"vsqrtps\s+%{r}", asm)) for r in ("xmm", "ymm", "zmm")}
    return "float32 Gaussian row " + ", ".join(f"{c} vsqrtps on {r}" for r, c in counts.items() if c)


def weights_per_call(law: str, precision: str) -> int:
    """Weights one Philox call feeds under this fmsim's stream layout (layout 1: always 2)."""
    try:
        from fmsim.laws import LAW_CODES, weights_per_block
    except ImportError:
        return 2
    return int(weights_per_block.py_func(LAW_CODES[law], precision == "float32"))


def drawn_fraction(kind: str, n: int) -> float:
    """Expected fraction of a net's weights that this fmsim draws (``kind``: "fc", "residual" or "conv").

    From stream layout 4 on, a layer draws weights for its nonzero inputs only. A hidden unit is
    positive with probability exactly 1/2 here (symmetric weights, no bias, and a sum of continuous
    terms is 0 with probability 0), so a layer fed by a ReLU draws half its weights in expectation:
    FC nets draw all of the first layer and half of the others; a residual module all of its first
    layer (fed by the dense stream) and half of its output layer; conv nets, whose weights are
    shared by all positions, all of them.
    """
    try:
        from fmsim.laws import STREAM_LAYOUT
    except ImportError:
        return 1.0
    if STREAM_LAYOUT < 4 or kind == "conv":
        return 1.0
    if kind == "fc":
        return (n * n + (n - 1) * n * n / 2) / n**3
    return 0.75


def timed(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def renorm_cost(n: int, nets: int, repeat: int) -> None:
    """Nets/s of the float64 Gaussian ``full`` kernel at depth = width = ``n`` with renormalization as shipped,
    never, and after every layer (``renorm_high`` 2^64, inf, 1), interleaved pass by pass (best kept)."""
    from fmsim.kernels import cpu
    from fmsim.kernels.scalar import RENORM_HIGH
    from fmsim.running.launch import plan
    from fmsim.running.simulate import make_config

    fc = fmsim.FullyConnected.constant(depth=n, width=n)
    windows = (("as shipped (window 2^+-64)", RENORM_HIGH), ("never (0.8 arithmetic)", np.inf),
               ("after every layer", 1.0))
    print(f"\nRenormalization cost, float64 Gaussian full kernel, depth = width = {n}, {nets} nets, best of {repeat}")
    for scheme in ("he", "lecun"):
        call = plan(make_config(fc, fmsim.Init.scheme(scheme), nets, 1, method="full"), 0)
        outs = np.empty((nets, n + 1)), np.empty((nets, n + 1))

        def run(high, c=call, outs=outs):
            cpu.fc_full(c.x, c.x_shift, c.widths, c.scales, c.bias_sds, c.law, c.k0, c.k1, 0, 0.0, False,
                        *c.first_layer(), high, *outs)

        run(RENORM_HIGH)  # compile
        best = {high: np.inf for _, high in windows}
        for _ in range(repeat):
            for _, high in windows:
                best[high] = min(best[high], timed(lambda high=high, run=run: run(high), 1))
        base = nets / best[np.inf]
        for name, high in windows:
            rate = nets / best[high]
            print(f"  {scheme:6s} {name:28s} {rate:10.1f} nets/s  {rate / base - 1:+7.1%} vs never")


def _torch(threads: int):
    """PyTorch on ``threads`` threads, or None (with a note) where it is not installed."""
    try:
        import torch
    except ImportError:
        print("(PyTorch rows skipped: torch is not installed; pip install -e '.[bench]')")
        return None
    torch.set_num_threads(threads)
    return torch


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=100, help="depth = width")
    p.add_argument("--nets", type=int, default=2048, help="nets per fmsim full row")
    p.add_argument("--numpy-nets", type=int, default=256)
    p.add_argument("--torch-nets", type=int, default=512)
    p.add_argument("--exact-nets", type=int, default=2_000_000)
    p.add_argument("--repeat", type=int, default=3, help="round-robin passes over all rows; best kept")
    p.add_argument("--renorm-only", action="store_true", help="only the renormalization-cost rows")
    p.add_argument("--gram-only", action="store_true", help="only the rows that carry several vectors")
    a = p.parse_args(argv)
    n = a.size
    threads = numba.get_num_threads()
    print(f"CPU: {cpu_description()}")
    print(f"{os.cpu_count()} cores; numba threads {threads}; depth = width = {n} ({n**3:.3g} weight draws per net)")
    if a.renorm_only:
        renorm_cost(n, a.nets, max(a.repeat, 5))
        return
    if a.gram_only:
        gram_rows(n, a.nets // 4, a.repeat, _torch(threads))
        return

    # Every row is a (name, weights, weights per Philox call or 0, function) case; the repeats visit the
    # cases round-robin and keep each one's best time, so a slow spell of a shared machine hits all rows
    # alike instead of one row's every repeat.
    cases: list[tuple[str, float, int, object]] = []
    fc = fmsim.FullyConnected.constant(depth=n, width=n)
    per_net = float(n**3)

    numpy_batched(4, n, n, 0)
    cases.append(("NumPy batched float64", per_net * a.numpy_nets, 0, lambda: numpy_batched(a.numpy_nets, n, n, 0)))

    torch = _torch(threads)
    if torch is not None:
        for dt, name in ((torch.float32, "float32"), (torch.float64, "float64")):
            torch_batched(torch, 256, n, n, dt)  # warm up
            cases.append((f"PyTorch {torch.__version__} randn+bmm {name}", per_net * a.torch_nets, 0,
                          lambda dt=dt: torch_batched(torch, a.torch_nets, n, n, dt)))

    k0, k1 = np.uint64(1), np.uint64(2)
    calls_per_row = (n + 1) // 2
    philox_ceiling(64, calls_per_row, k0, k1)
    n_rows = a.nets * n * n // 4
    llvm_case = ("RNG ceiling, LLVM's loop", float(n_rows * calls_per_row), 0,
                 lambda: philox_ceiling(n_rows, calls_per_row, k0, k1))
    block_functions = _block_function_ceilings()
    x8_case = None
    if block_functions is not None:  # the ceiling is the fastest Philox this fmsim has; the fractions are of it
        blocks_ceiling, blocks_of, x8_only = block_functions
        blocks_ceiling(64, calls_per_row, k0, k1)
        ceiling_case = ("RNG ceiling, block functions", float(n_rows * blocks_of(calls_per_row)), 0,
                        lambda: blocks_ceiling(n_rows, calls_per_row, k0, k1))
        if x8_only is not None:
            x8_only(64, calls_per_row, k0, k1)
            x8_case = ("RNG, 8 lanes a step only", float(n_rows * blocks_of(calls_per_row)), 0,
                       lambda: x8_only(n_rows, calls_per_row, k0, k1))
    else:
        ceiling_case = llvm_case

    for law in LAWS:
        for precision in ("float64", "float32"):
            init = fmsim.Init(law=law, c=2.0)
            run = lambda init=init, precision=precision, nets=a.nets: fmsim.simulate(  # noqa: E731
                fc, init, nets, 1, method="full", precision=precision, chunk_size=1024)
            fmsim.simulate(fc, init, 64, 0, method="full", precision=precision)  # compile
            cases.append((f"fmsim full {law} {precision}", per_net * a.nets, weights_per_call(law, precision), run))

    conv = fmsim.Conv(channels=(4,) + (16,) * 10, spatial=(16, 16), kernel=3)
    conv_draws = float(sum(conv.channels[j] * conv.fan_in(j) for j in range(1, conv.depth + 1)))
    he = fmsim.Init.scheme("he")
    fmsim.simulate(conv, he, 16, 0, method="full")
    nets = max(64, a.nets // 64)
    cases.append(("fmsim full conv 16x16, 16 ch, 3x3, d = 10 (*)", conv_draws * nets, 2,
                  lambda: fmsim.simulate(conv, he, nets, 1, method="full")))

    res = fmsim.Residual(width=n, module_widths=(n,), etas=(1.0 / np.sqrt(n),) * (n // 2), ending="relu")
    res_draws = float(2 * n * n * (n // 2))
    fmsim.simulate(res, he, 16, 0, method="full")
    cases.append((f"fmsim full ReLU-ending residual, width {n}, {n // 2} modules", res_draws * (a.nets // 2), 2,
                  lambda: fmsim.simulate(res, he, a.nets // 2, 1, method="full", chunk_size=1024)))

    # The machines we share drift by tens of percent over minutes, so the ratio to PyTorch f32 is taken
    # per pass against a PyTorch f32 run timed just before the row, and the median over passes is shown.
    torch_case = next((c for c in cases if c[0].startswith("PyTorch") and c[0].endswith("float32")), None)
    # LLVM's loop first, the ceiling last (where they differ), 8 lanes a step alone between them
    ceilings = [llvm_case] + ([x8_case] if x8_case else []) + ([ceiling_case] if ceiling_case is not llvm_case else [])
    best = [np.inf] * (len(cases) + len(ceilings))
    paired: list[list[float]] = [[] for _ in cases]
    for _ in range(a.repeat):
        for i, (_, work, _, fn) in enumerate([*cases, *ceilings]):
            torch_t = timed(torch_case[3], 1) if torch_case is not None and i < len(cases) else None
            t = timed(fn, 1)
            best[i] = min(best[i], t)
            if torch_t is not None:
                paired[i].append((work / t) / (torch_case[1] / torch_t))
    calls = ceiling_case[1] / best[-1]
    llvm_calls = llvm_case[1] / best[len(cases)]
    rows = [(name, work / t, per, float(np.median(p)) if p else None)
            for (name, work, per, _), t, p in zip(cases, best, paired)]
    drawn = {kind: drawn_fraction(kind, n) for kind in ("fc", "residual", "conv")}

    print(f"\nRNG ceiling: Philox4x32-10 alone, {calls:.3e} calls/s "
          "(x weights per call = the ceiling of each row in weight draws/s)"
          + (", in the block functions the kernels' row groups use (each row's blocks padded to whole steps "
             "of 8, counted as calls)" if ceiling_case is not llvm_case else ""))
    if ceiling_case is not llvm_case:
        print(f"  LLVM's vector loop of the scalar block function: {llvm_calls:.3e} calls/s "
              f"(the ceiling runs at {calls / llvm_calls:.2f}x it)")
    if x8_case:
        x8_calls = x8_case[1] / best[len(cases) + 1]
        print(f"  8 blocks a step only (philox4x32_x8, as before the 32-lane function): {x8_calls:.3e} calls/s "
              f"(the ceiling runs at {calls / x8_calls:.2f}x it)")
    scalar = scalar_philox_rate(calls_per_row)
    print(f"  LLVM's loop compiled without its vectorizers (scalar Philox): {scalar:.3e} calls/s; the ceiling "
          f"runs at {calls / scalar:.2f}x it")
    print(f"\n{'path':58s} {'weights/s':>10s} {'draws/s':>10s} {'w/call':>6s} {'of ceiling':>10s} "
          f"{'vs torch f32':>12s}")
    for name, r, per, vs_torch in rows:
        vs = f"{vs_torch:11.2f}x" if vs_torch is not None else f"{'-':>12s}"
        kind = "conv" if "conv" in name else "residual" if "residual" in name else "fc"
        r_drawn = r * drawn[kind] if name.startswith("fmsim") else r
        frac = f"{r_drawn / (calls * per):10.1%}" if per else f"{'-':>10s}"
        print(f"{name:58s} {r:10.3e} {r_drawn:10.3e} {per or '-':>6} {frac} {vs}")
    print("weights/s: a net's weights per second (best of the passes); draws/s: the weights fmsim draws, expected "
          f"{drawn['fc']:.1%} of them in the FC rows, {drawn['residual']:.0%} in the residual row (weights that meet "
          "a zero input are not drawn); of ceiling: draws/s over the RNG ceiling of the row's bit budget; vs torch "
          "f32: median over passes of the speed ratio to a PyTorch f32 run timed just before")
    print("(*) a conv weight is drawn once and used at all 256 positions: the row is bound by the convolution")

    print(simd_check())

    fmsim.simulate(fc, he, 1024, 0, method="exact")
    t = timed(lambda: fmsim.simulate(fc, he, a.exact_nets, 1, method="exact"), a.repeat)
    print(f"\nfmsim exact (no weights drawn): {a.exact_nets / t:.3e} nets/s "
          f"= {per_net * a.exact_nets / t:.3e} equivalent weight draws/s")
    gram_rows(n, a.nets // 4, a.repeat, torch)
    renorm_cost(n, a.nets, a.repeat)


if __name__ == "__main__":
    main()
