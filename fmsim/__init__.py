"""fmsim: Monte Carlo engine for the start of training in deep random ReLU nets.

Quick start::

    import fmsim
    res = fmsim.simulate(fmsim.FullyConnected.constant(depth=50, width=50),
                         fmsim.Init.scheme("he"), n_nets=100_000, seed=1)
    res.summary.mean[-1]          # E[M_d], close to M_0 = 1 under He
"""

from pathlib import Path as _Path

from . import theory
from ._jit_cache import drop_stale_jit_cache as _drop_stale_jit_cache
from .analysis import open_dataset, open_sweep
from .config import Conv, FullyConnected, Init, Residual, RunConfig, eta_schedule, width_profile
from .simulate import SimulationResult, simulate
from .store import open_result as open
from .store import run_to_file

__version__ = "0.11.0"  # the one place the version is written (pyproject reads it)

# numba loads a cached kernel at its first call, not at import: this runs before any.
_drop_stale_jit_cache(_Path(__file__).parent)

__all__ = ["FullyConnected", "Residual", "Conv", "eta_schedule", "width_profile", "Init", "RunConfig",
           "SimulationResult", "simulate", "run_to_file", "open", "open_dataset", "open_sweep", "theory",
           "__version__"]
