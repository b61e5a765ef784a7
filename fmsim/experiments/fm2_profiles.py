"""FM2 in fully connected nets: the spread of M_d depends on sum_j 1/n_j, not on the width profile.

He (Gaussian) and orthogonal (gain sqrt 2) nets with input width 784 and hidden widths from
:func:`fmsim.config.width_profile` (constant, increasing, decreasing,
alternating, bottleneck) at equal ``beta = sum_j 1/n_j``, for several depths
and betas; ``--nets`` nets each (exact samplers). For each net the output
length ``M_d`` and the across-layer variance ``fm2`` are stored.

Writes ``<out>/fm2_profiles.h5`` (one group per beta/profile/depth, orthogonal
ones under ``orthogonal/``; resumable), ``<out>/fm2_profiles.png``: (1) Var[log M_d]
vs depth per profile, He, with its exact value dashed (light-tailed, so the Monte
Carlo pins it down); (2) the same for orthogonal weights; (3) the distribution of
log M_d at the largest depth, He; (4) quantiles of fm2 vs beta, He, with the
exact E[fm2] dashed; and ``<out>/fm2_beta.png``: Var[log M_d] at the largest
depth against beta for He and orthogonal weights on the constant, widening
(increasing) and narrowing (decreasing) profiles, exact lines beside. Var[M_d]
and E[fm2] themselves are heavy-tailed (dominated by rare nets), so they
are printed with their exact values but not used to compare profiles.

Orthogonal weights spread ``log M_d`` less: per square layer
``Var[log Y] = 3/n`` to leading order against He's ``5/n``
(``E[M_d^2] = prod (1 + 3/(n_j + 2))`` against ``prod (1 + 5/n_j)``), and
unlike He's the spread depends on the profile beyond beta: a narrowing layer
adds the spread of the projection ``B_j``, a widening one none.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import numpy as np

from .. import theory
from ..commandline import add_cluster_options, cluster_from_args
from ..config import PROFILES, FullyConnected, Init, width_profile
from ..files.store import open_result, run_many_to_file
from ..presenting.plotting import integer_ticks
from ..running.simulate import make_config
from .common import float_list, int_list, pyplot, save

N0 = 784
DEPTHS = [10, 20, 40, 80]
BETAS = [0.5, 1.0, 2.0]
SCHEMES = ("he", "orthogonal")
BETA_PROFILES = ("constant", "increasing", "decreasing")  # fm2_beta.png: constant, widening, narrowing


def _arch(profile: str, depth: int, beta: float) -> FullyConnected:
    return FullyConnected((N0,) + width_profile(profile, depth, beta))


def group(scheme: str, beta: float, profile: str, depth: int) -> str:
    """HDF5 group of one run (He's have no prefix: files of fmsim < 0.10 resume)."""
    return ("" if scheme == "he" else f"{scheme}/") + f"beta_{beta:g}/{profile}/depth_{depth}"


def run(path: str, depths: Sequence[int], betas: Sequence[float], n_nets: int, seed: int, quiet: bool,
        client=None, schemes: Sequence[str] = SCHEMES) -> None:
    from tqdm.auto import tqdm

    runs = [(make_config(_arch(p, d, b), Init.scheme(s), n_nets, seed, method="exact"), group(s, b, p, d))
            for s in schemes for b in betas for p in PROFILES for d in depths if b <= d]
    with tqdm(total=sum(c.n_nets for c, _ in runs), unit="net", unit_scale=True, desc="fm2 profiles",
              disable=quiet) as bar:
        run_many_to_file(runs, path, "cpu", bar.update, client)


COLUMNS = ("depth", "beta", "var_log", "var_log_se", "var_log_exact", "var", "var_exact", "fm2_mean",
           "fm2_exact", "fm2_q50", "fm2_q90")


def summarize(path: str, depths: Sequence[int], betas: Sequence[float], scheme: str = "he") -> dict:
    """Per (beta, profile): a dict of :data:`COLUMNS` (arrays over depth) and ``log_final`` (largest depth).

    ``var_log``: variance of log M_d over alive nets (light-tailed; exact value
    from :func:`fmsim.theory.log_length_moments`). ``var`` and
    ``fm2_mean`` are heavy-tailed: their exact values are dominated by rare
    nets, and a sample of 1e5 nets typically falls short of them at beta >= 1.
    ``scheme``: ``"he"`` or ``"orthogonal"``.
    """
    weights = "orthogonal" if scheme == "orthogonal" else "gaussian"
    table = {}
    for b in betas:
        for p in PROFILES:
            rows, logs = [], None
            for d in depths:
                if b > d:
                    continue
                res = open_result(path, group(scheme, b, p, d))
                w = res.config.arch.widths
                m = res.final
                logs = np.log(m[m > 0])
                dev = logs - logs.mean()
                var_log_se = np.sqrt(max((dev**4).mean() - dev.var() ** 2, 0.0) / logs.size)
                if weights == "orthogonal":
                    s2 = theory.orthogonal_moments(w, 2, m0=res.m0)
                    # E[M_k | M_j] = M_j prod (c_i/2) min(n_{i-1}, n_i)/n_i: expected_fm2 with these effective c_i
                    wa = np.asarray(w, dtype=float)
                    c_mean = 2.0 * np.minimum(wa[:-1], wa[1:]) / wa[1:]
                else:
                    s2, c_mean = theory.gaussian_moments(w, 2, m0=res.m0), 2.0
                mean_d = theory.mean_length(w, c_mean, m0=res.m0)[-1]  # E[M_d]
                _, var_log_exact = theory.log_length_moments(w, m0=res.m0, weights=weights)
                q50, q90 = np.quantile(res.fm2, [0.5, 0.9])
                rows.append((d, sum(1.0 / n for n in w[1:]), logs.var(ddof=1), var_log_se, var_log_exact[-1],
                             m.var(ddof=1), s2[-1] - mean_d**2, res.fm2.mean(), theory.expected_fm2(s2, c_mean), q50,
                             q90))
            cols = np.array(rows).T
            law = theory.length_law(w, m0=res.m0, weights=weights)  # the largest depth's: its exact law of log M_d
            table[(b, p)] = dict(zip(COLUMNS, cols)) | {"log_final": logs, "law": law,
                                                        "log_q": np.quantile(logs, [0.1, 0.5, 0.9]),
                                                        "exact_log_q": law.log_quantile([0.1, 0.5, 0.9])}
    return table


def _var_log_panel(ax, table: dict, betas: Sequence[float], title: str) -> None:
    """Var[log M_d] vs depth, one line per (beta, profile), exact values dashed."""
    import matplotlib.pyplot as plt

    styles = dict(zip(PROFILES, ["o-", "s-", "v-", "^-", "d-"]))
    colors = dict(zip(betas, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for (b, p), t in table.items():
        ax.errorbar(t["depth"], t["var_log"], yerr=t["var_log_se"], fmt=styles[p], color=colors[b], ms=4,
                    capsize=2, label=f"beta={b:g}, {p}")
        ax.plot(t["depth"], t["var_log_exact"], "--", color=colors[b], lw=0.8)
    ax.set_xscale("log")
    integer_ticks(ax.xaxis)
    ax.set_xlabel("depth d")
    ax.set_ylabel(r"Var$[\log M_d]$ (nets with $M_d > 0$)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, ncol=2)


def plot(table: dict, betas: Sequence[float], png: str, orthogonal: dict | None = None) -> None:
    """``table`` (He) and ``orthogonal`` (or None): :func:`summarize`'s tables."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 4 if orthogonal else 3, figsize=(21 if orthogonal else 16, 4.6))
    styles = dict(zip(PROFILES, ["o-", "s-", "v-", "^-", "d-"]))
    _var_log_panel(axes[0], table, betas, "He nets, equal sum 1/n_j, different width profiles:\n"
                                          "spread of log M_d is set by beta (dashed: exact)")
    if orthogonal:
        _var_log_panel(axes[1], orthogonal, betas, "orthogonal nets (gain sqrt 2), the same profiles:\n"
                                                   "less spread, and it depends on the profile (dashed: exact)")
        axes = [axes[0]] + list(axes[2:])
    bmax = max(betas)
    for p in PROFILES:
        t = table[(bmax, p)]
        counts, edges, patch = axes[1].hist(t["log_final"], bins=120, histtype="step", density=True, label=p)
        grid = np.linspace(edges[0], edges[-1], 400)
        axes[1].plot(grid, t["law"].log_pdf(grid), "--", lw=0.8, color=patch[0].get_edgecolor())
    exact_q = table[(bmax, PROFILES[0])]["exact_log_q"]  # the band of the first profile; others differ by < s.e.
    axes[1].axvspan(exact_q[0], exact_q[2], color="0.85", zorder=0, label="exact 10-90%")
    axes[1].axvline(exact_q[1], color="0.5", lw=0.8, ls=":", label="exact median")
    depth = int(table[(bmax, PROFILES[0])]["depth"][-1])
    axes[1].set_xlabel(r"$\log M_d$")
    axes[1].set_title(f"distribution of log M_d, beta = {bmax:g}, d = {depth}; dashed: exact densities,\n"
                      f"grey: exact 10-90% band ({PROFILES[0]} profile)", fontsize=9)
    axes[1].legend(fontsize=7)
    for p in PROFILES:
        pts = sorted((t["beta"][-1], t["fm2_q50"][-1], t["fm2_q90"][-1], t["fm2_exact"][-1])
                     for (b, q), t in table.items() if q == p)
        bb, q50, q90, ex = np.array(pts).T
        line, = axes[2].plot(bb, q90, styles[p], ms=4, label=f"{p}: 90% quantile")
        axes[2].plot(bb, q50, styles[p][0], ms=4, mfc="none", color=line.get_color())
        axes[2].plot(bb, ex, "--", lw=0.6, color=line.get_color())
    axes[2].set_yscale("log")
    axes[2].set_xlabel(r"$\beta = \sum_j 1/n_j$")
    axes[2].set_ylabel("fm2 (variance of M_1..M_d across layers)")
    axes[2].set_title("FM2 vs beta at the largest depth: 90% (filled) and 50% (open) quantiles;\n"
                      "dashed: exact E[fm2], dominated by rare nets", fontsize=9)
    axes[2].legend(fontsize=7)
    save(fig, png)


def plot_beta(tables: dict[str, dict], png: str, ax=None) -> None:
    """Var[log M_d] at the largest depth against beta, one line per (scheme, profile) of :data:`BETA_PROFILES`,
    simulated (markers, +- s.e.) and exact (dashed). ``tables``: scheme -> :func:`summarize`'s table."""
    plt = pyplot()

    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(7, 5))
    marks = dict(zip(BETA_PROFILES, ["o", "^", "v"]))
    names = {"constant": "constant", "increasing": "widening", "decreasing": "narrowing"}
    colors = dict(zip(tables, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for scheme, table in tables.items():
        for p in BETA_PROFILES:
            pts = sorted((t["beta"][-1], t["var_log"][-1], t["var_log_se"][-1], t["var_log_exact"][-1])
                         for (b, q), t in table.items() if q == p)
            if not pts:
                continue
            bb, v, se, ex = np.array(pts).T
            ax.errorbar(bb, v, yerr=se, fmt=marks[p], color=colors[scheme], ms=5, capsize=2,
                        label=f"{scheme}, {names[p]}")
            ax.plot(bb, ex, "--", color=colors[scheme], lw=0.8)
    ax.set_xlabel(r"$\beta = \sum_j 1/n_j$")
    ax.set_ylabel(r"Var$[\log M_d]$ at the largest depth")
    ax.set_title("FM2: spread of log M_d against beta, He vs orthogonal weights\n"
                 "markers: Monte Carlo +- s.e.; dashed: exact", fontsize=9)
    ax.legend(fontsize=7)
    if own:
        save(fig, png)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data")
    p.add_argument("--depths", type=int_list, default=DEPTHS)
    p.add_argument("--betas", type=float_list, default=BETAS)
    p.add_argument("--nets", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--schemes", default=",".join(SCHEMES), help=f"he and/or orthogonal (default {','.join(SCHEMES)})")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--quiet", action="store_true")
    add_cluster_options(p)
    a = p.parse_args(argv)
    if a.quick:
        a.depths, a.betas, a.nets = [4, 8], [0.5, 1.0], 2048
    if min(a.depths) < 1 or min(a.betas) <= 0:
        p.error("--depths must be >= 1 and --betas > 0")
    schemes = [s for s in a.schemes.split(",") if s]
    if not schemes or any(s not in SCHEMES for s in schemes) or "he" not in schemes:
        p.error(f"--schemes must list he, and optionally orthogonal, got {a.schemes!r}")
    os.makedirs(a.out, exist_ok=True)
    path, png = os.path.join(a.out, "fm2_profiles.h5"), os.path.join(a.out, "fm2_profiles.png")
    with cluster_from_args(a, a.quiet) as client:
        run(path, a.depths, a.betas, a.nets, a.seed, a.quiet, client, schemes)
    tables = {s: summarize(path, a.depths, a.betas, s) for s in schemes}
    plot(tables["he"], a.betas, png, tables.get("orthogonal"))
    beta_png = os.path.join(a.out, "fm2_beta.png")
    plot_beta(tables, beta_png)
    for scheme, ((b, prof), t) in ((s, item) for s in schemes for item in tables[s].items()):
        r = {k: v[-1] for k, v in t.items() if k in COLUMNS}
        print(f"{scheme:10s} beta={b:g} (actual {r['beta']:.3f}) {prof:12s} d={int(r['depth']):3d}: Var[log M_d] "
              f"{r['var_log']:.4f} +- {r['var_log_se']:.4f} (exact {r['var_log_exact']:.4f}); Var[M_d] "
              f"{r['var']:.4g} (exact {r['var_exact']:.4g}); fm2 median {r['fm2_q50']:.4g}, 90% {r['fm2_q90']:.4g}, "
              f"mean {r['fm2_mean']:.4g} (exact {r['fm2_exact']:.4g}); 10/50/90% of log M_d "
              + "/".join(f"{v:.3f}" for v in t["log_q"]) + " (exact " + "/".join(f"{v:.3f}" for v in t["exact_log_q"])
              + ")")
    print(f"wrote {path}, {png} and {beta_png}")


if __name__ == "__main__":
    import sys

    from ..commandline import run_main

    sys.exit(run_main(main, prog="fm2_profiles"))
