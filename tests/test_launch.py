"""The road from a configuration to its kernel (fmsim.running.launch): every road plans a declared kind of call,
and every kind of call says how each backend runs it."""

import dataclasses

import numpy as np
import pytest
from bits_cases import config_of, device_cases, file_cases

import fmsim
from fmsim.running import launch
from fmsim.running.simulate import check_backend


@pytest.mark.parametrize("kind", launch.KERNELS, ids=[k.__name__ for k in launch.KERNELS])
def test_every_kind_of_call_declares_both_backends(kind):
    assert kind.run_cpu is not launch.KernelCall.run_cpu, f"{kind.__name__} has no CPU kernel"
    has_cuda = kind.cuda_kernel is not launch.KernelCall.cuda_kernel and kind is not launch.FullyConnectedExactFirst
    assert has_cuda != bool(kind.cuda_refusal), f"{kind.__name__}: a CUDA kernel or a reason why not, not both"
    assert dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen


@pytest.mark.parametrize(("name", "arguments"), file_cases() + device_cases(),
                         ids=[n for n, _ in file_cases() + device_cases()])
def test_every_case_plans_a_declared_call_with_named_inputs(name, arguments):
    config = config_of(arguments)
    call = launch.plan(config, 1024)
    assert type(call) in launch.KERNELS
    assert call.net0 == 1024 and call.k0 == np.uint64(fmsim.rng.seed_to_key(config.seed)[0])
    assert len(call.arguments()) == len([f for f in dataclasses.fields(call) if not f.metadata])
    if call.cuda_refusal:  # refused by name, before any work
        with pytest.raises(ValueError, match="backend='cpu' only"):
            check_backend(config, "cuda")


def test_a_road_without_a_kernel_is_refused_by_name():
    config = config_of(dict(arch=fmsim.FullyConnected((3, 4)), init=fmsim.Init(), method="full", precision="float64",
                            record="summary", x=None, n_nets=5))
    # RunConfig refuses exact_first on conv nets first; step past it to reach the road table's own refusal
    object.__setattr__(config, "method", "exact_first")
    object.__setattr__(config, "arch", fmsim.Conv((1, 2), (4,), 3))
    with pytest.raises(ValueError, match="no kernel runs method='exact_first' with law='gaussian' on Conv nets"):
        launch.plan(config, 0)
