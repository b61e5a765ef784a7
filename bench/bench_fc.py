"""fmsim (full, exact) vs plain NumPy on the same work: M_j of random He nets, depth = width.

The NumPy baseline is what a user would write: a batch of nets, a fresh Gaussian
weight tensor per layer from ``np.random.default_rng``, batched ``matmul``, ReLU.

Run:  python bench/bench_fc.py [--size 100] [--numpy-nets 256] [--full-nets 4096] [--exact-nets 2000000]
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np

import fmsim


def numpy_batched(n_nets: int, depth: int, width: int, seed: int, batch: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(width)
    x *= np.sqrt(width) / np.linalg.norm(x)
    out = np.empty((n_nets, depth + 1))
    scale = np.sqrt(2.0 / width)
    for b0 in range(0, n_nets, batch):
        b = min(batch, n_nets - b0)
        z = np.broadcast_to(x, (b, width))
        out[b0:b0 + b, 0] = 1.0
        for j in range(1, depth + 1):
            w = rng.standard_normal((b, width, width))
            w *= scale
            z = np.maximum(np.matmul(w, z[:, :, None])[:, :, 0], 0.0)
            out[b0:b0 + b, j] = (z * z).mean(1)
    return out


def timed(fn, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=100, help="depth = width")
    p.add_argument("--numpy-nets", type=int, default=256)
    p.add_argument("--full-nets", type=int, default=4096)
    p.add_argument("--exact-nets", type=int, default=2_000_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    n = a.size
    arch = fmsim.FullyConnected.constant(depth=n, width=n)
    init = fmsim.Init.scheme("he")
    draws_per_net = n * n * n
    print(f"machine: {os.cpu_count()} cores, numba threads {numba.get_num_threads()}; depth = width = {n}")

    fmsim.simulate(arch, init, 1024, 0, method="full")  # compile
    fmsim.simulate(arch, init, 1024, 0, method="exact")

    t_np = timed(lambda: numpy_batched(a.numpy_nets, n, n, 0), a.repeat) / a.numpy_nets
    t_full = timed(lambda: fmsim.simulate(arch, init, a.full_nets, 1, method="full", chunk_size=1024),
                   a.repeat) / a.full_nets
    t_exact = timed(lambda: fmsim.simulate(arch, init, a.exact_nets, 1, method="exact"), a.repeat) / a.exact_nets
    rows = [("numpy batched", t_np), ("fmsim full", t_full), ("fmsim exact", t_exact)]
    print(f"{'':16s} {'nets/s':>12s} {'weight draws/s':>15s} {'vs numpy':>9s}")
    for name, t in rows:
        draws = f"{draws_per_net / t:15.3e}" if name != "fmsim exact" else f"{'(none)':>15s}"
        print(f"{name:16s} {1 / t:12.4g} {draws} {t_np / t:8.1f}x")


if __name__ == "__main__":
    main()
