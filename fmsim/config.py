"""Configuration: architectures, initializations and a run's full specification.

All are frozen dataclasses, validated on construction; each error names the
offending parameter and the allowed range. ``to_dict``/``from_dict`` give the
JSON form stored in HDF5 attributes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .sampling.fixed_order import sum_of_squares
from .sampling.laws import (
    INPUT_LAYER,
    LAW_CODES,
    LAW_M4,
    MAX_FAN_IN,
    MAX_ORTHOGONAL_ENTRIES,
    TRUNCATED_NORMAL_VARIANCE,
    draw_standard_array,
)
from .sampling.rng import seed_to_key

__all__ = ["FullyConnected", "Residual", "Conv", "Architecture", "eta_schedule", "Init", "RunConfig", "SCHEMES",
           "SCHEME_BIAS_C", "LEGACY_SCHEME_NAMES", "MAX_TANGENTS", "CarriedVectorsError",
           "METHODS", "BACKENDS", "RECORDS", "PROFILES", "input_vector", "carried_vectors",
           "width_profile"]

METHODS = ("auto", "full", "exact", "exact_first")
BACKENDS = ("auto", "cpu", "cuda")
RECORDS = ("summary", "layers")
PRECISIONS = ("float64", "float32")
MAX_NETS = 2**32 - 1
#: Nets per summary block: summaries are merged block by block in net order.
SUMMARY_BLOCK = 1024
#: Most tangents one run carries (``RunConfig.tangents``).
MAX_TANGENTS = 32


def as_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return int(value)


def _nonnegative(name: str, value: Any) -> float | tuple[float, ...]:
    """One value >= 0, or a non-empty sequence of them (per layer)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        out = tuple(as_float(name, v) for v in value)
        if len(out) == 0 or min(out) < 0:
            raise ValueError(f"{name} must be >= 0 (every layer's value), got {value!r}")
        return out
    v = as_float(name, value)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


@dataclass(frozen=True)
class FullyConnected:
    """A fully connected ReLU net with widths ``n_0`` (the input) to ``n_d``, ReLU at every layer.

    Parameters
    ----------
    widths : sequence of int
        ``(n_0, n_1, ..., n_d)``: input width then the width of each layer;
        ``d >= 1``; each width in ``[1, 2**21]``.
    """

    widths: tuple[int, ...]

    def __post_init__(self) -> None:
        if isinstance(self.widths, (str, bytes)) or not hasattr(self.widths, "__len__"):
            raise TypeError(f"widths must be a sequence of ints, got {self.widths!r}")
        widths = tuple(as_int("widths", w) for w in self.widths)
        if len(widths) < 2:
            raise ValueError(f"widths must hold n_0 and at least one layer (length >= 2), got {widths}")
        for j, w in enumerate(widths):
            if not 1 <= w <= MAX_FAN_IN:
                raise ValueError(f"widths[{j}] must be in [1, {MAX_FAN_IN}], got {w}")
        object.__setattr__(self, "widths", widths)

    @classmethod
    def constant(cls, depth: int, width: int, n0: int | None = None) -> FullyConnected:
        """``depth`` layers of ``width`` units; input width ``n0`` (default ``width``)."""
        depth = as_int("depth", depth)
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        width = as_int("width", width)
        return cls((width if n0 is None else n0,) + (width,) * depth)

    @property
    def depth(self) -> int:
        """Number of layers ``d``."""
        return len(self.widths) - 1

    @property
    def input_size(self) -> int:
        """Length of the input vector ``x``."""
        return self.widths[0]

    @property
    def beta(self) -> float:
        """Sum of reciprocal layer widths, ``sum_{j=1..d} 1/n_j`` (FM2's constant)."""
        return float(sum(1.0 / n for n in self.widths[1:]))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "fully_connected", "widths": list(self.widths)}


ETA_SCHEDULES = ("constant", "1/l", "1/sqrt(L)")
MODULE_ENDINGS = ("linear", "relu")


def eta_schedule(kind: str, n_modules: int, eta: float = 1.0) -> tuple[float, ...]:
    """Residual scales ``eta_1..eta_L``: ``constant`` (eta), ``1/l`` (eta/l) or ``1/sqrt(L)`` (eta/sqrt(L))."""
    n_modules = as_int("n_modules", n_modules)
    if n_modules < 1:
        raise ValueError(f"n_modules must be >= 1, got {n_modules}")
    eta = as_float("eta", eta)
    if kind == "constant":
        return (eta,) * n_modules
    if kind == "1/l":
        return tuple(eta / l for l in range(1, n_modules + 1))  # noqa: E741
    if kind == "1/sqrt(L)":
        return (eta / math.sqrt(n_modules),) * n_modules
    raise ValueError(f"schedule must be one of {ETA_SCHEDULES} (or pass a list of etas), got {kind!r}")


@dataclass(frozen=True)
class Residual:
    """A residual net ``y_l = y_{l-1} + eta_l F_l(y_{l-1})`` on a stream of width ``n``.

    Each module ``F_l`` has hidden ReLU layers of widths ``module_widths``
    (weights of variance ``c / fan_in`` from the run's :class:`fmsim.Init`), then an
    output layer ``n x k_m`` of variance ``c_out / k_m``; the module ends
    ``linear`` (``F = W_out h``) or ``relu`` (``F = ReLU(W_out h)``). With no
    hidden layers, ``F = W_out y``. ``M_l = ||y_l||^2 / n`` is recorded after
    every module (Hanin & Rolnick 2018, Sec. 2.2; the paper does not give its modules' design,
    so this one is fmsim's).
    With ``bias_var > 0`` every layer of a module gets a bias of that
    variance, its output layer included.

    Parameters
    ----------
    width : int
        Stream width ``n``, in ``[1, 2**21)``.
    etas : sequence of float
        ``eta_1..eta_L`` (``L >= 1``), each >= 0; see :func:`eta_schedule`.
    module_widths : sequence of int, optional
        Hidden widths ``k_1..k_m`` of every module; ``()`` for none
        (``F = W_out y``); default one hidden layer of width ``n``.
    ending : {"linear", "relu"}
    c_out : float
        Variance numerator of each module's output layer, > 0 (default 2).
    """

    width: int
    etas: tuple[float, ...]
    module_widths: tuple[int, ...] | None = None
    ending: str = "linear"
    c_out: float = 2.0

    def __post_init__(self) -> None:
        n = as_int("width", self.width)
        if not 1 <= n <= MAX_FAN_IN:
            raise ValueError(f"width must be in [1, {MAX_FAN_IN}], got {n}")
        if isinstance(self.etas, (str, bytes)) or not hasattr(self.etas, "__len__") or len(self.etas) == 0:
            raise ValueError(f"etas must be a non-empty sequence of floats, got {self.etas!r}")
        etas = tuple(as_float("etas", e) for e in self.etas)
        if min(etas) < 0:
            raise ValueError(f"etas must be >= 0, got {etas}")
        mw = (n,) if self.module_widths is None else tuple(as_int("module_widths", k) for k in self.module_widths)
        for i, k in enumerate(mw):
            if not 1 <= k <= MAX_FAN_IN:
                raise ValueError(f"module_widths[{i}] must be in [1, {MAX_FAN_IN}], got {k}")
        if self.ending not in MODULE_ENDINGS:
            raise ValueError(f"ending must be one of {MODULE_ENDINGS}, got {self.ending!r}")
        c_out = as_float("c_out", self.c_out)
        if c_out <= 0:
            raise ValueError(f"c_out must be > 0, got {c_out}")
        object.__setattr__(self, "width", n)
        object.__setattr__(self, "etas", etas)
        object.__setattr__(self, "module_widths", mw)
        object.__setattr__(self, "c_out", c_out)

    @classmethod
    def scheduled(cls, width: int, n_modules: int, schedule: str = "constant", eta: float = 1.0,
                  **kw: Any) -> Residual:
        """``n_modules`` modules with scales from :func:`eta_schedule`."""
        return cls(width, eta_schedule(schedule, n_modules, eta), **kw)

    @property
    def depth(self) -> int:
        """Number of modules ``L`` (``M_0..M_L`` are recorded)."""
        return len(self.etas)

    @property
    def input_size(self) -> int:
        return self.width

    @property
    def layers_per_module(self) -> int:
        return len(self.module_widths) + 1

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "residual", "width": self.width, "etas": list(self.etas),
                "module_widths": list(self.module_widths), "ending": self.ending, "c_out": self.c_out}


@dataclass(frozen=True)
class Conv:
    """A convolutional ReLU net: 1D or 2D, periodic padding, stride 1, no pooling.

    Layer ``j`` maps ``C_{j-1}`` channels to ``C_j`` with kernels of ``kernel``
    taps per spatial dimension (centered: offsets ``t - kernel // 2``);
    ``fan_in = kernel**dim * C_{j-1}``. The input ``x`` is ``(C_0, *spatial)``
    flattened (C order), and ``M_j = ||z_j||^2 / (C_j P)`` with ``P`` positions.
    With ``bias_var > 0`` a layer has one bias per output channel, shared by
    all positions (as in ``nn.Conv2d``).

    Parameters
    ----------
    channels : sequence of int
        ``(C_0, C_1, ..., C_d)``, ``d >= 1``, each >= 1.
    spatial : sequence of int
        ``(P,)`` for 1D or ``(H, W)`` for 2D, each >= 1.
    kernel : int
        Taps per dimension, ``1 <= kernel <= min(spatial)``.
    """

    channels: tuple[int, ...]
    spatial: tuple[int, ...]
    kernel: int = 3

    def __post_init__(self) -> None:
        ch = FullyConnected(self.channels).widths  # same rules as widths
        if isinstance(self.spatial, (int, np.integer)):
            object.__setattr__(self, "spatial", (int(self.spatial),))
        sp = tuple(as_int("spatial", v) for v in self.spatial)
        if len(sp) not in (1, 2) or min(sp) < 1:
            raise ValueError(f"spatial must be (P,) or (H, W) with sizes >= 1, got {self.spatial!r}")
        k = as_int("kernel", self.kernel)
        if not 1 <= k <= min(sp):
            raise ValueError(f"kernel must be in [1, {min(sp)}] (the smallest spatial size), got {k}")
        if k ** len(sp) * max(ch[:-1]) > MAX_FAN_IN:
            raise ValueError(f"fan-in kernel**dim * C must be <= {MAX_FAN_IN}")
        object.__setattr__(self, "channels", ch)
        object.__setattr__(self, "spatial", sp)
        object.__setattr__(self, "kernel", k)

    @property
    def depth(self) -> int:
        return len(self.channels) - 1

    @property
    def positions(self) -> int:
        return int(np.prod(self.spatial))

    @property
    def taps(self) -> int:
        return self.kernel ** len(self.spatial)

    @property
    def input_size(self) -> int:
        return self.channels[0] * self.positions

    def fan_in(self, j: int) -> int:
        """``kernel**dim * C_{j-1}`` of layer ``j = 1..d``."""
        return self.taps * self.channels[j - 1]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "conv", "channels": list(self.channels), "spatial": list(self.spatial),
                "kernel": self.kernel}


Architecture = FullyConnected | Residual | Conv


def arch_from_dict(d: dict[str, Any]) -> Architecture:
    """Inverse of ``arch.to_dict()``."""
    kind = d.get("kind")
    if kind == "fully_connected":
        return FullyConnected(tuple(d["widths"]))
    if kind == "residual":
        return Residual(d["width"], tuple(d["etas"]), tuple(d["module_widths"]), d["ending"], d["c_out"])
    if kind == "conv":
        return Conv(tuple(d["channels"]), tuple(d["spatial"]), d["kernel"])
    raise ValueError(f"unknown architecture kind {kind!r}")


#: Width-profile shapes: relative width of hidden layer j = 0..d-1 (d layers).
PROFILES = ("constant", "increasing", "decreasing", "alternating", "bottleneck")


def _profile_shape(shape: str, depth: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, depth) if depth > 1 else np.zeros(1)
    if shape == "constant":
        return np.ones(depth)
    if shape == "increasing":
        return 1.0 + 3.0 * t
    if shape == "decreasing":
        return 4.0 - 3.0 * t
    if shape == "alternating":
        return np.where(np.arange(depth) % 2 == 0, 1.0, 4.0)
    if shape == "bottleneck":
        return 1.0 + 3.0 * np.abs(2.0 * t - 1.0)
    raise ValueError(f"shape must be one of {PROFILES}, got {shape!r}")


def width_profile(shape: str, depth: int, beta: float) -> tuple[int, ...]:
    """Integer hidden widths ``n_1..n_d`` of a given shape with ``sum_j 1/n_j`` as close to ``beta`` as rounding allows.

    Used to compare nets with the same FM2 constant ``beta`` but different
    width profiles (Hanin & Rolnick 2018, Sec. 3.3). Shapes (widths relative
    to the narrowest layer): ``constant``; ``increasing`` 1 -> 4 linearly;
    ``decreasing`` 4 -> 1; ``alternating`` 1, 4, 1, 4, ...; ``bottleneck`` 4 -> 1 -> 4.

    Parameters
    ----------
    shape : str
        One of ``PROFILES``.
    depth : int
        Number of hidden layers, >= 1.
    beta : float
        Target ``sum_j 1/n_j``, in ``(0, depth]`` (widths are >= 1).

    Returns
    -------
    tuple of int, length ``depth``
    """
    depth = as_int("depth", depth)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    rel = _profile_shape(shape, depth)
    beta = as_float("beta", beta)
    if not 0 < beta <= depth:
        raise ValueError(f"beta must be in (0, depth={depth}], got {beta}")
    k0 = float(np.sum(1.0 / rel)) / beta
    best: tuple[float, tuple[int, ...]] | None = None
    for k in k0 * np.linspace(0.8, 1.25, 2001):
        w = np.maximum(1, np.rint(k * rel)).astype(int)
        err = abs(float(np.sum(1.0 / w)) - beta)
        if best is None or err < best[0] - 1e-15:
            best = (err, tuple(int(v) for v in w))
    assert best is not None
    return best[1]


# name -> (law, c, fan)
SCHEMES: dict[str, tuple[str, float, str]] = {
    "he": ("gaussian", 2.0, "in"),
    "he_uniform": ("uniform", 2.0, "in"),
    "he_truncated_keras2018": ("truncated_normal", 2.0 * TRUNCATED_NORMAL_VARIANCE, "in"),
    "lecun": ("gaussian", 1.0, "in"),
    "lecun_uniform": ("uniform", 1.0, "in"),
    "glorot": ("gaussian", 1.0, "avg"),
    "glorot_uniform": ("uniform", 1.0, "avg"),
    "2x_he": ("gaussian", 4.0, "in"),
    "rademacher_he": ("rademacher", 2.0, "in"),
    # what each framework builds by default (biases in SCHEME_BIAS_C)
    "pytorch_default": ("uniform", 1.0 / 3.0, "in"),
    "pytorch_default_weights": ("uniform", 1.0 / 3.0, "in"),
    "keras_default": ("uniform", 1.0, "avg"),
    "flax_default": ("truncated_normal", 1.0, "in"),
    "orthogonal": ("orthogonal", 2.0, "in"),
    "orthogonal_unit": ("orthogonal", 1.0, "in"),
}

SCHEME_NOTES: dict[str, str] = {
    "he": "He et al. 2015, normal",
    "he_uniform": "He et al. 2015, uniform",
    "he_truncated_keras2018": "Keras/TF he_normal before April 2018: normal cut at 2 s.d., not rescaled",
    "lecun": "LeCun 1998, normal",
    "lecun_uniform": "LeCun 1998, uniform",
    "glorot": "Glorot & Bengio 2010, normal, Var = 2/(fan_in + fan_out)",
    "glorot_uniform": "Glorot & Bengio 2010, uniform",
    "2x_he": "twice He (explodes: Hanin & Rolnick Fig. 1a)",
    "rademacher_he": "+-sqrt(2/fan_in) signs",
    "pytorch_default": "PyTorch 2.13 nn.Linear and nn.Conv2d as constructed (reset_parameters): weights "
                       "kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)) and biases U(+-1/sqrt(fan_in)), "
                       "Var(W) = Var(b) = 1/(3 fan_in) (before fmsim 0.12: the weights alone)",
    "pytorch_default_weights": "PyTorch 2.13 nn.Linear's weights alone, kaiming_uniform_(a=sqrt(5)) = "
                               "U(+-1/sqrt(fan_in)), no bias (fmsim's pytorch_default before 0.12)",
    "keras_default": "Keras 3 Dense as constructed: kernel_initializer='glorot_uniform' = "
                     "U(+-sqrt(6/(fan_in + fan_out))), bias_initializer='zeros'",
    "flax_default": "Flax linen nn.Dense as constructed (flax 0.10): kernel_init=lecun_normal() = "
                    "variance_scaling(1, 'fan_in', 'truncated_normal'), bias_init=zeros",
    "orthogonal": "Haar orthogonal times gain sqrt(2) (nn.init.orthogonal_, ReLU gain; Saxe et al. 2014)",
    "orthogonal_unit": "Haar orthogonal, gain 1 (nn.init.orthogonal_'s default)",
}

#: Scheme names whose meaning changed, and the name of their old meaning: a stored configuration of the name
#: without ``bias_c`` (fmsim < 0.12) reads as the old meaning. ``pytorch_default`` drew the weights only before 0.12.
LEGACY_SCHEME_NAMES: dict[str, str] = {"pytorch_default": "pytorch_default_weights"}
#: Schemes that define their biases: name -> ``bias_c`` (``Var(b_j) = bias_c / fan_in_j``, the weights' law).
SCHEME_BIAS_C: dict[str, float] = {"pytorch_default": 1.0 / 3.0}

#: Laws of whole weight matrices rather than of i.i.d. entries.
MATRIX_LAWS = ("orthogonal",)
#: Every weight law an :class:`fmsim.Init` accepts.
WEIGHT_LAWS = tuple(sorted(LAW_CODES)) + MATRIX_LAWS


@dataclass(frozen=True)
class Init:
    """Weight initialization: i.i.d. symmetric weights of variance ``c / fan``, or orthogonal matrices.

    Parameters
    ----------
    law : {"gaussian", "uniform", "rademacher", "laplace", "truncated_normal", "orthogonal"}
        Shape of the weight law (each standardized to unit variance;
        ``truncated_normal`` is N(0, 1) cut at +-2 s.d. and rescaled).
        ``orthogonal``: each layer's weight matrix (``out x in``; conv
        kernels flattened to ``out x (in k^dim)``) is Haar-random with
        orthonormal rows (``out < in``) or columns (``out >= in``), times
        ``gain = sqrt(c)``: PyTorch's ``nn.init.orthogonal_(w, gain)``.
        It takes no bias (``bias_var = 0``) and ``fan = "in"``.
    c : float or sequence of float
        Variance numerator, > 0; one value, or one per layer (orthogonal:
        the squared gain).
    bias_var : float or sequence of float
        Variance of the biases (same law as the weights), >= 0: one value for every layer, or one per layer.
    fan : {"in", "avg"}
        ``fan_in`` (He, LeCun) or ``(fan_in + fan_out) / 2`` (Glorot).
    name : str, optional
        Label for plots and files.
    bias_c : float or sequence of float
        Variance of the biases relative to each layer's fan-in, >= 0: ``Var(b_j) = bias_c_j / fan_in_j``
        (PyTorch's ``nn.Linear`` and ``nn.Conv2d`` draw ``U(+-1/sqrt(fan_in))``: ``bias_c = 1/3``). One value,
        or one per layer; give ``bias_var`` or ``bias_c``, not both. A conv layer's fan-in is ``C_in k^dim``;
        a residual module's layers have fan-ins ``n, k_1, ..., k_m``.
    """

    law: str = "gaussian"
    c: float | tuple[float, ...] = 2.0
    bias_var: float | tuple[float, ...] = 0.0
    fan: str = "in"
    name: str | None = field(default=None, compare=True)
    bias_c: float | tuple[float, ...] = 0.0

    def __post_init__(self) -> None:
        if self.law not in WEIGHT_LAWS:
            raise ValueError(f"law must be one of {list(WEIGHT_LAWS)}, got {self.law!r}")
        if isinstance(self.c, (list, tuple, np.ndarray)):
            c: float | tuple[float, ...] = tuple(as_float("c", v) for v in self.c)
            if len(c) == 0 or min(c) <= 0:
                raise ValueError(f"c must be > 0 (every layer's value), got {self.c!r}")
        else:
            c = as_float("c", self.c)
            if c <= 0:
                raise ValueError(f"c must be > 0, got {c}")
        object.__setattr__(self, "c", c)
        for name in ("bias_var", "bias_c"):
            object.__setattr__(self, name, _nonnegative(name, getattr(self, name)))
        if self.has_bias and np.any(self.bias_var) and np.any(self.bias_c):
            raise ValueError(f"give bias_var (absolute) or bias_c (relative to fan-in), not both: got bias_var "
                             f"{self.bias_var!r}, bias_c {self.bias_c!r}")
        if self.fan not in ("in", "avg"):
            raise ValueError(f"fan must be 'in' or 'avg', got {self.fan!r}")
        if self.law == "orthogonal":
            if self.has_bias:
                raise ValueError(f"bias_var and bias_c must be 0 for law='orthogonal' (an orthogonal matrix has no "
                                 f"entry law to draw biases from; nn.init.orthogonal_ leaves them to the user), got "
                                 f"bias_var {self.bias_var!r}, bias_c {self.bias_c!r}")
            if self.fan != "in":
                raise ValueError(f"fan must be 'in' for law='orthogonal' (its scale is the gain sqrt(c), not a "
                                 f"fan), got {self.fan!r}")

    @classmethod
    def scheme(cls, name: str, bias_var: float = 0.0) -> Init:
        """A named scheme: one of ``SCHEMES`` (``he``, ``lecun``, ``glorot``, ...), with the biases it defines
        (``SCHEME_BIAS_C``: ``pytorch_default``'s), or of variance ``bias_var`` where it defines none."""
        if name not in SCHEMES:
            raise ValueError(f"scheme must be one of {sorted(SCHEMES)}, got {name!r}")
        law, c, fan = SCHEMES[name]
        if name in SCHEME_BIAS_C and bias_var:
            raise ValueError(f"scheme {name!r} defines its biases (Var(b) = {SCHEME_BIAS_C[name]:.4g} / fan_in); "
                             f"bias_var {bias_var} cannot be added to them")
        return cls(law=law, c=c, bias_var=bias_var, fan=fan, name=name, bias_c=SCHEME_BIAS_C.get(name, 0.0))

    @property
    def has_bias(self) -> bool:
        """Whether any layer has biases."""
        return bool(np.any(self.bias_var) or np.any(self.bias_c))

    def layer_bias_var(self, arch: FullyConnected | Residual | Conv) -> np.ndarray:
        """The variance of each layer's biases: ``bias_var_j``, or ``bias_c_j / fan_in_j``.

        Returns
        -------
        ndarray, shape (d,) (FC, conv) or (m + 1,) (residual: a module's hidden layers, then its output layer),
        float64
        """
        if isinstance(arch, Residual):
            fans = np.array((arch.width,) + arch.module_widths, dtype=float)  # fan-in of hidden layers, then output
            count, what = len(fans), "layers of a residual module (hidden layers, then the output layer)"
        else:
            fans = np.array([arch.fan_in(j) for j in range(1, arch.depth + 1)] if isinstance(arch, Conv) else
                            arch.widths[:-1], dtype=float)
            count, what = arch.depth, f"layers (the net has depth {arch.depth})"
        out = np.zeros(count)
        for value, relative in ((self.bias_var, False), (self.bias_c, True)):
            v = np.asarray(value, dtype=float)
            if v.ndim and v.size != count:
                raise ValueError(f"{'bias_c' if relative else 'bias_var'} has {v.size} values, but there are {count} "
                                 f"{what}")
            out += v / fans if relative else v
        return out

    @property
    def orthogonal(self) -> bool:
        """Whether the weight matrices are orthogonal (``MATRIX_LAWS``) rather than i.i.d."""
        return self.law in MATRIX_LAWS

    @property
    def m4(self) -> float:
        """Standardized fourth moment of the (i.i.d.) weight law."""
        if self.orthogonal:
            raise ValueError("law='orthogonal' has no entry law, so no fourth moment; its closed forms are "
                             "fmsim.theory.orthogonal_moments and length_law(..., weights='orthogonal')")
        return float(LAW_M4[self.law])

    @property
    def label(self) -> str:
        return self.name or f"{self.law}, c={self.c}"

    def layer_c(self, arch: FullyConnected | Residual | Conv) -> np.ndarray:
        """Effective ``c_j = fan_in_j Var(W_j)`` for each layer.

        For a :class:`Residual` net, ``c`` applies to the modules' hidden layers
        (one value; their output layers use ``arch.c_out``) and the result has
        one entry per hidden layer of a module. Residual and conv nets need
        ``fan="in"``.

        Returns
        -------
        ndarray, shape (d,) (FC, conv) or (m,) (residual), float64
        """
        if not isinstance(arch, FullyConnected):
            if self.fan != "in":
                raise ValueError(f"fan must be 'in' for {type(arch).__name__} nets, got {self.fan!r}")
            if isinstance(arch, Residual):
                if isinstance(self.c, tuple):
                    raise ValueError("c must be one value for residual nets (it applies to every module)")
                return np.full(len(arch.module_widths), float(self.c))
        d = arch.depth
        if isinstance(self.c, tuple):
            if len(self.c) != d:
                raise ValueError(f"c has {len(self.c)} values but the net has depth {d}")
            c = np.array(self.c, dtype=float)
        else:
            c = np.full(d, float(self.c))
        if self.fan == "avg":
            w = np.asarray(arch.widths, dtype=float)
            c = c * w[:-1] / ((w[:-1] + w[1:]) / 2.0)
        return c

    def to_dict(self) -> dict[str, Any]:
        c = list(self.c) if isinstance(self.c, tuple) else self.c
        bias_var = list(self.bias_var) if isinstance(self.bias_var, tuple) else self.bias_var
        out = {"law": self.law, "c": c, "bias_var": bias_var, "fan": self.fan, "name": self.name}
        if np.any(self.bias_c):  # (absent where zero: the configurations of files of fmsim < 0.12 are unchanged)
            out["bias_c"] = list(self.bias_c) if isinstance(self.bias_c, tuple) else self.bias_c
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Init:
        def values(v):
            return tuple(v) if isinstance(v, list) else v

        name = d.get("name")
        if name in LEGACY_SCHEME_NAMES and "bias_c" not in d:  # written before the name's meaning changed
            name = LEGACY_SCHEME_NAMES[name]
        return cls(law=d["law"], c=values(d["c"]), bias_var=values(d["bias_var"]), fan=d["fan"], name=name,
                   bias_c=values(d.get("bias_c", 0.0)))


class CarriedVectorsError(ValueError):
    """``RunConfig.inputs`` or ``tangents`` that this net, law or method cannot carry (the command line names the
    flag that asked for them)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a simulation's output, resolved and validated.

    A chunk ``k`` of the run is a pure function of ``(RunConfig, k)``.

    Parameters
    ----------
    arch : FullyConnected, Residual or Conv
    init : Init
    n_nets : int
        Number of random nets, ``1 <= n_nets <= 2**32 - 1``.
    seed : int
        ``0 <= seed < 2**64``.
    method : {"full", "exact", "exact_first"}
        ``"auto"`` is resolved by ``resolve_method`` before construction.
        ``"exact_first"`` (fully connected nets, continuous laws): the first layer's
        pre-activations drawn from their exact law given the input
        (``fmsim.first_layer``), the other layers as in ``"full"``.
    record : {"summary", "layers"}
        ``"layers"`` also keeps every net's trace ``M_0..M_d``.
    x : tuple of float or None
        Input vector (length ``n_0``); ``None`` = a random direction with
        ``M_0 = 1`` drawn from the seed, the same for every net.
    chunk_size : int
        Nets per chunk, a positive multiple of 1024.
    precision : {"float64", "float32"}
        Arithmetic of the ``full`` method's activations, weights and sums (every
        architecture); ``M_j`` is always summed and stored in float64.
        float32 draws each weight from 32 random bits (stream layout,
        ``fmsim.laws``), so its nets are other samples than float64's; on
        the same weights, float32 arithmetic agrees with float64 to a relative
        1e-4 on fully connected nets up to depth = width = 100 and on residual
        and conv nets (see tests/test_kernels.py, tests/test_float32_nets.py).
    inputs : tuple of tuple of float, or None
        ``k >= 2`` inputs (each of length ``n_0``) carried through the same nets, in place of ``x``: their Gram
        matrices (the Gram chain). Fully connected nets: ``method="full"`` with any i.i.d. law and biases
        (``fmsim.kernels.carry``), ``method="exact"`` with Gaussian or orthogonal weights and no bias
        (``fmsim.kernels.gram``).
    tangents : tuple of tuple of float, or None
        ``1 <= m <= 32`` directions ``u`` whose images ``J u`` under the Jacobian at ``x`` are carried beside
        ``x``; the same nets and method as ``inputs``.
    """

    arch: Architecture
    init: Init
    n_nets: int
    seed: int
    method: str = "full"
    record: str = "summary"
    x: tuple[float, ...] | None = None
    chunk_size: int = 16 * SUMMARY_BLOCK
    precision: str = "float64"
    inputs: tuple[tuple[float, ...], ...] | None = None
    tangents: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.arch, (FullyConnected, Residual, Conv)):
            raise TypeError(f"arch must be a FullyConnected, Residual or Conv, got {type(self.arch).__name__}")
        if not isinstance(self.init, Init):
            raise TypeError(f"init must be an Init, got {type(self.init).__name__}")
        n = as_int("n_nets", self.n_nets)
        if not 1 <= n <= MAX_NETS:
            raise ValueError(f"n_nets must be in [1, {MAX_NETS}], got {n}")
        seed = as_int("seed", self.seed)
        if not 0 <= seed < 2**64:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        if self.method not in METHODS[1:]:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.record not in RECORDS:
            raise ValueError(f"record must be one of {RECORDS}, got {self.record!r}")
        cs = as_int("chunk_size", self.chunk_size)
        if cs < SUMMARY_BLOCK or cs % SUMMARY_BLOCK:
            raise ValueError(f"chunk_size must be a positive multiple of {SUMMARY_BLOCK}, got {cs}")
        self.init.layer_c(self.arch)  # validates per-layer c against depth
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        self._check_carried()  # before the methods' checks: a net the Gram chain cannot carry is named as such
        if self.precision == "float32" and self.method == "exact":
            raise ValueError("precision='float32' exists for method='full' (and 'exact_first'), not method='exact'")
        if self.method == "exact_first" and not isinstance(self.arch, FullyConnected):
            raise ValueError(f"method='exact_first' exists for fully connected nets, not {type(self.arch).__name__} "
                             "nets; use method='full'")
        if self.init.orthogonal:
            if self.precision != "float64":
                raise ValueError("law='orthogonal' runs in precision='float64' only")
            if self.method == "exact_first":
                raise ValueError("method='exact_first' needs i.i.d. weights, not law='orthogonal'; use method="
                                 "'exact' (fully connected and residual nets) or 'full'")
            if self.method == "full":
                big = _largest_weight_matrix(self.arch)
                if big > MAX_ORTHOGONAL_ENTRIES:
                    raise ValueError(f"method='full' with law='orthogonal' draws each weight matrix whole (O(n^3) "
                                     f"QR per layer); the largest here has {big} entries, more than "
                                     f"{MAX_ORTHOGONAL_ENTRIES}: use method='exact' or smaller layers")
        if self.method == "exact":
            if self.init.law not in ("gaussian", "orthogonal"):
                raise ValueError(f"method='exact' needs law='gaussian' or 'orthogonal' (got law={self.init.law!r}); "
                                 "use method='full'")
            if isinstance(self.arch, Conv):
                raise ValueError("method='exact' exists for fully connected and residual nets, not conv nets; "
                                 "use method='full'")
        if self.x is not None:
            x = np.asarray(self.x, dtype=float)
            if x.shape != (self.arch.input_size,):
                raise ValueError(f"x must have shape ({self.arch.input_size},) (the input size), got {x.shape}")
            if not np.all(np.isfinite(x)):
                raise ValueError("x must be finite")
            object.__setattr__(self, "x", tuple(float(v) for v in x))
        object.__setattr__(self, "n_nets", n)
        object.__setattr__(self, "seed", seed)
        object.__setattr__(self, "chunk_size", cs)
        if self.method == "exact_first":  # tabulate the first layer's law now: refused before any work starts
            from .sampling.first_layer import first_layer_law

            first_layer_law(self.init.law, input_vector(self))

    def _check_carried(self) -> None:
        """Validate ``inputs`` and ``tangents`` (the vectors carried beside, or instead of, ``x``): a
        :class:`CarriedVectorsError` says what the Gram chain cannot carry."""
        if not self.carries_vectors:
            return
        which = "inputs" if self.inputs is not None else "tangents"
        refuse = CarriedVectorsError
        if self.inputs is not None and self.tangents is not None:
            raise refuse("give inputs= (several inputs) or tangents= (directions at x), not both")
        if self.inputs is not None and self.x is not None:
            raise refuse("give x= or inputs=, not both: inputs= replaces the one input x")
        if not isinstance(self.arch, (FullyConnected, Residual)):
            raise refuse(f"{which}= runs on fully connected and residual nets for now, not "
                         f"{type(self.arch).__name__} nets")
        if isinstance(self.arch, Residual) and (self.method != "exact" or self.init.law != "gaussian"
                                                or self.init.has_bias):
            raise refuse(f"{which}= on residual nets runs with method='exact' (the exact Gram chain), Gaussian "
                         f"weights and no bias for now; got method={self.method!r}, law={self.init.law!r}"
                         f"{', with biases' if self.init.has_bias else ''}")
        if self.method not in ("exact", "full"):
            raise refuse(f"{which}= runs with method='full' or 'exact' for now; got method={self.method!r}")
        if self.init.orthogonal and self.method != "exact":
            raise refuse(f"{which}= with law='orthogonal' runs with method='exact' (the exact Gram chain); "
                         "method='full' carries one vector through orthogonal weights")
        if self.method == "exact" and (self.init.law not in ("gaussian", "orthogonal") or self.init.has_bias):
            raise refuse(f"{which}= with method='exact' (the exact Gram chain) needs law='gaussian' or "
                         f"'orthogonal' and no bias; got law={self.init.law!r}"
                         f"{', with biases' if self.init.has_bias else ''}: use method='full'")
        vectors = np.asarray(getattr(self, which), dtype=float)
        low, high = (2, None) if which == "inputs" else (1, MAX_TANGENTS)
        n0 = self.arch.input_size
        if (vectors.ndim != 2 or vectors.shape[1] != n0 or vectors.shape[0] < low
                or (high is not None and vectors.shape[0] > high)):
            allowed = f"k >= {low}" if high is None else f"{low} <= m <= {high}"
            raise refuse(f"{which} must have shape ({'k' if high is None else 'm'}, {n0}) with {allowed}, got "
                         f"shape {vectors.shape}")
        if not np.all(np.isfinite(vectors)):
            raise refuse(f"{which} must be finite")
        if which == "tangents" and self.x is not None and not np.any(self.x):
            raise refuse("x must be nonzero to carry tangents (the Jacobian at x = 0 is not defined)")
        room = vectors.shape[0] + (1 if which == "tangents" else 0)
        narrowest = min(self.arch.widths) if self.init.orthogonal else room  # (orthogonal: fully connected nets)
        if room > narrowest:
            raise refuse(f"{which}: orthogonal weights carry at most {narrowest - (which == 'tangents')} "
                         f"{which} exactly here (the narrowest width is {narrowest}), got {vectors.shape[0]}")
        object.__setattr__(self, which, tuple(tuple(float(v) for v in row) for row in vectors))

    @property
    def carries_vectors(self) -> bool:
        """Whether the run carries several vectors (``inputs`` or ``tangents``) through its nets."""
        return self.inputs is not None or self.tangents is not None

    @property
    def n_chunks(self) -> int:
        return -(-self.n_nets // self.chunk_size)

    def chunk_bounds(self, k: int) -> tuple[int, int]:
        """First net index and number of nets of chunk ``k``, ``0 <= k < n_chunks``."""
        if not 0 <= k < self.n_chunks:
            raise ValueError(f"chunk index must be in [0, {self.n_chunks}), got {k}")
        start = k * self.chunk_size
        return start, min(self.chunk_size, self.n_nets - start)

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch.to_dict(), "init": self.init.to_dict(), "n_nets": self.n_nets,
            "seed": self.seed, "method": self.method, "record": self.record,
            "x": None if self.x is None else list(self.x), "chunk_size": self.chunk_size,
        } | ({} if self.precision == "float64" else {"precision": self.precision}) | {  # older runs unchanged
            name: [list(row) for row in getattr(self, name)] for name in ("inputs", "tangents")
            if getattr(self, name) is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return cls(
            arch=arch_from_dict(d["arch"]), init=Init.from_dict(d["init"]),
            n_nets=d["n_nets"], seed=d["seed"], method=d["method"], record=d["record"],
            x=None if d["x"] is None else tuple(d["x"]), chunk_size=d["chunk_size"],
            precision=d.get("precision", "float64"),
            inputs=None if d.get("inputs") is None else tuple(tuple(r) for r in d["inputs"]),
            tangents=None if d.get("tangents") is None else tuple(tuple(r) for r in d["tangents"]),
        )


def _largest_weight_matrix(arch: Architecture) -> int:
    """Entries of the largest weight matrix of ``arch`` (conv kernels flattened to ``out x (in k^dim)``)."""
    if isinstance(arch, FullyConnected):
        w = arch.widths
        return max(w[j] * w[j - 1] for j in range(1, len(w)))
    if isinstance(arch, Residual):
        fans = (arch.width,) + arch.module_widths
        outs = arch.module_widths + (arch.width,)
        return max(a * b for a, b in zip(fans, outs))
    return max(arch.channels[j] * arch.fan_in(j) for j in range(1, arch.depth + 1))


def resolve_method(method: str, init: Init, arch: Architecture | None = None) -> str:
    """Turn ``"auto"`` into ``"exact"`` where it is valid (Gaussian weights and biases, or orthogonal weights;
    fully connected or residual nets, either module ending), else ``"full"``.

    ``"exact_first"`` is never chosen here: its nets are other samples than ``"full"``'s (of the same
    law), so it is asked for by name, and files written under ``"auto"`` stay resumable."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method != "auto":
        return method
    if isinstance(arch, Conv):
        return "full"
    return "exact" if init.law in ("gaussian", "orthogonal") else "full"


def carried_vectors(config: RunConfig) -> np.ndarray:
    """The vectors a run with ``inputs`` or ``tangents`` carries, shape (k, n_0): its inputs, or its input
    (:func:`input_vector`) followed by its tangents."""
    if config.tangents is not None:
        return np.vstack([input_vector(config), np.asarray(config.tangents, dtype=float)])
    return np.asarray(config.inputs, dtype=float)


def input_vector(config: RunConfig) -> np.ndarray:
    """The input ``x`` of every net: the user's, or a seeded random direction with ``M_0 = 1``.

    Parameters
    ----------
    config : RunConfig
        The run; its ``x``, ``seed`` and ``arch.input_size`` are read.

    Returns
    -------
    ndarray, shape (n_0,), float64
    """
    if config.x is not None:
        return np.asarray(config.x, dtype=float)
    n0 = config.arch.input_size
    g = draw_standard_array("gaussian", n0, seed_to_key(config.seed), 0, INPUT_LAYER, 0)
    norm = np.sqrt(sum_of_squares(g))  # not g @ g: BLAS rounds it by CPU (fmsim.sampling.fixed_order)
    if norm == 0.0:  # cannot happen for n0 >= 1 except with probability 0
        g[0], norm = 1.0, 1.0
    return g * (np.sqrt(n0) / norm)
