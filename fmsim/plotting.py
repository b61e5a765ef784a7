"""Plotting helpers: each takes data (and an optional ``ax``) and returns the ``ax``.

Nothing here runs a simulation; matplotlib is imported lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_length_vs_depth"]


def plot_length_vs_depth(
    depths: np.ndarray, mean: np.ndarray, sem: np.ndarray, lo: np.ndarray, hi: np.ndarray,
    theory: np.ndarray | None = None, label: str = "", ax: Any = None, color: str | None = None,
) -> Any:
    """Mean ``M_d`` vs depth on a log axis, with its standard error, a spread band and theory.

    Parameters
    ----------
    depths : ndarray, shape (k,)
    mean, sem : ndarray, shape (k,)
        Monte Carlo mean of ``M_d`` and its standard error.
    lo, hi : ndarray, shape (k,)
        Lower and upper edge of the spread band (e.g. 10% and 90% quantiles).
    theory : ndarray, shape (k,), optional
        Closed-form ``E[M_d]``, drawn as a dashed line.
    label : str
    ax : matplotlib Axes, optional
    color : str, optional

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    line = ax.errorbar(depths, mean, yerr=sem, fmt="o-", ms=4, label=label, color=color, capsize=2)
    c = line.lines[0].get_color()
    ax.fill_between(depths, lo, hi, color=c, alpha=0.15, lw=0)
    if theory is not None:
        ax.plot(depths, theory, "--", color=c, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("depth d (width = depth)")
    ax.set_ylabel(r"$M_d = \|z_d\|^2 / n_d$")
    return ax
