"""numba's cache is dropped when a source file with numba code changes (numba checks only the defining file)."""

from fmsim.running.jit_cache import STAMP_NAME, drop_stale_jit_cache


def _cache_files(pkg):
    return sorted(p.name for p in pkg.rglob("__pycache__/*.nb?"))


def _write_cache(pkg):
    for d in (pkg / "__pycache__", pkg / "kernels" / "__pycache__"):
        d.mkdir(parents=True, exist_ok=True)
        (d / "f-1.py311.nbi").write_bytes(b"index")
        (d / "f-1.py311.1.nbc").write_bytes(b"code")


def test_cache_is_kept_while_sources_stay_and_dropped_when_a_numba_source_changes(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "kernels").mkdir(parents=True)
    (pkg / "laws.py").write_text("from numba import njit\n")
    (pkg / "kernels" / "cpu.py").write_text("from numba import njit\n")
    (pkg / "plotting.py").write_text("import matplotlib\n")
    _write_cache(pkg)

    assert drop_stale_jit_cache(pkg)  # no stamp yet: unknown sources, drop
    assert _cache_files(pkg) == []
    assert (pkg / "__pycache__" / STAMP_NAME).exists()

    _write_cache(pkg)  # numba fills the cache again
    assert not drop_stale_jit_cache(pkg)
    assert len(_cache_files(pkg)) == 4

    (pkg / "plotting.py").write_text("import matplotlib  # edited\n")  # no numba code: cache stays valid
    assert not drop_stale_jit_cache(pkg)
    assert len(_cache_files(pkg)) == 4

    (pkg / "laws.py").write_text("from numba import njit  # another sampler\n")  # a callee of cpu.py's kernels
    assert drop_stale_jit_cache(pkg)
    assert _cache_files(pkg) == []
    assert not drop_stale_jit_cache(pkg)


def test_unwritable_package_is_left_alone(tmp_path, monkeypatch):
    # An installed, read-only package: nothing to stamp, no error (numba then uses its own cache directory).
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "laws.py").write_text("from numba import njit\n")

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr("pathlib.Path.mkdir", refuse)
    assert drop_stale_jit_cache(pkg) is False
    assert not (pkg / "__pycache__").exists()
