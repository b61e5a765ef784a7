"""fmsim: Monte Carlo engine for the start of training in deep random ReLU nets.

Quick start::

    import fmsim
    res = fmsim.simulate(fmsim.FullyConnected.constant(depth=50, width=50),
                         fmsim.Init.scheme("he"), n_nets=100_000, seed=1)
    res.summary.mean[-1]          # E[M_d], close to M_0 = 1 under He
"""

import importlib as _importlib
import importlib.abc as _importlib_abc
import importlib.util as _importlib_util
import sys as _sys
from pathlib import Path as _Path

from . import theory
from .config import Conv, FullyConnected, Init, Residual, RunConfig, eta_schedule, width_profile
from .files.analysis import open_dataset, open_sweep
from .files.store import open_result as open
from .files.store import run_to_file
from .running.jit_cache import drop_stale_jit_cache as _drop_stale_jit_cache
from .running.simulate import SimulationResult, simulate
from .running.summary import LayerSummary

__version__ = "0.11.0"  # the one place the version is written (pyproject reads it)

# numba loads a cached kernel at its first call, not at import: this runs before any.
_drop_stale_jit_cache(_Path(__file__).parent)

#: The documented module names (and those of fmsim <= 0.11) -> where the code lives. The code is grouped in
#: folders by the road a run takes (docs: Architecture); these names stay importable: ``import fmsim.store``
#: gives the module ``fmsim.files.store`` itself, not a copy.
MODULE_NAMES = {
    "analysis": "files.analysis", "cuda_backend": "running.cuda_backend", "datasets": "files.datasets",
    "display": "presenting.display", "exact_law": "theory.exact_law", "execution": "running.execution",
    "first_layer": "sampling.first_layer", "h5io": "files.h5io", "hessian": "training.hessian",
    "integrity": "files.integrity", "laws": "sampling.laws", "mlp": "training.mlp", "mnist": "training.mnist",
    "orthogonal": "sampling.haar", "plotting": "presenting.plotting", "reference": "running.reference",
    "resources": "running.resources", "rng": "sampling.rng", "simulate": "running.simulate",
    "store": "files.store", "summary": "running.summary", "train": "training.train",
}


class _ModuleNames(_importlib_abc.MetaPathFinder, _importlib_abc.Loader):
    """Imports ``fmsim.<name>`` of :data:`MODULE_NAMES` as the module it names (one module, two names)."""

    def find_spec(self, fullname, path=None, target=None):
        name = fullname.partition(f"{__name__}.")[2]
        return _importlib_util.spec_from_loader(fullname, self) if name in MODULE_NAMES else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        # the import system returns what sys.modules holds under the name once this returns
        name = module.__name__.partition(".")[2]
        _sys.modules[module.__name__] = _importlib.import_module(f"{__name__}.{MODULE_NAMES[name]}")


for _name, _home in MODULE_NAMES.items():  # those imported already need no finder
    if f"{__name__}.{_home}" in _sys.modules:
        _sys.modules.setdefault(f"{__name__}.{_name}", _sys.modules[f"{__name__}.{_home}"])
        globals().setdefault(_name, _sys.modules[f"{__name__}.{_home}"])  # (fmsim.simulate stays the function)
_sys.meta_path.append(_ModuleNames())

__all__ = ["FullyConnected", "Residual", "Conv", "eta_schedule", "width_profile", "Init", "RunConfig",
           "SimulationResult", "LayerSummary", "simulate", "run_to_file", "open", "open_dataset", "open_sweep",
           "theory", "__version__"]
