"""The per-net statistics registry: every registered statistic reaches every place a statistic is read.

Walks ``fmsim.running.statistics.STATISTICS``, so a statistic added later is checked here without
a new test: computed on the CPU by the epilogue and equal to its value from the traces, stored as a
checksummed dataset with its long name, labelled in the summary's moment table, summarized in
``LayerSummary.statistics``, read back by ``fmsim.open`` and by the xarray reader.
"""

import h5py
import numpy as np
import pytest

import fmsim
from fmsim.kernels import epilogue
from fmsim.running import statistics
from fmsim.running.simulate import make_config

ARCH = fmsim.FullyConnected((6, 5, 7, 4))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("stats") / "run.h5"
    cfg = make_config(ARCH, fmsim.Init("uniform", 2.0), 2500, 4, method="full", record="layers", chunk_size=1024)
    return fmsim.run_to_file(cfg, path), path


def test_registry_rows_are_the_epilogue_rows():
    assert [s.row for s in statistics.STATISTICS] == list(range(epilogue.N_STATISTICS))
    assert len(set(statistics.names())) == len(statistics.STATISTICS)


def test_fm2_is_the_population_variance_of_the_trace():
    res = fmsim.simulate(ARCH, fmsim.Init("laplace", 2.0), 3000, 5, method="full", record="layers")
    expected = res.lengths[:, 1:].var(axis=1)  # NumPy's two-pass variance of M_1..M_d (float64 traces in memory)
    np.testing.assert_allclose(res.fm2, expected, rtol=1e-12, atol=1e-300)  # sums in another order: a few ulps


@pytest.mark.parametrize("stat", statistics.STATISTICS, ids=statistics.names())
def test_every_statistic_is_stored_summarized_and_read(run, stat):
    res, path = run
    values = res.statistics[stat.name]
    assert values.shape == (res.n_done,) and values.dtype == stat.dtype
    with h5py.File(path, "r") as f:
        ds = f[stat.name]
        assert ds.fletcher32 and ds.attrs["long_name"] == stat.long_name
        np.testing.assert_array_equal(ds[()], values)
        labels = [q.decode() for q in f["summary/quantity"][()]]
        assert labels[ARCH.depth + 1:] == list(statistics.names())
    summary = res.summary.statistics[stat.name]
    assert summary.mean == pytest.approx(values.mean(), rel=1e-12)
    assert summary.var == pytest.approx(values.var(ddof=1), rel=1e-9)
    ds = fmsim.open_dataset(path)
    np.testing.assert_array_equal(ds[stat.name].values, values)
    assert stat.name in list(ds["quantity"].values)


def test_in_memory_equals_file(run):
    res, _ = run
    again = fmsim.simulate(ARCH, fmsim.Init("uniform", 2.0), 2500, 4, method="full", chunk_size=2048)
    for name in statistics.names():
        np.testing.assert_array_equal(again.statistics[name], res.statistics[name])
