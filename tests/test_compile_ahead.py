"""Compiling the full kernels in a second process while the exact runs go first (fmsim.running.compile_ahead)."""

import io

import h5py
import numpy as np
import pytest
from fmsim.store import run_many_to_file

import fmsim
from fmsim.running import compile_ahead as ahead_module
from fmsim.running import simulate as simulate_module
from fmsim.running.compile_ahead import CompileAhead, compile_ahead, needs_full_kernel
from fmsim.running.compile_notice import announce, compile_notice
from fmsim.running.simulate import make_config

HE, TRUNC = fmsim.Init.scheme("he"), fmsim.Init.scheme("he_truncated_keras2018")


def _mixed_runs():
    """Full runs listed before and between exact ones, several chunks each."""
    arch = fmsim.FullyConnected.constant(4, 6)
    return [(make_config(arch, TRUNC, 2500, 5, "full", chunk_size=1024), "trunc_full"),
            (make_config(arch, HE, 2500, 5, chunk_size=1024), "he_exact"),
            (make_config(arch, TRUNC, 2500, 5, "exact_first", chunk_size=1024), "trunc_first"),
            (make_config(arch, fmsim.Init.scheme("lecun"), 2000, 5, chunk_size=1024), "lecun_exact")]


def _contents(path):
    """Every dataset's values, as bytes (strings as their text)."""
    out = {}

    def keep(name, obj):
        if isinstance(obj, h5py.Dataset):
            value = obj[()]
            out[name] = obj.asstr()[()].tolist() if value.dtype == object else value.tobytes()

    with h5py.File(path, "r") as f:
        f.visititems(keep)
    return out


def test_a_mix_of_exact_and_full_runs_gets_a_second_process_and_the_exact_runs_go_first(monkeypatch):
    runs = _mixed_runs()
    started = []
    real = ahead_module.CompileAhead

    def recording(configs):
        started.append([c.method for c in configs])
        return real(configs)

    monkeypatch.setattr(ahead_module, "_usable_cores", lambda: 2)
    monkeypatch.setattr(ahead_module, "CompileAhead", recording)
    order = [i for i, _ in simulate_module.map_chunks(runs, [0] * len(runs), "cpu")]
    # one probe per kernel and argument types: the two full runs differ in method
    assert started == [["full", "exact_first"]]
    assert order == [1, 1, 1, 3, 3, 0, 0, 0, 2, 2, 2], order  # every chunk once, exact runs first, each in order


def test_the_file_is_bitwise_the_same_with_and_without_the_second_process(tmp_path, monkeypatch):
    runs = _mixed_runs()
    monkeypatch.setattr(ahead_module, "_usable_cores", lambda: 2)
    run_many_to_file(runs, tmp_path / "ahead.h5")
    monkeypatch.setattr(simulate_module, "compile_ahead", lambda configs, backend: None)
    run_many_to_file(runs, tmp_path / "in_order.h5")
    a, b = _contents(tmp_path / "ahead.h5"), _contents(tmp_path / "in_order.h5")
    assert len(a) > 20 and a == b


def test_resumed_runs_are_probed_only_if_chunks_remain(monkeypatch):
    runs = _mixed_runs()
    started = []
    monkeypatch.setattr(ahead_module, "_usable_cores", lambda: 2)
    monkeypatch.setattr(ahead_module, "CompileAhead", lambda configs: started.append(configs) or None)
    done = [runs[0][0].n_chunks, 0, runs[2][0].n_chunks, 0]  # both full runs finished
    order = [i for i, _ in simulate_module.map_chunks(runs, done, "cpu")]
    assert started == [] and order == [1, 1, 1, 3, 3]


@pytest.mark.parametrize("case", ["all exact", "all full", "cuda", "one core", "jit off"])
def test_no_second_process_where_nothing_would_overlap(case, monkeypatch):
    runs = [c for c, _ in _mixed_runs()]
    cores, backend = 2, "cpu"
    if case == "all exact":
        runs = [c for c in runs if not needs_full_kernel(c)]
    elif case == "all full":
        runs = [c for c in runs if needs_full_kernel(c)]
    elif case == "cuda":
        backend = "cuda"
    elif case == "one core":
        cores = 1
    else:
        monkeypatch.setattr(ahead_module.numba_config, "DISABLE_JIT", 1)
    monkeypatch.setattr(ahead_module, "_usable_cores", lambda: cores)
    monkeypatch.setattr(ahead_module, "CompileAhead", lambda configs: pytest.fail("started"))
    assert compile_ahead(runs, backend) is None


def test_the_second_process_runs_the_probes_and_exits_cleanly():
    ahead = CompileAhead([_mixed_runs()[0][0]])
    ahead.wait()
    assert ahead.returncode == 0


def test_a_failing_second_process_does_not_stop_the_run(monkeypatch):
    monkeypatch.setattr(ahead_module, "_probe", lambda config: "not a config")  # the child raises and exits 1
    ahead = CompileAhead([_mixed_runs()[0][0]])
    ahead.wait()
    assert ahead.returncode == 1
    ahead.stop()  # already ended: nothing to do


def test_stop_ends_a_running_second_process():
    ahead = CompileAhead([_mixed_runs()[0][0]])
    ahead.stop()
    assert ahead.returncode is not None


def test_announce_writes_only_inside_a_compile_notice():
    out = io.StringIO()
    announce("nowhere")
    with compile_notice(out):
        announce("fmsim: waiting")
    announce("nowhere either")
    assert out.getvalue() == "fmsim: waiting\n"


def test_probes_keep_the_runs_kernel_types():
    """A probe is its run with PROBE_NETS nets: same architecture, law, method, precision, input."""
    config = _mixed_runs()[2][0]
    probe = ahead_module._probe(config)
    assert probe.n_nets == ahead_module.PROBE_NETS
    assert (probe.arch, probe.init, probe.method, probe.precision, probe.x, probe.seed) == \
        (config.arch, config.init, config.method, config.precision, config.x, config.seed)
    np.testing.assert_array_equal(probe.arch.widths, config.arch.widths)


def test_the_second_process_compiles_the_reduction_that_every_run_then_uses():
    """``compile_reduction`` (the second process's first step) types the statistics and block-moment passes as
    runs do: after it, neither an exact nor a full run's chunk adds a specialization (a second compile) of their
    compiled loops (``statistics_span``, ``block_moments_span``)."""
    from fmsim.kernels.epilogue import statistics_span
    from fmsim.kernels.moments import block_moments_span
    from fmsim.running.probe_runs import compile_reduction

    compile_reduction()
    before = (list(statistics_span.signatures), list(block_moments_span.signatures))
    assert before[0] and before[1]
    for config, _ in _mixed_runs()[:3]:
        simulate_module.reduce_chunk(config, 0, "cpu")
    assert (list(statistics_span.signatures), list(block_moments_span.signatures)) == before


class _Recording(CompileAhead):
    """CompileAhead that lists its instances and the probes each was sent."""

    made = []

    def __init__(self, configs=None):
        self.sent = None
        self.early = configs is None  # started before the runs existed (compile_ahead_early)
        _Recording.made.append(self)
        super().__init__(configs)

    def send(self, configs):
        self.sent = [c.method for c in configs]
        super().send(configs)


@pytest.fixture
def recording(monkeypatch):
    _Recording.made = []
    monkeypatch.setattr(ahead_module, "_usable_cores", lambda: 2)
    monkeypatch.setattr(ahead_module, "CompileAhead", _Recording)
    return _Recording.made


def test_a_process_started_early_is_the_one_that_gets_the_probes(recording, tmp_path, monkeypatch):
    runs = _mixed_runs()
    with ahead_module.compile_ahead_early("cpu"):
        assert len(recording) == 1 and recording[0].sent is None  # started, waiting for its probes
        run_many_to_file(runs, tmp_path / "early.h5")
    assert len(recording) == 1 and recording[0].sent == ["full", "exact_first"]
    assert recording[0].returncode == 0
    monkeypatch.setattr(simulate_module, "compile_ahead", lambda configs, backend: None)
    run_many_to_file(runs, tmp_path / "in_order.h5")
    a, b = _contents(tmp_path / "early.h5"), _contents(tmp_path / "in_order.h5")
    assert len(a) > 20 and a == b


@pytest.mark.parametrize("case", ["never asked", "all exact"])
def test_a_process_started_early_and_not_wanted_is_ended(case, recording):
    runs = [c for c, _ in _mixed_runs() if not needs_full_kernel(c)]
    with ahead_module.compile_ahead_early("cpu"):
        if case == "all exact":
            assert compile_ahead(runs, "cpu") is None
    assert len(recording) == 1 and recording[0].sent is None
    assert recording[0].returncode is not None  # ended, not left compiling


@pytest.mark.parametrize("case", ["cuda", "one core"])
def test_nothing_starts_early_where_nothing_would_overlap(case, recording, monkeypatch):
    if case == "one core":
        monkeypatch.setattr(ahead_module, "_usable_cores", lambda: 1)
    with ahead_module.compile_ahead_early("cuda" if case == "cuda" else "cpu"):
        pass
    assert recording == []


def test_the_runs_leave_the_second_process_a_core_while_it_compiles(monkeypatch):
    """Each chunk computed while the second process runs uses one numba thread fewer (one at least); the chunks
    after it ended use them all again, and the count is restored after the runs."""
    import numba

    class Fake:
        returncode = None  # alive until the first full run waits for it

        def wait(self):
            self.returncode = 0

        def stop(self):
            pass

    threads_seen = []
    real_reduce = simulate_module.reduce_chunk

    def recording_reduce(config, k, backend):
        threads_seen.append((needs_full_kernel(config), numba.get_num_threads()))
        return real_reduce(config, k, backend)

    monkeypatch.setattr(simulate_module, "compile_ahead", lambda configs, backend: Fake())
    monkeypatch.setattr(simulate_module, "reduce_chunk", recording_reduce)
    runs = _mixed_runs()
    before = numba.get_num_threads()
    list(simulate_module.map_chunks(runs, [0] * len(runs), "cpu"))
    assert numba.get_num_threads() == before
    assert threads_seen == [(False, max(1, before - 1))] * 5 + [(True, before)] * 6, threads_seen


@pytest.mark.parametrize("schemes, method, precision, arch", [
    (("he", "he_truncated_keras2018"), "auto", "float64", None),
    (("he", "orthogonal"), "auto", "float64", None),
    (("he_truncated_keras2018", "he_uniform"), "auto", "float64", None),
    (("he", "he_truncated_keras2018"), "full", "float64", None),
    (("he", "he_truncated_keras2018"), "exact_first", "float64", None),
    (("he", "he_truncated_keras2018"), "auto", "float32", None),
    (("he", "he_truncated_keras2018"), "auto", "float64", fmsim.Conv((2, 3), (4, 4), 3)),
    (("he", "he_truncated_keras2018"), "auto", "float64", fmsim.Residual(4, (0.5, 0.5))),
])
def test_the_mix_is_told_before_the_runs_are_built(schemes, method, precision, arch):
    """``mixes_exact_and_full`` (which starts the second process early) says what the built configurations do."""
    inits = [fmsim.Init.scheme(s) for s in schemes]
    configs = [make_config(arch or fmsim.FullyConnected.constant(3, 32), init, 8, 1, method, precision=precision)
               for init in inits]
    built = len({needs_full_kernel(c) for c in configs}) == 2
    assert ahead_module.mixes_exact_and_full(inits, method, arch, precision) == built


@pytest.mark.parametrize("schemes, started", [("he,he_truncated_keras2018", True), ("he,lecun", False)])
def test_a_sweep_that_mixes_starts_its_second_process_early(schemes, started, recording, tmp_path):
    from fmsim.cli import main

    out = tmp_path / "sweep.h5"
    assert main(["sweep", "--depths", "2,3", "--width", "4", "--schemes", schemes, "--nets", "64",
                 "--out", str(out), "--quiet"]) == 0
    # started before the runs were built, then sent one probe (the truncated normal's full kernel)
    assert [(r.early, r.sent) for r in recording] == ([(True, ["full"])] if started else [])
    assert all(r.returncode == 0 for r in recording)
    assert len(fmsim.store.list_runs(out)) == 4


def test_the_second_process_compiles_the_later_exact_samplers_first(monkeypatch):
    """This process compiles the first exact run's sampler; the second one the other exact samplers (once each),
    then the full kernels."""
    arch = fmsim.FullyConnected.constant(4, 6)
    runs = [(make_config(arch, HE, 64, 5), "he"),
            (make_config(arch, TRUNC, 64, 5, "exact_first"), "trunc"),
            (make_config(arch, fmsim.Init.scheme("orthogonal"), 64, 5), "orth"),
            (make_config(arch, fmsim.Init.scheme("lecun"), 64, 5), "lecun"),
            (make_config(arch, fmsim.Init.scheme("orthogonal_unit"), 64, 5), "orth_unit")]
    started = []
    monkeypatch.setattr(ahead_module, "_usable_cores", lambda: 2)
    monkeypatch.setattr(ahead_module, "CompileAhead", lambda configs: started.append(
        [(c.method, c.init.law) for c in configs]))
    ahead_module.compile_ahead([c for c, _ in runs], "cpu")
    assert started == [[("exact", "orthogonal"), ("exact_first", "truncated_normal")]]
