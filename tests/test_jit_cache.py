"""numba's cache is dropped when a source file with numba code changes (numba checks only the defining file)."""

from fmsim.running.jit_cache import STAMP_NAME, drop_stale_jit_cache, numba_cache_dirs


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

    assert drop_stale_jit_cache(pkg, cache_dir="")  # no stamp yet: unknown sources, drop
    assert _cache_files(pkg) == []
    assert (pkg / "__pycache__" / STAMP_NAME).exists()

    _write_cache(pkg)  # numba fills the cache again
    assert not drop_stale_jit_cache(pkg, cache_dir="")
    assert len(_cache_files(pkg)) == 4

    (pkg / "plotting.py").write_text("import matplotlib  # edited\n")  # no numba code: cache stays valid
    assert not drop_stale_jit_cache(pkg, cache_dir="")
    assert len(_cache_files(pkg)) == 4

    (pkg / "laws.py").write_text("from numba import njit  # another sampler\n")  # a callee of cpu.py's kernels
    assert drop_stale_jit_cache(pkg, cache_dir="")
    assert _cache_files(pkg) == []
    assert not drop_stale_jit_cache(pkg, cache_dir="")


def test_unwritable_package_is_left_alone(tmp_path, monkeypatch):
    # An installed, read-only package: nothing to stamp, no error (numba then uses its own cache directory).
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "laws.py").write_text("from numba import njit\n")

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr("pathlib.Path.mkdir", refuse)
    assert drop_stale_jit_cache(pkg, cache_dir="") is False
    assert not (pkg / "__pycache__").exists()


def test_the_cache_under_numba_cache_dir_is_dropped_too(tmp_path):
    # With NUMBA_CACHE_DIR set, numba caches there, one folder per source folder, and checks each cached
    # function against its own file only: a changed callee elsewhere must drop that cache as well.
    pkg, cache = tmp_path / "pkg", tmp_path / "numba-cache"
    (pkg / "kernels").mkdir(parents=True)
    (pkg / "laws.py").write_text("from numba import njit\n")
    (pkg / "kernels" / "cpu.py").write_text("from numba import njit\n")
    folders = numba_cache_dirs(pkg, str(cache))
    assert len(folders) == 2 and all(f.parent == cache for f in folders)

    def fill():
        for f in folders:
            f.mkdir(parents=True, exist_ok=True)
            (f / "cpu.f-1.py311.nbi").write_bytes(b"index")
            (f / "cpu.f-1.py311.1.nbc").write_bytes(b"code")

    def cached():
        return sorted(p.name for p in cache.rglob("*.nb?"))

    fill()
    assert drop_stale_jit_cache(pkg, cache_dir=str(cache))
    assert cached() == []
    fill()
    assert not drop_stale_jit_cache(pkg, cache_dir=str(cache))
    assert len(cached()) == 4
    (pkg / "laws.py").write_text("from numba import njit  # another sampler\n")
    assert drop_stale_jit_cache(pkg, cache_dir=str(cache))
    assert cached() == []


def test_numba_caches_where_fmsim_looks(tmp_path):
    # The folder names come from numba's own locator: a function cached under NUMBA_CACHE_DIR lands in one.
    import subprocess
    import sys
    import textwrap

    src = tmp_path / "src"
    src.mkdir()
    (src / "mod.py").write_text(textwrap.dedent("""
        from numba import njit
        @njit(cache=True)
        def f(x):
            return x + 1
    """))
    cache = tmp_path / "numba-cache"
    env = {**__import__("os").environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-c", "import mod; mod.f(1)"], env=env, check=True)
    (folder,) = numba_cache_dirs(src, str(cache))
    assert list(folder.glob("mod.f-*.nbi"))
