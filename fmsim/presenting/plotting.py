"""Plotting helpers: each takes data (and an optional ``ax``) and returns the ``ax``.

Nothing here runs a simulation; matplotlib is imported lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_length_vs_depth", "plot_log_length_vs_depth", "powers_of_ten_axis", "plot_onset_vs_depth",
           "integer_ticks"]

_LOG10_E = float(np.log10(np.e))


def _mean_with_errors(ax: Any, x: np.ndarray, y: np.ndarray, yerr: np.ndarray, label: str, color: str | None
                      ) -> tuple[Any, str]:
    """Points joined by a line with error bars, on ``ax`` (a new Axes if None); returns ``(ax, their color)``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    line = ax.errorbar(x, y, yerr=yerr, fmt="o-", ms=4, capsize=2, label=label, color=color)
    return ax, line.lines[0].get_color()


def plot_length_vs_depth(
    depths: np.ndarray, mean: np.ndarray, sem: np.ndarray, lo: np.ndarray, hi: np.ndarray,
    theory: np.ndarray | None = None, label: str = "", ax: Any = None, color: str | None = None,
    exact_band: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
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
    exact_band : (lower, median, upper), each ndarray of shape (k,), optional
        Exact quantiles of the same band (e.g. from :func:`fmsim.theory.length_law`),
        drawn as dotted lines (the median thicker) over the simulated band.

    Returns
    -------
    matplotlib Axes
    """
    ax, c = _mean_with_errors(ax, depths, mean, sem, label, color)
    ax.fill_between(depths, lo, hi, color=c, alpha=0.15, lw=0)
    if theory is not None:
        ax.plot(depths, theory, "--", color=c, lw=1)
    if exact_band is not None:
        for edge, width in zip(exact_band, (0.8, 1.4, 0.8)):
            ax.plot(depths, edge, ":", color=c, lw=width)
    ax.set_yscale("log")
    integer_ticks(ax.xaxis)
    ax.set_xlabel("depth d (width = depth)")
    ax.set_ylabel(r"$M_d = \|z_d\|^2 / n_d$")
    return ax


def powers_of_ten_axis(ax: Any) -> Any:
    """Label the y axis of ``ax``, which holds ``log10`` values, as powers of ten (``10^-331``): a log axis
    that goes beyond float64's range."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"$10^{{{v:g}}}$"))
    return ax


def plot_log_length_vs_depth(
    depths: np.ndarray, log_mean: np.ndarray, log_sem: np.ndarray, log_lo: np.ndarray, log_hi: np.ndarray,
    log_theory: np.ndarray | None = None, label: str = "", ax: Any = None, color: str | None = None,
    log_exact_band: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Any:
    """:func:`plot_length_vs_depth` from natural logs, at any depth: ``log10`` values on a linear axis labelled
    as powers of ten (:func:`powers_of_ten_axis`), so ``E[M_d] = 2^-1100`` is drawn at ``10^-331``.

    Parameters
    ----------
    depths : ndarray, shape (k,)
    log_mean, log_sem : ndarray, shape (k,)
        ``log`` of the Monte Carlo mean of ``M_d`` and of its standard error
        (``LayerSummary.log_of_mean``, ``log_of_sem``).
    log_lo, log_hi : ndarray, shape (k,)
        ``log`` of the spread band's edges.
    log_theory : ndarray, shape (k,), optional
        ``log E[M_d]``, dashed.
    label, ax, color
        As in :func:`plot_length_vs_depth`.
    log_exact_band : (lower, median, upper), each ndarray of shape (k,), optional
        ``log`` of exact quantiles, dotted.

    Returns
    -------
    matplotlib Axes
    """
    log_mean, log_sem = np.asarray(log_mean, float), np.asarray(log_sem, float)
    rel = np.exp(log_sem - log_mean)  # s.e. / mean
    y = _LOG10_E * log_mean
    with np.errstate(divide="ignore", invalid="ignore"):
        down = -_LOG10_E * np.log1p(-np.minimum(rel, 0.999))
    up = _LOG10_E * np.log1p(rel)
    ax, c = _mean_with_errors(ax, depths, y, np.vstack([down, up]), label, color)
    ax.fill_between(depths, _LOG10_E * np.asarray(log_lo), _LOG10_E * np.asarray(log_hi), color=c, alpha=0.15, lw=0)
    if log_theory is not None:
        ax.plot(depths, _LOG10_E * np.asarray(log_theory), "--", color=c, lw=1)
    if log_exact_band is not None:
        for edge, width in zip(log_exact_band, (0.8, 1.4, 0.8)):
            ax.plot(depths, _LOG10_E * np.asarray(edge), ":", color=c, lw=width)
    powers_of_ten_axis(ax)
    integer_ticks(ax.xaxis)
    ax.set_xlabel("depth d (width = depth)")
    ax.set_ylabel(r"$M_d = \|z_d\|^2 / n_d$")
    return ax


def plot_onset_vs_depth(
    depths: np.ndarray, onsets: np.ndarray, cap: float, label: str = "", ax: Any = None, color: str | None = None,
) -> Any:
    """Epochs until training starts vs depth: mean +- s.e. over the runs that started.

    Runs that never started within ``cap`` epochs are drawn as open triangles
    at ``cap``, annotated with their count.

    Parameters
    ----------
    depths : ndarray, shape (k,)
    onsets : ndarray, shape (k, runs)
        Onset epoch of each run; ``nan`` = never started.
    cap : float
        The epoch limit of the runs.
    label : str
    ax : matplotlib Axes, optional
    color : str, optional

    Returns
    -------
    matplotlib Axes
    """
    onsets = np.asarray(onsets, dtype=float)
    started = np.isfinite(onsets)
    n = started.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(onsets, axis=1) / np.maximum(n, 1), np.nan)
        var = np.nansum((onsets - mean[:, None]) ** 2, axis=1) / np.maximum(n - 1, 1)
        sem = np.where(n > 1, np.sqrt(var / np.maximum(n, 1)), 0.0)
    ax, c = _mean_with_errors(ax, depths, mean, sem, label, color)
    never = n < onsets.shape[1]
    if never.any():
        ax.plot(np.asarray(depths)[never], np.full(never.sum(), cap), "^", mfc="none", color=c, ms=7)
        for d, k in zip(np.asarray(depths)[never], onsets.shape[1] - n[never]):
            ax.annotate(str(k), (d, cap), textcoords="offset points", xytext=(4, 4), fontsize=7, color=c)
    integer_ticks(ax.xaxis)
    ax.set_xlabel("depth")
    ax.set_ylabel("epochs to 20% test accuracy")
    return ax


def integer_ticks(axis: Any) -> None:
    """Ticks at whole numbers only, on a depth or layer axis (``ax.xaxis``)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))
