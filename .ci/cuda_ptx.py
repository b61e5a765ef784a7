"""Compile every CUDA kernel, with the argument types the CUDA tests launched it with, to PTX.

The CUDA tests run under numba's simulator (``NUMBA_ENABLE_CUDASIM=1``), which runs the kernels as Python and
never compiles them: a kernel that numba-cuda cannot compile passes there. With ``FMSIM_CUDA_SIGNATURES=<file>``
the test session records, per kernel of ``fmsim.kernels.cuda``, the types of its arguments (``tests/conftest.py``);
this script compiles each (kernel, types) with numba-cuda for compute capability 9.0, which needs NVRTC and NVVM
(``pip install nvidia-cuda-nvrtc-cu12 nvidia-cuda-nvcc-cu12``) but no GPU. It fails if a kernel does not compile
or was never launched.

Run:  python .ci/cuda_ptx.py SIGNATURES.json
"""

from __future__ import annotations

import json
import re
import sys
import time
import types

import numba.cuda.dispatcher as cuda_dispatcher
from numba import cuda

# Device functions ask the current device for its compute capability; there is none here.
cuda_dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))

import fmsim.kernels.cuda as cuda_kernels  # noqa: E402


def signature_string(typeof_names: str) -> str:
    """``"array(float64, 1d, C);int64;bool"`` (``numba.typeof`` names) -> ``"void(float64[::1], int64, boolean)"``."""

    def array(m: re.Match) -> str:
        dims = [":"] * int(m.group(2))
        if m.group(3) == "C":
            dims[-1] = "::1"
        return f"{m.group(1)}[{', '.join(dims)}]"

    names = [re.sub(r"^array\((\w+), (\d)d, (\w)\)$", array, t) for t in typeof_names.split(";")]
    return "void(" + ", ".join(re.sub(r"^bool(\[|$)", r"boolean\1", t) for t in names) + ")"


def main(path: str) -> int:
    with open(path) as f:
        launched = json.load(f)
    kernels = [name for name, obj in vars(cuda_kernels).items()
               if isinstance(obj, cuda_dispatcher.CUDADispatcher) and not obj.targetoptions.get("device")]
    failed = [f"{name}: never launched by the CUDA tests" for name in kernels if name not in launched]
    n = 0
    for name in kernels:
        for types_ in launched.get(name, []):
            sig = signature_string(types_)
            t = time.perf_counter()
            try:
                cuda.compile_ptx(getattr(cuda_kernels, name).py_func, sig, cc=(9, 0))
            except Exception as e:  # report every kernel, then fail
                failed.append(f"{name}{sig[4:]}: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
                continue
            n += 1
            print(f"  {name:32s} {time.perf_counter() - t:5.1f} s", flush=True)
    print(f"{n} kernel signatures compiled to PTX (cc 9.0), {len(failed)} failures")
    for line in failed:
        print("FAIL", line)
    return 1 if failed or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
