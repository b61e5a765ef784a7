"""FM2 in fully connected nets: the spread of M_d depends on sum_j 1/n_j, not on the width profile.

He (Gaussian) nets with input width 784 and hidden widths from
:func:`fmsim.config.width_profile` (constant, increasing, decreasing,
alternating, bottleneck) at equal ``beta = sum_j 1/n_j``, for several depths
and betas; ``--nets`` nets each (exact sampler). For each net the output
length ``M_d`` and the across-layer variance ``fm2`` are stored.

Writes ``<out>/fm2_profiles.h5`` (one group per beta/profile/depth;
resumable) and ``<out>/fm2_profiles.png``: (left) Var[M_d] vs depth, one
panel line per profile, with the exact Gaussian value dashed; (middle) the
distribution of log M_d at the largest depth; (right) E[fm2] vs beta with
the exact value and the constant-width limit ``exp(5 beta)``-type curve.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import numpy as np

from .. import theory
from ..config import PROFILES, FullyConnected, Init, width_profile
from ..simulate import make_config
from ..store import open_result, run_to_file

N0 = 784
DEPTHS = [10, 20, 40, 80]
BETAS = [0.5, 1.0, 2.0]


def _arch(profile: str, depth: int, beta: float) -> FullyConnected:
    return FullyConnected((N0,) + width_profile(profile, depth, beta))


def run(path: str, depths: Sequence[int], betas: Sequence[float], n_nets: int, seed: int, quiet: bool) -> None:
    from tqdm.auto import tqdm

    jobs = [(b, p, d) for b in betas for p in PROFILES for d in depths if b <= d]
    for b, p, d in tqdm(jobs, desc="fm2 profiles", disable=quiet):
        cfg = make_config(_arch(p, d, b), Init.scheme("he"), n_nets, seed, method="exact")
        run_to_file(cfg, path, f"beta_{b:g}/{p}/depth_{d}")


def summarize(path: str, depths: Sequence[int], betas: Sequence[float]) -> dict:
    """Per (beta, profile): depth, actual beta, Var[M_d] (+ s.e.), exact Var, E[fm2], exact E[fm2], log M_d sample."""
    table = {}
    for b in betas:
        for p in PROFILES:
            rows, logs = [], None
            for d in depths:
                if b > d:
                    continue
                res = open_result(path, f"beta_{b:g}/{p}/depth_{d}")
                w = res.config.arch.widths
                m = res.final
                var = m.var(ddof=1)
                dev2 = (m - m.mean()) ** 2
                var_se = dev2.std(ddof=1) / np.sqrt(m.size)
                s2 = theory.gaussian_moments(w, 2, m0=res.m0)
                exact_var = s2[-1] - res.m0**2
                rows.append((d, sum(1.0 / n for n in w[1:]), var, var_se, exact_var, res.fm2.mean(),
                             res.fm2.std(ddof=1) / np.sqrt(m.size), theory.expected_fm2(s2)))
                logs = np.log(m[m > 0])
            table[(b, p)] = {"cols": np.array(rows).T, "log_final": logs}
    return table


def plot(table: dict, betas: Sequence[float], png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    styles = dict(zip(PROFILES, ["o-", "s-", "v-", "^-", "d-"]))
    colors = dict(zip(betas, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for (b, p), t in table.items():
        d, _, var, se, exact, *_ = t["cols"]
        axes[0].errorbar(d, var, yerr=se, fmt=styles[p], color=colors[b], ms=4, capsize=2,
                         label=f"beta={b:g}, {p}")
        axes[0].plot(d, exact, "--", color=colors[b], lw=0.8)
    axes[0].set_yscale("log")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("depth d")
    axes[0].set_ylabel(r"Var$[M_d]$ ($M_0 = 1$)")
    axes[0].set_title("He nets, equal sum 1/n_j: variance of M_d by width profile\ndashed: exact (Gaussian)",
                      fontsize=9)
    axes[0].legend(fontsize=6, ncol=2)
    bmax = max(betas)
    for p in PROFILES:
        logs = table[(bmax, p)]["log_final"]
        axes[1].hist(logs, bins=120, histtype="step", density=True, label=p)
    depth = int(table[(bmax, PROFILES[0])]["cols"][0][-1])
    axes[1].set_xlabel(r"$\log M_d$")
    axes[1].set_title(f"distribution of log M_d, beta = {bmax:g}, d = {depth}", fontsize=9)
    axes[1].legend(fontsize=7)
    for p in PROFILES:
        pts = [(t["cols"][1][-1], t["cols"][5][-1], t["cols"][6][-1], t["cols"][7][-1])
               for (b, q), t in table.items() if q == p]
        bb, fm, fse, ex = np.array(sorted(pts)).T
        axes[2].errorbar(bb, fm, yerr=fse, fmt=styles[p], ms=4, capsize=2, label=p)
        axes[2].plot(bb, ex, "k--", lw=0.6)
    grid = np.linspace(min(betas) * 0.9, max(betas) * 1.1, 100)
    axes[2].plot(grid, [theory.fm2_constant_width_limit(g) for g in grid], ":", color="gray",
                 label="constant width, d -> inf")
    axes[2].set_yscale("log")
    axes[2].set_xlabel(r"$\beta = \sum_j 1/n_j$")
    axes[2].set_ylabel(r"E[fm2] (variance of $M_1..M_d$ across layers)")
    axes[2].set_title("FM2 grows exponentially in beta (largest depth; dashed: exact)", fontsize=9)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=130)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data")
    p.add_argument("--depths", type=lambda t: [int(v) for v in t.split(",")], default=DEPTHS)
    p.add_argument("--betas", type=lambda t: [float(v) for v in t.split(",")], default=BETAS)
    p.add_argument("--nets", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        a.depths, a.betas, a.nets = [4, 8], [0.5, 1.0], 2048
    if min(a.depths) < 1 or min(a.betas) <= 0:
        p.error("--depths must be >= 1 and --betas > 0")
    os.makedirs(a.out, exist_ok=True)
    path, png = os.path.join(a.out, "fm2_profiles.h5"), os.path.join(a.out, "fm2_profiles.png")
    run(path, a.depths, a.betas, a.nets, a.seed, a.quiet)
    table = summarize(path, a.depths, a.betas)
    plot(table, a.betas, png)
    for (b, prof), t in table.items():
        d, bact, var, se, exact, fm, fse, fex = (c[-1] for c in t["cols"])
        print(f"beta={b:g} (actual {bact:.3f}) {prof:12s} d={int(d):3d}: Var[M_d] {var:.3f} +- {se:.3f} "
              f"(exact {exact:.3f}); E[fm2] {fm:.4f} +- {fse:.4f} (exact {fex:.4f})")
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    main()
