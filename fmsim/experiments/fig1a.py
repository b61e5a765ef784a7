"""Hanin & Rolnick (2018), Fig. 1a: mean output length M_d vs depth, width = depth.

Initializations: He, LeCun, Glorot, 2x He (Gaussian; exact sampler), orthogonal
with gain sqrt 2 and gain 1 (exact sampler of :mod:`fmsim.kernels.cpu_orthogonal`;
every layer here keeps or narrows its width, so E[M_d] = M_0 (c/2)^d) and the
2018 Keras truncated-normal He (std not rescaled, variance 0.7737 * 2/fan-in;
full simulation, its first layer drawn from the exact law of a pre-activation
given the input: ``method="exact_first"``, ``fmsim.first_layer``).
Input: a fixed random direction in R^784 (vectorized MNIST size) with M_0 = 1.
Each point: ``--nets`` nets (default 1e5). Writes ``<out>/fig1a.h5`` (one group per scheme and depth; resumable) and
``<out>/fig1a.png``: mean +- s.e., a 10%-90% quantile band of M_d (over
nets with M_d > 0) with the exact 10/50/90% quantiles of the law of M_d
dotted beside it, and the exact E[M_d] = M_0 prod_j c_j / 2 dashed.
The Gaussian schemes share the seed, so they use common random numbers: the
exact sampler draws the same chi-square ratios for each, rescaled by c_j/2.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from collections.abc import Sequence

import numpy as np

from .. import theory
from ..commandline import add_cluster_options, cluster_from_args
from ..config import FullyConnected, Init, resolve_method
from ..files.store import run_many_to_file
from ..presenting.display import format_from_log
from ..presenting.plotting import plot_log_length_vs_depth
from ..running.compile_ahead import compile_ahead_early, mixes_exact_and_full
from ..running.simulate import make_config, resolve_backend
from .common import int_list, pyplot, save

SCHEMES = ["he", "he_truncated_keras2018", "lecun", "glorot", "2x_he", "orthogonal", "orthogonal_unit"]
LABELS = {"orthogonal": "Orthogonal, gain sqrt 2", "orthogonal_unit": "Orthogonal, gain 1",
          "he": "He", "he_truncated_keras2018": "He, truncated (Keras 2018)", "lecun": "LeCun",
          "glorot": "Glorot", "2x_he": "2x He", "he_uniform": "He uniform",
          "pytorch_default": "PyTorch default (nn.Linear)",
          "pytorch_default_weights": "PyTorch default, weights only", "keras_default": "Keras default (Dense)",
          "flax_default": "Flax default (nn.Dense)",
          "lecun_uniform": "LeCun uniform", "glorot_uniform": "Glorot uniform", "rademacher_he": "Rademacher He"}
DEPTHS = [5, 10, 15, 20, 30, 40, 50]
N0 = 784


def run(out_dir: str, depths: Sequence[int], n_nets: int, seed: int, backend: str, quiet: bool = False,
        schemes: Sequence[str] = SCHEMES, full_nets: int | None = None, name: str = "fig1a", client=None,
        full_method: str = "exact_first") -> str:
    """Simulate every (scheme, depth) into ``out_dir/<name>.h5``; return its path.

    ``full_nets``: nets per point for schemes that need the full simulation
    (non-Gaussian laws), default ``n_nets``; ``full_method`` is their method:
    ``"exact_first"`` (the first layer from its exact law, CPU only) or ``"full"``.
    """
    from tqdm.auto import tqdm

    path = os.path.join(out_dir, f"{name}.h5")
    inits = {s: Init.scheme(s) for s in schemes}
    exact = {s: resolve_method("auto", init) == "exact" for s, init in inits.items()}  # as make_config resolves it
    mixed = client is None and mixes_exact_and_full(inits.values())
    # exact and full runs: a second process compiles the full kernels meanwhile, started before the runs are built
    with compile_ahead_early(backend) if mixed else contextlib.nullcontext():
        configs = []
        for s, init in inits.items():
            nets = n_nets if (exact[s] or full_nets is None) else full_nets
            method = "auto" if exact[s] else full_method
            configs.extend((s, d, make_config(FullyConnected.constant(d, d, N0), init, nets, seed, method))
                           for d in depths)
        with tqdm(total=sum(c.n_nets for *_, c in configs), unit="net", unit_scale=True, disable=quiet,
                  desc="fig1a") as bar:
            run_many_to_file([(cfg, f"{s}/depth_{d}") for s, d, cfg in configs], path, backend, bar.update, client)
    return path


COLUMNS = ("depth", "mean", "sem", "q10", "q50", "q90", "theory", "exact_q10", "exact_q50", "exact_q90")
LOG_COLUMNS = tuple(f"log_{c}" for c in COLUMNS[1:])


def summarize(path: str, depths: Sequence[int], schemes: Sequence[str] = SCHEMES) -> dict[str, dict[str, np.ndarray]]:
    """Per scheme: depth, mean, sem, simulated q10/q50/q90 of M_d given M_d > 0, exact E[M_d], and the
    exact q10/q50/q90 of M_d given M_d > 0 from :func:`fmsim.theory.length_law` (Gaussian and orthogonal
    schemes; nan else);
    and the natural log of each (``log_mean``, ``log_sem``, ..., ``log_exact_q90``), which hold at any depth
    where the values may leave float64's range."""
    from functools import cache

    from ..files.store import open_result

    @cache
    def log_quantiles_c1(widths: tuple[int, ...], log_m0: float, weights: str) -> np.ndarray:
        # log M_d = log(M_0 prod_j c_j Y_j): c only shifts it, so one law per depth serves every scheme
        return theory.length_law(widths, 1.0, weights=weights).log_quantile([0.1, 0.5, 0.9]) + log_m0

    table = {}
    for s in schemes:
        rows = []
        for d in depths:
            res = open_result(path, f"{s}/depth_{d}")
            logs = res.log_final[np.isfinite(res.log_final)]
            log_q = np.quantile(logs, [0.1, 0.5, 0.9]) if logs.size else np.full(3, np.nan)
            arch, init = res.config.arch, res.config.init
            c = init.layer_c(arch)
            log_m0 = float(res.summary.log_of_mean[0])
            m0 = math.exp(log_m0)
            w = np.asarray(arch.widths, dtype=float)
            if init.orthogonal:  # E[M_j] = (c_j / 2) min(n_{j-1}, n_j)/n_j E[M_{j-1}]
                log_exact = log_m0 + float(np.sum(np.log(c / 2 * np.minimum(w[:-1], w[1:]) / w[1:])))
            elif not init.has_bias:  # E[M_j] = (c_j / 2) E[M_{j-1}] for every i.i.d. law
                log_exact = log_m0 + float(np.sum(np.log(c / 2)))
            else:  # E[M_j] = (c_j E[M_{j-1}] + Var(b_j)) / 2
                log_exact = math.log(theory.mean_length(arch.widths, c, m0=m0, bias_var=init.layer_bias_var(arch))[-1])
            if init.law in ("gaussian", "orthogonal") and not init.has_bias:
                weights = "orthogonal" if init.orthogonal else "gaussian"
                log_exact_q = log_quantiles_c1(tuple(arch.widths), log_m0, weights) + np.sum(np.log(c))
            else:
                log_exact_q = np.full(3, np.nan)
            s_ = res.summary
            rows.append((d, s_.log_of_mean[-1], s_.log_of_sem[-1], *log_q, log_exact, *log_exact_q))
        logs = np.array(rows).T
        with np.errstate(over="ignore"):
            table[s] = {"depth": logs[0], **dict(zip(COLUMNS[1:], np.exp(logs[1:]))),
                        **dict(zip(LOG_COLUMNS, logs[1:]))}
    return table


def plot(table: dict[str, dict[str, np.ndarray]], png: str) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 5))
    for s, t in table.items():
        band = ((t["log_exact_q10"], t["log_exact_q50"], t["log_exact_q90"]) if np.all(np.isfinite(t["exact_q50"]))
                else None)
        plot_log_length_vs_depth(t["depth"], t["log_mean"], t["log_sem"], t["log_q10"], t["log_q90"],
                                 t["log_theory"], LABELS.get(s, s), ax=ax, log_exact_band=band)
    ax.set_title("Fig. 1a (Hanin & Rolnick 2018): mean length vs depth\n"
                 "points: Monte Carlo mean +- s.e.; dashed: exact E[M_d]\n"
                 "band: simulated 10-90% of M_d > 0; dotted: its exact 10/50/90% (law of M_d)", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, png)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data", help="output folder (default data/)")
    p.add_argument("--depths", type=int_list, default=DEPTHS)
    p.add_argument("--nets", type=int, default=100_000, help="nets per point (default 1e5)")
    p.add_argument("--full-nets", type=int, help="nets per point for non-Gaussian schemes (full simulation; "
                   "default --nets)")
    p.add_argument("--full-method", choices=["auto", "exact_first", "full"], default="auto",
                   help="method of the non-Gaussian schemes: exact_first (the first layer from its exact law given "
                        "the input; CPU only) or full (every weight drawn); auto (default): exact_first on the CPU, "
                        "full on CUDA. Each group's method is stored in the file")
    p.add_argument("--schemes", default=",".join(SCHEMES), help=f"comma-separated (default {','.join(SCHEMES)})")
    p.add_argument("--name", default="fig1a", help="file name stem of the .h5 and .png (default fig1a)")
    p.add_argument("--seed", type=int, default=2018)
    p.add_argument("--backend", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--quick", action="store_true", help="tiny grid for smoke tests")
    p.add_argument("--quiet", action="store_true")
    add_cluster_options(p)
    a = p.parse_args(argv)
    from ..config import SCHEMES as ALL_SCHEMES

    schemes = [s for s in a.schemes.split(",") if s]
    for s in schemes:
        if s not in ALL_SCHEMES:
            p.error(f"--schemes: unknown scheme {s!r}; choose from {sorted(ALL_SCHEMES)}")
    depths, nets, full_nets = ([2, 4, 6], 2048, 2048) if a.quick else (a.depths, a.nets, a.full_nets)
    if min(depths) < 1 or nets < 2 or (full_nets is not None and full_nets < 2):
        p.error("--depths must be >= 1 and --nets, --full-nets >= 2")
    os.makedirs(a.out, exist_ok=True)
    backend = resolve_backend(a.backend)
    full_method = ("exact_first" if backend == "cpu" else "full") if a.full_method == "auto" else a.full_method
    with cluster_from_args(a, a.quiet) as client:
        path = run(a.out, depths, nets, a.seed, backend, a.quiet, schemes, full_nets, a.name, client, full_method)
    table = summarize(path, depths, schemes)
    png = os.path.join(a.out, f"{a.name}.png")
    plot(table, png)
    for s, t in table.items():
        q = "  10/50/90% of M_d: " + "/".join(format_from_log(t[k][-1], 4) for k in ("log_q10", "log_q50", "log_q90"))
        if np.isfinite(t["exact_q50"][-1]):
            q += " (exact " + "/".join(format_from_log(t[k][-1], 4)
                                       for k in ("log_exact_q10", "log_exact_q50", "log_exact_q90")) + ")"
        ratio = math.exp(t["log_mean"][-1] - t["log_theory"][-1])
        print(f"{LABELS.get(s, s):28s} E[M_d] = {format_from_log(t['log_mean'][-1], 4)}, /theory at "
              f"d={int(t['depth'][-1])}: {ratio:.4f}  (s.e. {math.exp(t['log_sem'][-1] - t['log_theory'][-1]):.4f}){q}")
    size = os.path.getsize(path) / 1e6
    print(f"wrote {path} ({size:.0f} MB: every net's M_d and log M_d at every point) and {png}")


if __name__ == "__main__":
    import sys

    from ..commandline import run_main

    sys.exit(run_main(main, prog="fig1a"))
