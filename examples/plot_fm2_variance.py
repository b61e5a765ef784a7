"""
Failure mode 2: the spread of the length grows with the sum of reciprocal widths
================================================================================

Under He initialization the mean length is constant in depth, but its spread grows with
:math:`\\beta = \\sum_j 1/n_j`: :math:`E[M_d^2]/M_0^2 = \\prod_j (1 + 5/n_j) \\approx \\exp(5\\beta)`,
and :math:`\\mathrm{Var}[\\log M_d] \\approx 5\\beta` once the widths are large (dotted). Nets of
different depths with the same :math:`\\beta` have about the same spread; narrow layers add more.

The second moment is dominated by rare nets, so its Monte Carlo error bars are wide; the spread of
:math:`\\log M_d` is not. Here, for depths 10 to 80 at widths chosen for :math:`\\beta = 0.25, 0.5, 1`:
left, the simulated :math:`\\mathrm{Var}[\\log M_d]` (exact sampler, 51,200 nets; error bars are
one standard error) against its exact value; right, the simulated 10%, 50% and 90% quantiles of
:math:`M_d` against the exact law's (:func:`fmsim.theory.length_law`).
"""

import matplotlib.pyplot as plt
import numpy as np

import fmsim

he = fmsim.Init.scheme("he")
depths = np.array([10, 20, 40, 80])
fig, (ax_var, ax_q) = plt.subplots(1, 2, figsize=(9, 4))
for beta, color in [(0.25, "C0"), (0.5, "C2"), (1.0, "C3")]:
    var, se, exact_var, quantiles, exact_quantiles = [], [], [], [], []
    for d in depths:
        arch = fmsim.FullyConnected.constant(depth=int(d), width=int(round(d / beta)))
        res = fmsim.simulate(arch, he, n_nets=51_200, seed=2)
        logs = res.log_final[np.isfinite(res.log_final)]  # live nets (dead ones have M_d = 0)
        v = logs.var(ddof=1)
        var.append(v)
        se.append(np.sqrt((np.mean((logs - logs.mean()) ** 4) - v**2) / logs.size))  # s.e. of a variance
        exact_var.append(fmsim.theory.gaussian_log_length_moments(arch.widths)[1][-1])
        quantiles.append(np.quantile(res.final, [0.1, 0.5, 0.9]))
        exact_quantiles.append(fmsim.theory.length_law(arch.widths).quantile([0.1, 0.5, 0.9]))
    ax_var.errorbar(depths, var, yerr=se, fmt="o", color=color, label=f"beta = {beta:g}")
    ax_var.plot(depths, exact_var, "-", color=color, alpha=0.6)
    ax_var.axhline(5 * beta, color=color, ls=":", lw=1)
    quantiles, exact_quantiles = np.array(quantiles), np.array(exact_quantiles)
    for k, marker in enumerate(("v", "o", "^")):  # 10%, median, 90%
        ax_q.plot(depths, quantiles[:, k], marker, color=color, ls="none", label=f"beta = {beta:g}" if k == 1 else None)
        ax_q.plot(depths, exact_quantiles[:, k], "-", color=color, alpha=0.6)
for ax in (ax_var, ax_q):
    ax.set_xscale("log")
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
ax_var.set_xlabel("depth d (width = d / beta)")
ax_var.set_ylabel("Var[log M_d]")
ax_var.set_title("points: simulated; lines: exact")
ax_var.legend()
ax_q.set_yscale("log")
ax_q.set_xlabel("depth d (width = d / beta)")
ax_q.set_ylabel("M_d / M_0: 10%, 50%, 90% quantiles")
ax_q.set_title("points: simulated; lines: the exact law")
ax_q.legend()
fig.tight_layout()
plt.show()
