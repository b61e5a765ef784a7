"""A plain-NumPy multilayer perceptron with hand-written backprop.

Parameters live in one flat vector ``theta`` (so SGD is one ``axpy`` and
Hessian-vector products act on flat vectors); :meth:`MLP.layers` gives views
into it. Layer ``l = 1..L`` computes, batch-major,

    A_l = H_{l-1} @ W_l + b_l,     H_l = phi(A_l)  (l < L),     logits = A_L,

with ``W_l`` of shape ``(n_{l-1}, n_l)``. The output layer is linear.

Initial weights come from the simulator's own Philox streams: column ``r`` of
``W_l`` of net ``net`` is the stream of unit ``r`` of layer ``l`` of that net
(:func:`fmsim.laws.draw_standard_array`), weight ``k`` on input ``k``, scaled
to variance ``c_l / n_{l-1}``. The simulator gives a unit's stream to its
nonzero inputs only (stream layout 4, ``fmsim.laws``), so the two agree
weight for weight where every input is nonzero: the first layer on an input
without zeros has the simulated ``M_1`` for the same seed and net, and the
deeper layers have the simulated law of ``M_j`` (both tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import FullyConnected, Init, as_int
from ..sampling.haar import orthogonal_weights
from ..sampling.laws import BIAS_BLOCK, draw_standard_array, draw_standard_one
from ..sampling.rng import seed_to_key

__all__ = ["MLP", "Forward", "ACTIVATIONS", "LOSSES"]

ACTIVATIONS = ("relu", "tanh")
LOSSES = ("xent", "mse")


@dataclass(frozen=True)
class Forward:
    """What the backward pass (and the R-operator) needs from a forward pass.

    Attributes
    ----------
    pre : list of ndarray, each shape (B, n_l)
        Pre-activations ``A_1..A_L``; ``pre[-1]`` are the logits.
    post : list of ndarray
        ``H_0 = x, H_1, ..., H_{L-1}`` (inputs of each layer), shapes (B, n_{l-1}).
    """

    pre: list[np.ndarray]
    post: list[np.ndarray]

    @property
    def logits(self) -> np.ndarray:
        return self.pre[-1]


@dataclass(frozen=True)
class MLP:
    """Architecture of a ReLU (or tanh) MLP with a linear output layer.

    Parameters
    ----------
    widths : sequence of int
        ``(n_0, n_1, ..., n_L)``: input size, hidden widths, number of outputs
        (classes); ``L >= 1``, each width >= 1.
    activation : {"relu", "tanh"}
        Hidden nonlinearity.
    loss : {"xent", "mse"}
        Mean softmax cross-entropy over the batch, or
        ``(1 / 2B) sum ||logits - onehot(y)||^2``.
    """

    widths: tuple[int, ...]
    activation: str = "relu"
    loss: str = "xent"

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", FullyConnected(self.widths).widths)  # validates
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.loss == "xent" and self.widths[-1] < 2:
            raise ValueError(f"widths[-1] (number of classes) must be >= 2 for loss 'xent', got {self.widths[-1]}")

    @classmethod
    def constant(cls, depth: int, width: int, n_in: int = 784, n_out: int = 10, **kw: Any) -> MLP:
        """``depth`` hidden layers of ``width`` units (Hanin & Rolnick's Fig. 1b nets use width = depth)."""
        depth = as_int("depth", depth)
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        return cls((n_in,) + (as_int("width", width),) * depth + (n_out,), **kw)

    @property
    def n_layers(self) -> int:
        """Number of weight layers ``L`` (hidden layers + output)."""
        return len(self.widths) - 1

    @property
    def offsets(self) -> list[tuple[int, int, int]]:
        """``(start of W_l, start of b_l, end)`` in ``theta`` for each layer."""
        out, pos = [], 0
        for n_in, n_out in zip(self.widths[:-1], self.widths[1:]):
            out.append((pos, pos + n_in * n_out, pos + n_in * n_out + n_out))
            pos += n_in * n_out + n_out
        return out

    @property
    def n_params(self) -> int:
        return self.offsets[-1][2]

    def layers(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Views ``(W_l, b_l)`` into ``theta``, shapes ``(n_{l-1}, n_l)`` and ``(n_l,)``."""
        if theta.shape != (self.n_params,):
            raise ValueError(f"theta must have shape ({self.n_params},), got {theta.shape}")
        return [(theta[w0:b0].reshape(n_in, n_out), theta[b0:end])
                for (w0, b0, end), n_in, n_out in zip(self.offsets, self.widths[:-1], self.widths[1:])]

    def layer_mask(self, layer: int, weights_only: bool = True) -> np.ndarray:
        """Boolean mask of ``theta`` selecting layer ``layer`` (1-based) ``W`` (and ``b`` unless ``weights_only``)."""
        if not 1 <= layer <= self.n_layers:
            raise ValueError(f"layer must be in [1, {self.n_layers}], got {layer}")
        w0, b0, end = self.offsets[layer - 1]
        mask = np.zeros(self.n_params, dtype=bool)
        mask[w0:b0 if weights_only else end] = True
        return mask

    # ------------------------------------------------------------------ init
    def init_params(self, init: Init, seed: int, net: int = 0, dtype: Any = np.float32) -> np.ndarray:
        """Initial ``theta``: ``W_l`` i.i.d. with variance ``c_l / n_{l-1}``, biases of variance ``bias_var`` or
        ``bias_c / n_{l-1}`` (:meth:`fmsim.Init.layer_bias_var`, the weights' law); or, for
        ``law="orthogonal"``, each weight matrix Haar-orthogonal times ``sqrt(c_l)`` as ``nn.init.orthogonal_``
        makes it (:func:`fmsim.orthogonal.orthogonal_weights`: the simulator's matrices) and zero biases.

        Parameters
        ----------
        init : Init
            Law, ``c`` (one value or one per layer, output layer included) and fan mode.
        seed : int
            Philox seed, ``0 <= seed < 2**64``.
        net : int
            Net index (counter word): independent initializations of the same
            architecture use ``net = 0, 1, 2, ...``.
        dtype : numpy dtype
            ``float32`` for training, ``float64`` for derivative checks.

        Returns
        -------
        ndarray, shape (n_params,)
        """
        if not isinstance(init, Init):
            raise TypeError(f"init must be an Init, got {type(init).__name__}")
        net = as_int("net", net)
        if not 0 <= net < 2**32:
            raise ValueError(f"net must be in [0, 2**32), got {net}")
        key = seed_to_key(seed)
        cs = init.layer_c(FullyConnected(self.widths))
        bias_vars = init.layer_bias_var(FullyConnected(self.widths))
        theta = np.empty(self.n_params, dtype=np.float64)
        for layer, (W, b) in enumerate(self.layers(theta), start=1):
            n_in, n_out = W.shape
            if init.orthogonal:  # nn.init.orthogonal_(weight (n_out, n_in), gain=sqrt(c)); W is its transpose
                W[:] = np.sqrt(cs[layer - 1]) * orthogonal_weights(n_out, n_in, key, layer, net).T
                b[:] = 0.0
                continue
            scale = np.sqrt(cs[layer - 1] / n_in)
            for r in range(n_out):
                W[:, r] = scale * draw_standard_array(init.law, n_in, key, r, layer, net)
            if bias_vars[layer - 1] > 0:
                sd = np.sqrt(bias_vars[layer - 1])
                b[:] = [sd * draw_standard_one(init.law, key, int(BIAS_BLOCK), 0, r, layer, net) for r in range(n_out)]
            else:
                b[:] = 0.0
        return theta.astype(dtype)

    # --------------------------------------------------------------- forward
    def phi(self, a: np.ndarray) -> np.ndarray:
        return np.maximum(a, 0) if self.activation == "relu" else np.tanh(a)

    def dphi(self, a: np.ndarray) -> np.ndarray:
        """``phi'(a)`` (ReLU: 1 where ``a > 0``, else 0)."""
        if self.activation == "relu":
            return (a > 0).astype(a.dtype)
        t = np.tanh(a)
        return 1 - t * t

    def d2phi(self, a: np.ndarray) -> np.ndarray:
        """``phi''(a)`` (ReLU: 0 almost everywhere)."""
        if self.activation == "relu":
            return np.zeros_like(a)
        t = np.tanh(a)
        return -2 * t * (1 - t * t)

    def forward(self, theta: np.ndarray, x: np.ndarray) -> Forward:
        """Forward pass on a batch ``x`` of shape ``(B, n_0)``."""
        if x.ndim != 2 or x.shape[1] != self.widths[0]:
            raise ValueError(f"x must have shape (B, {self.widths[0]}), got {x.shape}")
        pre, post, h = [], [x], x
        layers = self.layers(theta)
        for k, (W, b) in enumerate(layers, start=1):
            a = h @ W
            a += b
            pre.append(a)
            if k < len(layers):
                h = self.phi(a)
                post.append(h)
        return Forward(pre, post)

    def logits(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        return self.forward(theta, x).logits

    # ------------------------------------------------------------------ loss
    def output_delta(self, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Loss, ``dL/dlogits`` (shape (B, n_L)) and the softmax probabilities (``None`` for MSE)."""
        B = logits.shape[0]
        if self.loss == "xent":
            z = logits - logits.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            rows = np.arange(B)
            loss = -float(logp[rows, y].mean(dtype=np.float64))
            p = np.exp(logp)
            delta = p.copy()
            delta[rows, y] -= 1
            delta /= B
            return loss, delta, p
        diff = logits.copy()
        diff[np.arange(B), y] -= 1
        loss = 0.5 * float((diff.astype(np.float64) ** 2).sum()) / B
        return loss, diff / B, None

    def batch_loss(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
        """Mean loss on the batch ``(x, y)``; ``y`` holds integer labels, shape (B,)."""
        return self.output_delta(self.logits(theta, x), y)[0]

    def backward(self, theta: np.ndarray, fwd: Forward, delta: np.ndarray, out: np.ndarray | None = None
                 ) -> np.ndarray:
        """Gradient of the loss given ``delta = dL/dlogits``; written into ``out`` (shape (n_params,))."""
        grad = np.empty_like(theta) if out is None else out
        layers = self.layers(theta)
        glayers = self.layers(grad)
        for k in range(len(layers) - 1, -1, -1):
            W, _ = layers[k]
            gW, gb = glayers[k]
            np.matmul(fwd.post[k].T, delta, out=gW)
            delta.sum(axis=0, out=gb)
            if k > 0:
                delta = (delta @ W.T) * self.dphi(fwd.pre[k - 1])
        return grad

    def loss_and_grad(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray, out: np.ndarray | None = None
                      ) -> tuple[float, np.ndarray]:
        """Mean loss on ``(x, y)`` and its gradient with respect to ``theta``.

        Returns
        -------
        loss : float
        grad : ndarray, shape (n_params,), dtype of ``theta``
        """
        fwd = self.forward(theta, x)
        loss, delta, _ = self.output_delta(fwd.logits, y)
        return loss, self.backward(theta, fwd, delta, out)

    def accuracy(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray, batch: int = 10_000) -> float:
        """Fraction of ``x`` classified as ``y`` (arg-max of the logits; NaN logits count as wrong)."""
        correct = 0
        for i in range(0, len(x), batch):
            z = self.logits(theta, x[i:i + batch])
            ok = np.all(np.isfinite(z), axis=1)
            correct += int(np.sum((z.argmax(axis=1) == y[i:i + batch]) & ok))
        return correct / len(x)

    def to_dict(self) -> dict[str, Any]:
        return {"widths": list(self.widths), "activation": self.activation, "loss": self.loss}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MLP:
        return cls(tuple(d["widths"]), d["activation"], d["loss"])
