"""HDF5 storage: one run per group, written chunk by chunk, resumable, crash-safe.

Layout of a run group (readable with plain h5py; dimension names are HDF5
dimension scales/labels, so xarray's ``h5netcdf`` engine sees ``net`` and
``layer``)::

    attrs: config (JSON), the same flattened (config_attrs), schema_version, fmsim_version,
           stream_layout (fmsim.laws.STREAM_LAYOUT: which random bits make which weight)
    net        (net,)            uint32    dimension scale: global net index
    layer      (layer,)          int64     dimension scale 0..d
    final      (net,)            float64   M_d of each net (0 or inf beyond float64's range)
    log_final  (net,)            float64   log M_d of each net (-inf only for a dead net)
    fm2        (net,)            float64   variance of M_1..M_d across layers
    log_lengths (net, layer)     float32   log M_0..log M_d traces (record="layers"; gzip)
    runs that carry vectors (inputs=X, k inputs; or tangents=U, m tangents at x), float64:
    gram       (net, input_a, input_b)          G_d / n_d of the inputs (input_a, input_b: scales 0..k-1)
    gram_layers (net, layer, input_a, input_b)  G_j / n_j at every layer (record="layers"; gzip)
    jvp        (net, tangent)                   |J u|^2 / n_d (tangent: scale 0..m-1)
    jvp_layers (net, layer, tangent)            |J_j u|^2 / n_j (record="layers"; gzip)
    jacobian_entries (net, tangent)             (J u)_0^2 (method="full")
               (each: one HDF5 chunk per chunk of the run, with a Fletcher-32 checksum)
    summary/   mean, var, log_mean, log_var, n_zero, log_of_mean, log_of_var (layer,)
               (checksummed, as moments); moments (quantity, moment) with scales
               quantity = M_0..M_d, fm2 and moment = count, mean, M2 (of M e^-pivot),
               log_count, log_mean, log_M2, pivot (fmsim.running.summary)

Schema 4 (fmsim 0.9) stores lengths as logs, so no value leaves float range at
any depth; files of schema 3 and older (``lengths`` as float32 ``M_j``, no
``log_final``, six moment columns) still open, their logs derived from ``M``
(nan where ``M`` is 0 or inf: underflow and death, overflow and a large value,
cannot be told apart there). They are not resumed by this version.
    chunks_done ()               int64     progress counter, written last

Every dataset's dimensions are HDF5 dimension scales, so netCDF-4 readers
(``xr.open_dataset(path, engine="h5netcdf", group=...)``) see named
dimensions.

Per chunk: the data, a flush, the summary, a flush and an fsync, then
``chunks_done`` and a flush. Every write and flush is checked: an
error from HDF5 or the OS (a full disk, EIO, a quota) stops the run at once
with a :class:`WriteError` that names the chunk, and the counter never counts
a chunk whose data did not reach the disk. The writer opens the file without
HDF5's raw-data chunk cache (each chunk of a run is one HDF5 chunk, written
whole, once), so a chunk's write goes to the file in the write call and fails
there. With the cache, HDF5 wrote a chunk only when its dataset was closed:
inside h5py's destructor, where an error is printed ("Exception ignored") and
lost, the chunk stays zeros while the counter counts it, and the dangling
HDF5 identifier then crashed the process at exit. A writer killed between the
summary and the counter leaves a chunk whose
summary already counts it; resuming counts that chunk as done (its moments'
count of nets tells) instead of merging it twice.
The file is opened in SWMR mode after creation, so HDF5 keeps its metadata
consistent on disk and a ``kill -9`` at any moment leaves a readable file;
rerunning resumes after the last counted chunk (chunk ``k`` depends only on
``(config, seed, k)``), bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import h5py
import numpy as np

from ..config import LEGACY_SCHEME_NAMES, RunConfig
from ..running import statistics
from ..running.simulate import SimulationResult, carried_fields, check_backend, check_memory, map_chunks
from ..running.summary import MOMENT_COLUMNS, LayerSummary, SummaryAccumulator
from ..sampling.laws import LAW_CODES, STREAM_LAYOUT, weights_per_block
from .h5io import DamagedFileError, FileBusyError, StoreError, WriterLock, check_file, open_read, writer_alive
from .integrity import check_coordinates, check_dimensions, checked_read, nets_counted, nets_held, run_config
from .layout import (
    ATTRIBUTES_DIGEST,
    CARRIED_DATASETS,
    PER_NET_DATASETS,
    SUMMARY_FIELDS,
    attributes_digest,
    carried_coordinates,
    carried_layout,
    summary_quantities,
)

__all__ = ["SCHEMA_VERSION", "run_to_file", "open_result", "open_h5", "StoreError", "DamagedFileError",
           "FileBusyError", "WriteError", "check_runs", "list_runs", "run_many_to_file", "reading",
           "recover_swmr_file"]

SCHEMA_VERSION = 4  # 2: net/quantity/moment dimension scales, flat config attributes; 3: Fletcher-32 chunks;
#                    4: log_final, log_lengths (float32) instead of lengths, summaries from logs (pivot column)
CREATOR = "fmsim"  # root attribute "creator" of every file fmsim creates



def _version() -> str:
    from .. import __version__

    return __version__


def _renamed_hint(stored: RunConfig, config: RunConfig) -> str:
    """Where a stored run's scheme name changed meaning since it was written: the name of its old meaning."""
    old = {v: k for k, v in LEGACY_SCHEME_NAMES.items()}.get(stored.init.name)
    if old is None or config.init.name != old:
        return ""
    return (f". This file's {old!r} is that of fmsim < 0.12, now called {stored.init.name!r}: resume it with "
            f"--scheme {stored.init.name} (fmsim.Init.scheme({stored.init.name!r}))")


def _config_json(config: RunConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


class WriteError(StoreError):
    """Writing a run failed (a full disk, an I/O error, a quota); the file holds every chunk it counts."""


_ERRNO_TEXT = {errno.ENOSPC: "no space left on device", errno.EIO: "an I/O error (EIO)",
               errno.EDQUOT: "the disk quota is exceeded", errno.EROFS: "the file system is read-only",
               errno.EFBIG: "the file is too large for its file system"}


def _errno_of(e: BaseException) -> int | None:
    """The OS error number of an error from the OS or from HDF5 (whose messages carry ``errno = N``)."""
    if isinstance(e, OSError) and e.errno:
        return e.errno
    m = re.search(r"errno = (\d+)", str(e))
    return int(m.group(1)) if m else None


def write_error(path: str, e: BaseException, doing: str, resumable: bool = True) -> WriteError:
    """One line for a failed write: what failed, where, and what to do (``resumable``: the file holds a run that
    the same command resumes; else nothing of the run was written)."""
    code = _errno_of(e)
    what = _ERRNO_TEXT.get(code) or (os.strerror(code) if code else " ".join(str(e).split())[:200])
    fix = "free space (or move the file)" if code in (errno.ENOSPC, errno.EDQUOT) else "fix the disk (or move the file)"
    then = "rerun the same command to resume" if resumable else "rerun the same command"
    return WriteError(f"{path}: {what} while {doing}; {fix} and {then}")


def _inject(point: str) -> None:
    """Fault-injection point for tests (``"create"``, ``"data"``, ``"summary"``, ``"counter"``, ``"close"``); a
    no-op."""


def _fsync_file(f: h5py.File) -> None:
    """fsync the file's descriptor (HDF5's default sec2 driver): flushed data is on the disk, not in the cache."""
    os.fsync(f.id.get_vfd_handle())


def _checksummed(g: h5py.Group, name: str, shape: tuple[int, ...], dtype, rows: int, **filters) -> h5py.Dataset:
    """A dataset of chunks of ``rows`` rows, each with a Fletcher-32 checksum (checked by HDF5 on every read)."""
    return g.create_dataset(name, shape, dtype=dtype, chunks=(max(1, rows),) + tuple(shape[1:]), fletcher32=True,
                            **filters)


def _early_alloc_dataset(g: h5py.Group, name: str, shape: tuple[int, ...], dtype) -> h5py.Dataset:
    """Contiguous dataset with its space allocated now, so later writes touch raw data only."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    space = h5py.h5s.create_simple(shape)
    dsid = h5py.h5d.create(g.id, name.encode(), h5py.h5t.py_create(np.dtype(dtype)), space, dcpl=dcpl)
    return h5py.Dataset(dsid)




def config_attrs(config: RunConfig) -> dict[str, object]:
    """The configuration as flat HDF5/netCDF attributes (the JSON ``config`` attribute stays the reference).

    Keys: ``arch_kind``, ``depth``, the architecture's own fields (``widths``;
    ``width``, ``etas``, ``module_widths``, ``ending``, ``c_out``; ``channels``,
    ``spatial``, ``kernel``), ``scheme`` ("" if none), ``law``, ``c``,
    ``bias_var``, ``fan``, ``n_nets``, ``seed``, ``method``, ``record``, with fan-scaled biases ``bias_c`` and
    ``layer_bias_var`` (each layer's bias variance, ``bias_c_j / fan_in_j``; a residual module's layers),
    ``chunk_size``, ``precision``, and ``bits_per_weight``: the random bits each drawn weight takes
    (:func:`fmsim.laws.weights_per_block`: 1 Rademacher, 32 uniform or float32, 64 otherwise; orthogonal
    ``full``: the 64 of its Gaussian rows; 0 where no weight is drawn, method ``exact``).
    """
    arch = config.arch.to_dict()
    out: dict[str, object] = {"arch_kind": arch.pop("kind"), "depth": config.arch.depth}
    for k, v in arch.items():
        out[k] = np.asarray(v) if isinstance(v, list) else v
    init = config.init.to_dict()
    out["scheme"] = init["name"] or ""
    out["law"], out["fan"] = init["law"], init["fan"]
    out["bias_var"] = np.asarray(init["bias_var"], dtype=float)
    if "bias_c" in init:  # (fmsim >= 0.12, fan-scaled biases only: other files keep their attributes)
        out["bias_c"] = np.asarray(init["bias_c"], dtype=float)
        out["layer_bias_var"] = config.init.layer_bias_var(config.arch)
    out["c"] = np.asarray(init["c"], dtype=float)
    out.update(n_nets=config.n_nets, seed=np.uint64(config.seed), method=config.method, record=config.record,
               chunk_size=config.chunk_size, precision=config.precision, bits_per_weight=bits_per_weight(config))
    return out


def bits_per_weight(config: RunConfig) -> int:
    """Random bits per drawn weight of ``config``'s stream layout (0 for ``method="exact"``: none drawn)."""
    if config.method == "exact":
        return 0
    law = LAW_CODES["gaussian" if config.init.orthogonal else config.init.law]
    return 128 // int(weights_per_block(law, config.precision == "float32"))


def _create_run(g: h5py.Group, config: RunConfig, stream_layout: int = STREAM_LAYOUT) -> None:
    """The layout of a run: data allocated, dimension scales attached (netCDF-4 readable), config last."""
    n, d = config.n_nets, config.arch.depth
    if len(g):
        raise StoreError(f"group {g.name} is not empty but holds no fmsim run; choose another group or file")
    layer = g.create_dataset("layer", data=np.arange(d + 1, dtype=np.int64))
    layer.make_scale("layer")
    layer.attrs["long_name"] = "layer j (0 = input); for residual nets, module l"
    net = g.create_dataset("net", data=np.arange(n, dtype=np.uint32))
    net.make_scale("net")
    net.attrs["long_name"] = "global net index (its random stream)"
    rows = min(config.chunk_size, n)
    per_net = [_checksummed(g, "final", (n,), np.float64, rows), _checksummed(g, "log_final", (n,), np.float64, rows)]
    per_net[0].attrs["long_name"] = "M_d = |z_d|^2 / n_d of each net (0 or inf beyond float64's range)"
    per_net[1].attrs["long_name"] = "log M_d (natural log) of each net; -inf only for a dead net"
    for stat in statistics.STATISTICS:
        per_net.append(_checksummed(g, stat.name, (n,), stat.dtype, rows))
        per_net[-1].attrs["long_name"] = stat.long_name
    if config.record == "layers":
        # float32 logs: the size of the float32 M_j stored before, at any depth; the rounding of log M_j is
        # 2^-24 |log M_j| (6e-7 at |log M_j| = 10, 4e-4 at 7000), far below the spread of log M_j across nets
        per_net.append(_checksummed(g, "log_lengths", (n, d + 1), np.float32, rows, compression="gzip",
                                    compression_opts=4, shuffle=True))
        per_net[-1].dims[1].attach_scale(layer)
        per_net[-1].attrs["long_name"] = "log M_j (natural log) of each net and layer; -inf only for a dead net"
    scales = {"layer": layer}
    for name, values in carried_coordinates(config).items():
        scales[name] = g.create_dataset(name, data=values)
        scales[name].make_scale(name)
        scales[name].attrs["long_name"] = ("index of a tangent u (tangents=U: row of U)" if name == "tangent" else
                                           "index of an input (inputs=X: row of X)")
    for name, (tail, dims, long_name) in carried_layout(config).items():
        layers = "layer" in dims
        per_net.append(_checksummed(g, name, (n, *tail), np.float64, rows,
                                    **({"compression": "gzip", "compression_opts": 4, "shuffle": True} if layers
                                       else {})))
        for i, dim in enumerate(dims, start=1):
            per_net[-1].dims[i].attach_scale(scales[dim])
            per_net[-1].dims[i].label = dim
        per_net[-1].attrs["long_name"] = long_name
    for ds in per_net:
        ds.dims[0].attach_scale(net)
        ds.dims[0].label = "net"
    s = g.create_group("summary")
    for name in SUMMARY_FIELDS:
        ds = _checksummed(s, name, (d + 1,), np.int64 if name == "n_zero" else np.float64, d + 1)
        ds.dims[0].attach_scale(layer)
    quantity = s.create_dataset("quantity", data=summary_quantities(d), dtype=h5py.string_dtype())
    quantity.make_scale("quantity")
    moment = s.create_dataset("moment", data=list(MOMENT_COLUMNS), dtype=h5py.string_dtype())
    moment.make_scale("moment")
    moments = _checksummed(s, "moments", (len(quantity), len(MOMENT_COLUMNS)), np.float64, len(quantity))
    moments.dims[0].attach_scale(quantity)
    moments.dims[1].attach_scale(moment)
    moments.attrs["long_name"] = ("merged Welford moments (count, mean, M2 of M e^-pivot; of log M over M > 0; the "
                                  f"pivot) of M_0..M_d and {', '.join(statistics.names())}")
    s.attrs["description"] = ("per-layer statistics of M_j across nets; log_mean, log_var: of log M_j over nets with "
                              "M_j > 0; log_of_mean, log_of_var: log of mean and var, at any depth")
    done = _early_alloc_dataset(g, "chunks_done", (), np.int64)
    done[()] = 0
    for key, value in config_attrs(config).items():
        g.attrs[key] = value
    g.attrs["schema_version"] = SCHEMA_VERSION
    g.attrs["fmsim_version"] = _version()
    g.attrs["stream_layout"] = stream_layout
    g.attrs["config"] = _config_json(config)  # (with its digest) last: a group with a config is a complete layout
    g.attrs[ATTRIBUTES_DIGEST] = np.frombuffer(attributes_digest(g), dtype=np.uint8)


@contextmanager
def reading(path: str | os.PathLike) -> Iterator[h5py.File]:
    """:func:`~fmsim.files.h5io.open_read`, with HDF5 errors met while reading turned into
    :class:`fmsim.store.DamagedFileError`."""
    f = open_read(path)
    try:
        yield f
    except (OSError, KeyError) as e:
        raise DamagedFileError(f"{os.fspath(path)} is damaged or not an fmsim file ({e}); "
                               "fmsim left it as it is") from None
    finally:
        f.close()


def stream_layout_of(g: h5py.Group) -> int:
    """The random-stream layout a run was drawn with (files without the attribute predate it: layout 1)."""
    return int(g.attrs.get("stream_layout", 1))


def _check_target(path: str, group: str, config: RunConfig) -> None:
    """Refuse, before opening ``path`` for writing, anything that would make this run write into it wrongly.

    Raises
    ------
    DamagedFileError, FileBusyError, StoreError
        Damaged or not HDF5; written by another live process; an HDF5 file
        of someone else's (no fmsim run, no fmsim mark); ``group`` holding
        another configuration, or other data.
    """
    check_file(path)
    if writer_alive(path):
        raise FileBusyError(f"{path} is open for writing by another process; wait for it to finish or "
                            "choose another file")
    with reading(path) as f:
        if f.attrs.get("creator") != CREATOR and not runs_in(f):  # (the attribute first: no walk of the file)
            raise StoreError(f"{path} is an HDF5 file that fmsim did not write (no fmsim run in it); fmsim "
                             "adds runs only to new files or to its own: choose another file")
        if group in f:
            g = f[group]
            if not isinstance(g, h5py.Group):
                raise StoreError(f"{path}:{group} is a dataset, not a group; choose another group")
            if "config" in g.attrs:
                stored = run_config(g)  # damaged attributes: refused, not resumed
                if _config_json(stored) != _config_json(config):  # (as read: old scheme names in their old meaning)
                    raise StoreError(
                        f"{path}:{group} holds a run with a different configuration (file: {g.attrs['config']}; "
                        f"this run: {_config_json(config)}){_renamed_hint(stored, config)}; use another file or "
                        "group to start a new run")
                schema = int(g.attrs["schema_version"])
                if schema < SCHEMA_VERSION and int(g["chunks_done"][()]) < config.n_chunks:
                    raise StoreError(
                        f"{path}:{group} is an unfinished run in file schema {schema} (fmsim < 0.9, lengths as M_j); "
                        f"this fmsim writes schema {SCHEMA_VERSION} (log lengths). Finish it with the fmsim that "
                        "started it, or start a new file or group"
                    )
                layout = stream_layout_of(g)
                if layout != STREAM_LAYOUT and int(g["chunks_done"][()]) < config.n_chunks:
                    raise StoreError(
                        f"{path}:{group} is an unfinished run drawn with random-stream layout {layout}; this fmsim "
                        f"draws with layout {STREAM_LAYOUT} (fmsim.laws), so resuming would mix two samplers. "
                        "Finish it with the fmsim that started it, or start a new file or group"
                    )
            elif len(g):
                raise StoreError(f"group {group} of {path} is not empty but holds no fmsim run; "
                                 "choose another group or file")


@contextmanager
def _open_for_writing(path: str) -> Iterator[h5py.File]:
    """Take the writer lock, recover a file a killed writer left open, and open it (creating it) for writing.

    Every failure to write, at any moment (creating the file, laying out a run, a chunk, closing), leaves
    as one :class:`WriteError`; the file is then closed by :func:`_close_after_failure`, which first lets go
    of every HDF5 object the failure left behind.
    """
    if not os.path.exists(path):
        try:
            f = h5py.File(path, "w-", libver="latest", locking=True, rdcc_nbytes=0)
        except (OSError, FileExistsError) as e:
            if isinstance(e, FileExistsError) or _errno_of(e) == errno.EEXIST:
                raise FileBusyError(f"{path} was created by another process meanwhile; wait for it to finish or "
                                    "choose another file") from None
            raise write_error(path, e, "creating the file", resumable=False) from None
        f.attrs["creator"] = CREATOR
        lock = WriterLock(path).acquire()
    else:
        lock = WriterLock(path).acquire()
        try:
            if check_file(path).swmr_flag:  # flagged, yet we hold the lock: its writer was killed
                recover_swmr_file(path)
                lock.acquire()  # the recovered file replaced the old one
            f = h5py.File(path, "a", libver="latest", locking=True, rdcc_nbytes=0)
        except OSError as e:
            lock.release()
            if "lock" in str(e).lower():
                raise FileBusyError(f"{path} is open for writing by another process") from None
            raise DamagedFileError(f"cannot open {path} for writing: {e}") from None
        except BaseException:
            lock.release()
            raise
    try:
        yield f
        try:
            _inject("close")
            f.close()
        except (OSError, RuntimeError) as e:
            raise write_error(path, e, "closing the file") from None
    except BaseException as e:
        _close_after_failure(f, e)
        raise
    finally:
        lock.release()


def _close_after_failure(f: h5py.File, failure: BaseException) -> None:
    """Close a file after ``failure`` (reported to the user as one line); HDF5's repeats of it are dropped.

    The frames of the failure's traceback hold the HDF5 objects it was using: they are let go of first,
    while the file is still open. (Freed after their file failed to close, they printed "Exception
    ignored in ObjectID.__dealloc__" and crashed the interpreter.) Closing flushes HDF5's metadata cache,
    which can fail again on a full disk; it is tried until it succeeds (the failed flush leaves nothing to
    retry), and the file on disk holds every chunk it counts (the counter was written after an fsync of
    that chunk's data). If the close fails for good, the file's SWMR flag stays set and the next writer
    recovers it.
    """
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        seen = set()
        while failure is not None and id(failure) not in seen:
            seen.add(id(failure))
            traceback.clear_frames(failure.__traceback__)
            failure = failure.__context__ or failure.__cause__
        gc.collect()
        for _ in range(4):
            try:
                f.close()
                return
            except (OSError, RuntimeError, ValueError):
                continue
    finally:
        sys.unraisablehook = hook


def recover_swmr_file(path: str) -> None:
    """Rebuild a file whose writer was killed, then replace it atomically.

    HDF5 marks a file "open for SWMR write" until its writer closes it. A
    killed writer leaves that mark (and a consistent file: SWMR orders its
    metadata writes). The runs are read back in SWMR-read mode and written to
    a fresh file with the same layout, counters included.
    """
    tmp = path + ".recovering"
    try:
        with open_read(path) as src, h5py.File(tmp, "w", libver="latest") as dst:
            dst.attrs["creator"] = CREATOR
            for name in runs_in(src):
                g_src = src[name]
                if int(g_src.attrs["schema_version"]) < SCHEMA_VERSION:
                    raise KeyError(f"run {name} has schema {int(g_src.attrs['schema_version'])}, older than this "
                                   f"fmsim's {SCHEMA_VERSION}; recover it with the fmsim that wrote it")
                g = dst.require_group(name)
                _create_run(g, RunConfig.from_dict(json.loads(g_src.attrs["config"])), stream_layout_of(g_src))
                for key in PER_NET_DATASETS:
                    if key in g_src:
                        g[key][...] = g_src[key][()]
                for key in SUMMARY_FIELDS + ("moments",):
                    g["summary"][key][...] = g_src["summary"][key][()]
                g["chunks_done"][()] = g_src["chunks_done"][()]
    except (OSError, KeyError) as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise StoreError(f"{path} was left open by a killed writer and could not be recovered: {e}") from e
    os.replace(tmp, path)


def run_to_file(
    config: RunConfig, path: str | os.PathLike, group: str = "/", backend: str = "cpu",
    progress: Callable[[int], None] | None = None, client: Any = None,
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
    client : dask.distributed.Client, optional
        Run the chunks on this cluster (``fmsim.execution``); this process
        alone writes the file, in chunk order, so the file is the same as a
        serial run's.

    Returns
    -------
    SimulationResult
        Read back from the file.

    Raises
    ------
    StoreError
        The group holds a different configuration or other data, the file is
        not fmsim's, or another writer has it (:class:`fmsim.store.FileBusyError`);
        checked before the file is opened for writing, so it is left as it was.
    DamagedFileError
        Not an HDF5 file, truncated or otherwise unreadable; never modified.
    """
    run_many_to_file([(config, group)], path, backend, progress, client)
    return open_result(path, group)


def run_many_to_file(
    runs: Sequence[tuple[RunConfig, str]], path: str | os.PathLike, backend: str = "cpu",
    progress: Callable[[int], None] | None = None, client: Any = None,
) -> None:
    """Run several configurations into groups of one file; their chunks share one task stream (and pool).

    Parameters
    ----------
    runs : sequence of (RunConfig, group)
        Distinct groups. Finished runs are skipped, started ones resumed.
    path, backend, progress, client
        As in :func:`fmsim.run_to_file`; the chunks of all runs go through one
        window of tasks, so a cluster stays busy across runs.

    Raises
    ------
    StoreError, DamagedFileError
        As :func:`fmsim.run_to_file`; every group is checked before the file is opened.
    """
    path = os.fspath(path)
    check_runs(runs, path, backend)
    created = not os.path.exists(path)
    held = set() if created else set(list_runs(path))
    _reserve_space(path, sum(layout_bytes(config) for config, group in runs if _group_path(group) not in held))
    try:
        with _open_for_writing(path) as f:
            writers = _lay_out(f, runs, path)
            if progress is not None:
                for w in writers:
                    if w.done:
                        progress(min(w.done * w.config.chunk_size, w.config.n_nets))
            for i, chunk in map_chunks(runs, [w.done for w in writers], backend, client):
                writers[i].write(chunk)
                if progress is not None:
                    progress(writers[i].config.chunk_bounds(chunk.k)[1])
    except BaseException:
        if created:
            _remove_if_no_run(path)
        raise


def layout_bytes(config: RunConfig) -> int:
    """About how many bytes laying out ``config``'s run takes before its first chunk: the ``net`` coordinate,
    HDF5's metadata, and the per-layer coordinate, labels and summary headers (measured, with a margin)."""
    return 4 * config.n_nets + 128 * (config.arch.depth + 2) + (1 << 16)


def _group_path(group: str) -> str:
    return "/" + group.strip("/")


def _reserve_space(path: str, nbytes: int) -> None:
    """Refuse, before HDF5 touches ``path``, a disk without ``nbytes`` free for the layout of new runs.

    HDF5 writes a layout's objects as it goes; on a full disk, closing one of them fails in a destructor,
    which leaves HDF5 objects that crash the interpreter at exit. So the space is taken first, by
    ``posix_fallocate`` of a scratch file beside ``path`` (an ordinary ``OSError`` if it is not there),
    and given back just before the layout is written.
    """
    if nbytes <= 0:
        return
    scratch = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.space-{os.getpid()}")
    try:
        fd = os.open(scratch, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as e:
        raise write_error(path, e, "creating the file", resumable=False) from None
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # (a file system without fallocate: not checked)
            raise write_error(path, e, "laying out the run", resumable=os.path.exists(path)) from None
    finally:
        os.close(fd)
        os.remove(scratch)


def _lay_out(f: h5py.File, runs: Sequence[tuple[RunConfig, str]], path: str) -> list[_RunWriter]:
    """The layout of every run not in ``f`` yet, flushed and fsync'ed, then SWMR mode and one writer per run."""
    try:
        _inject("create")
        for config, group in runs:
            g = f.require_group(group)
            if "config" not in g.attrs:
                _create_run(g, config)
        f.flush()
        _fsync_file(f)
        f.swmr_mode = True
        return [_RunWriter(f, group, config, path) for config, group in runs]
    except (OSError, RuntimeError) as e:
        raise write_error(path, e, "creating the run's layout") from None


def check_runs(runs: Sequence[tuple[RunConfig, str]], path: str | os.PathLike, backend: str = "cpu") -> None:
    """Every check :func:`run_many_to_file` makes before it touches ``path``; nothing is written.

    Distinct groups, a backend that can run each configuration, a chunk that
    fits in memory, and a target file that may take these runs (see
    :func:`fmsim.run_to_file`). Callers that start a cluster or a progress bar call
    it first, so a request that cannot run creates nothing.

    Raises
    ------
    ValueError, StoreError
    """
    path = os.fspath(path)
    groups = [g for _, g in runs]
    if len(set(groups)) != len(groups):
        raise ValueError(f"groups must be distinct, got {groups}")
    for config, _ in runs:
        check_backend(config, backend)
        check_memory(config)
    if os.path.exists(path):
        for config, group in runs:
            _check_target(path, group, config)  # read-only: a refused file is left byte-identical


class _RunWriter:
    """Appends the chunks of one run, in order, to its group (data, summary, then the counter).

    The datasets are opened once and held for the whole run: closing an HDF5 object writes its header,
    which fails on a full disk, so none is closed before the file is. The file has no raw-data chunk
    cache, so each write reaches the file (and fails) in the call that makes it (see the module docstring).
    """

    def __init__(self, f: h5py.File, group: str, config: RunConfig, path: str):
        g = f[group]
        self.f, self.config, self.path = f, config, path
        self.datasets = {name: g[name] for name in PER_NET_DATASETS if name in g}
        self.summary = {name: g["summary"][name] for name in (*SUMMARY_FIELDS, "moments")}
        self.counter = g["chunks_done"]
        self.done = int(self.counter[()])
        stored = checked_read(self.summary["moments"])
        if (nets_held(config, self.done, int(stored[0, 0])) or 0) > nets_counted(config, self.done):
            # The moments already count chunk `done` (their count of M_0 is every net through it): a
            # writer was killed after that chunk's data and summary reached the file, before its
            # counter did. The chunk is complete; count it rather than merge its nets a second time.
            self.done += 1
            self.counter[()] = self.done
        self.acc = SummaryAccumulator(config.arch.depth)
        self.acc.moments[:] = stored if self.done else 0.0

    def write(self, chunk) -> None:
        k = chunk.k
        if k != self.done:
            raise RuntimeError(f"chunk {k} arrived, chunk {self.done} expected")  # ordered_map keeps order
        start, m = self.config.chunk_bounds(k)
        try:
            _inject("data")
            self.datasets["final"][start:start + m] = chunk.final
            self.datasets["log_final"][start:start + m] = chunk.log_final
            for stat, values in zip(statistics.STATISTICS, chunk.stats):
                self.datasets[stat.name][start:start + m] = values
            if self.config.record == "layers":
                self.datasets["log_lengths"][start:start + m] = chunk.log_lengths.astype(np.float32)
            for name, values in carried_fields(self.config, chunk).items():
                self.datasets[name][start:start + m] = values
            self.f.flush()  # the data on disk before the summary that counts it (see __init__)
            _inject("summary")
            self.acc.add_moments(chunk.moments)
            summary = self.acc.result()
            for name in SUMMARY_FIELDS:
                self.summary[name][:] = getattr(summary, name)
            self.summary["moments"][:] = self.acc.moments
            self.f.flush()
            _fsync_file(self.f)  # data and summary on the disk before the counter that counts them
            _inject("counter")
            self.counter[()] = k + 1
            self.f.flush()  # (no fsync: a counter lost in a crash is recovered from the summary, see __init__)
        except (OSError, RuntimeError) as e:  # the run stops here; this writer is not used again
            raise write_error(self.path, e, f"writing chunk {k} (chunks 0 to {self.config.n_chunks - 1})") from None
        self.done = k + 1


def _remove_if_no_run(path: str) -> None:
    """Delete a file this process created if it holds no run (failed before the layout was complete)."""
    try:
        keep = bool(list_runs(path))
    except (OSError, StoreError):
        keep = False
    if not keep and os.path.exists(path):
        os.remove(path)


def list_runs(path: str | os.PathLike) -> list[str]:
    """Names of the groups in ``path`` that hold a run."""
    with reading(path) as f:
        return runs_in(f)


def open_h5(path: str | os.PathLike) -> h5py.File:
    """Read-only; checked first, and bounded in SWMR-read mode (see :func:`fmsim.files.h5io.open_read`)."""
    return open_read(path)


def _is_run(obj) -> bool:
    return isinstance(obj, h5py.Group) and "config" in obj.attrs and "schema_version" in obj.attrs


def runs_in(f: h5py.File) -> list[str]:
    names = ["/"] if _is_run(f) else []
    f.visititems(lambda name, obj: names.append("/" + name) if _is_run(obj) else None)
    return names


def open_result(path: str | os.PathLike, group: str = "/", partial: bool = False) -> SimulationResult:
    """Read a run (read-only): the same object :func:`fmsim.simulate` returns.

    Every chunk read is checked against its checksum (files of fmsim >= 0.8).
    Traces come back as stored: ``log_lengths`` in float32, and ``lengths`` as
    their exponentials in float64 (0 or inf beyond its range). From files of
    fmsim < 0.9, which stored ``M`` only (``lengths`` in float32), the logs
    are derived: ``log M`` where ``M`` is positive and finite, nan where it is
    0 or inf (there an underflow cannot be told from a dead net, nor an
    overflow from a large value).

    Parameters
    ----------
    path : path-like
    group : str
    partial : bool
        Also read an unfinished run, or one a live process is writing: the
        result holds the nets of its finished chunks (``result.n_done`` of
        ``config.n_nets``; ``result.complete`` is False) and their summary.

    Raises
    ------
    StoreError
        No run in ``group``, or the run is not finished and ``partial`` is False.
    DamagedFileError
        Not an HDF5 file, truncated, a chunk that fails its checksum, or a
        counter that claims more than the file holds.
    FileNotFoundError
    """
    with reading(path) as f:
        if group not in f or not _is_run(f[group]):
            raise StoreError(f"{path}:{group} holds no fmsim run (runs: {list_runs(path)})")
        g = f[group]
        config = run_config(g)
        done = int(checked_read(g["chunks_done"]))
        if not 0 <= done <= config.n_chunks:
            raise DamagedFileError(f"{path}:{group} is damaged: chunks_done = {done}, outside 0..{config.n_chunks}")
        if done < config.n_chunks and not partial:
            state, advice = (("being written by a live process", "wait for it to finish")
                             if writer_alive(path) else ("unfinished", "rerun the same command to resume it"))
            raise StoreError(f"{path}:{group} is {state} ({done} of {config.n_chunks} chunks); {advice}, or read "
                             "its finished chunks with partial=True")
        moments = checked_read(g["summary/moments"])
        nets = nets_held(config, done, int(moments[0, 0]))  # (one chunk past the counter: see nets_held)
        if nets is None:
            raise DamagedFileError(f"{path}:{group} is damaged: its summary counts {int(moments[0, 0])} nets, its "
                                   f"counter {nets_counted(config, done)}")
        for name in SUMMARY_FIELDS:  # derived from the moments, for other readers: checked, not used
            if name in g["summary"]:  # (log_of_mean, log_of_var: since fmsim 0.9)
                checked_read(g["summary"][name])
        problems = check_coordinates(g, config, nets) + check_dimensions(g, config)
        if problems:
            raise DamagedFileError(f"{path}:{problems[0]}; the file is damaged: rerun the command into a new file, "
                                   "or restore it from a copy")
        final = checked_read(g["final"], nets)
        log_final = checked_read(g["log_final"], nets) if "log_final" in g else derived_log(final)
        if "log_lengths" in g:
            log_lengths = checked_read(g["log_lengths"], nets)
            with np.errstate(over="ignore"):
                lengths = np.exp(log_lengths.astype(np.float64))
        elif "lengths" in g:
            lengths = checked_read(g["lengths"], nets)
            log_lengths = derived_log(lengths)
        else:
            lengths = log_lengths = None
        stats = {name: checked_read(g[name], nets) for name in statistics.names()}
        carried = {name: checked_read(g[name], nets) for name in CARRIED_DATASETS if name in g}
        return SimulationResult(config=config, final=final, statistics=stats,
                                summary=LayerSummary.from_moments(moments), lengths=lengths, log_final=log_final,
                                log_lengths=log_lengths, **carried)


def derived_log(lengths: np.ndarray) -> np.ndarray:
    """``log M`` from ``M`` as files of fmsim < 0.9 stored it: nan where ``M`` is 0 or inf (not determined)."""
    out = np.full(lengths.shape, np.nan, dtype=lengths.dtype)
    ok = (lengths > 0) & np.isfinite(lengths)
    out[ok] = np.log(lengths[ok])
    return out
