"""MNIST from the original gzip-compressed IDX files, checked by SHA-256.

The four files live in ``data/mnist/`` of the repository (copied from the
original distribution; licence CC BY-SA 3.0, see ``data/mnist/README.md``).
Nothing is downloaded. Another directory can be named with the ``root``
argument or the ``FMSIM_MNIST`` environment variable.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["MNIST", "load_mnist", "default_root", "FILES"]

#: file name -> SHA-256 of the gzip file (the published originals).
FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}


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


def default_root() -> Path:
    """``$FMSIM_MNIST`` if set, else ``<repository>/data/mnist``."""
    env = os.environ.get("FMSIM_MNIST")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data" / "mnist"


def _checked_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(
            f"MNIST file {path.name} not found in {path.parent}. Copy the four IDX .gz files there "
            f"(in this project: cp ../shared/data/mnist/* data/mnist/) or set FMSIM_MNIST to their directory."
        )
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
        Directory with the four ``*-ubyte.gz`` files; default :func:`default_root`.

    Returns
    -------
    MNIST
        Images flattened to 784 values in [0, 1] (float32).

    Raises
    ------
    FileNotFoundError
        A file is missing (the message says how to provide it).
    ValueError
        A file's SHA-256 does not match the original.
    """
    root = Path(root) if root is not None else default_root()
    arrays = {}
    for name in FILES:
        arrays[name] = _parse_idx(_checked_bytes(root / name), name)

    def images(name: str) -> np.ndarray:
        a = arrays[name]
        return (a.reshape(a.shape[0], -1).astype(np.float32) / np.float32(255.0))

    return MNIST(
        x_train=images("train-images-idx3-ubyte.gz"),
        y_train=arrays["train-labels-idx1-ubyte.gz"].astype(np.int64),
        x_test=images("t10k-images-idx3-ubyte.gz"),
        y_test=arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64),
    )
