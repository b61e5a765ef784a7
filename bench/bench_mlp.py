"""Seconds per MNIST epoch: fmsim's NumPy MLP vs PyTorch (CPU) on the same net, same run.

Both train float32 ReLU MLPs with mean softmax cross-entropy and plain SGD
(lr 0.01, batch 1024) over the same 60 000 images in the same batch order;
no evaluation inside the timed epoch. PyTorch uses ``nn.Linear`` layers,
``F.cross_entropy`` and ``torch.optim.SGD`` with the same thread count as
NumPy's BLAS. Best of ``--repeat`` epochs each.

Run:  python bench/bench_mlp.py [--repeat 3]    (needs ``pip install torch``)
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from fmsim.mlp import MLP
from fmsim.mnist import load_mnist
from fmsim.train import epoch_order, sgd_steps

from fmsim import Init

NETS = {"fig1b d=w=20": MLP.constant(20, 20), "fig1b d=w=50": MLP.constant(50, 50),
        "784-256-256-10": MLP((784, 256, 256, 10)), "784-1024x3-10": MLP((784, 1024, 1024, 1024, 10))}


def torch_epoch_seconds(mlp: MLP, theta: np.ndarray, x: np.ndarray, y: np.ndarray, batches: list, repeat: int
                        ) -> float:
    import torch

    layers = []
    for k, (W, b) in enumerate(mlp.layers(theta), start=1):
        lin = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(lin)
        if k < mlp.n_layers:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    tb = [torch.from_numpy(b) for b in batches]
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        for idx in tb:
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    import torch
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)  # NumPy's OpenBLAS uses all cores unless OPENBLAS_NUM_THREADS says otherwise
    data = load_mnist()
    order = epoch_order(0, 0, len(data.x_train))
    batches = [order[i:i + 1024] for i in range(0, len(order), 1024)]
    print(f"machine: {os.cpu_count()} cores; threads: {threads} (NumPy BLAS and torch); torch {torch.__version__}")
    print(f"{'net':>16s} {'params':>9s} {'fmsim s/epoch':>14s} {'torch s/epoch':>14s} {'fmsim/torch':>12s}")
    for name, mlp in NETS.items():
        theta0 = mlp.init_params(Init.scheme("he"), seed=1)
        best = np.inf
        for _ in range(a.repeat):
            theta = theta0.copy()
            t = time.perf_counter()
            sgd_steps(mlp, theta, data.x_train, data.y_train, batches, 0.01)
            best = min(best, time.perf_counter() - t)
        tt = torch_epoch_seconds(mlp, theta0, data.x_train, data.y_train, batches, a.repeat)
        print(f"{name:>16s} {mlp.n_params:9d} {best:14.3f} {tt:14.3f} {best / tt:11.2f}x")


if __name__ == "__main__":
    main()
