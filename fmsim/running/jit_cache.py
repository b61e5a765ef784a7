"""Keep numba's on-disk cache of fmsim's kernels in step with fmsim's source.

numba checks a cached function against the file that defines it, not against
the files of the functions it calls: after ``git pull`` changes
``fmsim.laws`` only, the cached kernels of :mod:`fmsim.kernels.cpu` would
still run the old samplers (and draw other random numbers than the CUDA
kernels). So fmsim stamps its cache with a hash of all its sources and drops
every cached kernel when the hash changes: the cache in the package's
``__pycache__`` folders, and the one under ``NUMBA_CACHE_DIR`` where that is set.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
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


def numba_cache_dirs(package: Path, cache_dir: str) -> list[Path]:
    """Where numba keeps the cache of the functions under ``package`` when ``NUMBA_CACHE_DIR`` is
    ``cache_dir``: one folder per source folder (the package's own first), named as numba names it
    (``numba.core.caching.UserProvidedCacheLocator``)."""
    folders = sorted({path.parent for path in package.rglob("*.py")} | {package})
    return [_numba_cache_dir(folder, cache_dir) for folder in folders]


def _numba_cache_dir(folder: Path, cache_dir: str) -> Path:
    from numba.core.caching import UserProvidedCacheLocator

    return Path(cache_dir) / UserProvidedCacheLocator.get_suitable_cache_subpath(str(folder / "__init__.py"))


def drop_stale_jit_cache(package: Path, cache_dir: str | None = None) -> bool:
    """Delete the numba cache files (``*.nbi``, ``*.nbc``) of ``package`` if its sources changed.

    Parameters
    ----------
    package : Path
        The package directory; the stamp lives in ``package/__pycache__``.
    cache_dir : str, optional
        numba's cache directory (``NUMBA_CACHE_DIR``; by default numba's own setting): where it is set,
        numba caches there instead of in ``__pycache__``, and that cache is checked too, with its own stamp
        (in the package folder's cache folder there).

    Returns
    -------
    bool
        Whether cache files were dropped (False also when a directory is not
        writable: an installed wheel changes only by reinstalling, which rewrites
        every source file and so invalidates every cached function anyway).
    """
    if cache_dir is None:
        from numba.core import config

        cache_dir = config.CACHE_DIR
    try:
        digest = source_hash(package)
    except OSError:
        return False
    dropped = _drop_if_stale(digest, package / "__pycache__" / STAMP_NAME, lambda: package.rglob("__pycache__"))
    if cache_dir:
        dropped |= _drop_if_stale(digest, _numba_cache_dir(package, cache_dir) / STAMP_NAME,
                                  lambda: numba_cache_dirs(package, cache_dir))
    return dropped


def _drop_if_stale(digest: str, stamp: Path, cache_folders: Callable[[], Iterable[Path]]) -> bool:
    """Delete the ``*.nbi`` and ``*.nbc`` files in the folders ``cache_folders()`` lists unless ``stamp`` holds
    ``digest`` (they are listed only then); then write ``digest`` into ``stamp``. False where nothing was
    dropped or a folder is not writable."""
    try:
        if stamp.exists() and stamp.read_text().strip() == digest:
            return False
        for folder in cache_folders():
            for pattern in ("*.nbi", "*.nbc"):
                for cached in folder.glob(pattern):
                    cached.unlink(missing_ok=True)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}")
        tmp.write_text(digest + "\n")
        os.replace(tmp, stamp)  # atomic: concurrent processes (Dask workers) see the old stamp or the new one
        return True
    except OSError:
        return False
