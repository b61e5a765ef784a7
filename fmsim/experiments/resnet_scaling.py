"""Residual nets: FM1 and FM2 vs the number of modules L for several eta schedules.

Stream width ``--width`` (default 32); each module has one hidden ReLU layer
of the same width (He) and an output layer with ``c_out = 2``; modules end
linear (exact O(1)-per-module sampler, ``--nets`` nets) or in a ReLU
(exact O(n)-per-module sampler: hidden lengths by the chi-square-binomial law,
output coordinates drawn directly; ``--relu-nets`` nets; the input is then
made nonnegative, as the paper's stream of ReLU outputs). Schedules: eta = 1 (constant), 1/l, 1/sqrt(L).

For linear-ending modules E[M_L] = M_0 prod_l (1 + 2 eta_l^2): with eta = 1
it explodes as 3^L (FM1); with 1/l it stays bounded (sum eta^2 < inf); with
1/sqrt(L) it tends to e^2. The relative variance Var[M_L]/E[M_L]^2 follows
the exact second-moment recursion and stays bounded whenever sum eta^2 is:
no FM2 in residual nets once FM1 is avoided (Hanin & Rolnick 2018).

Writes ``<out>/resnet_scaling.h5`` (resumable) and ``<out>/resnet_scaling.png``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import numpy as np

from .. import theory
from ..commandline import add_cluster_options, cluster_from_args
from ..config import Init, Residual
from ..files.store import open_result, run_many_to_file
from ..presenting.plotting import integer_ticks
from ..running.simulate import make_config
from .common import int_list, pyplot, save

SCHEDULES = ["constant", "1/l", "1/sqrt(L)"]
DEPTHS = [1, 2, 4, 8, 16, 32, 64]


def group_name(ending: str, schedule: str, L: int) -> str:
    return f"{ending}/{schedule.replace('/', '_')}/L_{L}"


def run(path: str, width: int, depths: Sequence[int], nets: int, relu_nets: int, seed: int, quiet: bool,
        client=None) -> None:
    from tqdm.auto import tqdm

    x_relu = np.abs(np.random.default_rng(seed).standard_normal(width))  # nonnegative stream for ReLU modules
    x_relu *= np.sqrt(width / (x_relu @ x_relu))
    runs = []
    for ending, schedule, L in [(e, s, L) for e in ("linear", "relu") for s in SCHEDULES for L in depths]:
        arch = Residual.scheduled(width, L, schedule, 1.0, ending=ending)
        if ending == "linear":
            cfg = make_config(arch, Init.scheme("he"), nets, seed, method="exact", record="layers")
        else:
            cfg = make_config(arch, Init.scheme("he"), relu_nets, seed, method="exact", x=x_relu)
        runs.append((cfg, group_name(ending, schedule, L)))
    with tqdm(total=sum(c.n_nets for c, _ in runs), unit="net", unit_scale=True, desc="resnets",
              disable=quiet) as bar:
        run_many_to_file(runs, path, "cpu", bar.update, client)


def summarize(path: str, width: int, depths: Sequence[int]) -> dict:
    table = {}
    for ending in ("linear", "relu"):
        for s in SCHEDULES:
            rows = []
            for L in depths:
                res = open_result(path, group_name(ending, s, L))
                m = res.final / res.m0
                rel = m.var(ddof=1) / m.mean() ** 2
                row = [L, m.mean(), m.std(ddof=1) / np.sqrt(m.size), rel, np.nan, np.nan]
                if ending == "linear":
                    etas = res.config.arch.etas
                    mean = theory.residual_mean_length(etas, (width,))[-1]
                    second = theory.residual_second_moment(width, etas, (width,))[-1]
                    row[4:] = [mean, second / mean**2 - 1]
                rows.append(row)
            table[(ending, s)] = np.array(rows).T
    return table


def plot(table: dict, png: str, width: int) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    colors = dict(zip(SCHEDULES, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for (ending, s), t in table.items():
        L, mean, se, rel, tmean, trel = t
        fmt = "o-" if ending == "linear" else "s:"
        axes[0].errorbar(L, mean, yerr=se, fmt=fmt, color=colors[s], ms=4, capsize=2, label=f"{s}, {ending} end")
        axes[1].plot(L, rel, fmt, color=colors[s], ms=4, label=f"{s}, {ending} end")
        if ending == "linear":
            axes[0].plot(L, tmean, "--", color="k", lw=0.6)
            axes[1].plot(L, trel, "--", color="k", lw=0.6)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        integer_ticks(ax.xaxis)
        ax.set_xlabel("modules L")
        ax.legend(fontsize=7)
    axes[0].set_ylabel(r"$E[M_L]/M_0$")
    axes[0].set_title(f"FM1 in ResNets (width {width}, He modules): mean length\n"
                      "dashed: exact prod(1 + 2 eta_l^2) for linear-ending modules", fontsize=9)
    axes[1].set_ylabel(r"Var$[M_L]/E[M_L]^2$")
    axes[1].set_title("FM2: relative variance stays bounded when sum eta^2 is\ndashed: exact recursion",
                      fontsize=9)
    save(fig, png)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depths", type=int_list, default=DEPTHS)
    p.add_argument("--nets", type=int, default=200_000, help="nets per point, linear-ending (exact sampler)")
    p.add_argument("--relu-nets", type=int, default=100_000, help="nets per point, ReLU-ending (exact sampler)")
    p.add_argument("--seed", type=int, default=4)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--quiet", action="store_true")
    add_cluster_options(p)
    a = p.parse_args(argv)
    if a.quick:
        a.width, a.depths, a.nets, a.relu_nets = 8, [1, 2, 4], 2048, 1024
    if a.width < 1 or min(a.depths) < 1 or a.nets < 2 or a.relu_nets < 2:
        p.error("--width, --depths must be >= 1 and --nets, --relu-nets >= 2")
    os.makedirs(a.out, exist_ok=True)
    path, png = os.path.join(a.out, "resnet_scaling.h5"), os.path.join(a.out, "resnet_scaling.png")
    with cluster_from_args(a, a.quiet) as client:
        run(path, a.width, a.depths, a.nets, a.relu_nets, a.seed, a.quiet, client)
    table = summarize(path, a.width, a.depths)
    plot(table, png, a.width)
    for (ending, s), t in table.items():
        L, mean, se, rel, tmean, trel = (c[-1] for c in t)
        extra = f" (exact {tmean:.4g}, rel. var exact {trel:.4g})" if ending == "linear" else ""
        print(f"{ending:6s} {s:10s} L={int(L)}: E[M_L]/M_0 = {mean:.4g} +- {se:.2g}, rel. var {rel:.4g}{extra}")
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    import sys

    from ..commandline import run_main

    sys.exit(run_main(main, prog="resnet_scaling"))
