"""Runs as analysis tables: one run as an ``xarray.Dataset``, a whole file as one tidy table.

Needs the ``analysis`` extra (``pip install -e ".[analysis]"``: pandas, xarray,
h5netcdf). Files are read through fmsim's checked, bounded reader, so these
work on files that plain ``xr.open_dataset`` refuses (a run left open by a
killed writer) and fail with a clear error on damaged ones.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .. import theory
from ..config import Conv, FullyConnected, Residual, RunConfig, input_vector
from .integrity import checked_read
from .layout import carried_coordinates, carried_layout, summary_quantities
from .store import MOMENT_COLUMNS, config_attrs, reading, runs_in

__all__ = ["open_dataset", "open_sweep", "exact_moments"]


def exact_moments(config: RunConfig, m0: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``E[M_j]`` and ``E[M_j^2]`` per layer where fmsim knows them in closed form, else nan.

    ``E[M_j]``: every fully connected and conv net (any symmetric law, with
    bias) and residual nets with linear-ending modules and no bias.
    ``E[M_j^2]``: fully connected nets (the exact fourth-moment recursion
    for the run's input, any symmetric law, with bias), and Gaussian
    linear-ending residual nets without bias.

    Returns
    -------
    mean, second : ndarray, shape (d + 1,)
    """
    arch, init = config.arch, config.init
    nan = np.full(arch.depth + 1, np.nan)
    c = init.layer_c(arch)
    if isinstance(arch, (FullyConnected, Conv)):
        widths = arch.widths if isinstance(arch, FullyConnected) else arch.channels
        bias_var = init.layer_bias_var(arch)
        mean = theory.mean_length(widths, c, m0=m0, bias_var=bias_var)
        second = nan
        if isinstance(arch, FullyConnected):
            second = theory.second_moment(input_vector(config), arch.widths, init.m4, c, bias_var, init.m4)
        return mean, second
    if isinstance(arch, Residual) and arch.ending == "linear" and not init.has_bias:
        cc = float(init.c)
        mean = theory.residual_mean_length(arch.etas, arch.module_widths, cc, arch.c_out, m0)
        second = (theory.residual_second_moment(arch.width, arch.etas, arch.module_widths, cc, arch.c_out, m0)
                  if init.law == "gaussian" else nan)
        return mean, second
    return nan, nan


def open_dataset(path: str | os.PathLike, group: str = "/", partial: bool = False) -> Any:
    """One run as an ``xarray.Dataset`` with named dimensions ``net``, ``layer``, ``quantity``, ``moment``.

    Data variables: ``final``, ``log_final`` and each per-net statistic such as ``fm2`` (net), ``lengths`` and
    ``log_lengths`` (net, layer) if recorded, the carried vectors' ``gram`` (net, input_a, input_b) and
    ``gram_layers`` (net, layer, input_a, input_b), or ``jvp`` and ``jacobian_entries`` (net, tangent) and
    ``jvp_layers`` (net, layer, tangent), where the run carries them, the per-layer summary ``mean``,
    ``sem``, ``var``, ``log_mean``, ``log_var`` (of ``log M_j``), ``log_of_mean``,
    ``log_of_var`` (``log`` of ``mean`` and ``var``, at any depth), ``dead_fraction`` (layer), the exact
    ``exact_mean`` and ``exact_second_moment`` (layer; nan where unknown)
    and ``moments`` (quantity, moment). Attributes: the flat configuration
    (``fmsim.store.config_attrs``) and the JSON ``config``. Loaded into memory.

    With ``partial=True``, an unfinished (or live) run gives the nets of its
    finished chunks; the attributes ``n_done`` and ``complete`` say so.

    Raises
    ------
    StoreError, DamagedFileError, FileNotFoundError
        No run in ``group``, an unfinished run (without ``partial``), or a
        damaged file (a chunk that fails its checksum).
    """
    import xarray as xr

    from .store import open_result

    res = open_result(path, group, partial=partial)  # checks that the run exists (and is complete)
    cfg = res.config
    s = res.summary
    d = cfg.arch.depth
    mean, second = exact_moments(cfg, res.m0)
    data = {
        "final": ("net", res.final), "log_final": ("net", res.log_final),
        **{name: ("net", values) for name, values in res.statistics.items()},
        "mean": ("layer", s.mean), "sem": ("layer", s.sem), "var": ("layer", s.var),
        "log_mean": ("layer", s.log_mean), "log_var": ("layer", s.log_var),
        "log_of_mean": ("layer", s.log_of_mean), "log_of_var": ("layer", s.log_of_var),
        "dead_fraction": ("layer", s.n_zero / max(res.n_done, 1)),
        "exact_mean": ("layer", mean), "exact_second_moment": ("layer", second),
    }
    with reading(path) as f:
        moments = checked_read(f[group]["summary/moments"])
    data["moments"] = (("quantity", "moment"), moments)
    if res.lengths is not None:
        data["lengths"] = (("net", "layer"), res.lengths)
        data["log_lengths"] = (("net", "layer"), res.log_lengths)
    for name, (_, dims, _) in carried_layout(cfg).items():
        data[name] = (("net", *dims), getattr(res, name))
    coords = {"net": np.arange(res.n_done, dtype=np.uint32), "layer": np.arange(d + 1),
              "quantity": summary_quantities(d),
              "moment": list(MOMENT_COLUMNS[:moments.shape[1]]),  # (six columns in files of fmsim < 0.9)
              **carried_coordinates(cfg)}
    attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in config_attrs(cfg).items()}
    attrs["seed"] = int(cfg.seed)
    attrs["config"] = json.dumps(cfg.to_dict(), sort_keys=True)
    attrs["group"] = group
    attrs["n_done"] = res.n_done
    attrs["complete"] = int(res.complete)
    return xr.Dataset(data, coords=coords, attrs=attrs)


_ARCH_COLUMNS = ("arch_kind", "depth", "widths", "width", "etas", "module_widths", "ending", "c_out",
                 "channels", "spatial", "kernel")


def open_sweep(path: str | os.PathLike, as_xarray: bool = False) -> Any:
    """Every finished run of a file as one tidy table: one row per (run, layer).

    Columns: ``run`` (group name), the architecture's parameters
    (``arch_kind``, ``depth`` and, as text, ``widths`` / ``width``, ``etas``,
    ``module_widths``, ``ending``, ``c_out`` / ``channels``, ``spatial``,
    ``kernel``), ``scheme``, ``law``, ``c`` (this layer's; nan at layer 0),
    ``bias_var``, ``n_nets``, ``seed``, ``method``, ``layer``, ``mean``,
    ``sem``, ``var``, ``log_mean``, ``log_var``, ``log_of_mean``,
    ``log_of_var``, ``dead_fraction``, ``exact_mean``, ``exact_second_moment``
    (nan where unknown).

    Parameters
    ----------
    path : path-like
    as_xarray : bool
        Return an ``xarray.Dataset`` indexed by ``(run, layer)`` instead of a
        ``pandas.DataFrame`` (runs of different depths are padded with nan).

    Returns
    -------
    pandas.DataFrame or xarray.Dataset
    """
    import pandas as pd

    from .store import open_result

    with reading(path) as f:
        runs = [r for r in runs_in(f) if int(f[r]["chunks_done"][()]) == RunConfig.from_dict(
            json.loads(f[r].attrs["config"])).n_chunks]
    frames = []
    for run in runs:
        res = open_result(path, run)
        cfg, s = res.config, res.summary
        d = cfg.arch.depth
        flat = config_attrs(cfg)
        mean, second = exact_moments(cfg, res.m0)
        c = cfg.init.layer_c(cfg.arch)
        layer_c = np.full(d + 1, np.nan)
        if c.size == d:
            layer_c[1:] = c
        table = {"run": run}
        for key in _ARCH_COLUMNS:
            v = flat.get(key)
            table[key] = ",".join(f"{x:g}" for x in v) if isinstance(v, np.ndarray) else v
        table.update(scheme=flat["scheme"], law=flat["law"], c=layer_c, bias_var=flat["bias_var"],
                     n_nets=cfg.n_nets, seed=int(cfg.seed), method=cfg.method, layer=np.arange(d + 1),
                     mean=s.mean, sem=s.sem, var=s.var, log_mean=s.log_mean, log_var=s.log_var,
                     log_of_mean=s.log_of_mean, log_of_var=s.log_of_var, dead_fraction=s.n_zero / cfg.n_nets,
                     exact_mean=mean, exact_second_moment=second)
        frames.append(pd.DataFrame(table))
    columns = ["run", *_ARCH_COLUMNS, "scheme", "law", "c", "bias_var", "n_nets", "seed", "method", "layer",
               "mean", "sem", "var", "log_mean", "log_var", "log_of_mean", "log_of_var", "dead_fraction", "exact_mean",
               "exact_second_moment"]
    df = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    if as_xarray:
        ds = df.set_index(["run", "layer"]).to_xarray()
        per_run = df.groupby("run", sort=False).first()
        for name in [*_ARCH_COLUMNS, "scheme", "law", "bias_var", "n_nets", "seed", "method"]:
            ds[name] = ("run", per_run[name].reindex(ds["run"].values).to_numpy())  # one value per run
        return ds
    return df

