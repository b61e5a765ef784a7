"""The ``fmsim`` command line: simulate, sweep, info, verify, law, schemes, data, demo, run, report.

Bad input, and a damaged, foreign or busy file, print one clear line and
exit with status 2 before any file is touched. Ctrl-C stops between chunks
and leaves a resumable file (exit 130).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import sys
from collections.abc import Sequence

import numpy as np

from .commandline import (
    UsageError,
    add_cluster_options,
    cluster_argv,
    cluster_from_args,
    float_list,
    int_list,
    run_main,
)
from .config import (
    BACKENDS,
    ETA_SCHEDULES,
    METHODS,
    MODULE_ENDINGS,
    PRECISIONS,
    RECORDS,
    SCHEMES,
    WEIGHT_LAWS,
    Architecture,
    CarriedVectorsError,
    Conv,
    FullyConnected,
    Init,
    Residual,
    RunConfig,
    eta_schedule,
)
from .files.h5io import writer_alive
from .files.store import check_runs, list_runs, open_h5, open_result, run_many_to_file, stream_layout_of
from .presenting.display import format_from_log
from .running.compile_ahead import compile_ahead_early, mixes_exact_and_full
from .running.simulate import make_config, resolve_backend
from .running.summary import LayerSummary


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--law", choices=WEIGHT_LAWS, help="weight law (default: the scheme's, else gaussian)")
    p.add_argument("--c", type=float_list, help="variance numerator c (Var = c/fan-in; orthogonal: the squared "
                                                 "gain); one value or one per layer")
    p.add_argument("--bias-var", type=float_list, help="bias variance, one value or one per layer (default 0)")
    p.add_argument("--bias-c", type=float_list, help="bias variance relative to fan-in: Var(b) = bias_c / fan_in "
                                                      "(PyTorch's nn.Linear: 1/3); one value or one per layer")
    p.add_argument("--nets", type=int, default=100_000, help="number of random nets (default 1e5)")
    p.add_argument("--seed", type=int, default=0, help="seed, 0 <= seed < 2**64 (default 0)")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="auto (default: exact where valid, else full), full (every weight drawn), exact (Gaussian "
                        "weights: the exact law of each layer), exact_first (FC nets, continuous laws: the first layer "
                        "from its exact law given the input, CPU only)")
    p.add_argument("--record", choices=RECORDS, default="summary", help="'layers' also stores M_0..M_d per net")
    p.add_argument("--chunk-size", type=int, default=16384, help="nets per chunk, a multiple of 1024")
    p.add_argument("--backend", choices=BACKENDS, default="cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="float64",
                   help="arithmetic of methods full and exact_first (float32: 32 random bits per weight; not with "
                        "method exact)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _one_or_per_layer(values: Sequence[float] | None) -> float | tuple[float, ...]:
    return 0.0 if values is None else (values[0] if len(values) == 1 else tuple(values))


def _init(args: argparse.Namespace, scheme: str | None) -> Init:
    bias_var, bias_c = _one_or_per_layer(args.bias_var), _one_or_per_layer(getattr(args, "bias_c", None))
    if scheme is not None:
        if args.c is not None or args.law is not None:
            raise UsageError("--scheme/--schemes cannot be combined with --c or --law")
        if bias_c:
            raise UsageError("--scheme/--schemes cannot be combined with --bias-c (a scheme defines its biases, "
                             "or has none: add them with --bias-var)")
        return Init.scheme(scheme, bias_var=bias_var)
    c = args.c if args.c is not None else [2.0]
    return Init(law=args.law or "gaussian", c=c[0] if len(c) == 1 else tuple(c), bias_var=bias_var, bias_c=bias_c)


def _arch(widths: Sequence[int] | None, depth: int | None, width: int | None, n0: int | None) -> FullyConnected:
    if widths is not None:
        if depth is not None or width is not None:
            raise UsageError("give either --widths or --depth/--width, not both")
        return FullyConnected(tuple(widths))
    if depth is None:
        raise UsageError("give --widths n0,n1,...,nd or --depth (and optionally --width, default = depth)")
    return FullyConnected.constant(depth, depth if width is None else width, n0)


def _progress_bar(total: int, quiet: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="net", unit_scale=True, desc=desc, disable=quiet, leave=False)


def _run(runs: list[tuple[RunConfig, str]], out: str, backend: str, args: argparse.Namespace) -> None:
    """All ``(config, group)`` runs into ``out``, on the cluster of ``--workers``/``--scheduler`` if given."""
    quiet = args.quiet
    desc = runs[0][1] if len(runs) == 1 and runs[0][1] != "/" else ("simulate" if len(runs) == 1 else "sweep")
    check_runs(runs, out, backend)  # before any cluster, progress bar or file
    with cluster_from_args(args, quiet) as client, _progress_bar(sum(c.n_nets for c, _ in runs), quiet, desc) as bar:
        run_many_to_file(runs, out, backend, progress=bar.update, client=client)
    if not quiet:
        for _, group in runs:
            res = open_result(out, group)
            s = res.summary
            print(f"{out}:{group}  E[M_d] = {format_from_log(s.log_of_mean[-1])} +- "
                  f"{format_from_log(s.log_of_sem[-1], 2)}  "
                  f"E[fm2] = {s.fm2_mean:.6g}  dead = {s.n_zero[-1]}{_carried_line(res)}")


def _carried_line(res) -> str:
    """The mean cosine of a pair of inputs, or the mean ``|J e_0|^2 / n_d`` (and ``(J e_0)_0^2``), with 1 s.e."""
    from .experiments.gram_chain import mean_se as mean_and_se

    def mean_se(v: np.ndarray) -> str:
        if np.count_nonzero(np.isfinite(v)) < 2:
            return "n/a"
        mean, se = mean_and_se(v)
        return f"{mean:.6g} +- {se:.2g}"

    if res.gram is not None:
        g = res.gram
        with np.errstate(invalid="ignore", divide="ignore"):
            return f"  cosine of the pair at layer d = {mean_se(g[:, 0, 1] / np.sqrt(g[:, 0, 0] * g[:, 1, 1]))}"
    if res.jvp is not None:
        line = f"  E[|J e_0|^2 / n_d] = {mean_se(res.jvp[:, 0])}"
        if res.jacobian_entries is not None:
            line += f"  E[(J e_0)_0^2] = {mean_se(res.jacobian_entries[:, 0])}"
        return line
    return ""


#: The flags of each kind of net (``--width`` is the stream width of a residual net, or a layer width).
FC_FLAGS = ("widths", "depth", "n0")
RESIDUAL_FLAGS = ("modules", "schedule", "eta", "etas", "module_widths", "ending", "c_out")
CONV_FLAGS = ("channels", "spatial", "kernel")


def refuse_flags(args: argparse.Namespace, names: Sequence[str], why: str) -> None:
    """A UsageError naming the first of ``names`` given on the command line (not None): it ``why``."""
    for name in names:
        if getattr(args, name, None) is not None:
            raise UsageError(f"--{name.replace('_', '-')} {why}")


def _etas(args: argparse.Namespace) -> tuple[float, ...]:
    """``--etas``, or the schedule of ``--modules``, ``--schedule`` and ``--eta``."""
    if args.etas is not None:
        refuse_flags(args, ("schedule", "eta"), "makes a schedule, and --etas gives the etas themselves: give one")
        if args.modules is not None and args.modules != len(args.etas):
            raise UsageError(f"--modules {args.modules} but --etas has {len(args.etas)} values")
        return tuple(args.etas)
    return eta_schedule(args.schedule or "constant", args.modules, 1.0 if args.eta is None else args.eta)


def _simulate_arch(args: argparse.Namespace) -> Architecture:
    """The architecture of ``fmsim simulate``: residual (--modules/--etas), conv (--channels) or FC; a flag of
    another kind of net is refused by name."""
    if args.modules is not None or args.etas is not None:
        refuse_flags(args, FC_FLAGS + CONV_FLAGS, "does not apply to a residual net (--modules/--etas), whose "
                                                  "stream width is --width")
        if args.width is None:
            raise UsageError("a residual net needs --width (the stream width n)")
        mw = None if args.module_widths is None else tuple(args.module_widths)
        return Residual(args.width, _etas(args), mw, args.ending or "linear", 2.0 if args.c_out is None else args.c_out)
    refuse_flags(args, RESIDUAL_FLAGS, "applies to a residual net: give --modules or --etas too")
    if args.channels is not None:
        refuse_flags(args, FC_FLAGS + ("width",), "does not apply to a conv net (--channels), whose shape is "
                                                  "--channels, --spatial and --kernel")
        if args.spatial is None:
            raise UsageError("a conv net needs --spatial P or H,W")
        return Conv(tuple(args.channels), tuple(args.spatial), 3 if args.kernel is None else args.kernel)
    refuse_flags(args, CONV_FLAGS, "applies to a conv net: give --channels too")
    return _arch(args.widths, args.depth, args.width, args.n0)


def carried_vectors(args: argparse.Namespace, arch: Architecture) -> tuple[dict[str, np.ndarray], str | None]:
    """``inputs`` (``--pair-angle``) or ``tangents`` (``--gradient``) for :func:`fmsim.simulate`, or none, and the
    flag that asked for them."""
    flag = "--pair-angle" if args.pair_angle is not None else "--gradient" if args.gradient else None
    if flag is None:
        return {}, None
    if args.pair_angle is not None and args.gradient:
        raise UsageError("--pair-angle (two inputs) and --gradient (a tangent at one input) cannot be combined yet")
    n0 = arch.input_size
    if args.pair_angle is not None:
        if n0 < 2 or not 0.0 <= args.pair_angle <= 180.0:
            raise UsageError(f"--pair-angle must be in [0, 180] degrees, with n_0 >= 2; got {args.pair_angle} "
                             f"and n_0 = {n0}")
        t = np.deg2rad(args.pair_angle)
        inputs = np.zeros((2, n0))
        inputs[0, 0] = inputs[1, 0] = np.sqrt(n0)
        inputs[1, :2] = np.sqrt(n0) * np.array([np.cos(t), np.sin(t)])
        return {"inputs": inputs}, flag
    return {"tangents": np.eye(n0)[:1]}, flag


def cmd_simulate(args: argparse.Namespace) -> None:
    arch = _simulate_arch(args)
    init = _init(args, args.scheme)
    carried, flag = carried_vectors(args, arch)
    try:
        config = make_config(arch, init, args.nets, args.seed, args.method, args.record, None, args.chunk_size,
                             args.precision, **carried)
    except CarriedVectorsError as e:  # what the Gram chain cannot carry (RunConfig says why), by the flag that asked
        raise UsageError(f"{flag}: {e}") from None
    _run([(config, args.group)], args.out, resolve_backend(args.backend), args)


def cmd_sweep(args: argparse.Namespace) -> None:
    schemes = args.schemes.split(",") if args.schemes else [None]
    for s in schemes:
        if s is not None and s not in SCHEMES:
            raise UsageError(f"--schemes: unknown scheme {s!r}; choose from {sorted(SCHEMES)}")
    backend = resolve_backend(args.backend)
    inits = [_init(args, s) for s in schemes]
    # exact and full runs on this machine: a second process compiles the full kernels, started before the runs are built
    mixed = (args.workers is None and args.scheduler is None
             and mixes_exact_and_full(inits, args.method, precision=args.precision))
    with compile_ahead_early(backend) if mixed else contextlib.nullcontext():
        configs = []
        for depth, (scheme, init) in itertools.product(args.depths, zip(schemes, inits)):
            width = depth if args.width is None else args.width
            arch = FullyConnected.constant(depth, width, args.n0)
            cfg = make_config(arch, init, args.nets, args.seed, args.method, args.record,
                              None, args.chunk_size, args.precision)
            configs.append((cfg, f"{scheme or 'custom'}/depth_{depth}"))  # all validated before any work
        _run(configs, args.out, backend, args)  # one task stream: a cluster stays busy across runs


def cmd_info(args: argparse.Namespace) -> None:
    runs = list_runs(args.file)
    if not runs:
        raise UsageError(f"{args.file} holds no fmsim run")
    status = "being written by a live process; " if writer_alive(args.file) else ""
    with open_h5(args.file) as f:
        for name in runs:
            g = f[name]
            cfg = RunConfig.from_dict(json.loads(g.attrs["config"]))
            arch = cfg.arch.to_dict()
            shape = ", ".join(f"{k} {v[:4]}{'...' if len(v) > 4 else ''}" if isinstance(v, list) else f"{k} {v}"
                              for k, v in arch.items())
            done = int(g["chunks_done"][()])
            summary = LayerSummary.from_moments(g["summary/moments"][()])
            nets = int(summary.count[-1])  # (the summary counts the nets of the chunks written)
            mean = (f"E[M_d] = {format_from_log(float(summary.log_of_mean[-1]))} over {nets} nets, "
                    f"dead {int(summary.n_zero[-1])}") if nets else "no nets written yet"
            old = int(g.attrs["schema_version"]) < 4
            note = ("; lengths stored as M (fmsim < 0.9): log M is unknown where M is 0 or inf" if old else "")
            print(f"{name}: {status}{'complete' if done == cfg.n_chunks else f'{done}/{cfg.n_chunks} chunks'}; "
                  f"{shape} (d={cfg.arch.depth}), "
                  f"init {cfg.init.to_dict()}, nets {cfg.n_nets}, seed {cfg.seed}, method {cfg.method}, "
                  f"stream layout {stream_layout_of(g)}; {mean}{note}")


def cmd_verify(args: argparse.Namespace) -> None:
    """Read every chunk of every run (or of --group) and check it against its checksum."""
    from .files.integrity import describe, verify_run
    from .files.store import DamagedFileError, reading

    runs = list_runs(args.file)
    if args.group is not None:
        if args.group not in runs:
            raise UsageError(f"{args.file}:{args.group} holds no fmsim run (runs: {runs})")
        runs = [args.group]
    if not runs:
        raise UsageError(f"{args.file} holds no fmsim run")
    problems = []
    with reading(args.file) as f:
        for name in runs:
            check = verify_run(f[name])
            if check.ok:
                print("\n".join(describe(check, args.file)))
            else:
                problems += describe(check, args.file)
    if problems:
        raise DamagedFileError("; ".join(problems))


LAW_QUANTILES = (1e-6, 1e-3, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1 - 1e-6)
LAW_MOMENTS = (0.5, 1.0, 2.0, 3.0)


def cmd_law(args: argparse.Namespace) -> None:
    """Print the exact law of M_d: P(dead), moments, the law of log M_d, quantiles (no Monte Carlo)."""
    from . import theory

    if args.bias_var is not None:
        raise UsageError(f"--bias-var {args.bias_var}: the exact law is that of nets without biases; simulate biased "
                         "nets with 'fmsim simulate'")
    if args.modules is not None or args.etas is not None:
        refuse_flags(args, FC_FLAGS, "does not apply to a residual net (--modules/--etas), whose stream width is "
                                     "--width")
        refuse_flags(args, ("scheme", "c"), "does not apply to the residual law, which is that of modules without "
                                            "hidden layers and Gaussian output weights of variance c_out/n: give "
                                            "--c-out")
        if args.law not in (None, "gaussian"):
            raise UsageError(f"--law {args.law}: the exact residual law exists for Gaussian weights; simulate "
                             "orthogonal residual nets with 'fmsim simulate --law orthogonal --method exact'")
        if args.width is None:
            raise UsageError("a residual law needs --width (the stream width n)")
        etas = _etas(args)
        c_out = 2.0 if args.c_out is None else args.c_out
        arch = Residual(args.width, etas, (), "linear", c_out)
        law = theory.residual_length_law(args.width, etas, c_out, args.m0)
        what = f"linear-ending residual net, n = {args.width}, L = {len(etas)}, c_out = {c_out:g}"
    else:
        refuse_flags(args, ("modules", "schedule", "eta", "etas", "c_out"), "applies to a residual net: give "
                                                                             "--modules or --etas too")
        arch = _arch(args.widths, args.depth, args.width, args.n0)
        init = _init(args, args.scheme)
        if init.law not in ("gaussian", "orthogonal"):
            raise UsageError(f"the exact law needs Gaussian or orthogonal weights, got law {init.law!r}; simulate "
                             "other laws with 'fmsim simulate'")
        c = init.layer_c(arch)
        law = theory.length_law(arch.widths, c, args.m0, weights="orthogonal" if init.orthogonal else "gaussian")
        ws = arch.widths[1:]
        shape = f"{ws[0]} x {len(ws)}" if len(set(ws)) == 1 else ",".join(map(str, ws))
        cs = f"{c[0]:g}" if np.all(c == c[0]) else ",".join(f"{v:g}" for v in c)
        what = f"fully connected, n_0 = {arch.widths[0]}, widths {shape} (d = {arch.depth}), {init.label}, c = {cs}"
    log_q, log_q_err = law.log_quantile_of_m(np.array(LAW_QUANTILES), return_error=True)
    log_moments = {p: law.log_moment(p) for p in LAW_MOMENTS}
    log_mean, log_var = law.log_mean_var()
    m1, m2 = log_moments[1.0], log_moments[2.0]
    log_var_m = m2 + math.log(-math.expm1(2 * m1 - m2)) if m2 > 2 * m1 else -math.inf  # Var[M_d], in logs
    if args.json:
        with np.errstate(over="ignore"):
            print(json.dumps({"architecture": arch.to_dict(), "m0": args.m0, "p_dead": law.p_dead,
                              "log_p_alive": law.log_p_alive,
                              "moments": {f"{p:g}": float(np.exp(v)) for p, v in log_moments.items()},
                              "log_moments": {f"{p:g}": v for p, v in log_moments.items()},
                              "log_given_alive": {"mean": log_mean, "var": log_var},
                              "quantiles": {f"{p:g}": [float(np.exp(v)), float(np.exp(v)) * e]
                                            for p, v, e in zip(LAW_QUANTILES, log_q, log_q_err)},
                              "log_quantiles": {f"{p:g}": [v, e] for p, v, e in zip(LAW_QUANTILES, log_q, log_q_err)}},
                             indent=1))
        return
    print(f"exact law of M_d = |z_d|^2 / n_d: {what}, M_0 = {args.m0:g}")
    print(f"  P(dead) = P(M_d = 0) = {law.p_dead:.6g};  P(alive) = {format_from_log(law.log_p_alive)}")
    print("  " + "  ".join(f"E[M_d^{p:g}] = {format_from_log(v, 8)}" for p, v in log_moments.items()))
    print(f"  Var[M_d] = {format_from_log(log_var_m, 8)};  log M_d given M_d > 0: mean {log_mean:.8g}, "
          f"variance {log_var:.8g}")
    print(f"  {'q':>10s}  {'quantile of M_d':>18s}  {'relative error':>14s}")
    for p, v, e in zip(LAW_QUANTILES, log_q, log_q_err):
        print(f"  {p:10.6g}  {format_from_log(v, 10):>18s}  {e:14.2g}")


def cmd_schemes(args: argparse.Namespace) -> None:
    """List every named initialization with its law, c and fan."""
    from .config import SCHEME_BIAS_C, SCHEME_NOTES

    print(f"{'scheme':24s} {'law':17s} {'c':>8s} {'fan':4s} {'bias':18s} "
          "Var(W) = c / fan, Var(b) = bias_c / fan_in;  note")
    for name, (law, c, fan) in SCHEMES.items():
        bias = f"bias_c = {SCHEME_BIAS_C[name]:.4g}" if name in SCHEME_BIAS_C else "none"
        print(f"{name:24s} {law:17s} {c:8.4g} {fan:4s} {bias:18s} {SCHEME_NOTES.get(name, '')}")


def cmd_data(args: argparse.Namespace) -> None:
    """Where each data file lives and whether its SHA-256 matches; ``--fetch`` downloads the missing ones."""
    from .files.datasets import ENV_CACHE, ENV_LOCAL, ENV_URL, fetch_mnist_file, mnist_dir, mnist_status

    if args.fetch:
        for st in mnist_status():
            if st.state != "ok":
                fetch_mnist_file(st.name)
    rows = mnist_status()
    folder, source = mnist_dir()
    origin = (f"the local copy named by {ENV_LOCAL}" if source == ENV_LOCAL
              else f"fmsim's cache (set {ENV_CACHE} to move it; {ENV_LOCAL} names a local copy instead)")
    print(f"MNIST: {folder}, {origin}")
    for st in rows:
        print(f"  {st.state:8s} {st.name}")
    bad = [st for st in rows if st.state != "ok"]
    if bad:
        what = " and ".join(sorted({st.state for st in bad}))
        how = (f"fix the files in {folder}" if source == ENV_LOCAL
               else f"run 'fmsim data --fetch' (or set {ENV_URL} to a mirror)")
        raise FileNotFoundError(f"{len(bad)} of {len(rows)} MNIST files {what}; {how}")


#: experiment name -> what it computes (``fmsim run NAME`` runs ``fmsim.experiments.NAME``).
EXPERIMENTS: dict[str, str] = {
    "fig1a": "Fig. 1a: E[M_d] against depth for several inits, simulated and exact (= fmsim demo)",
    "fig1b": "Fig. 1b: epochs to 20% MNIST test accuracy against depth, and its FM2 variant",
    "fm2_profiles": "FM2: the law of M_d for width profiles of equal sum 1/n_j",
    "resnet_scaling": "ResNets: M_L against L for eta schedules, both module endings",
    "hessian_init": "Hessian block norms against depth for c in {1, 2, 4}",
    "gram_chain": "gradients and pairs of inputs: Jacobian entries against depth and beta, the cosine of two inputs",
}


def run_experiment(argv: Sequence[str]) -> int:
    """``fmsim run NAME [options]``: the experiment's own command line (``fmsim run NAME --help``)."""
    import importlib

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: fmsim run NAME [options]   (fmsim run NAME --help for its options)\n\nexperiments:")
        for name, what in EXPERIMENTS.items():
            print(f"  {name:15s} {what}")
        print("\nfmsim report runs them all and checks the papers' claims.")
        return 0 if argv else 2
    name = argv[0]
    if name not in EXPERIMENTS:
        print(f"fmsim run: error: unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}",
              file=sys.stderr)
        return 2
    module = importlib.import_module(f".experiments.{name}", __package__)
    return run_main(module.main, list(argv[1:]), prog=f"fmsim run {name}")


def cmd_demo(args: argparse.Namespace) -> None:
    from .experiments import fig1a

    fig1a.main(["--out", args.out] + (["--quick"] if args.quick else []) + cluster_argv(args))


def _add_net_shape(p: argparse.ArgumentParser) -> None:
    """The flags of a fully connected net's shape, shared by ``simulate`` and ``law``."""
    p.add_argument("--widths", type=int_list, help="n0,n1,...,nd")
    p.add_argument("--depth", type=int)
    p.add_argument("--width", type=int, help="layer width (default = depth); for a residual net, the stream width")
    p.add_argument("--n0", type=int, help="input width (default = width)")


def _simulate_parser(sub) -> None:
    s = sub.add_parser("simulate", help="one run into an HDF5 file (resumes if the file holds it)")
    _add_net_shape(s)
    s.add_argument("--scheme", choices=sorted(SCHEMES), help="named initialization (he, lecun, glorot, ...)")
    r = s.add_argument_group("residual net (y_l = y_{l-1} + eta_l F_l(y_{l-1}))")
    r.add_argument("--modules", type=int, help="number of modules L")
    r.add_argument("--schedule", choices=ETA_SCHEDULES, help="eta_l schedule (default constant)")
    r.add_argument("--eta", type=float, help="eta of the schedule (default 1)")
    r.add_argument("--etas", type=float_list, help="explicit eta_1,...,eta_L (instead of a schedule)")
    r.add_argument("--module-widths", type=int_list, help="hidden widths of each module (default: one of --width)")
    r.add_argument("--ending", choices=MODULE_ENDINGS, help="module output (default linear)")
    r.add_argument("--c-out", type=float, help="variance numerator of module outputs (default 2)")
    cv = s.add_argument_group("convolutional net (periodic padding, stride 1)")
    cv.add_argument("--channels", type=int_list, help="C0,C1,...,Cd")
    cv.add_argument("--spatial", type=int_list, help="P (1D) or H,W (2D)")
    cv.add_argument("--kernel", type=int, help="taps per dimension (default 3)")
    gp = s.add_argument_group("gradients and pairs of inputs (fully connected nets; the Gram chain)")
    gp.add_argument("--pair-angle", type=float, metavar="DEG",
                    help="run two inputs of M_0 = 1 at this angle (degrees) through the same nets: their Gram "
                         "matrices (dataset gram)")
    gp.add_argument("--gradient", action="store_true",
                    help="carry the tangent e_0 at the input: |J e_0|^2 / n_d (dataset jvp) and, with --method "
                         "full, the Jacobian entry (J e_0)_0^2 (dataset jacobian_entries)")
    _add_run_options(s)
    add_cluster_options(s)
    s.add_argument("--out", required=True, help="HDF5 file")
    s.add_argument("--group", default="/", help="group inside the file (default /)")
    s.set_defaults(func=cmd_simulate)


def _sweep_parser(sub) -> None:
    w = sub.add_parser("sweep", help="a grid of depths x schemes into one file, one group per run")
    w.add_argument("--depths", type=int_list, required=True)
    w.add_argument("--width", type=int, help="fixed width (default: width = depth)")
    w.add_argument("--n0", type=int, help="input width (default = width)")
    w.add_argument("--schemes", help="comma-separated scheme names")
    _add_run_options(w)
    add_cluster_options(w)
    w.add_argument("--out", required=True)
    w.set_defaults(func=cmd_sweep)


def _file_parsers(sub) -> None:
    i = sub.add_parser("info", help="describe the runs in a file")
    i.add_argument("file")
    i.set_defaults(func=cmd_info)
    v = sub.add_parser("verify", help="check every chunk of a file's runs against its checksum (exit 2 if one "
                                      "fails)")
    v.add_argument("file")
    v.add_argument("--group", help="only this run (default: every run in the file)")
    v.set_defaults(func=cmd_verify)


def _law_parser(sub) -> None:
    lw = sub.add_parser("law", help="the exact law of M_d (Gaussian or orthogonal weights, no bias): quantiles, "
                                    "P(dead), moments; no Monte Carlo")
    _add_net_shape(lw)
    lw.add_argument("--scheme", choices=sorted(SCHEMES),
                    help="named initialization (Gaussian ones: he, lecun, ...; orthogonal, orthogonal_unit)")
    lw.add_argument("--c", type=float_list, help="variance numerator c (orthogonal: squared gain); one value or one "
                                                 "per layer (default 2)")
    lw.add_argument("--law", choices=["gaussian", "orthogonal"], help="weight law (default gaussian)")
    lw.add_argument("--bias-var", type=float_list, help=argparse.SUPPRESS)
    lw.add_argument("--m0", type=float, default=1.0, help="M_0 = |x|^2/n_0 of the input (default 1)")
    lr = lw.add_argument_group("linear-ending residual net without hidden layers")
    lr.add_argument("--modules", type=int, help="number of modules L")
    lr.add_argument("--schedule", choices=ETA_SCHEDULES, help="eta_l schedule (default constant)")
    lr.add_argument("--eta", type=float, help="eta of the schedule (default 1)")
    lr.add_argument("--etas", type=float_list, help="explicit eta_1,...,eta_L (instead of a schedule)")
    lr.add_argument("--c-out", type=float, help="variance numerator of module outputs (default 2)")
    lw.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lw.set_defaults(func=cmd_law)


def _other_parsers(sub) -> None:
    rp = sub.add_parser("report", add_help=False,
                        help="run (or reuse) every experiment and write report.md: the papers' claims, checked")
    rp.set_defaults(func=None)
    rn = sub.add_parser("run", add_help=False, help="run one experiment: fmsim run NAME [options]; "
                                                    "fmsim run --help lists them")
    rn.set_defaults(func=None)
    dt = sub.add_parser("data", help="where each data file (MNIST) lives and whether its checksum matches")
    dt.add_argument("--fetch", action="store_true", help="download the missing or damaged files into the cache")
    dt.set_defaults(func=cmd_data)
    sc = sub.add_parser("schemes", help="list the named initializations (law, c, fan, biases)")
    sc.set_defaults(func=cmd_schemes)
    d = sub.add_parser("demo", help="the main job: Hanin-Rolnick Fig. 1a into data/")
    d.add_argument("--out", default="data")
    d.add_argument("--quick", action="store_true", help="small grid, for a smoke test")
    add_cluster_options(d)
    d.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    """The ``fmsim`` command line: one subparser per command (``report`` and ``run`` parse their own options)."""
    from . import __version__

    p = argparse.ArgumentParser(prog="fmsim", description="Monte Carlo of random ReLU nets (Hanin & Rolnick 2018).")
    p.add_argument("--version", action="version", version=f"fmsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_simulate_parser, _sweep_parser, _file_parsers, _law_parser, _other_parsers):
        add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status (see :mod:`fmsim.commandline`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:  # the report has its own options (fmsim.experiments.report)
        from .experiments import report

        return run_main(report.main, argv[1:], prog="fmsim report")
    if argv[:1] == ["run"]:
        return run_experiment(argv[1:])
    args = build_parser().parse_args(argv)
    return run_main(lambda _: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
