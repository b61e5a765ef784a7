"""Hessian-norm diagnostics at initialization (Skorski, Temperoni & Theobald, arXiv 2004.09506).

Part 1, block norms vs depth: ReLU MLPs 784 -> d hidden layers of width
``--width`` -> 10 with every weight variance c/fan-in, c in {1, 2, 4}, MSE
loss on ``--batch`` MNIST training images (softmax would saturate for large
c). For each depth and ``--nets`` independent nets, the exact Frobenius norm
of every layer's diagonal weight block of the Hessian (ReLU: equal to the
Gauss-Newton block, computed from its Kronecker form). The Hessian-norm rule
(c = 2, i.e. He) keeps them flat in depth; c = 1 and c = 4 shrink and grow
like (c/2)^d.

Part 2, the authors' notebook sweep: 784 -> 30 -> 30 -> 10 ReLU, first-layer
weights N(0, sd^2) with sd in {1e-5, 1e-2, 1}, the other layers Glorot
variance (Gaussian), plus the Hessian-norm rule in every layer; SGD lr 0.01,
batch 32, 1000 iterations, mean cross-entropy. Unlike the notebook, each
iteration draws a fresh batch, and the first layer's Hessian block norm is
recomputed every 50 iterations on a fixed set of 1024 training images.

Writes ``<out>/hessian_init.h5`` and ``<out>/hessian_init.png``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

import numpy as np

from ..config import Init
from ..presenting.plotting import integer_ticks
from ..training.hessian import hessian_norm_init, layer_block_frobenius
from ..training.mlp import MLP
from ..training.train import sgd_steps
from .common import int_list, pyplot, save, stored_run

C_VALUES = (1.0, 2.0, 4.0)
DEPTHS = (1, 2, 3, 4, 6, 8, 10, 12)
SDS = (1e-5, 1e-2, 1.0)


def block_norms_vs_depth(x: np.ndarray, y: np.ndarray, depths: Sequence[int], width: int, nets: int, seed: int,
                         c_values: Sequence[float] = C_VALUES) -> np.ndarray:
    """Frobenius norms of every layer's diagonal weight block.

    Returns
    -------
    ndarray, shape (len(c_values), len(depths), nets, max(depths) + 1)
        ``[i, j, k, l]``: layer ``l + 1`` of net ``k`` at depth ``depths[j]``
        with ``c = c_values[i]``; nan beyond the net's ``depth + 1`` layers.
    """
    out = np.full((len(c_values), len(depths), nets, max(depths) + 1), np.nan)
    for i, c in enumerate(c_values):
        for j, d in enumerate(depths):
            mlp = MLP.constant(d, width, n_in=x.shape[1], loss="mse")
            for k in range(nets):
                theta = mlp.init_params(Init("gaussian", c), seed, net=k, dtype=np.float64)
                for layer in range(1, mlp.n_layers + 1):
                    out[i, j, k, layer - 1] = layer_block_frobenius(mlp, theta, x, y, layer)
    return out


def notebook_inits() -> dict[str, Init]:
    """The notebook's first-layer sd sweep (Glorot variance above it) and the Hessian-norm rule."""
    glorot = (2 * 30 / 60, 2 * 30 / 40)  # c = n_in * 2 / (n_in + n_out) for 30 -> 30 and 30 -> 10
    inits = {f"sd={sd:g}": Init("gaussian", (sd**2 * 784,) + glorot, name=f"sd={sd:g}") for sd in SDS}
    inits["Hessian-norm rule (He)"] = hessian_norm_init(MLP((784, 30, 30, 10)))
    return inits


def sd_sweep(data, iters: int, nets: int, seed: int, every: int = 50, hess_batch: int = 1024
             ) -> dict[str, dict[str, np.ndarray]]:
    """Loss per iteration and first-block Hessian norm every ``every`` iterations, per init."""
    mlp = MLP((784, 30, 30, 10))
    xh = data.x_train[:hess_batch].astype(np.float64)
    yh = data.y_train[:hess_batch]
    out = {}
    for label, init in notebook_inits().items():
        loss = np.empty((nets, iters))
        hess_at = np.arange(0, iters + 1, every)
        hess = np.empty((nets, hess_at.size))
        for k in range(nets):
            theta = mlp.init_params(init, seed, net=k)
            rng = np.random.default_rng([seed, k, 0xB47C])
            batches = [rng.integers(0, len(data.x_train), 32) for _ in range(iters)]
            for t in range(iters):
                if t % every == 0:
                    hess[k, t // every] = layer_block_frobenius(mlp, theta.astype(np.float64), xh, yh, 1)
                loss[k, t], _ = sgd_steps(mlp, theta, data.x_train, data.y_train, batches[t:t + 1], 0.01)
            hess[k, -1] = layer_block_frobenius(mlp, theta.astype(np.float64), xh, yh, 1)
        out[label] = {"loss": loss, "hess_iter": hess_at, "hess_norm": hess, "c": np.atleast_1d(init.c)}
    return out


def write(path: str, norms: np.ndarray, depths: Sequence[int], width: int, sweep: dict, meta: dict) -> None:
    from ..files.rewrite import rewrite_atomically

    with rewrite_atomically(path, fresh=True) as f:
        f.attrs["config"] = json.dumps(meta)
        g = f.create_group("depth_sweep")
        g["block_norm"] = norms
        g["block_norm"].attrs["dims"] = "c, depth, net, layer"
        g["c"], g["depth"] = np.array(C_VALUES), np.array(depths)
        g.attrs["width"] = width
        for label, r in sweep.items():
            s = f.create_group(f"sd_sweep/{label}")
            for k, v in r.items():
                s[k] = v


def read(path: str) -> tuple[np.ndarray, list[int], int, dict, dict]:
    """Inverse of :func:`write`: ``(norms, depths, width, sweep, meta)``."""
    from ..files.store import reading

    with reading(path) as f:
        g = f["depth_sweep"]
        sweep = {label: {k: v[()] for k, v in grp.items()} for label, grp in f["sd_sweep"].items()}
        return (g["block_norm"][()], [int(d) for d in g["depth"][()]], int(g.attrs["width"]), sweep,
                json.loads(f.attrs["config"]))


def slopes_with_se(norms: np.ndarray, depths: Sequence[int]) -> list[tuple[float, float]]:
    """Per c: least-squares slope of the mean log |H_W1| over depth and its standard error.

    The s.e. comes from the residuals of the fit (``np.polyfit(cov=True)``) and is
    at least the one from the nets' spread (mean log norm s.e. over sqrt(sum (d - dbar)^2)).
    """
    d = np.asarray(depths, dtype=float)
    out = []
    for i in range(norms.shape[0]):
        logn = np.log(norms[i, :, :, 0])
        mean = logn.mean(axis=1)
        se_mean = logn.std(axis=1, ddof=1) / np.sqrt(logn.shape[1])
        (slope, _), cov = np.polyfit(d, mean, 1, cov=True) if d.size > 2 else (np.polyfit(d, mean, 1), None)
        se_fit = float(np.sqrt(cov[0, 0])) if cov is not None else np.nan
        se_nets = float(np.sqrt(np.sum(se_mean**2 * (d - d.mean()) ** 2)) / np.sum((d - d.mean()) ** 2))
        out.append((float(slope), float(np.nanmax([se_fit, se_nets]))))
    return out


def plot(norms: np.ndarray, depths: Sequence[int], sweep: dict, png: str) -> list[float]:
    plt = pyplot()

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ax = axes[0]
    d = np.array(depths)
    slopes = []
    for i, c in enumerate(C_VALUES):
        logn = np.log(norms[i, :, :, 0])  # first layer's block
        mean = logn.mean(axis=1)
        se = logn.std(axis=1, ddof=1) / np.sqrt(logn.shape[1])
        line = ax.errorbar(d, mean / np.log(10), yerr=se / np.log(10), fmt="o-", ms=4, capsize=2,
                           label=f"c = {c:g}")
        ax.plot(d, (mean[0] + (d - d[0]) * np.log(c / 2)) / np.log(10), "--", color=line.lines[0].get_color(),
                lw=1)
        slopes.append(float(np.polyfit(d, mean, 1)[0]))
    integer_ticks(ax.xaxis)
    ax.set_xlabel("hidden layers d")
    ax.set_ylabel(r"$\log_{10}\|H_{W_1}\|_F$ (mean over nets)")
    ax.set_title("first-layer Hessian block vs depth (MSE)\ndashed: slope log(c/2) per layer", fontsize=9)
    ax.legend(fontsize=8)
    ax = axes[1]
    j = len(depths) - 1
    for i, c in enumerate(C_VALUES):
        prof = np.log10(norms[i, j, :, :depths[j] + 1])
        ax.plot(np.arange(1, depths[j] + 2), prof.mean(axis=0), "o-", ms=3, label=f"c = {c:g}")
    integer_ticks(ax.xaxis)
    ax.set_xlabel("layer l")
    ax.set_ylabel(r"$\log_{10}\|H_{W_l}\|_F$")
    ax.set_title(f"every layer's block at d = {depths[j]}", fontsize=9)
    ax.legend(fontsize=8)
    ax = axes[2]
    twin = ax.twinx()
    window = loss_window(next(iter(sweep.values()))["loss"].shape[1])
    for label, r in sweep.items():
        loss = r["loss"].mean(axis=0)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        line, = ax.plot(np.arange(smooth.size) + window // 2, smooth, label=label)
        twin.plot(r["hess_iter"], r["hess_norm"].mean(axis=0), ":", marker=".", color=line.get_color())
    ax.set_xlabel("SGD iteration (batch 32, lr 0.01)")
    ax.set_ylabel(f"training loss (solid, {window}-step mean)")
    twin.set_ylabel(r"$\|H_{W_1}\|_F$ (dotted)")
    twin.set_yscale("log")
    ax.set_title("notebook sweep: 784-30-30-10, first-layer sd", fontsize=9)
    ax.legend(fontsize=8, loc="center right")
    save(fig, png)
    return slopes



def loss_window(iters: int) -> int:
    """Steps of the running mean of the training loss: 20, or a tenth of the run if that is shorter."""
    return max(1, min(20, iters // 10))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data")
    p.add_argument("--depths", type=int_list, default=list(DEPTHS))
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--batch", type=int, default=64, help="images for the depth sweep's loss")
    p.add_argument("--nets", type=int, default=5)
    p.add_argument("--iters", type=int, default=1000)
    p.add_argument("--hess-batch", type=int, default=1024, help="images for the sd sweep's Hessian norm")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--quiet", action="store_true", help="accepted for symmetry with the other experiments")
    a = p.parse_args(argv)
    if a.quick:
        a.depths, a.width, a.batch, a.nets, a.iters, a.hess_batch = [1, 2, 3], 16, 8, 2, 200, 64
    if min(a.depths) < 1 or min(a.width, a.batch, a.iters, a.hess_batch) < 1 or a.nets < 2:
        p.error("--depths, --width, --batch, --iters, --hess-batch must be >= 1 and --nets >= 2")
    from ..files.rewrite import check_writable
    from ..training.mnist import load_mnist

    path, png = os.path.join(a.out, "hessian_init.h5"), os.path.join(a.out, "hessian_init.png")
    check_writable(path)  # damaged, foreign or busy: refused before minutes of work
    meta = {k: v for k, v in vars(a).items() if k not in ("out", "quiet")}
    stored = stored_run(path, meta, read)
    if stored is not None:
        norms, _, _, sweep, _ = stored  # this configuration is stored: reuse it
    else:
        data = load_mnist()
        x = data.x_train[:a.batch].astype(np.float64)
        norms = block_norms_vs_depth(x, data.y_train[:a.batch], a.depths, a.width, a.nets, a.seed)
        sweep = sd_sweep(data, a.iters, a.nets, a.seed, every=max(1, min(50, a.iters // 4)),
                         hess_batch=a.hess_batch)
        os.makedirs(a.out, exist_ok=True)
        write(path, norms, a.depths, a.width, sweep, meta)
    slopes = plot(norms, a.depths, sweep, png)
    for c, s in zip(C_VALUES, slopes):
        print(f"c = {c:g}: slope of log|H_W1| per layer {s:+.3f} (rule's prediction log(c/2) = {np.log(c / 2):+.3f})")
    w = loss_window(a.iters)
    for label, r in sweep.items():
        print(f"{label:24s} loss {r['loss'][:, :w].mean():.3f} -> {r['loss'][:, -w:].mean():.3f} ({w}-step means);  "
              f"|H_W1| at init {r['hess_norm'][:, 0].mean():.3g}, at end {r['hess_norm'][:, -1].mean():.3g}")
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    import sys

    from ..commandline import run_main

    sys.exit(run_main(main, prog="hessian_init"))
