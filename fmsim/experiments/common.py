"""What every experiment script shares: a headless pyplot, figure saving, list-valued options."""

from __future__ import annotations

from typing import Any

from ..commandline import float_list, int_list

__all__ = ["pyplot", "save", "int_list", "float_list"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (scripts write PNG files only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, png: str) -> None:
    """Lay out, write ``png`` at 130 dpi and close ``fig``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(png, dpi=130)
    plt.close(fig)
