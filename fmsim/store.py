"""HDF5 storage: one run per group, written chunk by chunk, resumable, crash-safe.

Layout of a run group (readable with plain h5py; dimension names are HDF5
dimension scales/labels, so xarray's ``h5netcdf`` engine sees ``net`` and
``layer``)::

    attrs: config (JSON), schema_version, fmsim_version
    final      (net,)            float64   M_d of each net
    fm2        (net,)            float64   variance of M_1..M_d across layers
    lengths    (net, layer)      float32   M_0..M_d traces (record="layers"; gzip)
    layer      (layer,)          int64     dimension scale 0..d
    summary/   mean, var, log_mean, log_var, n_zero (layer,); moments (layer+1, 6)
    chunks_done ()               int64     progress counter, written last

Per chunk: the data, then the summary, then ``chunks_done``, then a flush.
The file is opened in SWMR mode after creation, so HDF5 keeps its metadata
consistent on disk and a ``kill -9`` at any moment leaves a readable file;
rerunning resumes after the last counted chunk (chunk ``k`` depends only on
``(config, seed, k)``), bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import h5py
import numpy as np

from .config import RunConfig
from .simulate import SimulationResult, iter_chunks
from .summary import LayerSummary, SummaryAccumulator

__all__ = ["SCHEMA_VERSION", "run_to_file", "open_result", "open_h5", "StoreError", "list_runs"]

SCHEMA_VERSION = 1
_SUMMARY_FIELDS = ("mean", "var", "log_mean", "log_var", "n_zero")


class StoreError(RuntimeError):
    """A file that cannot be used for this run (other config, locked, incomplete, damaged)."""


def _version() -> str:
    from . import __version__

    return __version__


def _config_json(config: RunConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


def _early_alloc_dataset(g: h5py.Group, name: str, shape: tuple[int, ...], dtype) -> h5py.Dataset:
    """Contiguous dataset with its space allocated now, so later writes touch raw data only."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    space = h5py.h5s.create_simple(shape)
    dsid = h5py.h5d.create(g.id, name.encode(), h5py.h5t.py_create(np.dtype(dtype)), space, dcpl=dcpl)
    return h5py.Dataset(dsid)


def _create_run(g: h5py.Group, config: RunConfig) -> None:
    n, d = config.n_nets, config.arch.depth
    if len(g):
        raise StoreError(f"group {g.name} is not empty but holds no fmsim run; choose another group or file")
    layer = g.create_dataset("layer", data=np.arange(d + 1, dtype=np.int64))
    layer.make_scale("layer")
    per_net = [_early_alloc_dataset(g, "final", (n,), np.float64), _early_alloc_dataset(g, "fm2", (n,), np.float64)]
    if config.record == "layers":
        rows = min(config.chunk_size, n)
        per_net.append(g.create_dataset("lengths", (n, d + 1), dtype=np.float32, chunks=(rows, d + 1),
                                        compression="gzip", compression_opts=4, shuffle=True))
        per_net[-1].dims[1].attach_scale(layer)
    for ds in per_net:
        ds.dims[0].label = "net"
    s = g.create_group("summary")
    for name in _SUMMARY_FIELDS:
        ds = _early_alloc_dataset(s, name, (d + 1,), np.int64 if name == "n_zero" else np.float64)
        ds.dims[0].attach_scale(layer)
    _early_alloc_dataset(s, "moments", (d + 2, 6), np.float64)
    s.attrs["description"] = "per-layer statistics of M_j across nets; log_* over nets with M_j > 0"
    done = _early_alloc_dataset(g, "chunks_done", (), np.int64)
    done[()] = 0
    g.attrs["schema_version"] = SCHEMA_VERSION
    g.attrs["fmsim_version"] = _version()
    g.attrs["config"] = _config_json(config)  # last: a group with a config is a complete layout


@contextmanager
def _open_for_writing(path: str) -> Iterator[h5py.File]:
    exists = os.path.exists(path)
    try:
        f = h5py.File(path, "a" if exists else "w-", libver="latest", locking=True)
    except (OSError, BlockingIOError) as e:
        msg = str(e).lower()
        if "h5clear" in msg or "already open for" in msg:  # a killed SWMR writer left its flag
            _recover(path)
            f = h5py.File(path, "a", libver="latest", locking=True)
        elif "lock" in msg:
            raise StoreError(f"{path} is open for writing by another process") from e
        else:
            raise StoreError(f"cannot open {path} for writing: {e}") from e
    try:
        yield f
    finally:
        f.close()


def _recover(path: str) -> None:
    """Rebuild a file whose writer was killed, then replace it atomically.

    HDF5 marks a file "open for SWMR write" until its writer closes it. A
    killed writer leaves that mark (and a consistent file: SWMR orders its
    metadata writes). The runs are read back in SWMR-read mode and written to
    a fresh file with the same layout, counters included.
    """
    tmp = path + ".recovering"
    try:
        with open_h5(path) as src, h5py.File(tmp, "w", libver="latest") as dst:
            for name in _runs_in(src):
                g_src = src[name]
                g = dst.require_group(name)
                _create_run(g, RunConfig.from_dict(json.loads(g_src.attrs["config"])))
                for key in ("final", "fm2", "lengths"):
                    if key in g_src:
                        g[key][...] = g_src[key][()]
                for key in _SUMMARY_FIELDS + ("moments",):
                    g["summary"][key][...] = g_src["summary"][key][()]
                g["chunks_done"][()] = g_src["chunks_done"][()]
    except (OSError, KeyError) as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise StoreError(f"{path} was left open by a killed writer and could not be recovered: {e}") from e
    os.replace(tmp, path)


def run_to_file(
    config: RunConfig, path: str | os.PathLike, group: str = "/", backend: str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Run ``config`` into ``group`` of the HDF5 file ``path``, resuming if it is already there.

    Parameters
    ----------
    config : RunConfig
    path : path-like
        Created if absent. Other groups in the file are left alone.
    group : str
        Group of this run ("/" = the file root).
    backend : {"cpu", "cuda"}
    progress : callable, optional
        Called with the number of nets finished by each new chunk (and once
        with the number already done when resuming).

    Returns
    -------
    SimulationResult
        Read back from the file.

    Raises
    ------
    StoreError
        The group holds a different configuration, or another writer has the file.
    """
    path = os.fspath(path)
    created = not os.path.exists(path)
    try:
        with _open_for_writing(path) as f:
            g = f.require_group(group)
            if "config" in g.attrs:
                if g.attrs["config"] != _config_json(config):
                    raise StoreError(
                        f"{path}:{group} holds a run with a different configuration:\n  file: "
                        f"{g.attrs['config']}\n  this: {_config_json(config)}\n"
                        "use another file or group to start a new run"
                    )
            else:
                _create_run(g, config)
            f.flush()
            f.swmr_mode = True
            _write_chunks(g, config, backend, progress)
    except BaseException:
        if created:
            _remove_if_no_run(path)
        raise
    return open_result(path, group)


def _write_chunks(g: h5py.Group, config: RunConfig, backend: str, progress) -> None:
    done = int(g["chunks_done"][()])
    acc = SummaryAccumulator(config.arch.depth)
    acc.moments[:] = g["summary/moments"][()] if done else 0.0
    if progress is not None and done:
        progress(min(done * config.chunk_size, config.n_nets))
    for chunk in iter_chunks(config, backend, first=done):
        k = chunk.k
        start, m = config.chunk_bounds(k)
        g["final"][start:start + m] = chunk.final
        g["fm2"][start:start + m] = chunk.fm2
        if config.record == "layers":
            g["lengths"][start:start + m] = chunk.lengths.astype(np.float32)
        acc.add_moments(chunk.moments)
        summary = acc.result()
        for name in _SUMMARY_FIELDS:
            g["summary"][name][:] = getattr(summary, name)
        g["summary/moments"][:] = acc.moments
        g.file.flush()
        g["chunks_done"][()] = k + 1
        g.file.flush()
        if progress is not None:
            progress(m)


def _remove_if_no_run(path: str) -> None:
    """Delete a file this process created if it holds no run (failed before the layout was complete)."""
    try:
        keep = bool(list_runs(path))
    except OSError:
        keep = False
    if not keep and os.path.exists(path):
        os.remove(path)


def list_runs(path: str | os.PathLike) -> list[str]:
    """Names of the groups in ``path`` that hold a run."""
    with open_h5(path) as f:
        return _runs_in(f)


def open_h5(path: str | os.PathLike) -> h5py.File:
    """Read-only, in SWMR-read mode: also opens a file whose writer was killed (or is running)."""
    return h5py.File(path, "r", libver="latest", swmr=True, locking=False)


def _runs_in(f: h5py.File) -> list[str]:
    names = ["/"] if "config" in f.attrs else []
    f.visititems(lambda name, obj: names.append("/" + name)
                 if isinstance(obj, h5py.Group) and "config" in obj.attrs else None)
    return names


def open_result(path: str | os.PathLike, group: str = "/") -> SimulationResult:
    """Read a finished run (read-only): the same object :func:`fmsim.simulate` returns.

    Traces (``lengths``) come back as float32, as stored.

    Raises
    ------
    StoreError
        No run in ``group``, or the run is not finished (rerun to resume).
    """
    with open_h5(path) as f:
        if group not in f or "config" not in f[group].attrs:
            raise StoreError(f"{path}:{group} holds no fmsim run (runs: {list_runs(path)})")
        g = f[group]
        config = RunConfig.from_dict(json.loads(g.attrs["config"]))
        done = int(g["chunks_done"][()])
        if done < config.n_chunks:
            raise StoreError(f"{path}:{group} is incomplete ({done} of {config.n_chunks} chunks); "
                             "rerun the same command to resume it")
        lengths = g["lengths"][()] if "lengths" in g else None
        return SimulationResult(config=config, final=g["final"][()], fm2=g["fm2"][()],
                                summary=LayerSummary.from_moments(g["summary/moments"][()]), lengths=lengths)
