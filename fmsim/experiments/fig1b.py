"""Hanin & Rolnick (2018), Fig. 1b and its FM2 variant: epochs until an MLP starts training on MNIST.

FM1 part: ReLU MLPs 784 -> d hidden layers of width d -> 10, for He, LeCun,
Glorot, 2x He and orthogonal weights with gain sqrt 2 (``nn.init.orthogonal_``),
``--runs`` independent initializations each (net index k = 0..runs-1 of one
seed, so the schemes share their standardized weights),
trained with plain SGD (lr 0.01, batch 1024, at most ``--max-epochs``
epochs) until test accuracy reaches 20%.

FM2 part: He-initialized MLPs whose hidden widths follow different profiles
(constant, increasing, decreasing, alternating) with the same
``beta = sum_j 1/n_j``, at several depths.

Writes ``<out>/fig1b.h5`` (one group per run, each added crash-safely; resumable:
finished runs are skipped) and ``<out>/fig1b.png`` (FM1) and ``<out>/fig1b_fm2.png`` (FM2).
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..commandline import add_cluster_options, cluster_from_args
from ..config import Init, width_profile
from ..presenting.plotting import integer_ticks
from ..training.mlp import MLP
from ..training.train import SGDConfig, read_run, run_meta, train, write_run
from .common import float_list, int_list, pyplot, save

SCHEMES = ["he", "lecun", "glorot", "2x_he", "orthogonal"]
LABELS = {"he": "He", "lecun": "LeCun", "glorot": "Glorot", "2x_he": "2x He", "orthogonal": "Orthogonal (gain sqrt 2)"}
DEPTHS = [5, 10, 20, 30, 40]
FM2_PROFILES = ["constant", "increasing", "decreasing", "alternating"]
FM2_DEPTHS = [10, 20, 30]
FM2_BETAS = [1.0, 3.0]


@dataclass(frozen=True)
class Job:
    """One training run of the experiment."""

    name: str  # HDF5 group
    mlp: MLP
    init: Init
    net: int


def fm1_jobs(depths: Sequence[int], runs: int, schemes: Sequence[str] = SCHEMES, width: int | None = None
             ) -> list[Job]:
    """One training run per (depth, scheme, run): an MLP of ``depth`` hidden layers of ``width`` units (default:
    width = depth, as in the paper's figure)."""
    return [Job(f"fm1/{s}/depth_{d}/run_{k}", MLP.constant(d, d if width is None else width), Init.scheme(s), k)
            for d in depths for s in schemes for k in range(runs)]


def fm2_jobs(depths: Sequence[int], betas: Sequence[float], runs: int,
             profiles: Sequence[str] = FM2_PROFILES) -> list[Job]:
    jobs = []
    for beta in betas:
        for d in depths:
            if beta > d:
                continue
            for p in profiles:
                widths = (784,) + width_profile(p, d, beta) + (10,)
                jobs.extend(Job(f"fm2/beta_{beta:g}/{p}/depth_{d}/run_{k}", MLP(widths), Init.scheme("he"), k)
                            for k in range(runs))
    return jobs


@functools.lru_cache(maxsize=1)
def _mnist():
    from ..training.mnist import load_mnist

    return load_mnist()


def train_job(job: Job, meta: dict, sgd: SGDConfig, seed: int):
    """One training run (a pure function of its arguments: a cluster task). Returns the TrainingRun."""
    data = _mnist()  # once per process
    theta = job.mlp.init_params(job.init, seed, job.net)
    return train(job.mlp, theta, data.x_train, data.y_train, data.x_test, data.y_test, sgd, seed=meta["order_seed"])


def run_jobs(path: str, jobs: Sequence[Job], sgd: SGDConfig, seed: int, quiet: bool = False, client=None) -> None:
    """Train every job not yet in ``path``; refuse if a stored run has a different configuration.

    Each finished run is added with :func:`fmsim.files.rewrite.rewrite_atomically`, so a
    ``kill -9`` at any moment loses at most the runs in progress, and a rerun
    resumes with the missing runs and the same results. With a Dask ``client``
    the trainings are cluster tasks and are written as they finish.
    """
    from tqdm.auto import tqdm

    from ..files.rewrite import check_writable, rewrite_atomically
    from ..files.store import reading
    from ..running.execution import unordered_map

    check_writable(path)  # damaged, foreign or busy: refused before any work
    todo = []
    stored = {}
    if os.path.exists(path):
        with reading(path) as f:
            stored = {job.name: read_run(f[job.name])[1] for job in jobs if job.name in f}
    for job in jobs:
        meta = run_meta(job.mlp, job.init, sgd, seed, job.net, seed + job.net)
        if job.name not in stored:
            todo.append((job, meta))
        elif stored[job.name] != meta:
            raise ValueError(f"{path}:{job.name} holds a run with a different configuration; "
                             f"use another --out or delete the file")
    if not todo:
        return
    tasks = [(job, meta, sgd, seed) for job, meta in todo]
    with tqdm(total=len(tasks), desc="training runs", disable=quiet) as bar:
        for (job, meta, _, _), run in unordered_map(train_job, tasks, client):
            with rewrite_atomically(path) as f:
                write_run(f, job.name, run, meta)
            bar.update(1)


def onsets(path: str, prefix: str, depths: Sequence[int], runs: int) -> np.ndarray:
    """Onset epochs of ``prefix/depth_{d}/run_{k}``, shape (len(depths), runs); nan = never."""
    from ..files.store import reading

    with reading(path) as f:
        return np.array([[f[f"{prefix}/depth_{d}/run_{k}"].attrs["onset_epoch"] for k in range(runs)]
                         for d in depths])


def plot_fm1(path: str, depths: Sequence[int], runs: int, cap: int, png: str, width: int | None = None
             ) -> dict[str, np.ndarray]:
    plt = pyplot()

    from ..presenting.plotting import plot_onset_vs_depth

    table = {s: onsets(path, f"fm1/{s}", depths, runs) for s in SCHEMES}
    fig, ax = plt.subplots(figsize=(7, 5))
    for s, on in table.items():
        plot_onset_vs_depth(np.array(depths), on, cap, LABELS[s], ax=ax)
    integer_ticks(ax.xaxis)
    ax.set_xlabel("depth d (width = depth)" if width is None else f"depth d (width {width})")
    ax.set_title(f"Fig. 1b (Hanin & Rolnick 2018): epochs to 20% MNIST test accuracy, {runs} runs each\n"
                 f"SGD lr {0.01}, batch 1024; triangles: runs that never reached 20% in {cap} epochs (count)",
                 fontsize=9)
    ax.set_yscale("log" if cap >= 10 else "linear")
    ax.legend(fontsize=8)
    save(fig, png)
    return table


def plot_fm2(path: str, depths: Sequence[int], betas: Sequence[float], runs: int, cap: int, png: str
             ) -> dict[tuple[float, str], np.ndarray]:
    plt = pyplot()

    from ..presenting.plotting import plot_onset_vs_depth

    table = {}
    fig, axes = plt.subplots(1, len(betas), figsize=(5.5 * len(betas), 4.5), squeeze=False, sharey=True)
    for ax, beta in zip(axes[0], betas):
        ds = [d for d in depths if d >= beta]
        for p in FM2_PROFILES:
            table[(beta, p)] = on = onsets(path, f"fm2/beta_{beta:g}/{p}", ds, runs)
            plot_onset_vs_depth(np.array(ds), on, cap, p, ax=ax)
        ax.set_title(f"He init, width profiles with sum 1/n_j = {beta:g}", fontsize=9)
        ax.set_yscale("log" if cap >= 10 else "linear")
        ax.legend(fontsize=8)
    fig.suptitle(f"FM2: epochs to 20% MNIST test accuracy, width profiles of equal sum 1/n_j ({runs} runs each;\n"
                 f"triangles: runs that never reached 20% in {cap} epochs, with their count)", fontsize=9)
    save(fig, png)
    return table



def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data", help="output folder (default data/)")
    p.add_argument("--part", choices=["fm1", "fm2", "both"], default="both")
    p.add_argument("--depths", type=int_list, default=DEPTHS, help=f"FM1 depth grid (default {DEPTHS})")
    p.add_argument("--width", type=int, help="FM1 hidden width of every depth (default: width = depth)")
    p.add_argument("--fm2-depths", type=int_list, default=FM2_DEPTHS)
    p.add_argument("--betas", type=float_list, default=FM2_BETAS)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--seed", type=int, default=2018)
    p.add_argument("--quick", action="store_true", help="depths 4 and 12 at width 24, 2 runs on a 3-epoch budget, "
                                                        "for smoke tests")
    p.add_argument("--quiet", action="store_true")
    add_cluster_options(p)
    a = p.parse_args(argv)
    if a.runs < 1:
        p.error(f"--runs must be >= 1, got {a.runs}")
    if a.quick:
        # deep enough for LeCun and Glorot to lag He at width 24, short enough for a smoke test (about 20 s)
        a.depths, a.width, a.fm2_depths, a.betas, a.runs, a.max_epochs = [4, 12], 24, [4, 8], [1.0], 2, 3
    sgd = SGDConfig(max_epochs=a.max_epochs)  # validates max_epochs
    for name, grid in (("--depths", a.depths), ("--fm2-depths", a.fm2_depths)):
        if min(grid) < 1:
            p.error(f"{name} must be >= 1, got {grid}")
    for b in a.betas:
        if not 0 < b:
            p.error(f"--betas must be > 0, got {a.betas}")
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "fig1b.h5")
    jobs = (fm1_jobs(a.depths, a.runs, width=a.width) if a.part != "fm2" else []) + \
           (fm2_jobs(a.fm2_depths, a.betas, a.runs) if a.part != "fm1" else [])
    with cluster_from_args(a, a.quiet) as client:
        run_jobs(path, jobs, sgd, a.seed, a.quiet, client)
    if a.part != "fm2":
        png = os.path.join(a.out, "fig1b.png")
        for s, on in plot_fm1(path, a.depths, a.runs, a.max_epochs, png, a.width).items():
            print(f"{LABELS[s]:7s} mean epochs to 20% by depth {a.depths}: "
                  + ", ".join("never" if np.isnan(on[i]).all() else
                              f"{np.nanmean(on[i]):.2f} ({np.isfinite(on[i]).sum()}/{a.runs})"
                              for i in range(len(a.depths))))
        print(f"wrote {png}")
    if a.part != "fm1":
        png = os.path.join(a.out, "fig1b_fm2.png")
        for (beta, prof), on in plot_fm2(path, a.fm2_depths, a.betas, a.runs, a.max_epochs, png).items():
            print(f"beta={beta:g} {prof:12s}: " + ", ".join(
                "never" if np.isnan(r).all() else f"{np.nanmean(r):.2f}" for r in on))
        print(f"wrote {png}")
    print(f"wrote {path}")


if __name__ == "__main__":
    import sys

    from ..commandline import run_main

    sys.exit(run_main(main, prog="fig1b"))
