"""Minibatch SGD for :class:`fmsim.mlp.MLP` and the training-onset measurement.

"Onset" follows Hanin & Rolnick (2018, Fig. 1b): the number of epochs
(fractional) until test accuracy first reaches 20%. Test accuracy is
evaluated ``evals_per_epoch`` times per epoch for the first ``dense_epochs``
epochs and once per epoch after that, plus once at initialization; the
onset is the fractional epoch of the first evaluation that reaches the
target, ``nan`` if none does within ``max_epochs``.

Batch order is seeded per epoch from ``(seed, epoch)`` with NumPy's
``SeedSequence``; the global RNG is never used.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import Init, as_float, as_int
from .mlp import MLP

__all__ = ["SGDConfig", "TrainingRun", "train", "sgd_steps", "epoch_order", "write_run", "read_run", "run_meta"]


@dataclass(frozen=True)
class SGDConfig:
    """Plain minibatch SGD and the onset criterion.

    Parameters
    ----------
    lr : float
        Learning rate, > 0 (default 0.01).
    batch_size : int
        Examples per step, >= 1 (default 1024; the last batch of an epoch holds the rest).
    max_epochs : int
        Upper limit, >= 1 (default 100).
    target_accuracy : float
        Test accuracy that counts as "started training", in (0, 1] (default 0.2).
    evals_per_epoch : int
        Test evaluations per epoch during the first ``dense_epochs`` epochs, >= 1 (default 10).
    dense_epochs : int
        Epochs evaluated densely, >= 0 (default 10); later epochs are evaluated at their end.
    stop_at_target : bool
        Stop as soon as the target is reached (default True).
    """

    lr: float = 0.01
    batch_size: int = 1024
    max_epochs: int = 100
    target_accuracy: float = 0.2
    evals_per_epoch: int = 10
    dense_epochs: int = 10
    stop_at_target: bool = True

    def __post_init__(self) -> None:
        lr = as_float("lr", self.lr)
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        for name, lo in (("batch_size", 1), ("max_epochs", 1), ("evals_per_epoch", 1), ("dense_epochs", 0)):
            v = as_int(name, getattr(self, name))
            if v < lo:
                raise ValueError(f"{name} must be >= {lo}, got {v}")
        t = as_float("target_accuracy", self.target_accuracy)
        if not 0 < t <= 1:
            raise ValueError(f"target_accuracy must be in (0, 1], got {t}")
        if not isinstance(self.stop_at_target, bool):
            raise TypeError(f"stop_at_target must be a bool, got {self.stop_at_target!r}")


@dataclass(frozen=True, eq=False)
class TrainingRun:
    """The record of one training run.

    Attributes
    ----------
    eval_epoch : ndarray, shape (n_evals,)
        Fractional epoch of each evaluation (0 = initialization).
    test_accuracy : ndarray, shape (n_evals,)
    train_loss : ndarray, shape (n_evals,)
        Mean minibatch loss since the previous evaluation (``nan`` at 0).
    onset_epoch : float
        First ``eval_epoch`` with ``test_accuracy >= target``; ``nan`` if never.
    diverged : bool
        The loss or the parameters became non-finite (training then stops).
    seconds : float
        Wall time of the run.
    """

    eval_epoch: np.ndarray
    test_accuracy: np.ndarray
    train_loss: np.ndarray
    onset_epoch: float
    diverged: bool
    seconds: float

    @property
    def started(self) -> bool:
        return not math.isnan(self.onset_epoch)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The example order of one epoch: a permutation of ``range(n)`` fixed by ``(seed, epoch)``."""
    return np.random.default_rng([seed, 0x5EED, epoch]).permutation(n)


def sgd_steps(mlp: MLP, theta: np.ndarray, x: np.ndarray, y: np.ndarray, batches: list[np.ndarray], lr: float,
              grad: np.ndarray | None = None) -> tuple[float, bool]:
    """SGD steps in place, one per index array in ``batches``.

    Returns
    -------
    mean_loss : float
        Mean of the minibatch losses (before each step).
    finite : bool
        False as soon as a loss or the parameters stop being finite (the steps then stop).
    """
    grad = np.empty_like(theta) if grad is None else grad
    step = theta.dtype.type(lr)
    total = 0.0
    for k, idx in enumerate(batches, start=1):
        loss, _ = mlp.loss_and_grad(theta, x[idx], y[idx], out=grad)
        grad *= step
        theta -= grad
        total += loss
        if not math.isfinite(loss) or not np.isfinite(theta).all():
            return total / k, False
    return total / max(len(batches), 1), True


def _eval_points(n_batches: int, per_epoch: int) -> set[int]:
    """Indices of the batches after which to evaluate (evenly spread, the last one included)."""
    return {math.ceil(k * n_batches / per_epoch) - 1 for k in range(1, per_epoch + 1)}


def train(
    mlp: MLP, theta: np.ndarray, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
    y_test: np.ndarray, config: SGDConfig = SGDConfig(), seed: int = 0,
    progress: Callable[[float, float], None] | None = None,
) -> TrainingRun:
    """Train ``theta`` in place with minibatch SGD and record test accuracy.

    Parameters
    ----------
    mlp : MLP
    theta : ndarray, shape (n_params,)
        Initial parameters (e.g. :meth:`fmsim.mlp.MLP.init_params`); updated in place.
    x_train, x_test : ndarray, shape (N, n_0), dtype of ``theta``
    y_train, y_test : ndarray, shape (N,), int
    config : SGDConfig
    seed : int
        Seed of the batch order.
    progress : callable, optional
        Called as ``progress(epoch, accuracy)`` after each evaluation.

    Notes
    -----
    BLAS runs single-threaded here (threadpoolctl): a multi-threaded BLAS
    splits its sums differently for each thread count, and the trajectory
    would then depend on the machine. Parallelism comes from running
    trainings side by side (``--workers``); measured on the 2-core machine,
    one thread is as fast as two for these nets (1.32 vs 1.36 s per epoch at
    depth = width = 40).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _train(mlp, theta, x_train, y_train, x_test, y_test, config, seed, progress)


def _train(mlp: MLP, theta: np.ndarray, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
           y_test: np.ndarray, config: SGDConfig, seed: int, progress: Callable[[float, float], None] | None
           ) -> TrainingRun:
    if not isinstance(config, SGDConfig):
        raise TypeError(f"config must be an SGDConfig, got {type(config).__name__}")
    for name, x, y in (("x_train", x_train, y_train), ("x_test", x_test, y_test)):
        if x.ndim != 2 or x.shape[1] != mlp.widths[0] or y.shape != (x.shape[0],):
            raise ValueError(f"{name} must have shape (N, {mlp.widths[0]}) with labels of shape (N,), "
                             f"got {x.shape} and {y.shape}")
        if y.size and not (0 <= y.min() and y.max() < mlp.widths[-1]):
            raise ValueError(f"labels of {name} must be in [0, {mlp.widths[-1]}), got [{y.min()}, {y.max()}]")
    t0 = time.perf_counter()
    n = len(x_train)
    n_batches = math.ceil(n / config.batch_size)
    dense = _eval_points(n_batches, config.evals_per_epoch)
    grad = np.empty_like(theta)
    epochs, accs, losses = [0.0], [mlp.accuracy(theta, x_test, y_test)], [math.nan]
    onset = 0.0 if accs[0] >= config.target_accuracy else math.nan
    diverged = False
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(config.max_epochs):
            if diverged or (config.stop_at_target and not math.isnan(onset)):
                break
            order = epoch_order(seed, epoch, n)
            batches = [order[i:i + config.batch_size] for i in range(0, n, config.batch_size)]
            points = sorted(dense if epoch < config.dense_epochs else {n_batches - 1})
            start = 0
            for stop in (p + 1 for p in points):
                loss, finite = sgd_steps(mlp, theta, x_train, y_train, batches[start:stop], config.lr, grad)
                diverged = not finite
                epochs.append(epoch + min(stop * config.batch_size, n) / n)
                accs.append(mlp.accuracy(theta, x_test, y_test))
                losses.append(loss)
                start = stop
                if progress is not None:
                    progress(epochs[-1], accs[-1])
                if math.isnan(onset) and accs[-1] >= config.target_accuracy:
                    onset = epochs[-1]
                    if config.stop_at_target:
                        break
                if diverged:
                    break
    return TrainingRun(np.array(epochs), np.array(accs), np.array(losses), onset, diverged,
                       time.perf_counter() - t0)


def write_run(h5file: Any, name: str, run: TrainingRun, meta: dict[str, Any]) -> None:
    """Store ``run`` as group ``name`` of an open h5py file, atomically.

    The group is written under a temporary name and renamed when complete, so
    an interrupted write never leaves a partial ``name``. ``meta`` (JSON-able:
    the MLP, Init, SGDConfig and seeds) goes into the ``config`` attribute.
    """
    tmp = f"{name}.__partial__"
    if tmp in h5file:
        del h5file[tmp]
    g = h5file.create_group(tmp)
    for field in ("eval_epoch", "test_accuracy", "train_loss"):
        g.create_dataset(field, data=getattr(run, field))
    g["eval_epoch"].attrs["units"] = "epochs (fractional)"
    g.attrs["onset_epoch"] = run.onset_epoch
    g.attrs["diverged"] = run.diverged
    g.attrs["seconds"] = run.seconds
    g.attrs["config"] = json.dumps(meta)
    h5file.move(tmp, name)
    h5file.flush()


def read_run(group: Any) -> tuple[TrainingRun, dict[str, Any]]:
    """Inverse of :func:`write_run`: the run and its ``meta`` dict."""
    run = TrainingRun(group["eval_epoch"][()], group["test_accuracy"][()], group["train_loss"][()],
                      float(group.attrs["onset_epoch"]), bool(group.attrs["diverged"]),
                      float(group.attrs["seconds"]))
    return run, json.loads(group.attrs["config"])


def run_meta(mlp: MLP, init: Init, config: SGDConfig, init_seed: int, net: int, order_seed: int) -> dict[str, Any]:
    """The JSON description of one training run (stored with it)."""
    return {"mlp": mlp.to_dict(), "init": init.to_dict(), "sgd": asdict(config), "init_seed": init_seed,
            "net": net, "order_seed": order_seed}
