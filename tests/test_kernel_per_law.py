"""The `full` kernels compile one kernel per weight law and layout (fmsim.kernels.cpu.*_for_law)."""

import numpy as np
import pytest

from fmsim.kernels import cpu
from fmsim.sampling.laws import LAW_CODES

FACTORIES = [("fc_full", cpu.fc_full_for_law), ("res_full", cpu.res_full_for_law),
             ("conv_full", cpu.conv_full_for_law)]


@pytest.mark.parametrize("name, factory", FACTORIES)
def test_one_named_kernel_per_law_and_layout(name, factory):
    kernels = {(law, bits32): factory(code, bits32) for law, code in LAW_CODES.items() for bits32 in (False, True)}
    assert len({id(k) for k in kernels.values()}) == len(kernels)  # distinct kernels ...
    assert factory(LAW_CODES["laplace"], True) is kernels["laplace", True]  # ... built once each
    assert kernels["truncated_normal", False].py_func.__name__ == f"{name}_truncated_normal"
    assert kernels["uniform", True].py_func.__qualname__ == f"{name}_uniform_bits32"


@pytest.mark.parametrize("name, factory", FACTORIES)
def test_an_unknown_law_code_is_refused_before_compiling(name, factory):
    with pytest.raises(ValueError, match=r"law: expected one of the codes \[0, 1, 2, 3, 4\], got 7"):
        factory(7, False)


def test_fc_full_runs_the_kernel_of_its_law():
    """`fc_full(..., law, ...)` gives what the law's own kernel gives (and another law's does not)."""
    widths = np.array([6, 5, 4])
    x = np.linspace(-1.0, 1.0, 6)
    args = (x, 0, widths, np.full(2, 0.6), np.zeros(2))
    rest = (np.uint64(3), np.uint64(4), 0, 0.0)
    first = (np.empty((2, 0)), np.zeros(1, dtype=np.int64), np.zeros(3), cpu.RENORM_HIGH)
    out = {}
    for law in ("uniform", "laplace"):
        via_fc_full = np.empty((8, 3)), np.empty((8, 3))
        cpu.fc_full(*args, LAW_CODES[law], *rest, False, *first, *via_fc_full)
        direct = np.empty((8, 3)), np.empty((8, 3))
        cpu.fc_full_for_law(LAW_CODES[law], False)(*args, *rest, *first, *direct)
        np.testing.assert_array_equal(via_fc_full[1], direct[1])
        out[law] = direct[1]
    assert not np.array_equal(out["uniform"], out["laplace"])


def test_literal_arguments_compile_no_second_copy_of_a_helper(tmp_path):
    """A helper called with a literal (the lanes 0 and 1 of the seeded input's Gaussian draw, a width maximum
    started at 0) was compiled for numba's ``Literal[int]`` types beside the plain integer's: the same code
    again, about 0.3 s each. In a new process with an empty numba cache (a cached caller does not compile its
    helpers), the seeded input's draw and an orthogonal ``full`` run compile each helper once."""
    import os
    import subprocess
    import sys

    code = ("import fmsim\n"
            "from fmsim.kernels.cpu_orthogonal import haar_scratch\n"
            "from fmsim.sampling.laws import _ziggurat_slow, draw_standard_array\n"
            "draw_standard_array('gaussian', 9, (1, 2), 0, 0, 0)\n"
            "fmsim.simulate(fmsim.FullyConnected.constant(3, 5), fmsim.Init.scheme('orthogonal'), 4, 1, "
            "method='full')\n"
            "print(len(_ziggurat_slow.signatures), len(haar_scratch.signatures))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"], out.stdout
