"""Exact samplers vs the full simulation they replace, in one run: nets per second and the ratio.

Rows:
* ReLU-ending Gaussian ResNet (width n, L modules, one hidden layer of width n):
  ``res_relu_exact`` draws the hidden length by the chi-square-binomial law and
  the n output coordinates directly, O(n) per module, against ``full``, O(n^2).
* Fully connected He net with Gaussian biases, depth = width: exact O(n/128)
  per layer against full O(n^2).
* Fully connected Keras-2018 truncated-normal He nets on an MNIST-size input
  (784 -> width^depth, the demo's truncated points at depth = width = 10 and 50):
  ``exact_first`` draws each first-layer unit from its tabulated law, O(n_1),
  against ``full``, O(784 n_1); the later layers are the same work in both.
  Also the time to tabulate that law once.
* Fully connected nets with orthogonal weights (gain sqrt 2), depth = width:
  exact (a binomial and two or four Gamma variates per layer, O(1 + n/128))
  against full (a Householder QR per layer, O(n^3)).
* The exact law itself: time to build the law of M_d and evaluate its CDF at
  1000 points and 9 quantiles (no sampling at all).

Run:  python bench/bench_exact.py [--width 64] [--modules 64] [--size 100]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np

import fmsim


def timed(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def rate(arch, init, method: str, nets: int, repeat: int) -> float:
    fmsim.simulate(arch, init, 1024, 0, method=method, chunk_size=1024)  # compile
    return nets / timed(lambda: fmsim.simulate(arch, init, nets, 1, method=method, chunk_size=1024), repeat)


def numpy_orthogonal_rate(size: int, nets: int, repeat: int) -> float:
    """Nets/s of depth = width = ``size`` orthogonal ReLU nets as a user writes them in NumPy: per layer a
    Gaussian matrix, ``np.linalg.qr``, the sign fix, a product and a ReLU."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(size)

    def one_batch():
        for _ in range(nets):
            z = x
            for _ in range(size):
                q, r = np.linalg.qr(rng.standard_normal((size, size)))
                q *= np.sign(np.diag(r))
                z = np.maximum(np.sqrt(2.0) * (q @ z), 0.0)

    return nets / timed(one_batch, repeat)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=64, help="ResNet stream width n")
    p.add_argument("--modules", type=int, default=64, help="ResNet modules L")
    p.add_argument("--size", type=int, default=100, help="FC depth = width")
    p.add_argument("--full-nets", type=int, default=2048)
    p.add_argument("--exact-nets", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    print(f"{cpu_name()}; {os.cpu_count()} cores, numba threads {numba.get_num_threads()}")

    rows = []
    res = fmsim.Residual.scheduled(a.width, a.modules, "1/sqrt(L)", 1.0, module_widths=(a.width,), ending="relu")
    he = fmsim.Init.scheme("he")
    full = rate(res, he, "full", a.full_nets, a.repeat)
    exact = rate(res, he, "exact", a.exact_nets, a.repeat)
    rows.append((f"ReLU-ending ResNet n={a.width}, L={a.modules}", full, exact))
    fc = fmsim.FullyConnected.constant(a.size, a.size)
    biased = fmsim.Init("gaussian", 2.0, bias_var=0.1)
    full = rate(fc, biased, "full", a.full_nets // 4, a.repeat)
    exact = rate(fc, biased, "exact", a.exact_nets * 4, a.repeat)
    rows.append((f"FC He + bias 0.1, d = n = {a.size}", full, exact))
    orth = fmsim.Init.scheme("orthogonal")
    full = rate(fc, orth, "full", max(64, a.full_nets // 32), a.repeat)
    exact = rate(fc, orth, "exact", a.exact_nets * 2, a.repeat)
    rows.append((f"FC orthogonal, d = n = {a.size}", full, exact))
    numpy_orth = numpy_orthogonal_rate(a.size, 16, a.repeat)
    trunc = fmsim.Init.scheme("he_truncated_keras2018")
    for d in (10, 50):
        arch = fmsim.FullyConnected.constant(d, d, 784)
        nets = 16 * a.full_nets if d == 10 else 4 * a.full_nets
        rows.append((f"FC truncated He, 784 -> {d} x {d}", rate(arch, trunc, "full", nets, a.repeat),
                     rate(arch, trunc, "exact_first", nets, a.repeat)))

    print(f"{'':40s} {'full nets/s':>12s} {'exact nets/s':>13s} {'ratio':>9s}  (exact_first for the truncated rows)")
    for name, f, e in rows:
        print(f"{name:40s} {f:12.4g} {e:13.4g} {e / f:8.3g}x")

    print(f"{'FC orthogonal, NumPy (QR per layer)':40s} {numpy_orth:12.4g}  (what a user writes: "
          f"nn.init.orthogonal_'s recipe, np.linalg.qr; fmsim exact is {rows[2][2] / numpy_orth:.3g}x, "
          f"full {rows[2][1] / numpy_orth:.3g}x)")

    from fmsim.first_layer import _first_layer_law_cached, first_layer_law

    x = np.random.default_rng(0).standard_normal(784)
    _first_layer_law_cached.cache_clear()
    t0 = time.perf_counter()
    table = first_layer_law("truncated_normal", x)
    print(f"first-layer law, truncated normal, n_0 = 784: tabulated in {time.perf_counter() - t0:.2f} s "
          f"({table.cdf.shape[1]} nodes, {table.terms} terms, interpolation error {table.interpolation_error:.1g})")

    t0 = time.perf_counter()
    law = fmsim.theory.length_law([a.size] * (a.size + 1))
    law.cdf(np.geomspace(1e-4, 1e2, 1000))
    q = law.quantile([0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999])
    print(f"exact law of M_d, d = n = {a.size}: built, 1000 CDF values and 9 quantiles in "
          f"{time.perf_counter() - t0:.2f} s (median {q[4]:.4g})")
    t0 = time.perf_counter()
    law = fmsim.theory.length_law([a.size] * (a.size + 1), weights="orthogonal")
    law.cdf(np.geomspace(1e-4, 1e2, 1000))
    q = law.quantile([0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999])
    print(f"exact law of M_d, orthogonal, d = n = {a.size}: built, 1000 CDF values and 9 quantiles in "
          f"{time.perf_counter() - t0:.2f} s (median {q[4]:.4g})")


if __name__ == "__main__":
    main()
