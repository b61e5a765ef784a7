"""The names and contents a run group holds, in one place: what the writer creates, the reader reads and
:func:`fmsim.integrity.verify_run` checks.

Every byte of a run is protected: the per-net and summary datasets by HDF5's Fletcher-32 checksum per
chunk, the attributes and HDF5's own metadata by the Jenkins checksums of the file format fmsim writes
(``libver="latest"``), and the rest (the ``net`` and ``layer`` coordinates, the ``quantity`` and
``moment`` labels, the carried vectors' ``input_a``, ``input_b`` or ``tangent`` indices, the ``chunks_done``
counter) by checking them against what the configuration (an
attribute, so checksummed) and the checksummed data say they must be (:func:`expected_coordinates`).
"""

from __future__ import annotations

import hashlib

import h5py
import numpy as np

from ..config import RunConfig
from ..kernels.moments import MOMENT_COLUMNS
from ..running import statistics

__all__ = ["SUMMARY_FIELDS", "PER_NET_DATASETS", "CARRIED_DATASETS", "ATTRIBUTES_DIGEST", "summary_quantities",
           "expected_coordinates", "coordinate_names", "attributes_digest", "expected_dimensions", "carried_layout",
           "carried_coordinates"]

#: The attribute of a run group (fmsim >= 0.12) holding :func:`attributes_digest` of its attributes, as 32 bytes
#: stored in the group's object header (which HDF5 checksums).
ATTRIBUTES_DIGEST = "attributes_sha256"
#: Attributes that hold object references (dimension scales): checked by resolving them
#: (:func:`expected_dimensions`), not by their bytes, which change when HDF5 copies a file.
_REFERENCE_ATTRIBUTES = ("DIMENSION_LIST", "REFERENCE_LIST", ATTRIBUTES_DIGEST)

#: The summary's per-layer datasets (under ``summary/``), beside its ``moments`` table.
SUMMARY_FIELDS = ("mean", "var", "log_mean", "log_var", "n_zero", "log_of_mean", "log_of_var")
#: The datasets of the vectors a run with ``inputs`` or ``tangents`` carries (:func:`carried_layout`).
CARRIED_DATASETS = ("gram", "gram_layers", "jvp", "jvp_layers", "jacobian_entries")
#: The datasets written per net, chunk by chunk (``log_lengths`` only with ``record="layers"``; the carried ones
#: only in runs that carry vectors).
PER_NET_DATASETS = ("final", "log_final", *statistics.names(), "log_lengths", *CARRIED_DATASETS)


def carried_layout(config: RunConfig) -> dict[str, tuple[tuple[int, ...], tuple[str, ...], str]]:
    """The carried datasets of ``config``'s run: name -> (shape after ``net``, dimensions after ``net``, long
    name). Empty for a run without ``inputs`` or ``tangents``."""
    d = config.arch.depth
    layers = config.record == "layers"
    if config.inputs is not None:
        k = len(config.inputs)
        out = {"gram": ((k, k), ("input_a", "input_b"),
                        "G_d / n_d: the last layer's Gram matrix of the inputs' post-activations over n_d")}
        if layers:
            out["gram_layers"] = ((d + 1, k, k), ("layer", "input_a", "input_b"), "G_j / n_j at every layer")
        return out
    if config.tangents is not None:
        m = len(config.tangents)
        out = {"jvp": ((m,), ("tangent",), "|J u|^2 / n_d of each tangent u (J: the Jacobian at x)")}
        if layers:
            out["jvp_layers"] = ((d + 1, m), ("layer", "tangent"), "|J_j u|^2 / n_j at every layer")
        if config.method == "full":
            out["jacobian_entries"] = ((m,), ("tangent",), "(J u)_0^2: the first coordinate of J u, squared")
        return out
    return {}


def carried_coordinates(config: RunConfig) -> dict[str, np.ndarray]:
    """The index coordinates of the carried vectors' dimensions (``input_a``, ``input_b`` or ``tangent``)."""
    if config.inputs is not None:
        k = np.arange(len(config.inputs), dtype=np.int64)
        return {"input_a": k, "input_b": k.copy()}
    if config.tangents is not None:
        return {"tangent": np.arange(len(config.tangents), dtype=np.int64)}
    return {}


#: The objects a run group holds (the first part of their path): anything else in the group, such as another
#: run in a subgroup (a run at ``/`` and a sweep's ``he/depth_2``), is not the run's.
RUN_OBJECTS = frozenset({"net", "layer", "chunks_done", "summary", "lengths", "input_a", "input_b", "tangent",
                         *PER_NET_DATASETS})


def attributes_digest(g: h5py.Group) -> bytes:
    """SHA-256 of every attribute of the run group ``g`` and of each object of the run in it
    (:data:`RUN_OBJECTS`), in path and name order.

    String attributes (the configuration's JSON among them) live in HDF5's global heap, which has no
    checksum; the digest, stored with the run, covers them. Object references are left out
    (:data:`_REFERENCE_ATTRIBUTES`), and so are other runs in subgroups of ``g``: writing one must not change
    this run's digest."""
    h = hashlib.sha256()
    paths = [""]
    g.visit(lambda path: paths.append(path) if path.split("/", 1)[0] in RUN_OBJECTS else None)
    for path in sorted(paths):
        obj = g[path] if path else g
        for name in sorted(obj.attrs):
            if name in _REFERENCE_ATTRIBUTES:
                continue
            value = np.asarray(obj.attrs[name])
            if value.dtype.kind in "OSU":
                data = "\x1f".join(v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v)
                                    for v in value.ravel()).encode("utf-8", "surrogateescape")
            else:
                data = np.ascontiguousarray(value).tobytes()
            h.update(f"{path}@{name}|{value.dtype.str}|{value.shape}|".encode())
            h.update(data)
    return h.digest()


def expected_dimensions(config: RunConfig) -> dict[str, tuple[str, ...]]:
    """The dimension scale of each axis of the datasets that have them (HDF5 dimension lists, for netCDF)."""
    dims = {name: ("net",) for name in PER_NET_DATASETS if name != "log_lengths" and name not in CARRIED_DATASETS}
    dims["log_lengths"] = ("net", "layer")
    dims.update({name: ("net", *tail) for name, (_, tail, _) in carried_layout(config).items()})
    dims.update({f"summary/{name}": ("layer",) for name in SUMMARY_FIELDS})
    dims["summary/moments"] = ("quantity", "moment")
    return dims


def summary_quantities(depth: int) -> list[str]:
    """Labels of the summary's moment rows: ``M_0..M_d``, then each per-net statistic."""
    return [f"M_{j}" for j in range(depth + 1)] + list(statistics.names())


def coordinate_names(config: RunConfig) -> tuple[str, ...]:
    """The paths of the coordinate and label datasets of ``config``'s run, in the order of
    :func:`expected_coordinates`, without building them (``net`` alone holds ``n_nets`` entries)."""
    return ("net", "layer", "summary/quantity", "summary/moment", *carried_coordinates(config))


def expected_coordinates(config: RunConfig, moment_columns: int = len(MOMENT_COLUMNS)) -> dict[str, np.ndarray]:
    """What the coordinate and label datasets of ``config``'s run must hold, by dataset name.

    ``moment_columns``: 7, or 6 in files of fmsim < 0.9 (no pivot column).
    """
    return {
        "net": np.arange(config.n_nets, dtype=np.uint32),
        "layer": np.arange(config.arch.depth + 1, dtype=np.int64),
        "summary/quantity": np.array(summary_quantities(config.arch.depth), dtype=object),
        "summary/moment": np.array(MOMENT_COLUMNS[:moment_columns], dtype=object),
        **carried_coordinates(config),
    }
