"""The same simulation serially and on Dask LocalClusters of 1 and 2 workers: speed-up and overhead per task.

Serial = this process, numba ``prange`` over all cores. On a cluster each
chunk is one task run single-threaded by a worker process, and this process
writes the HDF5 file as results arrive (in order, a bounded window ahead).
The overhead per task is measured on chunks so small that their compute
time is negligible.

Run:  python bench/bench_dask.py [--size 80] [--nets 20480] [--chunk-size 1024]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numba
from fmsim.execution import close, connect
from fmsim.store import run_to_file

import fmsim
from fmsim.running.simulate import make_config


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed_run(config, client=None) -> float:
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        run_to_file(config, os.path.join(d, "run.h5"), client=client)
        return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=80, help="depth = width of the full-simulated net")
    p.add_argument("--nets", type=int, default=20480)
    p.add_argument("--chunk-size", type=int, default=1024)
    p.add_argument("--tiny-tasks", type=int, default=200)
    a = p.parse_args(argv)
    print(f"{cpu_name()}; {os.cpu_count()} cores, numba threads {numba.get_num_threads()}")
    arch = fmsim.FullyConnected.constant(a.size, a.size)
    cfg = make_config(arch, fmsim.Init("uniform", 2.0), a.nets, 1, method="full", chunk_size=a.chunk_size)
    tiny = make_config(fmsim.FullyConnected((2, 2)), fmsim.Init.scheme("he"), a.tiny_tasks * 1024, 1,
                       method="exact", chunk_size=1024)
    warm = make_config(arch, fmsim.Init("uniform", 2.0), 1024, 9, method="full", chunk_size=1024)
    timed_run(warm)
    timed_run(tiny)
    rows = [("serial (numba prange)", timed_run(cfg), timed_run(tiny))]
    for workers in (1, 2):
        client = connect(workers=workers)
        try:
            timed_run(warm, client)  # workers compile (or load the numba cache) once
            timed_run(tiny, client)
            rows.append((f"LocalCluster, {workers} worker{'s' * (workers > 1)}", timed_run(cfg, client),
                         timed_run(tiny, client)))
        finally:
            close(client)
    serial = rows[0][1]
    one = rows[1][1]
    print(f"run: depth = width = {a.size}, uniform full simulation, {a.nets} nets in {cfg.n_chunks} chunks; "
          f"overhead: {a.tiny_tasks} chunks of a 2-unit net")
    print(f"{'':28s} {'seconds':>9s} {'nets/s':>9s} {'vs serial':>9s} {'vs 1 worker':>11s} {'overhead/task':>14s}")
    for name, t, t_tiny in rows:
        print(f"{name:28s} {t:9.2f} {a.nets / t:9.0f} {serial / t:8.2f}x {one / t:10.2f}x "
              f"{1e3 * t_tiny / a.tiny_tasks:11.2f} ms")


if __name__ == "__main__":
    main()
