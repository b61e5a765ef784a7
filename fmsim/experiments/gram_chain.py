"""Gradients and pairs of inputs at finite width (Hanin 2018; the Gram chain).

Three measurements on He nets (Gaussian weights, no bias), each beside its closed form:

* **Jacobian entries against depth**: ``(J e_0)_0^2`` at ``x = (1, ..., 1)`` (``n_0 = 10``, width ``--width``),
  ``method="full"`` with the tangent ``e_0``. Its mean is ``1 / n_0`` at every depth.
* **Their fluctuations against beta**: depth ``--profile-depth`` at constant widths ``--profile-widths``
  (``beta = sum_{0<j<d} 1/n_j``); ``E[X^2] / E[X]^2 = 6 prod (1 + 5 / n_j)``, about ``6 e^{5 beta}``: the
  slope ``C`` of its logarithm against beta is fitted and held to the closed form's.
* **The cosine of two inputs** (cosine ``--rho0``) layer by layer at widths ``--cos-widths``, sampled by the
  exact Gram chain, against the infinite-width arc-cosine map; and the exact chain against ``full`` nets at the
  narrowest width (the law of the last cosine, which no closed form gives).

Writes ``<out>/gram_chain.h5`` (reused when its configuration matches) and ``<out>/gram_chain.png``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

import numpy as np

from ..config import FullyConnected, Init
from ..presenting.plotting import integer_ticks
from ..theory.gram import jacobian_entry_moments, mean_field_cosine
from .common import int_list, pyplot, save, stored_run

N0 = 10
DEPTHS = (1, 2, 5, 10, 20)
PROFILE_WIDTHS = (10, 15, 20, 40, 80)


def pair_inputs(rho0: float) -> np.ndarray:
    """Two unit-length inputs in two dimensions with cosine ``rho0``, shape (2, 2)."""
    return np.array([[1.0, 0.0], [rho0, np.sqrt(1.0 - rho0 * rho0)]])


def entries(widths: Sequence[int], nets: int, seed: int) -> np.ndarray:
    """``(J e_0)_0^2`` of ``nets`` He nets of widths ``widths`` at ``x = 1``, by ``method="full"``: shape (nets,)."""
    from ..running.simulate import simulate

    n0 = widths[0]
    res = simulate(FullyConnected(widths), Init.scheme("he"), nets, seed, x=np.ones(n0), tangents=np.eye(n0)[:1],
                   method="full")
    return res.jacobian_entries[:, 0]


def cosines(width: int, depth: int, rho0: float, nets: int, seed: int, method: str = "exact") -> np.ndarray:
    """Cosine of the two inputs' activations at layers ``0..depth``, shape (nets, depth + 1)."""
    from ..running.simulate import simulate

    res = simulate(FullyConnected([2] + [width] * depth), Init.scheme("he"), nets, seed, inputs=pair_inputs(rho0),
                   method=method, record="layers")
    g = res.gram_layers
    with np.errstate(invalid="ignore", divide="ignore"):
        return g[..., 0, 1] / np.sqrt(g[..., 0, 0] * g[..., 1, 1])


def compute(a: argparse.Namespace) -> dict[str, np.ndarray]:
    """Every sample the claims and the figure read, by name."""
    out = {}
    for d in a.depths:
        out[f"entry_depth_{d}"] = entries([N0] + [a.width] * d, a.nets, a.seed)
    for w in a.profile_widths:
        out[f"entry_width_{w}"] = entries([N0] + [w] * a.profile_depth, a.nets, a.seed + 1)
    for w in a.cos_widths:
        nets = a.cos_nets if w == min(a.cos_widths) else max(1024, a.cos_nets // 10)
        out[f"cosine_width_{w}"] = cosines(w, a.cos_depth, a.rho0, nets, a.seed + 2)
    narrow = min(a.cos_widths)
    out["cosine_full_last"] = cosines(narrow, a.cos_depth, a.rho0, a.full_nets, a.seed + 3, method="full")[:, -1]
    return out


def write(path: str, samples: dict[str, np.ndarray], meta: dict) -> None:
    from ..files.rewrite import rewrite_atomically

    with rewrite_atomically(path, fresh=True) as f:
        f.attrs["config"] = json.dumps(meta)
        for name, values in samples.items():
            f[name] = values


def read(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """Inverse of :func:`write`: ``(samples, meta)``."""
    from ..files.store import reading

    with reading(path) as f:
        return {name: f[name][()] for name in f}, json.loads(f.attrs["config"])


def mean_se(x: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error (from the sample) of the finite values of ``x``."""
    x = x[np.isfinite(x)]
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))


def beta(width: int, depth: int) -> float:
    """``sum_{0<j<d} 1/n_j`` of a constant-width net."""
    return (depth - 1) / width


def fluctuation_fit(samples: dict[str, np.ndarray], widths: Sequence[int], depth: int
                    ) -> tuple[float, float, float, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares slope ``C`` of ``y = log(E[X^2] / E[X]^2)`` against beta over the profiles, its standard error
    (delta method, from the sample), and the closed form's slope over the same profiles; with ``y``, its
    standard errors and the closed-form ``y``, per profile."""
    betas = np.array([beta(w, depth) for w in widths])
    ys, ses, exact = [], [], []
    for w in widths:
        x = samples[f"entry_width_{w}"]
        m1, m2 = x.mean(), (x * x).mean()
        # y = log m2 - 2 log m1: gradient (1/m2, -2/m1) against the covariance of (X^2, X) over n
        cov = np.cov(np.stack([x * x, x]))
        grad = np.array([1.0 / m2, -2.0 / m1])
        ys.append(np.log(m2 / m1**2))
        ses.append(float(np.sqrt(grad @ cov @ grad / x.size)))
        e1, e2 = jacobian_entry_moments([N0] + [w] * depth, 2.0)
        exact.append(np.log(e2 / e1**2))
    weights = (betas - betas.mean()) / np.sum((betas - betas.mean()) ** 2)
    ys, ses, exact = np.array(ys), np.array(ses), np.array(exact)
    return (float(weights @ ys), float(np.sqrt(np.sum((weights * ses) ** 2))), float(weights @ exact), ys, ses,
            exact)


def plot(samples: dict[str, np.ndarray], a: argparse.Namespace, png: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(1, 3, figsize=(14, 4.2))
    stats = [mean_se(samples[f"entry_depth_{d}"] * N0) for d in a.depths]
    ax[0].errorbar(a.depths, [s[0] for s in stats], yerr=[s[1] for s in stats], fmt="o", capsize=3,
                   label="simulated (1 s.e.)")
    ax[0].axhline(1.0, color="k", lw=1, label="exact: 1 at every depth")
    ax[0].set(xlabel="depth d", ylabel=r"$n_0\,E[(J e_0)_0^2]$", title=f"He, width {a.width}: the mean gradient")
    integer_ticks(ax[0].xaxis)
    ax[0].legend()

    _, _, _, ys, ses, exact = fluctuation_fit(samples, a.profile_widths, a.profile_depth)
    betas = np.array([beta(w, a.profile_depth) for w in a.profile_widths])
    ax[1].errorbar(betas, np.exp(ys), yerr=np.exp(ys) * ses, fmt="o", capsize=3, label="simulated (1 s.e.)")
    grid = np.linspace(0.0, betas.max() * 1.05, 50)
    ax[1].plot(betas, np.exp(exact), "k-", lw=1, label=r"exact: $6\prod_j (1 + 5/n_j)$")
    ax[1].plot(grid, 6 * np.exp(5 * grid), "k:", lw=1, label=r"$6 e^{5\beta}$")
    ax[1].set(yscale="log", xlabel=r"$\beta = \sum_{0<j<d} 1/n_j$", ylabel=r"$E[X^2] / E[X]^2$, $X = (J e_0)_0^2$",
              title=f"depth {a.profile_depth}, widths {min(a.profile_widths)} to {max(a.profile_widths)}")
    ax[1].legend()

    layers = np.arange(a.cos_depth + 1)
    mf = mean_field_cosine(a.cos_depth, a.rho0)
    ax[2].axhline(0.0, color="k", lw=1, label=f"infinite width: the arc-cosine map ({mf[-1]:.3f} at layer "
                                              f"{a.cos_depth})")
    for w in a.cos_widths:
        c = samples[f"cosine_width_{w}"]
        s = [mean_se(c[:, j]) for j in layers]
        ax[2].errorbar(layers, [v[0] - m for v, m in zip(s, mf)], yerr=[v[1] for v in s], fmt="o-", ms=4, lw=0.8,
                       capsize=2, label=f"width {w}, {c.shape[0]} nets (exact Gram chain)")
    ax[2].set(xlabel="layer j", ylabel="mean cosine minus the map",
              title=f"two inputs at cosine {a.rho0:g}: finite width")
    integer_ticks(ax[2].xaxis)
    ax[2].legend(fontsize=8, loc="upper left")
    save(fig, png)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data")
    p.add_argument("--depths", type=int_list, default=list(DEPTHS))
    p.add_argument("--width", type=int, default=30)
    p.add_argument("--nets", type=int, default=200_000, help="nets per depth and per width profile")
    p.add_argument("--profile-depth", type=int, default=10)
    p.add_argument("--profile-widths", type=int_list, default=list(PROFILE_WIDTHS))
    p.add_argument("--cos-widths", type=int_list, default=[20, 1000])
    p.add_argument("--cos-depth", type=int, default=10)
    p.add_argument("--cos-nets", type=int, default=100_000, help="nets at the narrowest width (a tenth at the others)")
    p.add_argument("--full-nets", type=int, default=20_000, help="full nets against the exact chain")
    p.add_argument("--rho0", type=float, default=0.5, help="cosine of the two inputs")
    p.add_argument("--seed", type=int, default=2018)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--quiet", action="store_true", help="accepted for symmetry with the other experiments")
    a = p.parse_args(argv)
    if a.quick:
        a.depths, a.nets, a.profile_widths, a.cos_widths = [1, 4, 8], 20_000, [10, 20, 40], [20, 500]
        a.cos_depth, a.cos_nets, a.full_nets = 8, 60_000, 5_000
    if (min(a.depths) < 1 or min(a.width, a.profile_depth, a.cos_depth, *a.profile_widths, *a.cos_widths) < 1
            or min(a.nets, a.cos_nets, a.full_nets) < 100 or len(a.profile_widths) < 2):
        p.error("--depths, --width, --profile-depth, --cos-depth and the widths must be >= 1, at least 2 "
                "--profile-widths, and --nets, --cos-nets, --full-nets >= 100")
    if not -1.0 <= a.rho0 <= 1.0:
        p.error(f"--rho0 must be in [-1, 1], got {a.rho0}")
    from ..files.rewrite import check_writable

    path, png = os.path.join(a.out, "gram_chain.h5"), os.path.join(a.out, "gram_chain.png")
    check_writable(path)
    meta = {k: v for k, v in vars(a).items() if k not in ("out", "quiet")}
    stored = stored_run(path, meta, read)
    if stored is not None:
        samples = stored[0]  # this configuration is stored: reuse it
    else:
        samples = compute(a)
        os.makedirs(a.out, exist_ok=True)
        write(path, samples, meta)
    plot(samples, a, png)
    c, se, exact, *_ = fluctuation_fit(samples, a.profile_widths, a.profile_depth)
    for d in a.depths:
        m, s = mean_se(samples[f"entry_depth_{d}"] * N0)
        print(f"depth {d:3d}: n_0 E[(J e_0)_0^2] = {m:.4f} +- {s:.4f} (exact 1)")
    print(f"slope of log(E[X^2]/E[X]^2) against beta: {c:.3f} +- {se:.3f} (closed form {exact:.3f}; 5 at large width)")
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    import sys

    from ..commandline import run_main

    sys.exit(run_main(main, prog="gram_chain"))
