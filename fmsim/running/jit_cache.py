"""Keep numba's on-disk cache of fmsim's kernels in step with fmsim's source.

numba checks a cached function against the file that defines it, not against
the files of the functions it calls: after ``git pull`` changes
``fmsim.laws`` only, the cached kernels of :mod:`fmsim.kernels.cpu` would
still run the old samplers (and draw other random numbers than the CUDA
kernels). So fmsim stamps its cache with a hash of all its sources and drops
every cached kernel when the hash changes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

STAMP_NAME = "fmsim-jit-source.sha256"


def source_hash(package: Path) -> str:
    """SHA-256 of the ``.py`` files under ``package`` that use numba (relative names and contents).

    Files without numba code (experiment scripts, plotting, storage) are left
    out, so that editing them does not cost a recompilation.
    """
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        source = path.read_bytes()
        if b"numba" not in source:
            continue
        h.update(str(path.relative_to(package)).encode())
        h.update(b"\0")
        h.update(source)
        h.update(b"\0")
    return h.hexdigest()


def drop_stale_jit_cache(package: Path) -> bool:
    """Delete the numba cache files (``*.nbi``, ``*.nbc``) under ``package`` if its sources changed.

    Parameters
    ----------
    package : Path
        The package directory; the stamp lives in ``package/__pycache__``.

    Returns
    -------
    bool
        Whether cache files were dropped (False also when the directory is not
        writable: an installed wheel changes only by reinstalling, which rewrites
        every source file and so invalidates every cached function anyway).
    """
    try:
        digest = source_hash(package)
        stamp = package / "__pycache__" / STAMP_NAME
        if stamp.exists() and stamp.read_text().strip() == digest:
            return False
        for pattern in ("*.nbi", "*.nbc"):
            for cached in package.rglob(f"__pycache__/{pattern}"):
                cached.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        tmp = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}")
        tmp.write_text(digest + "\n")
        os.replace(tmp, stamp)  # atomic: concurrent processes (Dask workers) see the old stamp or the new one
        return True
    except OSError:
        return False
