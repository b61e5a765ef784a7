"""Data files fmsim reads: a checksummed registry, fetched once into a cache.

fmsim's only data set is MNIST (the four original gzip-compressed IDX files,
licence CC BY-SA 3.0). A file is looked for, in this order:

1. ``$FMSIM_MNIST``: a folder holding a local copy (nothing is downloaded);
2. the cache: ``$FMSIM_DATA/mnist`` if ``FMSIM_DATA`` is set, else
   ``pooch.os_cache("fmsim")/mnist`` (``~/.cache/fmsim/mnist`` on Linux);
3. downloaded into the cache by :mod:`pooch`, from ``$FMSIM_MNIST_URL``
   (a site's own mirror, if set), then from :data:`MIRRORS` in turn.

Every file is checked against its SHA-256 in ``MNIST_FILES`` wherever it
comes from; a download that does not match is discarded. Without a copy and
without a network, one line (:class:`DataUnavailableError`) says which files
are missing, where to put them, where to get them and that ``FMSIM_MNIST``
names a local copy.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MNIST_FILES", "MIRRORS", "DataUnavailableError", "DataFileStatus", "cache_dir", "mnist_dir",
           "fetch_mnist_file", "mnist_status", "sha256_of"]

#: file name -> SHA-256 of the gzip file (the published originals; their MD5s are LeCun's).
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

#: Public mirrors of the original files (torchvision's, then TensorFlow's), tried in order.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

ENV_LOCAL = "FMSIM_MNIST"
ENV_CACHE = "FMSIM_DATA"
ENV_URL = "FMSIM_MNIST_URL"


class DataUnavailableError(FileNotFoundError):
    """A data file is neither present nor downloadable; the message is one line that says what to do."""


@dataclass(frozen=True)
class DataFileStatus:
    """Where one data file lives and whether it is usable.

    Attributes
    ----------
    name : str
        File name, e.g. ``"train-images-idx3-ubyte.gz"``.
    path : Path
        Where fmsim reads it from.
    source : str
        ``"FMSIM_MNIST"`` (a local copy) or ``"cache"``.
    state : str
        ``"ok"`` (present, SHA-256 matches), ``"missing"`` or ``"damaged"`` (SHA-256 differs).
    """

    name: str
    path: Path
    source: str
    state: str


def cache_dir() -> Path:
    """fmsim's data cache: ``$FMSIM_DATA``, else ``pooch.os_cache`` ``("fmsim")``."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("fmsim"))


def mnist_dir() -> tuple[Path, str]:
    """The folder MNIST is read from and its source: ``($FMSIM_MNIST, "FMSIM_MNIST")`` or the cache's."""
    env = os.environ.get(ENV_LOCAL)
    if env:
        return Path(env).expanduser(), ENV_LOCAL
    return cache_dir() / "mnist", "cache"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _state(path: Path, name: str) -> str:
    if not path.is_file():
        return "missing"
    return "ok" if sha256_of(path) == MNIST_FILES[name] else "damaged"


def mnist_status() -> list[DataFileStatus]:
    """The state of each MNIST file where fmsim would read it (nothing is downloaded)."""
    folder, source = mnist_dir()
    return [DataFileStatus(name, folder / name, source, _state(folder / name, name)) for name in MNIST_FILES]


def _mirrors() -> list[str]:
    own = os.environ.get(ENV_URL)
    bases = ([own] if own else []) + list(MIRRORS)
    return [b if b.endswith("/") else b + "/" for b in bases]


def _unavailable(name: str, folder: Path, why: str) -> DataUnavailableError:
    files = ", ".join(MNIST_FILES)
    return DataUnavailableError(
        f"MNIST file {name} {why}; put the four MNIST files ({files}) in {folder} (from {_mirrors()[0]}), "
        f"or set {ENV_LOCAL} to a folder that holds them")


def _reason(e: BaseException) -> str:
    """A few words on why a download failed."""
    response = getattr(e, "response", None)
    if response is not None and getattr(response, "status_code", None) is not None:
        return f"HTTP {response.status_code}"
    text = str(e)
    if isinstance(e, ValueError) and "hash" in text.lower():
        return "the download's SHA-256 does not match"
    if isinstance(e, OSError) or "connection" in type(e).__name__.lower() or "Max retries" in text:
        return "no connection"
    first = text.splitlines()[0] if text else type(e).__name__
    return first[:80] + ("..." if len(first) > 80 else "")


def fetch_mnist_file(name: str, announce: bool = True) -> Path:
    """Path of a checked MNIST file, downloading it into the cache on first use.

    Parameters
    ----------
    name : str
        One of ``MNIST_FILES``.
    announce : bool
        Print one line on stderr before a download.

    Returns
    -------
    Path
        A file whose SHA-256 matches the registry.

    Raises
    ------
    DataUnavailableError
        ``$FMSIM_MNIST`` lacks the file or holds a damaged one, or the file is
        not in the cache and no mirror delivered a matching copy.
    """
    if name not in MNIST_FILES:
        raise ValueError(f"name must be one of {sorted(MNIST_FILES)}, got {name!r}")
    folder, source = mnist_dir()
    path = folder / name
    state = _state(path, name)
    if state == "ok":
        return path
    if source == ENV_LOCAL:  # a local copy is never replaced behind the user's back
        why = ("is not in the folder named by FMSIM_MNIST" if state == "missing"
               else f"in the folder named by FMSIM_MNIST has SHA-256 {sha256_of(path)}, not the original's "
                    f"{MNIST_FILES[name]}")
        raise _unavailable(name, folder, why)
    import pooch

    pooch.get_logger().setLevel("WARNING")  # fmsim says it once, below
    if announce:
        print(f"fmsim: downloading {name} into {folder} (first use)", file=sys.stderr)
    reasons = []
    for base in _mirrors():
        try:  # pooch checks the download against known_hash and discards it on a mismatch
            return Path(pooch.retrieve(base + name, known_hash=f"sha256:{MNIST_FILES[name]}", fname=name,
                                       path=folder, progressbar=False))
        except Exception as e:  # noqa: BLE001 - any failure of one mirror means: try the next
            reasons.append(f"{base}: {_reason(e)}")
    why = ("is damaged in the cache and could not be downloaded again" if state == "damaged"
           else "is not in the cache and could not be downloaded") + f" ({'; '.join(reasons)})"
    raise _unavailable(name, folder, why)
