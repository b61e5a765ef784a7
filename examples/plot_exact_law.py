"""
The exact law of M_d, without Monte Carlo
=========================================

For Gaussian weights the layer ratios :math:`M_j/M_{j-1}` are independent scaled chi-square
variables with binomial degrees of freedom, so :func:`fmsim.theory.length_law` inverts the
characteristic function of :math:`\\log M_d` into the whole law: density, CDF, quantiles, the
probability that the net is dead, and moments. Here the density of :math:`\\log M_d` for He nets
with depth = width, and the median and 10/90% quantiles against depth.
"""

import matplotlib.pyplot as plt
import numpy as np

import fmsim

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
y = np.linspace(-10, 3, 400)
for n in (5, 10, 30, 100):
    law = fmsim.theory.length_law((n,) * (n + 1), c=2.0)
    left.plot(y, law.log_pdf(y), label=f"d = n = {n}")
    print(f"d = n = {n:3d}: P(dead) = {law.p_dead:.3g}, E[M_d] = {law.moment(1.0):.6f}, "
          f"median {law.quantile(0.5):.4f}")
left.set_xlabel("log M_d")
left.set_ylabel("density (alive nets)")
left.legend()

depths = np.arange(2, 61, 2)
q = np.array([fmsim.theory.length_law((20,) * (d + 1), c=2.0).quantile([0.1, 0.5, 0.9]) for d in depths])
right.fill_between(depths, q[:, 0], q[:, 2], alpha=0.3, label="10% to 90%")
right.plot(depths, q[:, 1], label="median")
right.axhline(1.0, color="k", lw=0.8, ls=":", label="mean (= M_0)")
right.set_yscale("log")
right.set_xlabel("depth d (width 20)")
right.set_ylabel("M_d / M_0")
right.legend()
fig.tight_layout()
plt.show()
