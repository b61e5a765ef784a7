"""One road from a chunk's configuration to its kernel.

:func:`plan` turns a run's :class:`~fmsim.RunConfig` and the first net of a chunk into a
:class:`KernelCall`: a frozen record whose fields are the kernel's inputs, by name (the Philox key,
the input scaled into range, per-layer scales, law code, ...). Which record a run gets is decided
once, by :data:`ROADS`: a table keyed by ``(architecture, weights, method)``.

:data:`KERNELS` says, for each kind of record, how each backend runs it: the CPU kernel and its CUDA
twin with its launch grid and scratch. The drivers (:mod:`fmsim.running.simulate`,
:mod:`fmsim.running.cuda_backend`) never name a kernel, and the kernels never see a ``RunConfig``.

Where a new piece goes:

- an architecture: its class in :mod:`fmsim.config`, its records and planners here (with rows of
  :data:`ROADS` and :data:`KERNELS`), its kernels in :mod:`fmsim.kernels.cpu` and
  :mod:`fmsim.kernels.cuda`;
- a per-net statistic: :mod:`fmsim.running.statistics` and :func:`fmsim.kernels.epilogue.net_statistics`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from ..config import Conv, FullyConnected, Residual, RunConfig, input_vector
from ..kernels import cpu, cpu_orthogonal
from ..kernels.scalar import RENORM_HIGH, RENORM_LOW, mean_square
from ..sampling.laws import LAW_CODES
from ..sampling.rng import seed_to_key

__all__ = ["KernelCall", "plan", "road", "cuda_refusal", "scaled_input", "conv_grid", "threads_for", "ROADS",
           "KERNELS"]


# --------------------------------------------------------------------- inputs
def scaled_input(x: np.ndarray) -> tuple[np.ndarray, int]:
    """``x = x_s 2^shift``, with ``x_s`` the input the kernels run and ``shift`` the exponent they carry.

    ``shift = 0`` (and ``x_s`` is ``x``) unless ``M_0 = ||x||^2/n_0`` lies outside
    ``[2^-64, 2^64]`` (:data:`fmsim.kernels.scalar.RENORM_LOW`, ``RENORM_HIGH``) or
    overflows: then ``x`` is divided by the power of two that brings its
    largest entry into ``[1/2, 1)``, exactly.
    """
    ms = float(mean_square(x, x.size))
    amax = float(np.max(np.abs(x))) if x.size else 0.0
    if amax == 0.0 or (RENORM_LOW <= ms <= RENORM_HIGH):
        return x, 0
    shift = int(np.frexp(amax)[1])
    return np.ldexp(x, -shift), shift


@dataclass(frozen=True, eq=False)
class _Inputs:
    """What every planner starts from: the key, the chunk's first net, the input and its scaled form, ``c_j``."""

    k0: np.uint64
    k1: np.uint64
    net0: int
    x_true: np.ndarray
    x: np.ndarray
    x_shift: int
    c: np.ndarray

    @classmethod
    def of(cls, config: RunConfig, start: int) -> _Inputs:
        k0, k1 = (np.uint64(w) for w in seed_to_key(config.seed))
        x_true = input_vector(config)
        x, x_shift = scaled_input(x_true)
        return cls(k0, k1, start, x_true, x, x_shift, config.init.layer_c(config.arch))

    def m0(self) -> tuple[float, int]:
        """``M_0 = m0 2^shift`` summed exactly as the ``full`` kernels sum it (so both methods share it to the last
        bit)."""
        return float(mean_square(self.x, self.x.size)), 2 * self.x_shift


# -------------------------------------------------------------------- records
_NO_FIRST_LAYER = (np.empty((2, 0)), np.zeros(1, dtype=np.int64), np.zeros(3))
#: Metadata of a field that chooses the kernel (its precision) rather than feeding it.
CHOOSES_KERNEL = {"chooses_kernel": True}
Scratch = tuple[tuple[tuple[int, ...], type], ...]


def threads_for(widest: int) -> int:
    """Threads per block when threads share out ``widest`` rows (or channels): whole warps, 32 to 256."""
    return int(min(256, max(32, -(-int(widest) // 32) * 32)))


@dataclass(frozen=True, eq=False)
class KernelCall:
    """The inputs of one kernel for one chunk, by name, and how each backend runs them.

    Each subclass is one kind of kernel. It declares its fields (the kernel's inputs, in the kernel's
    order) and what it knows: :meth:`run_cpu` calls its CPU kernel, :meth:`cuda_kernel` names its CUDA
    twin, and :meth:`cuda_threads` and :meth:`cuda_scratch` size the launch. The defaults here serve the
    kernels that give each net one CUDA thread and take their inputs as they are.
    """

    #: Why ``backend="cuda"`` is refused, for a kind of call with no CUDA kernel (its :meth:`cuda_kernel` gives
    #: None); empty where there is one.
    cuda_refusal: ClassVar[str] = ""

    def arguments(self) -> tuple:
        """The kernel's leading positional inputs: the fields in their order, but those that choose the kernel (the
        one place a call is unpacked by position)."""
        return tuple(getattr(self, f.name) for f in fields(self) if not f.metadata.get("chooses_kernel"))

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        """Run the CPU kernel: ``M_j`` and ``log M_j`` of the chunk's nets into ``out_lengths``, ``out_log``
        (shape (m, d + 1) each)."""
        raise NotImplementedError

    def cuda_kernel(self, kernels: Any) -> Any:
        """The CUDA kernel (``kernels`` is :mod:`fmsim.kernels.cuda`, imported only on a GPU run), or None."""
        return None

    def cuda_threads(self) -> int | None:
        """Threads of the one CUDA block per net; None: one thread per net."""
        return None

    def cuda_scratch(self, m: int) -> Scratch:
        """Shapes and dtypes of the device scratch the CUDA kernel takes after the call's inputs, for ``m`` nets."""
        return ()


@dataclass(frozen=True, eq=False)
class _FromInput(KernelCall):
    """A kernel that runs the input through the net: ``x`` divided by ``2^x_shift``."""

    x: np.ndarray
    x_shift: int


@dataclass(frozen=True, eq=False)
class _FromLength(KernelCall):
    """A kernel that samples from ``M_0 = m0 2^m0_shift`` alone."""

    m0: float
    m0_shift: int


@dataclass(frozen=True, eq=False)
class _FullyConnectedInput(_FromInput):
    widths: np.ndarray


@dataclass(frozen=True, eq=False)
class _FullyConnectedLength(_FromLength):
    widths: np.ndarray
    cs: np.ndarray


@dataclass(frozen=True, eq=False)
class _ResidualInput(_FromInput):
    module_widths: np.ndarray
    etas: np.ndarray


@dataclass(frozen=True, eq=False)
class _ResidualLength(_FromLength):
    n: int
    module_widths: np.ndarray
    etas: np.ndarray
    c: float
    c_out: float


@dataclass(frozen=True, eq=False)
class _ConvInput(_FromInput):
    channels: np.ndarray
    height: int
    width: int
    kh: int
    kw: int


def _zero(call: KernelCall) -> float:
    """Zero in the precision of the call's arithmetic (it sets the kernel's float type)."""
    return np.float32(0.0) if call.float32 else 0.0


def _dtype(call: KernelCall) -> type:
    return np.float32 if call.float32 else np.float64


@dataclass(frozen=True, eq=False)
class FullyConnectedFull(_FullyConnectedInput):
    """Fully connected nets drawn weight by weight (:func:`fmsim.kernels.cpu.fc_full`)."""

    scales: np.ndarray
    bias_sds: np.ndarray
    law: int
    k0: np.uint64
    k1: np.uint64
    net0: int
    float32: bool = field(metadata=CHOOSES_KERNEL)

    def first_layer(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first layer's tabulated law, its guide table and grid; empty: the first layer is drawn."""
        return _NO_FIRST_LAYER

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu.fc_full(self.x, self.x_shift, self.widths, self.scales, self.bias_sds, self.law, self.k0, self.k1,
                    self.net0, _zero(self), self.float32, *self.first_layer(), RENORM_HIGH, out_lengths, out_log)

    def cuda_kernel(self, kernels: Any) -> Any:
        return kernels.fc_full_kernel_f32 if self.float32 else kernels.fc_full_kernel

    def cuda_threads(self) -> int:
        return threads_for(self.widths[1:].max())

    def cuda_scratch(self, m: int) -> Scratch:
        widest = int(self.widths.max())
        return ((m, 3, widest), _dtype(self)), ((m, 4 * widest + 16), _dtype(self))


@dataclass(frozen=True, eq=False)
class FullyConnectedExactFirst(FullyConnectedFull):
    """``method="exact_first"``: :class:`FullyConnectedFull` with the first layer drawn from its tabulated law
    ``law1`` (:class:`~fmsim.first_layer.FirstLayerLaw`: ``cdf``, ``guide``, and ``(s0, ds, sd)``)."""

    cuda_refusal: ClassVar[str] = ("method='exact_first' runs on backend='cpu' only (it has no CUDA kernel yet); "
                                   "use backend='cpu', or method='full' on the GPU")

    law1: np.ndarray
    law1_guide: np.ndarray
    law1_grid: np.ndarray

    def first_layer(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.law1, self.law1_guide, self.law1_grid

    def cuda_kernel(self, kernels: Any) -> None:
        return None


@dataclass(frozen=True, eq=False)
class FullyConnectedExact(_FullyConnectedLength):
    """The exact Gaussian sampler of fully connected nets (:func:`fmsim.kernels.cpu.fc_exact`)."""

    bias_vars: np.ndarray
    k0: np.uint64
    k1: np.uint64
    net0: int

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu.fc_exact(*self.arguments(), out_lengths, out_log)

    def cuda_kernel(self, kernels: Any) -> Any:
        return kernels.fc_exact_kernel


@dataclass(frozen=True, eq=False)
class ResidualFull(_ResidualInput):
    """Residual nets drawn weight by weight (:func:`fmsim.kernels.cpu.res_full`)."""

    hidden_scale: np.ndarray
    out_scale: float
    relu_end: bool
    bias_sds: np.ndarray
    law: int
    k0: np.uint64
    k1: np.uint64
    net0: int
    float32: bool = field(metadata=CHOOSES_KERNEL)

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu.res_full(self.x, self.x_shift, self.module_widths, self.etas, self.hidden_scale, self.out_scale,
                     self.relu_end, self.bias_sds, self.law, self.k0, self.k1, self.net0, _zero(self), self.float32,
                     out_lengths, out_log)

    def cuda_kernel(self, kernels: Any) -> Any:
        return kernels.res_full_kernel_f32 if self.float32 else kernels.res_full_kernel

    def _widest(self) -> int:
        return max([self.x.size] + [int(k) for k in self.module_widths])

    def cuda_threads(self) -> int:
        return threads_for(self._widest())

    def cuda_scratch(self, m: int) -> Scratch:
        return ((m, 4, self._widest()), _dtype(self)), ((m, 4 * self._widest() + 16), _dtype(self))


@dataclass(frozen=True, eq=False)
class ResidualExact(_ResidualLength):
    """The exact sampler of residual nets with linear-ending Gaussian modules (:func:`fmsim.kernels.cpu.res_exact`)."""

    bias_vars: np.ndarray
    k0: np.uint64
    k1: np.uint64
    net0: int

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu.res_exact(*self.arguments(), out_lengths, out_log)

    def cuda_kernel(self, kernels: Any) -> Any:
        return kernels.res_exact_kernel


@dataclass(frozen=True, eq=False)
class ResidualReluExact(_ResidualInput):
    """The sampler of residual nets with ReLU-ending Gaussian modules (:func:`fmsim.kernels.cpu.res_relu_exact`)."""

    c: float
    c_out: float
    bias_vars: np.ndarray
    k0: np.uint64
    k1: np.uint64
    net0: int

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu.res_relu_exact(*self.arguments(), out_lengths, out_log)

    def cuda_kernel(self, kernels: Any) -> Any:
        return kernels.res_relu_exact_kernel

    def cuda_scratch(self, m: int) -> Scratch:
        return (((m, self.x.size), np.float64),)  # each net's stream


@dataclass(frozen=True, eq=False)
class ConvFull(_ConvInput):
    """Periodic conv nets (1D: ``height = kh = 1``), drawn weight by weight (:func:`fmsim.kernels.cpu.conv_full`)."""

    scales: np.ndarray
    bias_sds: np.ndarray
    law: int
    k0: np.uint64
    k1: np.uint64
    net0: int
    float32: bool = field(metadata=CHOOSES_KERNEL)

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu.conv_full(self.x, self.x_shift, self.channels, self.height, self.width, self.kh, self.kw, self.scales,
                      self.bias_sds, self.law, self.k0, self.k1, self.net0, _zero(self), self.float32, out_lengths,
                      out_log)

    def cuda_kernel(self, kernels: Any) -> Any:
        return kernels.conv_full_kernel_f32 if self.float32 else kernels.conv_full_kernel

    def cuda_threads(self) -> int:
        return threads_for(self.channels[1:].max())

    def cuda_scratch(self, m: int) -> Scratch:
        cmax = int(self.channels.max())
        return ((m, 2, cmax * self.height * self.width), _dtype(self)), ((m, cmax, cmax * self.kh * self.kw),
                                                                          _dtype(self))


_NO_QR_ON_GPU = ("law='orthogonal' with method='full' runs on backend='cpu' only (the GPU has no QR kernel); use "
                 "method='exact' (fully connected and residual nets) or backend='cpu'")


@dataclass(frozen=True, eq=False)
class FullyConnectedOrthogonalFull(_FullyConnectedInput):
    """Fully connected nets with Haar-orthogonal weights (:func:`fmsim.kernels.cpu_orthogonal.fc_orthogonal_full`)."""

    cuda_refusal: ClassVar[str] = _NO_QR_ON_GPU

    gains: np.ndarray
    k0: np.uint64
    k1: np.uint64
    net0: int

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu_orthogonal.fc_orthogonal_full(*self.arguments(), out_lengths, out_log)


@dataclass(frozen=True, eq=False)
class FullyConnectedOrthogonalExact(_FullyConnectedLength):
    """The exact sampler of orthogonal fully connected nets
    (:func:`fmsim.kernels.cpu_orthogonal.fc_orthogonal_exact`)."""

    k0: np.uint64
    k1: np.uint64
    net0: int

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu_orthogonal.fc_orthogonal_exact(*self.arguments(), out_lengths, out_log)

    def cuda_kernel(self, kernels: Any) -> Any:
        return kernels.fc_orthogonal_exact_kernel


@dataclass(frozen=True, eq=False)
class ResidualOrthogonalFull(_ResidualInput):
    """Residual nets with Haar-orthogonal weights (:func:`fmsim.kernels.cpu_orthogonal.res_orthogonal_full`)."""

    cuda_refusal: ClassVar[str] = _NO_QR_ON_GPU

    gain: float
    out_gain: float
    relu_end: bool
    k0: np.uint64
    k1: np.uint64
    net0: int

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu_orthogonal.res_orthogonal_full(*self.arguments(), out_lengths, out_log)


@dataclass(frozen=True, eq=False)
class ResidualOrthogonalExact(_ResidualLength):
    """The exact sampler of linear-ending orthogonal residual nets
    (:func:`fmsim.kernels.cpu_orthogonal.res_orthogonal_exact`)."""

    k0: np.uint64
    k1: np.uint64
    net0: int

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu_orthogonal.res_orthogonal_exact(*self.arguments(), out_lengths, out_log)

    def cuda_kernel(self, kernels: Any) -> Any:
        return kernels.res_orthogonal_exact_kernel


@dataclass(frozen=True, eq=False)
class ResidualOrthogonalReluExact(_ResidualInput):
    """The sampler of ReLU-ending orthogonal residual nets
    (:func:`fmsim.kernels.cpu_orthogonal.res_orthogonal_relu_exact`)."""

    c: float
    c_out: float
    k0: np.uint64
    k1: np.uint64
    net0: int

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu_orthogonal.res_orthogonal_relu_exact(*self.arguments(), out_lengths, out_log)

    def cuda_kernel(self, kernels: Any) -> Any:
        return kernels.res_orthogonal_relu_exact_kernel

    def cuda_scratch(self, m: int) -> Scratch:
        return (((m, 2, self.x.size), np.float64),)  # each net's stream and its output direction


@dataclass(frozen=True, eq=False)
class ConvOrthogonalFull(_ConvInput):
    """Conv nets with Haar-orthogonal kernels (:func:`fmsim.kernels.cpu_orthogonal.conv_orthogonal_full`)."""

    cuda_refusal: ClassVar[str] = _NO_QR_ON_GPU

    gains: np.ndarray
    k0: np.uint64
    k1: np.uint64
    net0: int

    def run_cpu(self, out_lengths: np.ndarray, out_log: np.ndarray) -> None:
        cpu_orthogonal.conv_orthogonal_full(*self.arguments(), out_lengths, out_log)


#: Every kind of kernel call: the table of what each backend runs (one row per class, its methods the columns).
KERNELS: tuple[type[KernelCall], ...] = (
    FullyConnectedFull, FullyConnectedExactFirst, FullyConnectedExact, ResidualFull, ResidualExact,
    ResidualReluExact, ConvFull, FullyConnectedOrthogonalFull, FullyConnectedOrthogonalExact, ResidualOrthogonalFull,
    ResidualOrthogonalExact, ResidualOrthogonalReluExact, ConvOrthogonalFull,
)


# ------------------------------------------------------------------- planners


def _fc_full(config: RunConfig, a: _Inputs) -> FullyConnectedFull:
    widths = np.asarray(config.arch.widths, dtype=np.int64)
    scales = np.sqrt(a.c / widths[:-1])
    net = (a.x, a.x_shift, widths, scales, _bias_sd(config), LAW_CODES[config.init.law], a.k0, a.k1, a.net0,
           config.precision == "float32")
    if config.method != "exact_first":
        return FullyConnectedFull(*net)
    from ..sampling.first_layer import first_layer_law

    table = first_layer_law(config.init.law, a.x)
    return FullyConnectedExactFirst(*net, table.cdf, table.guide,
                                    np.array([table.s0, table.ds, scales[0] * np.sqrt(a.x @ a.x)]))


def _fc_exact(config: RunConfig, a: _Inputs) -> FullyConnectedExact:
    return FullyConnectedExact(*a.m0(), np.asarray(config.arch.widths, dtype=np.int64), a.c,
                               config.init.layer_bias_var(config.arch), a.k0, a.k1, a.net0)


def _res_full(config: RunConfig, a: _Inputs) -> ResidualFull:
    arch = config.arch
    mw = np.asarray(arch.module_widths, dtype=np.int64)
    fans = np.concatenate([[arch.width], mw[:-1]]).astype(float)
    k_last = mw[-1] if mw.size else arch.width
    return ResidualFull(a.x, a.x_shift, mw, np.asarray(arch.etas, dtype=float), np.sqrt(a.c / fans[:mw.size]),
                        float(np.sqrt(arch.c_out / k_last)), arch.ending == "relu", _bias_sd(config),
                        LAW_CODES[config.init.law], a.k0, a.k1, a.net0, config.precision == "float32")


def _res_exact(config: RunConfig, a: _Inputs) -> ResidualExact | ResidualReluExact:
    arch, init = config.arch, config.init
    mw = np.asarray(arch.module_widths, dtype=np.int64)
    etas = np.asarray(arch.etas, dtype=float)
    if arch.ending == "linear":
        return ResidualExact(*a.m0(), arch.width, mw, etas, float(init.c), arch.c_out, init.layer_bias_var(arch), a.k0,
                             a.k1, a.net0)
    return ResidualReluExact(a.x, a.x_shift, mw, etas, float(init.c), arch.c_out, init.layer_bias_var(arch), a.k0, a.k1,
                             a.net0)


def conv_grid(arch: Conv) -> tuple[np.ndarray, int, int, int, int]:
    """The conv kernels' ``(channels, height, width, kh, kw)``: a 1D net is a 2D net of height 1 and ``kh = 1``."""
    h, w = (1, arch.spatial[0]) if len(arch.spatial) == 1 else arch.spatial
    kh = 1 if len(arch.spatial) == 1 else arch.kernel
    return np.asarray(arch.channels, dtype=np.int64), h, w, kh, arch.kernel


def _conv_full(config: RunConfig, a: _Inputs) -> ConvFull:
    arch = config.arch
    fans = np.array([arch.fan_in(j) for j in range(1, arch.depth + 1)], dtype=float)
    return ConvFull(a.x, a.x_shift, *conv_grid(arch), np.sqrt(a.c / fans), _bias_sd(config),
                    LAW_CODES[config.init.law], a.k0, a.k1, a.net0, config.precision == "float32")


def _fc_orthogonal_full(config: RunConfig, a: _Inputs) -> FullyConnectedOrthogonalFull:
    return FullyConnectedOrthogonalFull(a.x, a.x_shift, np.asarray(config.arch.widths, dtype=np.int64), np.sqrt(a.c),
                                        a.k0, a.k1, a.net0)


def _fc_orthogonal_exact(config: RunConfig, a: _Inputs) -> FullyConnectedOrthogonalExact:
    return FullyConnectedOrthogonalExact(*a.m0(), np.asarray(config.arch.widths, dtype=np.int64), a.c, a.k0, a.k1,
                                         a.net0)


def _res_orthogonal_full(config: RunConfig, a: _Inputs) -> ResidualOrthogonalFull:
    arch = config.arch
    return ResidualOrthogonalFull(a.x, a.x_shift, np.asarray(arch.module_widths, dtype=np.int64),
                                  np.asarray(arch.etas, dtype=float), float(np.sqrt(config.init.c)),
                                  float(np.sqrt(arch.c_out)), arch.ending == "relu", a.k0, a.k1, a.net0)


def _res_orthogonal_exact(config: RunConfig, a: _Inputs) -> ResidualOrthogonalExact | ResidualOrthogonalReluExact:
    arch = config.arch
    mw = np.asarray(arch.module_widths, dtype=np.int64)
    etas = np.asarray(arch.etas, dtype=float)
    c = float(config.init.c)
    if arch.ending == "linear":
        return ResidualOrthogonalExact(*a.m0(), arch.width, mw, etas, c, arch.c_out, a.k0, a.k1, a.net0)
    return ResidualOrthogonalReluExact(a.x, a.x_shift, mw, etas, c, arch.c_out, a.k0, a.k1, a.net0)


def _conv_orthogonal_full(config: RunConfig, a: _Inputs) -> ConvOrthogonalFull:
    return ConvOrthogonalFull(a.x, a.x_shift, *conv_grid(config.arch), np.sqrt(a.c), a.k0, a.k1, a.net0)


def _bias_sd(config: RunConfig) -> np.ndarray:
    """Each layer's bias standard deviation (for a residual net: a module's hidden layers, then its output)."""
    return np.sqrt(config.init.layer_bias_var(config.arch))


#: ``(architecture, weights, method)`` -> the planner that builds the chunk's :class:`KernelCall`; ``weights`` is
#: ``"iid"`` (entry by entry) or ``"orthogonal"``. A run with no row here is refused when it is configured.
ROADS: dict[tuple[type, str, str], Callable[[RunConfig, _Inputs], KernelCall]] = {
    (FullyConnected, "iid", "full"): _fc_full,
    (FullyConnected, "iid", "exact_first"): _fc_full,
    (FullyConnected, "iid", "exact"): _fc_exact,
    (Residual, "iid", "full"): _res_full,
    (Residual, "iid", "exact"): _res_exact,
    (Conv, "iid", "full"): _conv_full,
    (FullyConnected, "orthogonal", "full"): _fc_orthogonal_full,
    (FullyConnected, "orthogonal", "exact"): _fc_orthogonal_exact,
    (Residual, "orthogonal", "full"): _res_orthogonal_full,
    (Residual, "orthogonal", "exact"): _res_orthogonal_exact,
    (Conv, "orthogonal", "full"): _conv_orthogonal_full,
}


def road(config: RunConfig) -> Callable[[RunConfig, _Inputs], KernelCall]:
    """The planner of ``config``'s road (:data:`ROADS`); a ``ValueError`` where none exists."""
    key = (type(config.arch), "orthogonal" if config.init.orthogonal else "iid", config.method)
    try:
        return ROADS[key]
    except KeyError:
        raise ValueError(f"no kernel runs method={config.method!r} with law={config.init.law!r} on "
                         f"{type(config.arch).__name__} nets") from None


def plan(config: RunConfig, start: int) -> KernelCall:
    """The kernel call of the chunk of ``config`` whose first net is ``start``."""
    return road(config)(config, _Inputs.of(config, start))


# ------------------------------------------------------------------ refusals
def cuda_refusal(config: RunConfig) -> str | None:
    """Why ``config`` cannot run on the GPU (the call's :attr:`KernelCall.cuda_refusal`), or None where it can."""
    return plan(config, 0).cuda_refusal or None
