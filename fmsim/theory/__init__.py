"""Theory beside the simulation: closed forms (:mod:`fmsim.theory.closed_forms`) and exact laws of ``M_d``
(:mod:`fmsim.exact_law`), each tested against the Monte Carlo."""

from .closed_forms import *  # noqa: F403 - the closed forms are this package's face
from .closed_forms import __all__ as __all__
