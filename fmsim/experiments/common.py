"""What every experiment script shares: a headless pyplot, figure saving, list-valued options."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from ..commandline import float_list, int_list

__all__ = ["pyplot", "save", "int_list", "float_list", "stored_run"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (scripts write PNG files only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, png: str) -> None:
    """Lay out, write ``png`` at 130 dpi and close ``fig``.

    The image is written to a temporary name and renamed over ``png``: a full disk leaves the old figure
    or none, never half of one, and raises ``OSError`` (one line from the command line).
    """
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = f"{png}.writing-{os.getpid()}"
    try:
        fig.savefig(tmp, dpi=130, format="png")
        os.replace(tmp, png)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.filename is None:  # (Pillow's errors do not name the file)
            raise OSError(e.errno, e.strerror or str(e), png) from None
        raise
    finally:
        plt.close(fig)


def stored_run(path: str, meta: dict, read: Callable[[str], tuple]) -> tuple | None:
    """What ``read(path)`` returns (its last item the stored configuration), where ``path`` holds a run of the
    configuration ``meta`` (compared as JSON stores it); None where there is no file or it holds another run.
    The file is read once."""
    if not os.path.exists(path):
        return None
    stored = read(path)
    return stored if stored[-1] == json.loads(json.dumps(meta)) else None
