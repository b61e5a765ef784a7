"""Start-up of ``fmsim simulate``: seconds from launching the process to the start of its first chunk.

Runs ``fmsim simulate --depth 5 --width 10 --nets 1024 --method full`` in a
fresh process three times: cold (numba's cache empty: a fresh ``NUMBA_CACHE_DIR``),
then warm twice (the cache that run wrote). The child marks when the ``full``
kernel is first called and when that first chunk is done (loading the kernel
from numba's cache, or compiling it, happens in between; the chunk's own
work is ~5 ms); the parent also prints the whole command's wall time.
Then, in one warm process, where the time goes: importing numpy, numba,
fmsim, and numba's first load of a cached kernel (numba's start-up, which
imports ``scipy.linalg`` for its BLAS check). Last, the floor that no numba
program beats on this machine: a fresh process that imports numba and calls a
trivial cached ``@njit`` function.

Run:  python bench/bench_startup.py   (about 1 minute: the cold run compiles)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import sys, time
import fmsim.kernels.cpu as cpu
first = cpu.fc_full
def marked(*args):
    cpu.fc_full = first
    print(f"ENTERED {time.time():.6f}", flush=True)
    first(*args)  # loads the kernel from numba's cache (or compiles it), then runs the chunk of 1024 tiny nets
    print(f"FIRST_CHUNK {time.time():.6f}", flush=True)
cpu.fc_full = marked
from fmsim.cli import main
main(["simulate", "--depth", "5", "--width", "10", "--nets", "1024", "--method", "full", "--seed", "1",
      "--out", sys.argv[1]])
"""

# The floor for any numba program: a fresh process that imports numba and calls a trivial cached function.
FLOOR = r"""
import time
from numba import njit
@njit(cache=True)
def plus_one(x):
    return x + 1
plus_one(1)
print(f"DONE {time.time():.6f}", flush=True)
"""

PHASES = r"""
import time
t0 = time.perf_counter(); import numpy
t1 = time.perf_counter(); import numba
t2 = time.perf_counter(); import fmsim, fmsim.cli, fmsim.kernels.cpu as cpu
t3 = time.perf_counter()
x = numpy.ones(10); w = numpy.array([10] * 6); s = numpy.full(5, 0.4)
out = numpy.empty((1024, 6)); logs = numpy.empty((1024, 6))
no_first = numpy.empty((2, 0)), numpy.zeros(1, dtype=numpy.int64), numpy.zeros(3)
b = numpy.zeros(5)
cpu.fc_full(x, 0, w, s, b, 0, numpy.uint64(1), numpy.uint64(2), 0, 0.0, False, *no_first, 2.0**64, out, logs)
t4 = time.perf_counter()
import sys
print(f"  import numpy {t1 - t0:.2f} s, numba {t2 - t1:.2f} s, fmsim and its CLI {t3 - t2:.2f} s; "
      f"first call of a cached kernel {t4 - t3:.2f} s (scipy.linalg imported: {'scipy.linalg' in sys.modules})")
"""


def launch(out: str, env: dict[str, str]) -> tuple[float, float, float]:
    """Seconds from launch to: the kernel's first call, the end of the first chunk, the end of the command."""
    t = time.time()
    proc = subprocess.run([sys.executable, "-c", CHILD, out], env=env, capture_output=True, text=True, check=True)
    total = time.time() - t
    marks = {line.split()[0]: float(line.split()[1]) for line in proc.stdout.splitlines()
             if line.startswith(("ENTERED", "FIRST_CHUNK"))}
    return marks["ENTERED"] - t, marks["FIRST_CHUNK"] - t, total


def floor(env: dict[str, str]) -> float:
    """Seconds from launch until a trivial cached numba function has returned (its cache already written)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "floor.py")  # numba caches functions defined in files, not in ``-c``
        with open(script, "w") as f:
            f.write(FLOOR)
        subprocess.run([sys.executable, script], env=env, check=True, capture_output=True)
        t = time.time()
        proc = subprocess.run([sys.executable, script], env=env, check=True, capture_output=True, text=True)
        return float(proc.stdout.split()[1]) - t


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba-cache"))
        print("fmsim simulate --depth 5 --width 10 --nets 1024 --method full (fresh process each time)")
        for label in ("cold (empty numba cache)", "warm", "warm"):
            out = os.path.join(tmp, "run.h5")
            if os.path.exists(out):
                os.remove(out)
            entered, first, total = launch(out, env)
            print(f"  {label:26s} kernel called after {entered:5.2f} s, first chunk done after {first:5.2f} s "
                  f"(its nets take ~0.005 s), command done after {total:5.2f} s")
        print("where a warm start goes:")
        subprocess.run([sys.executable, "-c", PHASES], env=env, check=True)
        print(f"floor of any numba program here: a trivial cached @njit function has returned "
              f"{floor(env):.2f} s after launch")


if __name__ == "__main__":
    main()
