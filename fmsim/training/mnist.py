"""MNIST from the original gzip-compressed IDX files, checked by SHA-256.

The files come from :mod:`fmsim.datasets`: a local copy named by
``FMSIM_MNIST``, else fmsim's cache, where they are downloaded on first use
(about 11 MB; licence CC BY-SA 3.0). ``load_mnist(root)`` reads a given
folder instead and never downloads.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files.datasets import MNIST_FILES as FILES
from ..files.datasets import fetch_mnist_file

__all__ = ["MNIST", "load_mnist", "FILES"]


@dataclass(frozen=True, eq=False)
class MNIST:
    """Vectorized MNIST: pixels scaled to [0, 1], labels 0-9.

    Attributes
    ----------
    x_train : ndarray, shape (60000, 784), float32
    y_train : ndarray, shape (60000,), int64
    x_test : ndarray, shape (10000, 784), float32
    y_test : ndarray, shape (10000,), int64
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _checked_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"MNIST file {path.name} not found in {path.parent}: put the four files "
                                f"{', '.join(FILES)} there")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != FILES[path.name]:
        raise ValueError(f"MNIST file {path} has SHA-256 {digest}, expected {FILES[path.name]}: "
                         f"the file is damaged or not the original")
    return gzip.decompress(raw)


def _parse_idx(data: bytes, name: str) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (type code 0x08)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{name} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{name}: header says shape {shape} but holds {body.size} values")
    return body.reshape(shape)


def load_mnist(root: str | os.PathLike[str] | None = None) -> MNIST:
    """Load and verify MNIST.

    Parameters
    ----------
    root : path, optional
        Directory with the four ``*-ubyte.gz`` files (never downloads). Default:
        :func:`fmsim.datasets.fetch_mnist_file` finds each file (``FMSIM_MNIST``,
        the cache, or a download into the cache).

    Returns
    -------
    MNIST
        Images flattened to 784 values in [0, 1] (float32).

    Raises
    ------
    FileNotFoundError
        A file is missing (the message says how to provide it);
        :class:`fmsim.datasets.DataUnavailableError` when it cannot be downloaded.
    ValueError
        A file's SHA-256 does not match the original.
    """
    arrays = {}
    for name in FILES:
        path = Path(root) / name if root is not None else fetch_mnist_file(name)
        arrays[name] = _parse_idx(_checked_bytes(path), name)

    def images(name: str) -> np.ndarray:
        a = arrays[name]
        return (a.reshape(a.shape[0], -1).astype(np.float32) / np.float32(255.0))

    return MNIST(
        x_train=images("train-images-idx3-ubyte.gz"),
        y_train=arrays["train-labels-idx1-ubyte.gz"].astype(np.int64),
        x_test=images("t10k-images-idx3-ubyte.gz"),
        y_test=arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64),
    )
