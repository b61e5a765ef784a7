"""
Every weight drawn, against the exact law
=========================================

``method="full"`` draws every weight of every net (from counter-based Philox streams, never
stored); ``method="exact"`` samples each layer's exact law in O(1 + n/128). Both must follow the
law that :func:`fmsim.theory.length_law` computes. Here the empirical CDF of :math:`M_d` from
both methods against the exact CDF. A net is dead (:math:`M_d = 0`) when some layer has no
positive unit; the dead fraction is compared with ``law.p_dead``, and the alive nets with the law
given :math:`M_d > 0` by the Kolmogorov-Smirnov distance, next to its 1% critical value.
"""

import matplotlib.pyplot as plt
import numpy as np

import fmsim

arch = fmsim.FullyConnected.constant(depth=10, width=10)
he = fmsim.Init.scheme("he")
law = fmsim.theory.length_law(arch.widths, c=2.0)
m = np.geomspace(1e-3, 30, 300)

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(m, law.cdf(m), "k-", lw=3, alpha=0.3, label="exact law")
for method, style in [("full", "C0--"), ("exact", "C1:")]:
    final = np.sort(fmsim.simulate(arch, he, n_nets=20_480, seed=3, method=method).final)
    ecdf = np.searchsorted(final, m, side="right") / final.size
    alive = final[final > 0]
    given_alive = (law.cdf(alive) - law.p_dead) / (1.0 - law.p_dead)  # the CDF of M_d given M_d > 0
    n = alive.size
    ks = max(np.max(np.arange(1, n + 1) / n - given_alive), np.max(given_alive - np.arange(n) / n))
    print(f"{method:5s}: dead {final.size - n} of {final.size} (expected {law.p_dead * final.size:.1f}); "
          f"KS distance of the alive nets {ks:.4f} (1% critical value {1.63 / np.sqrt(n):.4f})")
    ax.plot(m, ecdf, style, label=f"{method}: KS {ks:.4f}")
ax.set_xscale("log")
ax.set_xlabel("M_d (depth = width = 10, He)")
ax.set_ylabel("P(M_d <= m)")
ax.legend()
fig.tight_layout()
plt.show()
