"""Theory beside the simulation: closed forms (:mod:`fmsim.theory.closed_forms`), the Gram chain's
(:mod:`fmsim.theory.gram`) and exact laws of ``M_d`` (:mod:`fmsim.exact_law`), each tested against the Monte
Carlo."""

from .closed_forms import *  # noqa: F403 - the closed forms are this package's face
from .closed_forms import __all__ as _closed_forms
from .gram import *  # noqa: F403
from .gram import __all__ as _gram

__all__ = [*_closed_forms, *_gram]
