"""The driver: validate, allocate, run chunk by chunk, summarize.

``run_chunk(config, k)`` is the unit of work; it depends only on
``(config, k)``. :func:`simulate` runs every chunk in order into memory; the
HDF5 store runs them into a file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import get_num_threads, set_num_threads

from ..config import BACKENDS, RECORDS, Architecture, CarriedVectorsError, Init, RunConfig, resolve_method
from . import statistics
from .compile_ahead import compile_ahead, needs_full_kernel
from .launch import cuda_refusal, plan
from .summary import LayerSummary, SummaryAccumulator, block_moments

__all__ = ["simulate", "check_backend", "run_chunk", "reduce_chunk", "Chunk", "SimulationResult", "make_config"]


def resolve_backend(backend: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is usable, else ``"cpu"``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        from . import cuda_backend

        return "cuda" if cuda_backend.is_available() else "cpu"
    return backend


def make_config(
    arch: Architecture, init: Init, n_nets: int, seed: int, method: str = "auto",
    record: str = "summary", x: Sequence[float] | np.ndarray | None = None, chunk_size: int = 16384,
    precision: str = "float64", inputs: np.ndarray | None = None, tangents: np.ndarray | None = None,
) -> RunConfig:
    """Validate user arguments into a :class:`RunConfig` (resolving ``method="auto"``; float32 means ``full``)."""
    if not isinstance(init, Init):
        raise TypeError(f"init must be an Init, got {type(init).__name__}")
    if record not in RECORDS:
        raise ValueError(f"record must be one of {RECORDS}, got {record!r}")
    xt = None
    if x is not None:
        if np.ndim(x) != 1:
            raise ValueError(f"x must be one vector of shape (n_0,), got shape {np.shape(x)}")
        xt = tuple(np.asarray(x, dtype=float).tolist())
    if precision == "float32" and method == "auto":
        method = "full"
    carried = {}
    if method == "auto" and (inputs is not None or tangents is not None):  # the exact Gram chain, where it holds
        method = "exact" if init.law in ("gaussian", "orthogonal") and not init.has_bias else "full"
    for name, value in (("inputs", inputs), ("tangents", tangents)):
        if value is not None:
            if np.ndim(value) != 2:
                raise CarriedVectorsError(f"{name} must be a 2D array of shape (vectors, n_0), got shape "
                                          f"{np.shape(value)}")
            carried[name] = tuple(tuple(row) for row in np.asarray(value, dtype=float).tolist())
    return RunConfig(arch=arch, init=init, n_nets=n_nets, seed=seed, method=resolve_method(method, init, arch),
                     record=record, x=xt, chunk_size=chunk_size, precision=precision, **carried)


def check_backend(config: RunConfig, backend: str) -> None:
    """Refuse, before any work, a run that ``backend`` (resolved: ``"cpu"`` or ``"cuda"``) cannot do.

    Raises
    ------
    ValueError
        A method the backend lacks, or ``backend="cuda"`` where no CUDA GPU
        (and no CUDA simulator) can be used.
    """
    if backend == "cuda":
        from . import cuda_backend

        refusal = None if config.carries_vectors else cuda_refusal(config)
        if refusal is not None:
            raise ValueError(refusal)
        if not cuda_backend.is_available():
            raise ValueError("backend='cuda' needs an NVIDIA GPU that numba-cuda can use, and none is found here "
                             "(pip install 'fmsim[cuda]' on a machine with a GPU and its driver); use backend='cpu' "
                             "or 'auto'")


MEMORY_HEADROOM = 0.8
"""Fraction of the memory this process may still use that one chunk may take."""


def chunk_memory_bytes(config: RunConfig, chunk_size: int | None = None) -> int:
    """Peak bytes of the arrays one chunk allocates: its ``(m, d + 1)`` float64 lengths and their logs and,
    where they are recorded, the logs' float32 copy for the file, plus per-net vectors and the summary blocks."""
    m = min(config.chunk_size if chunk_size is None else chunk_size, config.n_nets)
    layers = config.arch.depth + 1
    per_net = 2 * layers * 8 + (layers * 4 if config.record == "layers" else 0) + (3 + len(statistics.STATISTICS)) * 8
    blocks = -(-m // 1024) * (layers + len(statistics.STATISTICS)) * 7 * 8
    return m * (per_net + carried_bytes_per_net(config)) + blocks


def carried_bytes_per_net(config: RunConfig) -> int:
    """Bytes per net of the vectors a run with ``inputs`` or ``tangents`` carries: the kernels' every-layer Gram
    matrices (``k x k``, ``k`` the inputs, or the input and the tangents) and their logarithms, twice (kernel
    output and the chunk's copy)."""
    if not config.carries_vectors:
        return 0
    k = len(config.inputs) if config.inputs is not None else 1 + len(config.tangents)
    return 2 * (config.arch.depth + 1) * (k * k + k) * 8


def check_memory(config: RunConfig, whole_run: bool = False) -> None:
    """Refuse, before any file is touched, a chunk (or, for :func:`simulate`, a run) too big for memory.

    The estimate (:func:`chunk_memory_bytes`) is compared with the least of
    the address-space limit, the cgroup limit and the available memory
    (:func:`fmsim.running.resources.memory_available`); a chunk may take
    :data:`MEMORY_HEADROOM` of it.

    Raises
    ------
    ValueError
        Naming the estimate, the limit, and a ``chunk_size`` that fits.
    """
    from .resources import format_bytes, memory_available

    available, limit = memory_available()
    if available is None:
        return
    budget = MEMORY_HEADROOM * available
    need = chunk_memory_bytes(config)
    if whole_run:  # simulate() also keeps every net's results in memory
        layers = config.arch.depth + 1
        per_net = ((2 + len(statistics.STATISTICS)) * 8 + (16 * layers if config.record == "layers" else 0)
                   + carried_bytes_per_net(config) // 2)
        need += config.n_nets * per_net
        if need > budget:
            raise ValueError(f"this run needs about {format_bytes(need)} in memory and the {limit} leaves "
                             f"{format_bytes(available)}; write it to a file instead (fmsim.run_to_file, or "
                             "fmsim simulate --out), which holds one chunk at a time, or simulate fewer nets")
        return
    if need <= budget:
        return
    per_net = chunk_memory_bytes(config, 1024) / 1024
    fits = int(budget // per_net) // 1024 * 1024
    hint = (f"use --chunk-size {fits} (chunk_size={fits}) or less" if fits >= 1024 else
            "even a chunk of 1024 nets does not fit: raise the limit or use a machine with more memory")
    raise ValueError(f"chunk_size {config.chunk_size} needs about {format_bytes(need)} per chunk and the {limit} "
                     f"leaves {format_bytes(available)}; {hint}")


def run_chunk(config: RunConfig, k: int, backend: str = "cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate chunk ``k`` of a run: its kernel call (:func:`~fmsim.running.launch.plan`) on ``backend``.

    Returns
    -------
    lengths : ndarray, shape (m, d + 1), float64
        ``M_0..M_d`` of nets ``k*chunk_size .. k*chunk_size + m - 1`` (0 or inf beyond float64's range).
    log_lengths : ndarray, shape (m, d + 1), float64
        ``log M_0..log M_d`` (``-inf`` only for a dead net), at any depth.
    stats : ndarray, shape (s, m), float64
        Each net's per-net statistics (``fmsim.running.statistics.STATISTICS``, in order).

    A run that carries vectors (``inputs``, ``tangents``) gives its input's (input 0's) lengths: the vectors
    themselves come with :func:`reduce_chunk`.
    """
    start, m = config.chunk_bounds(k)
    if config.carries_vectors:
        from .gram import carried_chunk

        c = carried_chunk(config, start, m, backend)
        return c.lengths, c.log_lengths, statistics.compute(c.lengths, c.log_lengths)
    call = plan(config, start)
    lengths = np.empty((m, config.arch.depth + 1))
    logs = np.empty((m, config.arch.depth + 1))
    if backend == "cuda":
        from . import cuda_backend

        stats = np.empty((len(statistics.STATISTICS), m))
        cuda_backend.run_chunk(call, lengths, logs, stats)
        return lengths, logs, stats
    call.run_cpu(lengths, logs)
    return lengths, logs, statistics.compute(lengths, logs)


@dataclass(frozen=True)
class SimulationResult:
    """What a run produced.

    Attributes
    ----------
    config : RunConfig
    final : ndarray, shape (n_nets,)
        ``M_d`` of each net, in float64: 0 or inf where ``M_d`` lies beyond float64's range
        (``log_final`` holds it at any depth).
    statistics : dict of str to ndarray, shape (n_nets,)
        Each per-net statistic by name (``fmsim.running.statistics.STATISTICS``): ``"fm2"``, the
        empirical variance of ``M_1..M_d`` of each net (failure mode 2), also :attr:`fm2`.
    summary : LayerSummary
        Per-layer streaming summaries.
    lengths : ndarray, shape (n_nets, d + 1), or None
        Every ``M_j``; only with ``record="layers"``.
    log_final : ndarray, shape (n_nets,), or None
        ``log M_d`` of each net, ``-inf`` only for a dead net (None for files of fmsim < 0.9 whose
        ``final`` does not determine it: see :func:`fmsim.store.open_result`).
    log_lengths : ndarray, shape (n_nets, d + 1), or None
        Every ``log M_j``; only with ``record="layers"``.
    gram : ndarray, shape (n_nets, k, k), or None
        With ``inputs=X`` (k inputs): the last layer's Gram matrix of the k post-activations divided by
        ``n_d``; its diagonal is each input's ``M_d``. ``final``, ``summary`` and the statistics are input 0's.
    jvp : ndarray, shape (n_nets, m), or None
        With ``tangents=U``: ``||J u_i||^2 / n_d``, ``J`` the Jacobian of the last layer's post-activations
        at ``x``.
    gram_layers : ndarray, shape (n_nets, d + 1, k, k), or None
        Every layer's ``G_j / n_j``; with ``inputs=X`` and ``record="layers"``.
    jvp_layers : ndarray, shape (n_nets, d + 1, m), or None
        Every layer's ``||J_j u_i||^2 / n_j``; with ``tangents=U`` and ``record="layers"``.
    jacobian_entries : ndarray, shape (n_nets, m), or None
        ``(J u_i)_0^2``, the first coordinate of each tangent's image, squared: with ``u_i = e_p`` the entry
        ``(J e_p)_0^2`` of the input-output Jacobian (``tangents=U`` with ``method="full"``).

    Notes
    -----
    A run read with ``fmsim.open(path, partial=True)`` before it finished holds its first
    :attr:`n_done` nets only: its arrays have that many rows, and :attr:`complete` is False.
    """

    config: RunConfig
    final: np.ndarray
    statistics: dict[str, np.ndarray]
    summary: LayerSummary
    lengths: np.ndarray | None = None
    log_final: np.ndarray | None = None
    log_lengths: np.ndarray | None = None
    gram: np.ndarray | None = None
    jvp: np.ndarray | None = None
    gram_layers: np.ndarray | None = None
    jvp_layers: np.ndarray | None = None
    jacobian_entries: np.ndarray | None = None

    @property
    def fm2(self) -> np.ndarray:
        """Empirical variance of ``M_1..M_d`` of each net (failure mode 2), shape (n_nets,)."""
        return self.statistics["fm2"]

    @property
    def n_done(self) -> int:
        """Nets held: ``config.n_nets`` for a finished run, fewer for a partial read of an unfinished one."""
        return int(self.final.shape[0])

    @property
    def complete(self) -> bool:
        """Whether every net of the run is here."""
        return self.n_done == self.config.n_nets

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"partial: {self.n_done} of {self.config.n_nets} nets, unfinished"
        return (f"SimulationResult({self.config.arch!r}, {self.config.init!r}, {state}, "
                f"record={self.config.record!r})")

    @property
    def m0(self) -> float:
        """``M_0`` of the input (inf or 0 beyond float64's range; ``summary.log_of_mean[0]`` is its log)."""
        return float(self.summary.mean[0])


@dataclass(frozen=True, eq=False)
class Chunk:
    """One chunk of a run, reduced: what the drivers keep.

    Attributes
    ----------
    k : int
        Chunk index.
    final, log_final : ndarray, shape (m,)
        ``M_d`` and ``log M_d`` of each net.
    stats : ndarray, shape (s, m)
        The per-net statistics, in registry order (``fmsim.running.statistics.STATISTICS``).
    moments : ndarray, shape (ceil(m / 1024), d + 1 + s, 7)
        Per-block summary moments (:func:`fmsim.running.summary.block_moments`).
    lengths, log_lengths : ndarray, shape (m, d + 1), or None
        The traces, only when asked for.
    carried : ndarray, shape (m, k, k) or (m, n_tangents), or None
        A run with ``inputs`` or ``tangents``: the last layer's ``G_d / n_d`` or ``||J u||^2 / n_d``.
    carried_layers : ndarray, shape (m, d + 1, k, k) or (m, d + 1, n_tangents), or None
        The same at every layer, when the traces are asked for.
    entries : ndarray, shape (m, n_tangents), or None
        ``(J u)_0^2`` (tangents, ``method="full"``).
    """

    k: int
    final: np.ndarray
    stats: np.ndarray
    moments: np.ndarray
    lengths: np.ndarray | None
    log_final: np.ndarray | None = None
    log_lengths: np.ndarray | None = None
    carried: np.ndarray | None = None
    carried_layers: np.ndarray | None = None
    entries: np.ndarray | None = None


def reduce_chunk(config: RunConfig, k: int, backend: str = "cpu", keep_lengths: bool | None = None) -> Chunk:
    """Simulate chunk ``k`` and reduce it to per-net ``M_d``, ``log M_d``, statistics and block moments.

    On CUDA the reduction runs on the device and the traces stay there unless
    ``keep_lengths`` (default: ``config.record == "layers"``).
    """
    keep = config.record == "layers" if keep_lengths is None else keep_lengths
    carried = {}
    if config.carries_vectors:
        from .gram import carried_chunk

        c = carried_chunk(config, *config.chunk_bounds(k), backend)
        lengths, logs = c.lengths, c.log_lengths
        stats = statistics.compute(lengths, logs)
        carried = {"carried": c.carried[:, -1].copy(), "carried_layers": c.carried if keep else None,
                   "entries": c.entries}
    elif backend == "cuda":
        from . import cuda_backend

        start, m = config.chunk_bounds(k)
        call = plan(config, start)
        final, log_final, stats, moments, lengths, logs = cuda_backend.run_chunk_reduced(
            call, m, config.arch.depth + 1, keep)
        return Chunk(k, final, stats, moments, lengths, log_final, logs)
    else:
        lengths, logs, stats = run_chunk(config, k, backend)
    return Chunk(k, lengths[:, -1].copy(), stats, block_moments(logs, stats), lengths if keep else None,
                 logs[:, -1].copy(), logs if keep else None, **carried)


def chunk_task(config: RunConfig, k: int, backend: str, threads: int = 0) -> Chunk:
    """:func:`reduce_chunk` as a cluster task: ``threads`` numba threads (0 = leave as is)."""
    if threads:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return reduce_chunk(config, k, backend)


def map_chunks(runs: Sequence[tuple[RunConfig, Any]], first: Sequence[int], backend: str, client: Any = None
               ) -> Iterator[tuple[int, Chunk]]:
    """The reduced chunks of several runs: chunks ``first[i]`` on of run ``i``, one run after another, in order;
    in this process, where runs of both kinds mix, the exact runs come first while a second process compiles
    the ``full`` kernels (:func:`fmsim.running.compile_ahead.compile_ahead`), on one thread fewer until it
    ends (its compile then has a core to itself, rather than sharing one with a kernel's thread). Each chunk
    is the same either way.

    Parameters
    ----------
    runs : sequence of (RunConfig, label)
        The runs (a label, such as the run's group, goes with each and is not read).
    first : sequence of int
        The first chunk of each run to compute (the ones before it are done).
    backend : {"cpu", "cuda"}
    client : dask.distributed.Client, optional
        Compute on this cluster, each task single-threaded in its worker (a worker's thread is one core);
        results do not depend on it. Without it, in this process.

    Yields
    ------
    (int, Chunk)
        The index of the run and one of its chunks.
    """
    if client is None:
        todo = [i for i, (config, _) in enumerate(runs) if first[i] < config.n_chunks]
        ahead = compile_ahead([runs[i][0] for i in todo], backend)
        if ahead is not None:  # the exact runs first, while a second process compiles the full kernels
            todo.sort(key=lambda i: needs_full_kernel(runs[i][0]))
        threads = get_num_threads()
        try:
            for i in todo:
                config = runs[i][0]
                if ahead is not None and needs_full_kernel(config):
                    ahead.wait()
                for k in range(first[i], config.n_chunks):
                    if ahead is not None:  # while it compiles, the second process has a core to itself
                        set_num_threads(max(1, threads - 1) if ahead.returncode is None else threads)
                    yield i, reduce_chunk(config, k, backend)
        finally:
            if ahead is not None:
                set_num_threads(threads)
                ahead.stop()
        return
    from .execution import ordered_map

    todo = [(i, config, k) for i, ((config, _), k0) in enumerate(zip(runs, first)) for k in range(k0, config.n_chunks)]
    chunks = ordered_map(chunk_task, ((config, k, backend, 1) for _, config, k in todo), client)
    yield from zip((i for i, _, _ in todo), chunks)


def simulate(
    arch: Architecture, init: Init, n_nets: int, seed: int, method: str = "auto",
    backend: str = "cpu", record: str = "summary", x: Sequence[float] | np.ndarray | None = None,
    chunk_size: int = 16384, progress: Callable[[int], None] | None = None, precision: str = "float64",
    client: Any = None, inputs: np.ndarray | None = None, tangents: np.ndarray | None = None,
) -> SimulationResult:
    """Run ``n_nets`` random ReLU nets and record their squared lengths ``M_j = ||z_j||^2 / n_j``.

    Parameters
    ----------
    arch : FullyConnected, Residual or Conv
    init : Init
    n_nets : int
        ``1 <= n_nets <= 2**32 - 1``.
    seed : int
        ``0 <= seed < 2**64``. Results depend on nothing else (not on
        threads, chunk size or backend).
    method : {"auto", "full", "exact", "exact_first"}
        ``"full"`` runs the nets, drawing every weight that meets a nonzero
        input (``fmsim.laws``); ``"exact"`` samples the exact law of
        ``M_j/M_{j-1}`` (Gaussian weights, no bias); ``"exact_first"`` (fully
        connected nets, any law but Rademacher) draws the first layer's
        pre-activations from their exact law given ``x``
        (``fmsim.first_layer``: O(n_1) work instead of O(n_0 n_1)) and runs
        the other layers as ``"full"``; ``"auto"`` picks exact where valid,
        else full.
    backend : {"cpu", "cuda", "auto"}
    record : {"summary", "layers"}
        ``"layers"`` also returns every net's ``M_0..M_d``.
    x : array_like, shape (n_0,), optional
        Input; default a seeded random direction with ``M_0 = 1``.
    chunk_size : int
        Nets per chunk (a multiple of 1024); bounds memory, not results.
    progress : callable, optional
        Called with the number of nets finished after each chunk.
    precision : {"float64", "float32"}
        Arithmetic of the ``full`` method (fully connected nets); float32 also draws each
        weight from 32 random bits (other nets than float64's); see :class:`RunConfig`.
    client : dask.distributed.Client, optional
        Run the chunks on this cluster (:func:`fmsim.execution.connect`);
        the result is the same as without.
    inputs : array_like, shape (k, n_0), optional
        ``k >= 2`` inputs carried through the same nets, instead of ``x``: the result's
        ``gram``. Fully connected nets, in memory, on the CPU: ``method="full"``
        (any i.i.d. law, biases, either precision) or ``"exact"`` (Gaussian weights, no bias: the exact
        Gram chain, ``fmsim.kernels.gram``).
    tangents : array_like, shape (m, n_0), optional
        ``1 <= m <= 32`` directions ``u_i``: the result's ``jvp``, ``||J u_i||^2 / n_d``
        with ``J`` the Jacobian at ``x``; with ``method="full"`` also ``jacobian_entries``.
        The same nets and methods as ``inputs``; the lengths are bitwise those of the same run without tangents
        (``full``: where ``x`` has no zero entry that a tangent lacks).

    Returns
    -------
    SimulationResult
    """
    config = make_config(arch, init, n_nets, seed, method, record, x, chunk_size, precision, inputs, tangents)
    backend = resolve_backend(backend)
    check_backend(config, backend)
    check_memory(config, whole_run=True)
    acc = SummaryAccumulator(arch.depth)
    final = np.empty(config.n_nets)
    log_final = np.empty(config.n_nets)
    stats = np.empty((len(statistics.STATISTICS), config.n_nets))
    layers = record == "layers"
    lengths_all = np.empty((config.n_nets, arch.depth + 1)) if layers else None
    logs_all = np.empty((config.n_nets, arch.depth + 1)) if layers else None
    carried: dict[str, np.ndarray] = {}
    for _, chunk in map_chunks([(config, None)], [0], backend, client):
        start, m = config.chunk_bounds(chunk.k)
        acc.add_moments(chunk.moments)
        final[start:start + m] = chunk.final
        log_final[start:start + m] = chunk.log_final
        stats[:, start:start + m] = chunk.stats
        if layers:
            lengths_all[start:start + m] = chunk.lengths
            logs_all[start:start + m] = chunk.log_lengths
        for name, values in carried_fields(config, chunk).items():
            if name not in carried:
                carried[name] = np.empty((config.n_nets, *values.shape[1:]))
            carried[name][start:start + m] = values
        if progress is not None:
            progress(m)
    return SimulationResult(config=config, final=final, statistics=dict(zip(statistics.names(), stats)),
                            summary=acc.result(), lengths=lengths_all, log_final=log_final, log_lengths=logs_all,
                            **carried)


def carried_fields(config: RunConfig, chunk: Chunk) -> dict[str, np.ndarray]:
    """A chunk's carried values by the name of their :class:`SimulationResult` field (and of their dataset in a
    file): ``gram`` and ``gram_layers``, or ``jvp``, ``jvp_layers`` and ``jacobian_entries``; none for a run that
    carries no vectors."""
    if chunk.carried is None:
        return {}
    field = "gram" if config.inputs is not None else "jvp"
    out = {field: chunk.carried}
    if chunk.carried_layers is not None:
        out[f"{field}_layers"] = chunk.carried_layers
    if chunk.entries is not None:
        out["jacobian_entries"] = chunk.entries
    return out

