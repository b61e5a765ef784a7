"""Safe access to HDF5 files: a check before HDF5 sees a file, bounded SWMR reads, a writer's lock.

Why this module exists:

* HDF5 in SWMR-read mode retries a metadata read whose checksum fails (a
  live writer may be halfway through writing it), by default 100 times with
  back-off; on a damaged file that looks like a hang.
* A killed SWMR writer leaves the same "open for write" flags in the
  superblock as a live one, and HDF5 drops its own file lock once a writer
  enters SWMR mode, so HDF5 cannot tell the two apart.

So before HDF5 opens a file, fmsim

1. checks it (:func:`check_file`): a regular, non-empty file with the HDF5
   signature, a superblock it can parse, and a stored end-of-file address
   no larger than the file (else it was truncated);
2. asks whether an fmsim writer is alive (:func:`writer_alive`): writers
   hold an open-file-description lock (Linux ``F_OFD_SETLK``; POSIX
   ``lockf`` elsewhere) on one byte far past the end of the file, which the
   kernel drops when the writer dies, however it dies;
3. opens read-only without SWMR when no writer flag is set, and in SWMR-read
   mode with at most :data:`SWMR_READ_ATTEMPTS` metadata read attempts when
   one is (:func:`open_read`).

Every failure is a :class:`StoreError` whose message names the file and what
is wrong with it; nothing here ever writes to a file it checks.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from dataclasses import dataclass

import h5py

__all__ = ["StoreError", "DamagedFileError", "FileBusyError", "FileState", "check_file", "writer_alive",
           "WriterLock", "hdf5_lock_held", "open_read", "SWMR_READ_ATTEMPTS"]

SIGNATURE = b"\x89HDF\r\n\x1a\n"
SWMR_READ_ATTEMPTS = 10
"""Metadata read attempts of a SWMR reader (HDF5's default, 100 with back-off, hangs on damaged files)."""

_LOCK_OFFSET = 1 << 62  # the byte a writer locks: past any real end of file, so no reader is disturbed
_UNDEFINED = {2: 0xFFFF, 4: 0xFFFFFFFF, 8: 0xFFFFFFFFFFFFFFFF}


class StoreError(RuntimeError):
    """A file that cannot be used for this run (other config, locked, incomplete, damaged)."""


class DamagedFileError(StoreError):
    """Not an HDF5 file, or an HDF5 file that cannot be read (truncated, corrupted)."""


class FileBusyError(StoreError):
    """Another live process writes the file."""


@dataclass(frozen=True)
class FileState:
    """What :func:`check_file` read from a file's superblock, without HDF5.

    Attributes
    ----------
    size : int
        File size in bytes.
    superblock_version : int
    end_of_file : int
        The end-of-file address the superblock records (absolute, bytes).
    write_flag : bool
        The superblock says a writer has the file open (live, or killed
        without closing it).
    swmr_flag : bool
        ... and that writer is in SWMR mode (which keeps the file consistent
        on disk, so a killed one leaves a readable file).
    """

    size: int
    superblock_version: int
    end_of_file: int
    write_flag: bool
    swmr_flag: bool


def _damaged(path: str, what: str) -> DamagedFileError:
    return DamagedFileError(f"{path} {what}; fmsim left it as it is: choose another file, or restore it")


def check_file(path: str | os.PathLike) -> FileState:
    """Check that ``path`` is a readable, untruncated HDF5 file, reading only its superblock.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DamagedFileError
        A directory or other non-regular file, an empty file, no HDF5
        signature (text, random bytes, zeroed superblock), an unparsable
        superblock, or a file shorter than the end of file its superblock
        records (truncated; unless a live SWMR writer is extending it).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist")
    if os.path.isdir(path):
        raise DamagedFileError(f"{path} is a directory, not an HDF5 file")
    if not os.path.isfile(path):
        raise DamagedFileError(f"{path} is not a regular file")
    size = os.path.getsize(path)
    if size == 0:
        raise _damaged(path, "is empty (0 bytes), not an HDF5 file")
    with open(path, "rb") as f:
        base = _find_signature(f, size)
        if base is None:
            raise _damaged(path, "is not an HDF5 file (no HDF5 signature)")
        f.seek(base)
        head = f.read(128)
    state = _parse_superblock(path, head, base, size)
    if state.end_of_file > size and not (state.swmr_flag and writer_alive(path)):
        # (a live SWMR writer records the end of the space it allocates before its data reaches the disk)
        raise _damaged(path, f"is damaged (truncated): {size} bytes, but its HDF5 superblock records "
                       f"{state.end_of_file}")
    return state


def _find_signature(f, size: int) -> int | None:
    """Offset of the superblock: 0, 512, 1024, 2048, ... (HDF5 allows a user block before it)."""
    offset = 0
    while offset + len(SIGNATURE) <= size:
        f.seek(offset)
        if f.read(len(SIGNATURE)) == SIGNATURE:
            return offset
        offset = 512 if offset == 0 else 2 * offset
    return None


def _parse_superblock(path: str, head: bytes, base: int, size: int) -> FileState:
    """Superblock versions 0 to 3 (HDF5 file format specification, section II.A)."""
    if len(head) < 12:
        raise _damaged(path, "is truncated inside its HDF5 superblock")
    version = head[8]
    if version in (0, 1):
        if len(head) < 24:
            raise _damaged(path, "is truncated inside its HDF5 superblock")
        size_of_offsets = head[13]
        flags = struct.unpack_from("<I", head, 20)[0]
        addresses = 24 if version == 0 else 28  # v1 adds the indexed-storage K and two reserved bytes
    elif version in (2, 3):
        size_of_offsets = head[9]
        flags = head[11]
        addresses = 12
    else:
        raise _damaged(path, f"has an HDF5 superblock of unknown version {version}")
    if size_of_offsets not in _UNDEFINED:
        raise _damaged(path, f"has a damaged HDF5 superblock (size of offsets {size_of_offsets})")
    fmt = {2: "<H", 4: "<I", 8: "<Q"}[size_of_offsets]
    end = addresses + 3 * size_of_offsets
    if len(head) < end:
        raise _damaged(path, "is truncated inside its HDF5 superblock")
    base_address = struct.unpack_from(fmt, head, addresses)[0]
    eof = struct.unpack_from(fmt, head, addresses + 2 * size_of_offsets)[0]
    if eof == _UNDEFINED[size_of_offsets] or base_address == _UNDEFINED[size_of_offsets]:
        raise _damaged(path, "has a damaged HDF5 superblock (undefined end of file)")
    # bit 0: open for write, bit 2: open for SWMR write (version 3); versions 0-2 keep them at 0
    return FileState(size=size, superblock_version=version, end_of_file=base_address + eof,
                     write_flag=bool(flags & 0b101), swmr_flag=bool(flags & 0b100))


def hdf5_lock_held(path: str | os.PathLike) -> bool:
    """Whether a live process holds HDF5's own exclusive lock on ``path`` (a writer outside SWMR mode)."""
    fd = os.open(os.fspath(path), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the probe's shared lock
    return False


# --------------------------------------------------------------- writer lock
def _ofd_lock(fd: int, kind: int, command: int) -> bytes:
    """``fcntl`` on a ``struct flock`` for the lock byte (Linux x86-64/aarch64 layout)."""
    arg = struct.pack("=hh4xqqi4x", kind, os.SEEK_SET, _LOCK_OFFSET, 1, 0)
    return fcntl.fcntl(fd, command, arg)


_HAS_OFD = hasattr(fcntl, "F_OFD_SETLK") and struct.calcsize("=hh4xqqi4x") == 32


def writer_alive(path: str | os.PathLike) -> bool:
    """Whether a live fmsim process holds the writer lock of ``path``."""
    fd = os.open(os.fspath(path), os.O_RDONLY)
    try:
        if _HAS_OFD:
            out = _ofd_lock(fd, fcntl.F_RDLCK, fcntl.F_OFD_GETLK)
            return struct.unpack("=hh4xqqi4x", out)[0] != fcntl.F_UNLCK
        try:  # POSIX fallback: probe with a shared lock of our own (this process is not the writer)
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, _LOCK_OFFSET)
        except OSError:
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _LOCK_OFFSET)
        return False
    finally:
        os.close(fd)


class WriterLock:
    """The lock an fmsim writer holds on ``path`` for as long as it may write it.

    Taken before HDF5 opens the file for writing; the kernel releases it when
    the process exits, so a killed writer leaves no stale lock. Files
    replaced by rename (crash recovery, atomic rewrites) are re-locked with
    :meth:`acquire` after the rename.

    Raises
    ------
    FileBusyError
        Another live fmsim process holds the lock.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        for _ in range(10):  # retry if the file was replaced by rename between open and lock
            fd = os.open(self.path, os.O_RDWR)
            try:
                if _HAS_OFD:
                    _ofd_lock(fd, fcntl.F_WRLCK, fcntl.F_OFD_SETLK)
                else:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _LOCK_OFFSET)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EACCES, errno.EAGAIN):
                    raise FileBusyError(f"{self.path} is open for writing by another process; wait for it "
                                        "to finish or choose another file") from None
                raise
            if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                self.release()
                self._fd = fd
                return self
            os.close(fd)
        raise FileBusyError(f"{self.path} keeps being replaced by another process")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# ----------------------------------------------------------------- reading
def _set_metadata_read_attempts(fapl: h5py.h5p.PropFAID, attempts: int) -> None:
    """``H5Pset_metadata_read_attempts``, which h5py does not wrap, through the library h5py links."""
    lib = ctypes.CDLL(h5py.h5f.__file__)  # dlsym searches the extension's dependencies: h5py's own libhdf5
    fn = lib.H5Pset_metadata_read_attempts
    fn.argtypes = [ctypes.c_int64, ctypes.c_uint]
    if fn(fapl.id, attempts) < 0:
        raise RuntimeError("H5Pset_metadata_read_attempts failed")


def open_read(path: str | os.PathLike) -> h5py.File:
    """Open a checked HDF5 file read-only; never hangs on a damaged file.

    A file with no writer flag is opened without SWMR. A file flagged by a
    SWMR writer (live, or killed before it closed the file) is opened in
    SWMR-read mode with at most :data:`SWMR_READ_ATTEMPTS` metadata read
    attempts, so damage surfaces as an error at once. A file flagged by a
    writer outside SWMR mode is busy if that writer lives, else damaged.

    Raises
    ------
    FileNotFoundError, DamagedFileError, FileBusyError
    """
    path = os.fspath(path)
    state = check_file(path)
    if state.write_flag and not state.swmr_flag:
        if hdf5_lock_held(path):
            raise FileBusyError(f"{path} is open for writing by another process; wait for it to finish or "
                                "choose another file")
        raise _damaged(path, "was left open by a writer that stopped outside SWMR mode, so its content "
                       "cannot be trusted")
    # HDF5 opens a file once per process: a second open must repeat the first one's file-locking and
    # close-degree settings (xarray and h5netcdf open through h5py with HDF5's defaults; fmsim's own
    # choice is no locking). So each combination is tried until HDF5 accepts one.
    refused = None
    for locking, ignore, degree in _OPEN_SETTINGS:
        try:
            return _open_read(path, state.write_flag, locking, ignore, degree)
        except OSError as e:
            if "n't match" in str(e):  # HDF5: "... flag values don't match", "close degree doesn't match"
                refused = e
                continue
            raise _damaged(path, f"cannot be read by HDF5 ({e})") from None
    raise StoreError(f"{path} is open in this process with settings HDF5 will not combine with a second open "
                     f"({refused}); the file itself was not checked: close the other handle (for example "
                     "ds.close() in xarray) and open it again")


_OPEN_SETTINGS = tuple((locking, ignore, degree) for degree in ("strong", "default")
                       for locking, ignore in ((False, True), (False, False), (True, True), (True, False)))
"""(use file locking, ignore it where the file system has none, close degree): fmsim's first, then the others."""


def _open_read(path: str, write_flag: bool, locking: bool = False, ignore_when_disabled: bool = True,
               degree: str = "strong") -> h5py.File:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_file_locking(locking, ignore_when_disabled)
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG if degree == "strong" else h5py.h5f.CLOSE_DEFAULT)
    if not write_flag:
        try:
            return h5py.File(h5py.h5f.open(path.encode(), h5py.h5f.ACC_RDONLY, fapl=fapl))
        except OSError as e:
            if "already open for" not in str(e):  # else a writer started since the check
                raise
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    _set_metadata_read_attempts(fapl, SWMR_READ_ATTEMPTS)
    fid = h5py.h5f.open(path.encode(), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)
