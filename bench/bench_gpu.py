"""fmsim CUDA (full, exact) vs PyTorch (torch.randn + bmm) on the same GPU, depth = width.

Also checks CPU-vs-GPU agreement of M_j for the same seed. Run on a machine with a GPU:
    python bench/bench_gpu.py [--size 100] [--full-nets 16384] [--exact-nets 4000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fmsim
from fmsim.running.simulate import make_config, run_chunk


def torch_batched(n_nets: int, n: int, dtype, batch: int = 1024) -> float:
    import torch

    dev = torch.device("cuda")
    x = torch.randn(n, device=dev, dtype=dtype)
    x *= (n**0.5) / x.norm()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for b0 in range(0, n_nets, batch):
        b = min(batch, n_nets - b0)
        z = x.expand(b, n).unsqueeze(2)
        for _ in range(n):
            w = torch.randn(b, n, n, device=dev, dtype=dtype) * (2.0 / n) ** 0.5
            z = torch.relu(torch.bmm(w, z))
            m = (z * z).mean(dim=(1, 2))
    torch.cuda.synchronize()
    del m
    return time.perf_counter() - t


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--full-nets", type=int, default=16384)
    p.add_argument("--exact-nets", type=int, default=4_000_000)
    p.add_argument("--torch-nets", type=int, default=16384)
    a = p.parse_args(argv)
    from numba import cuda

    n = a.size
    name = cuda.get_current_device().name
    print(f"device: {name.decode() if isinstance(name, bytes) else name}; depth = width = {n}")
    arch = fmsim.FullyConnected.constant(n, n)
    init = fmsim.Init.scheme("he")
    draws = n**3

    # agreement CPU vs GPU, same seed (float32: the GPU run against the CPU's float32 and float64 runs)
    for method, precision in (("full", "float64"), ("exact", "float64"), ("full", "float32")):
        cfg = make_config(arch, init, 2048, 5, method=method, chunk_size=2048, precision=precision)
        c, g = run_chunk(cfg, 0, "cpu"), run_chunk(cfg, 0, "cuda")
        rel = np.max(np.abs(c[0] - g[0]) / np.maximum(np.abs(c[0]), 1e-300))
        print(f"CPU vs GPU ({method}, {precision}, 2048 nets): max relative difference of M_j = {rel:.2e}; "
              f"bit-identical fraction {np.mean(c[0] == g[0]):.4f}")
    c64 = run_chunk(make_config(arch, init, 2048, 5, method="full", chunk_size=2048), 0, "cpu")[0]
    rel = np.max(np.abs(g[0] - c64) / np.maximum(np.abs(c64), 1e-300))
    print(f"GPU float32 vs CPU float64: max relative difference of M_j = {rel:.2e} (documented: < 1e-4)")

    for precision in ("float64", "float32"):
        fmsim.simulate(arch, init, 1024, 0, method="full", backend="cuda", chunk_size=1024, precision=precision)
    fmsim.simulate(arch, init, 1024, 0, method="exact", backend="cuda", chunk_size=1024)
    rows = []
    for precision in ("float64", "float32"):
        t = timed(lambda p=precision: fmsim.simulate(arch, init, a.full_nets, 1, method="full", backend="cuda",
                                                     chunk_size=16384, precision=p)) / a.full_nets
        rows.append((f"fmsim cuda full ({precision[-2:]})", t, True))
    t_exact = timed(lambda: fmsim.simulate(arch, init, a.exact_nets, 1, method="exact", backend="cuda",
                                           chunk_size=1 << 20)) / a.exact_nets
    rows.append(("fmsim cuda exact", t_exact, False))
    try:
        import torch

        torch_batched(1024, n, torch.float32)
        for dt, name in ((torch.float32, "torch randn+bmm f32"), (torch.float64, "torch randn+bmm f64")):
            rows.append((name, torch_batched(a.torch_nets, n, dt) / a.torch_nets, True))
    except ImportError:
        print("torch not installed: no PyTorch baseline")
    ref = rows[3][1] if len(rows) > 3 else None
    print(f"{'':24s} {'nets/s':>12s} {'draws/s':>12s} {'vs torch f32':>13s}")
    for name, t, has_draws in rows:
        ratio = f"{ref / t:12.2f}x" if ref else ""
        print(f"{name:24s} {1 / t:12.4g} {draws / t if has_draws else float('nan'):12.3e} {ratio}")


if __name__ == "__main__":
    main()
