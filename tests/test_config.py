"""Bad input gets a clear error naming the parameter, before any work starts."""

import numpy as np
import pytest

import fmsim
from fmsim.config import RunConfig
from fmsim.running.simulate import make_config

ARCH = fmsim.FullyConnected((4, 3, 3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(widths=(4,)), "widths"),
        (dict(widths=(4, 0)), r"widths\[1\]"),
        (dict(widths=(4, 3.5)), "widths"),
        (dict(widths="44"), "widths"),
    ],
)
def test_architecture_validation(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fmsim.FullyConnected(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(law="cauchy"), "law"),
        (dict(c=0.0), "c must be > 0"),
        (dict(c=(2.0, -1.0)), "c must be > 0"),
        (dict(c=float("nan")), "c must be finite"),
        (dict(bias_var=-0.1), "bias_var"),
        (dict(fan="out"), "fan"),
    ],
)
def test_init_validation(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fmsim.Init(**kwargs)


def test_unknown_scheme():
    with pytest.raises(ValueError, match="scheme must be one of"):
        fmsim.Init.scheme("kaiming")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_nets=0), "n_nets"),
        (dict(n_nets=2**32), "n_nets"),
        (dict(seed=-3), "seed"),
        (dict(method="fast"), "method"),
        (dict(record="all"), "record"),
        (dict(chunk_size=1000), "chunk_size"),
        (dict(x=np.ones(5)), r"x must have shape \(4,\) \(the input size\)"),
        (dict(x=np.ones((2, 4))), "x must be one vector"),
        (dict(x=[1, 2, np.inf, 0]), "x must be finite"),
        (dict(method="exact", init=fmsim.Init(law="uniform")), "method='exact' needs"),
        (dict(init=fmsim.Init(c=(2.0, 2.0, 2.0))), "depth 2"),
    ],
)
def test_run_validation(kwargs, match):
    args = dict(arch=ARCH, init=fmsim.Init(), n_nets=10, seed=1)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        make_config(**args)


def test_simulate_rejects_bad_backend_before_work():
    with pytest.raises(ValueError, match="backend must be one of"):
        fmsim.simulate(ARCH, fmsim.Init(), 10, 1, backend="tpu")


def test_config_dict_roundtrip():
    cfg = make_config(ARCH, fmsim.Init.scheme("glorot", bias_var=0.1), 5000, 3, x=[1.0, 0, 0, 2])
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_schemes_effective_c():
    arch = fmsim.FullyConnected((784, 100, 100))
    assert np.allclose(fmsim.Init.scheme("glorot").layer_c(arch), [2 * 784 / 884, 1.0])
    assert np.allclose(fmsim.Init.scheme("he_truncated_keras2018").layer_c(arch), 2 * 0.773741, atol=1e-6)
    assert fmsim.Init(c=(1.0, 3.0)).layer_c(arch).tolist() == [1.0, 3.0]
