"""Checksums of stored runs: reads that fail loudly, and ``fmsim verify``.

Every per-net dataset (``final``, ``fm2``, ``lengths``) and every summary
dataset of a run written by fmsim >= 0.8 is chunked with HDF5's Fletcher-32
filter: one HDF5 chunk per chunk of the run, written once, its checksum
stored inside the chunk. Why this filter rather than a CRC32 per chunk kept
in a dataset beside the data:

* the checksum is written in the same chunk write as the data, so no crash
  can leave data and checksum out of step (a side dataset would be a second
  write to order against the ``chunks_done`` counter);
* HDF5 itself checks it on every read, so damage is detected by any reader,
  h5py, xarray and netCDF tools included, not only by fmsim;
* a chunk never written is unallocated, so :func:`verify_run` can also tell a
  counter that claims more chunks than the file holds.

HDF5's own metadata (object headers, attributes, chunk indexes) carries
Jenkins checksums in the file format fmsim writes (``libver="latest"``).
The scalar ``chunks_done`` counter is checked against the data instead:
every chunk it counts must be allocated, and the summary must count exactly
those nets (or one chunk more: a writer stopped between summary and counter).
The coordinates and labels (``net``, ``layer``, ``summary/quantity``,
``summary/moment``) are checked against the configuration
(:func:`check_coordinates`): every stored byte is checksummed, or checked
against something that is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import h5py
import numpy as np

from ..config import RunConfig
from .h5io import DamagedFileError
from .layout import (
    ATTRIBUTES_DIGEST,
    PER_NET_DATASETS,
    SUMMARY_FIELDS,
    attributes_digest,
    coordinate_names,
    expected_coordinates,
    expected_dimensions,
)

__all__ = ["PER_NET", "SUMMARY", "checked_read", "has_checksum", "run_config", "check_coordinates",
           "check_dimensions", "RunCheck", "verify_run",
           "chunk_of_failure",
           "nets_counted", "nets_held"]

PER_NET = (*PER_NET_DATASETS, "lengths")  # (lengths: files of fmsim < 0.9)
SUMMARY = tuple(f"summary/{name}" for name in (*SUMMARY_FIELDS, "moments"))


def has_checksum(ds: h5py.Dataset) -> bool:
    """Whether ``ds`` is stored with HDF5's Fletcher-32 checksum filter."""
    return bool(ds.fletcher32)


def chunk_of_failure(ds: h5py.Dataset, stop: int | None = None) -> int | None:
    """Index of the first HDF5 chunk (along axis 0, below row ``stop``) that cannot be read, or ``None``."""
    n = ds.shape[0] if ds.shape else 0
    stop = n if stop is None else min(stop, n)
    rows = ds.chunks[0] if ds.chunks else max(stop, 1)
    for i, start in enumerate(range(0, stop, rows)):
        try:
            ds[start:min(start + rows, stop)]
        except OSError:
            return i
    return None


def _chunk_rows(ds: h5py.Dataset, i: int) -> str:
    """``"chunk 7 (rows 7168 to 8191)"``: chunk ``i`` of ``ds`` along axis 0 (a contiguous dataset is one chunk)."""
    rows = ds.chunks[0] if ds.chunks else ds.shape[0]
    return f"chunk {i} (rows {i * rows} to {min((i + 1) * rows, ds.shape[0]) - 1})"


def _failure(ds: h5py.Dataset) -> str:
    return "fails its checksum" if has_checksum(ds) else "cannot be read"


def nets_counted(config: RunConfig, done: int) -> int:
    """Nets in the first ``done`` chunks of a run."""
    return sum(config.chunk_bounds(done - 1)) if done else 0


def nets_held(config: RunConfig, done: int, counted: int) -> int | None:
    """Nets whose data is on disk, from the counter ``done`` and the nets the summary counts.

    The summary counts the counter's chunks, or one chunk more: a writer
    stopped between that chunk's summary and its counter, after its data was
    flushed. Anything else is ``None``: counter and summary disagree.
    """
    nets = nets_counted(config, done)
    if counted == nets:
        return nets
    if done < config.n_chunks and counted == nets_counted(config, done + 1):
        return counted
    return None


def checked_read(ds: h5py.Dataset, stop: int | None = None) -> np.ndarray:
    """``ds[:stop]`` (``ds[()]`` for a scalar), or :class:`fmsim.store.DamagedFileError` naming the chunk that fails.

    HDF5 checks each chunk's Fletcher-32 checksum as it reads it; a mismatch
    raises ``OSError`` ("filter returned failure during read"), turned here
    into an error that names the file, the dataset, the chunk and its rows.
    """
    try:
        if not ds.shape:
            return ds[()]
        return ds[:stop] if stop is not None else ds[()]
    except OSError as e:
        i = chunk_of_failure(ds, stop)
        where = f" {_chunk_rows(ds, i)}" if i is not None and ds.chunks else ""
        raise DamagedFileError(f"{ds.file.filename}:{ds.name}{where} {_failure(ds)} ({e}); the file is damaged: "
                               "rerun the command into a new file, or restore it from a copy") from None


def run_config(g: h5py.Group) -> RunConfig:
    """The configuration of the run in ``g``, after checking its attributes against their digest (files of
    fmsim >= 0.12; :func:`fmsim.files.layout.attributes_digest`).

    Raises
    ------
    DamagedFileError
        The attributes differ from their digest, or the configuration cannot be read.
    """
    where = f"{g.file.filename}:{g.name}"
    try:
        if ATTRIBUTES_DIGEST in g.attrs and bytes(np.asarray(g.attrs[ATTRIBUTES_DIGEST])) != attributes_digest(g):
            raise DamagedFileError(f"{where} is damaged: its attributes (the configuration among them) differ from "
                                   "their checksum; rerun the command into a new file, or restore it from a copy")
        return RunConfig.from_dict(json.loads(g.attrs["config"]))
    except (OSError, KeyError, TypeError, ValueError) as e:
        if isinstance(e, DamagedFileError):
            raise
        raise DamagedFileError(f"{where} is damaged: its configuration cannot be read ({' '.join(str(e).split())})"
                               "; rerun the command into a new file, or restore it from a copy") from None


def check_dimensions(g: h5py.Group, config: RunConfig) -> list[str]:
    """Each dataset's dimension scales (HDF5 references, for netCDF readers) resolve to the coordinates the layout
    gives (:func:`fmsim.files.layout.expected_dimensions`): one line per dataset that does not."""
    problems = []
    # The group's own coordinates by object (an HDF5 path lookup, ``.name``, took 1 ms a scale in a file of
    # 49 runs); a scale that is none of them is named by its path, as before.
    own = {g[path].id: path.rsplit("/", 1)[-1] for path in coordinate_names(config) if path in g}
    for name, scales in expected_dimensions(config).items():
        if name not in g:
            continue
        try:
            found = tuple(_scale_name(g[name].dims[i][0], own) for i in range(len(scales)))
        except (OSError, KeyError, IndexError, ValueError, RuntimeError) as e:
            found = (" ".join(str(e).split()),)
        if found != scales and g[name].dims[0].keys():  # (files without dimension scales predate fmsim 0.5)
            problems.append(f"{g.name}: {name} has dimensions {found}, not {scales}")
    return problems


def _scale_name(scale: h5py.Dataset, own: dict) -> str:
    """The last part of the path of a dimension scale: from ``own`` (object id -> name) if it is there."""
    name = own.get(scale.id)
    return scale.name.rsplit("/", 1)[-1] if name is None else name


def check_coordinates(g: h5py.Group, config: RunConfig, nets: int | None = None) -> list[str]:
    """The coordinate and label datasets of the run in ``g`` (``net``, ``layer``, ``summary/quantity``,
    ``summary/moment``), which carry no checksum, against what ``config`` says they hold
    (:func:`fmsim.files.layout.expected_coordinates`): one line per dataset that differs or cannot be read.

    ``nets``: check the first ``nets`` entries of ``net`` only (a partial read).
    """
    problems = []
    columns = g["summary/moments"].shape[1] if "summary/moments" in g else 7
    for name, expected in expected_coordinates(config, columns).items():
        if name not in g:
            continue
        ds = g[name]
        try:
            stored = ds[:nets] if name == "net" and nets is not None else ds[()]
        except (OSError, ValueError) as e:
            problems.append(f"{g.name}: {name} cannot be read ({' '.join(str(e).split())})")
            continue
        if stored.dtype.kind in "OS":
            stored = np.array([v.decode(errors="replace") if isinstance(v, bytes) else v for v in stored.ravel()],
                              dtype=object)
        if name == "net" and nets is not None:
            expected = expected[:nets]
        if stored.shape != expected.shape or not np.array_equal(stored, expected):
            bad = "its shape" if stored.shape != expected.shape else \
                f"entry {int(np.flatnonzero(stored != expected)[0])}"
            problems.append(f"{g.name}: {name} differs from what the run's configuration says at {bad}")
    return problems


@dataclass
class RunCheck:
    """What :func:`verify_run` found in one run.

    Attributes
    ----------
    group : str
    chunks_done, n_chunks : int
    checked : list of str
        Datasets whose every chunk was read and passed its checksum.
    unchecked : list of str
        Datasets stored without checksums (files of fmsim < 0.8): read, but
        damage inside them cannot be detected.
    problems : list of str
        One line each: the dataset and chunk that fail, or a counter that
        claims chunks the file does not hold.
    attributes_checked : bool
        Whether the attributes were checked against their digest (files of fmsim >= 0.12).
    """

    group: str
    chunks_done: int
    n_chunks: int
    checked: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    attributes_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_run(g: h5py.Group) -> RunCheck:
    """Read every chunk of every dataset of the run in group ``g`` and check it.

    Returns
    -------
    RunCheck
    """
    try:
        config = run_config(g)
    except DamagedFileError as e:
        return RunCheck(g.name, 0, 0, problems=[f"{g.name}: {str(e).split(': ', 1)[-1]}"])
    done = int(g["chunks_done"][()])
    check = RunCheck(g.name, done, config.n_chunks)
    check.attributes_checked = ATTRIBUTES_DIGEST in g.attrs
    if not 0 <= done <= config.n_chunks:
        check.problems.append(f"{g.name}: chunks_done = {done}, outside 0..{config.n_chunks}")
        return check
    nets = nets_counted(config, done)
    for name in PER_NET + SUMMARY:
        if name not in g:
            continue
        ds = g[name]
        (check.checked if has_checksum(ds) else check.unchecked).append(name)
        i = chunk_of_failure(ds)
        if i is not None:
            check.problems.append(f"{g.name}: {name} {_chunk_rows(ds, i)} {_failure(ds)}")
            continue
        if name in PER_NET and ds.chunks and done:
            rows = ds.chunks[0]
            for j in range(-(-nets // rows)):
                if ds.id.get_chunk_info_by_coord((j * rows,) + (0,) * (ds.ndim - 1)).byte_offset is None:
                    check.problems.append(f"{g.name}: chunks_done = {done}, but {name} chunk {j} was never "
                                          "written: the counter claims more than the file holds")
                    break
    if not check.problems and "summary/moments" in g:
        counted = int(g["summary/moments"][0, 0])
        if nets_held(config, done, counted) is None:
            check.problems.append(f"{g.name}: the summary counts {counted} nets, the counter {nets}")
    check.problems += check_coordinates(g, config) + check_dimensions(g, config)
    return check


def describe(check: RunCheck, path: str | os.PathLike) -> list[str]:
    """The lines ``fmsim verify`` prints for one run."""
    where = f"{os.fspath(path)}:{check.group}"
    if check.problems:
        return [f"{os.fspath(path)}:{p}" for p in check.problems]
    state = "complete" if check.chunks_done == check.n_chunks else f"{check.chunks_done}/{check.n_chunks} chunks"
    line = f"{where}: ok ({state}; {len(check.checked)} datasets checked chunk by chunk"
    line += "; coordinates and labels checked against the configuration"
    if check.unchecked:
        line += (f"; {', '.join(check.unchecked)} written without checksums (fmsim < 0.8): read back whole, "
                 "damage inside cannot be detected")
    line += ("; attributes checked against their checksum" if check.attributes_checked else
             "; attributes written without a checksum (fmsim < 0.12): damage to them may go undetected")
    return [line + ")"]
