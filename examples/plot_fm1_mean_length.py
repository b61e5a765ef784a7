"""
Failure mode 1: the mean length against depth
=============================================

The mean normalized squared length :math:`E[M_d]` of a fully connected ReLU net is exactly
:math:`M_0 \\prod_j c_j/2` for any symmetric weight law. He (:math:`c = 2`) keeps it flat; LeCun
(:math:`c = 1`) makes it vanish like :math:`2^{-d}`; doubling He's variance makes it explode like
:math:`2^d`. Here 20,000 Gaussian nets per point, drawn by fmsim's exact sampler, against the closed
form (lines).
"""

import matplotlib.pyplot as plt
import numpy as np

import fmsim

depths = np.array([2, 5, 10, 15, 20])
width = 20
fig, ax = plt.subplots(figsize=(6, 4))
for scheme, color in [("he", "C0"), ("lecun", "C1"), ("2x_he", "C3")]:
    init = fmsim.Init.scheme(scheme)
    mean, sem = [], []
    for d in depths:
        res = fmsim.simulate(fmsim.FullyConnected.constant(depth=d, width=width), init, n_nets=20_480, seed=1)
        mean.append(res.summary.mean[-1])
        sem.append(res.summary.sem[-1])
    exact = [fmsim.theory.mean_length((width,) * (d + 1), init.c)[-1] for d in depths]
    ax.errorbar(depths, mean, yerr=sem, fmt="o", color=color, label=f"{scheme} (simulated)")
    ax.plot(depths, exact, "-", color=color, alpha=0.6)
    print(f"{scheme:6s} E[M_20] = {mean[-1]:.4g} +- {sem[-1]:.2g}, exact {exact[-1]:.4g}")
ax.set_yscale("log")
ax.set_xlabel("depth d (width 20)")
ax.set_ylabel("E[M_d] / M_0")
ax.legend()
fig.tight_layout()
plt.show()
