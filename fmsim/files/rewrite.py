"""Files rewritten whole: the experiments' tables and training runs, which grow by new groups.

A SWMR writer cannot create objects, so these files are changed crash-safely another way: an edited
copy renamed over the original (:func:`rewrite_atomically`), under the writer lock.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import h5py

from .h5io import FileBusyError, StoreError, WriterLock, check_file, writer_alive
from .store import CREATOR, reading, recover_swmr_file

__all__ = ["check_writable", "rewrite_atomically"]


def _is_fmsim_file(f: h5py.File) -> bool:
    """Marked by fmsim, or holding anything fmsim stores with a ``config`` attribute (older files)."""
    if f.attrs.get("creator") == CREATOR or "config" in f.attrs:
        return True
    found = []
    f.visititems(lambda name, obj: found.append(name) if "config" in obj.attrs else None)
    return bool(found)


def check_writable(path: str | os.PathLike) -> None:
    """Refuse, before any work, a file that :func:`rewrite_atomically` must not touch.

    Raises
    ------
    DamagedFileError, FileBusyError, StoreError
        Damaged or not HDF5, written by another live process, or an HDF5
        file that fmsim did not write. A missing file is fine.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return
    check_file(path)
    if writer_alive(path):
        raise FileBusyError(f"{path} is open for writing by another process; wait for it to finish or "
                            "choose another file")
    with reading(path) as f:
        if not _is_fmsim_file(f):
            raise StoreError(f"{path} is an HDF5 file that fmsim did not write; choose another file")


def _create_marked(path: str) -> None:
    """Create ``path`` as an empty fmsim file, atomically (a hard link fails if another process was first)."""
    tmp = f"{path}.creating-{os.getpid()}"
    with h5py.File(tmp, "w") as f:
        f.attrs["creator"] = CREATOR
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.remove(tmp)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def rewrite_atomically(path: str | os.PathLike, fresh: bool = False) -> Iterator[h5py.File]:
    """Change an fmsim file crash-safely: edit a copy, then rename the copy over ``path``.

    For files that grow by new groups (training runs, experiment tables),
    where SWMR cannot help (a SWMR writer cannot create objects). A
    ``kill -9`` at any moment leaves the old file or the new one, never a
    mix; a stale ``<path>.rewriting`` is overwritten by the next rewrite.
    The writer lock is held throughout, so a second writer is refused.

    Parameters
    ----------
    path : path-like
        Created (marked as fmsim's) if absent.
    fresh : bool
        Start from an empty file instead of a copy (the whole content is rewritten).

    Yields
    ------
    h5py.File
        The copy, open for writing. If the block raises, ``path`` is unchanged.
    """
    path = os.fspath(path)
    check_writable(path)
    if not os.path.exists(path):
        _create_marked(path)
    tmp = path + ".rewriting"
    with WriterLock(path) as lock:
        if check_file(path).swmr_flag:  # a killed SWMR writer's file (we hold the lock)
            recover_swmr_file(path)
            lock.acquire()
        if fresh:
            with h5py.File(tmp, "w") as f:
                f.attrs["creator"] = CREATOR
        else:
            shutil.copyfile(path, tmp)
        try:
            with h5py.File(tmp, "a") as f:
                f.attrs["creator"] = CREATOR
                yield f
            _fsync(tmp)
            os.replace(tmp, path)
            _fsync(os.path.dirname(os.path.abspath(path)))
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
