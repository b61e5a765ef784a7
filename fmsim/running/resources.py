"""How much memory this process may still use: the least of its address-space limit, its cgroup's
limit and the machine's available memory (Linux; elsewhere what can be read)."""

from __future__ import annotations

__all__ = ["memory_available", "format_bytes"]


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _proc_kib(path: str, key: str) -> int | None:
    """A ``key:  N kB`` field of a /proc file (``/proc/meminfo``, ``/proc/self/status``), in bytes."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def memory_available() -> tuple[int | None, str]:
    """Bytes this process can still allocate, and which limit says so (``None``: nothing readable).

    Returns
    -------
    bytes : int or None
    limit : str
        ``"address-space limit (ulimit -v)"``, ``"cgroup memory limit"`` or ``"available memory"``.
    """
    found: list[tuple[int, str]] = []
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            found.append((max(0, soft - (_proc_kib("/proc/self/status", "VmSize") or 0)),
                          "address-space limit (ulimit -v)"))
    except (ImportError, OSError, ValueError):
        pass
    limit = _read_int("/sys/fs/cgroup/memory.max")
    if limit is not None:
        found.append((max(0, limit - (_read_int("/sys/fs/cgroup/memory.current") or 0)), "cgroup memory limit"))
    available = _proc_kib("/proc/meminfo", "MemAvailable")
    if available is not None:
        found.append((available, "available memory"))
    if not found:
        return None, ""
    return min(found)


def format_bytes(n: float) -> str:
    """``8.4e9`` -> ``"7.82 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} TiB"
