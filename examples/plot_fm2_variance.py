"""
Failure mode 2: the spread of the length grows with the sum of reciprocal widths
================================================================================

Under He initialization the mean length is constant in depth, but its second moment is
:math:`E[M_d^2]/M_0^2 = \\prod_j (1 + 5/n_j) \\approx \\exp(5\\beta)`, with
:math:`\\beta = \\sum_j 1/n_j`. Nets of different depths and widths with the same :math:`\\beta`
have about the same spread. Here the simulated second moment (exact sampler, 50,000 nets) of nets
of depth 5 to 40, at widths chosen for :math:`\\beta = 0.25, 0.5, 1`, against the closed form.
"""

import matplotlib.pyplot as plt
import numpy as np

import fmsim

he = fmsim.Init.scheme("he")
fig, ax = plt.subplots(figsize=(6, 4))
for beta, color in [(0.25, "C0"), (0.5, "C2"), (1.0, "C3")]:
    depths = np.array([5, 10, 20, 40])
    second, se, exact = [], [], []
    for d in depths:
        width = int(round(d / beta))
        arch = fmsim.FullyConnected.constant(depth=int(d), width=width)
        res = fmsim.simulate(arch, he, n_nets=51_200, seed=2)
        m2 = res.final**2
        second.append(m2.mean())
        se.append(m2.std(ddof=1) / np.sqrt(m2.size))
        exact.append(fmsim.theory.gaussian_moments(arch.widths, 2)[-1])
    ax.errorbar(depths, second, yerr=se, fmt="o", color=color, label=f"beta = {beta:g}")
    ax.plot(depths, exact, "-", color=color, alpha=0.6)
    ax.axhline(np.exp(5 * beta), color=color, ls=":", lw=1)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("depth d (width = d / beta)")
ax.set_ylabel("E[M_d^2] / M_0^2")
ax.set_title("lines: exact; dotted: exp(5 beta)")
ax.legend()
fig.tight_layout()
plt.show()
