"""Storage promises at their edges: a flipped byte in every dataset of a run is caught, by `fmsim verify` and by
`fmsim.open`; a disk that fills at any moment, or is full before the run, ends in one line and exit 2, with no
traceback and no crash, and leaves no file or a resumable one."""

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

import fmsim
from fmsim import cli
from fmsim.files.h5io import DamagedFileError
from fmsim.running.simulate import make_config

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("edges") / "run.h5"
    cfg = make_config(fmsim.FullyConnected((4, 5, 3)), fmsim.Init("uniform", 2.0), 2500, 3, method="full",
                      record="layers", chunk_size=1024)
    fmsim.run_to_file(cfg, path)
    return path


def _datasets(path) -> list[str]:
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def _raw_span(path, name) -> tuple[int, int]:
    """Offset and size in the file of the dataset's raw data (its first chunk, for a chunked one)."""
    with h5py.File(path, "r") as f:
        ds = f[name]
        if ds.chunks:
            info = ds.id.get_chunk_info(0)
            return info.byte_offset, info.size
        return ds.id.get_offset(), ds.id.get_storage_size()


def _flip(path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


def _caught(path, capsys) -> str:
    """Both readers refuse the damaged file: `fmsim verify` (exit 2, the damage named) and `fmsim.open`."""
    assert cli.main(["verify", str(path)]) == 2, capsys.readouterr()
    err = capsys.readouterr().err
    with pytest.raises(DamagedFileError):
        fmsim.open(path)
    return err


def test_the_file_has_the_datasets_this_test_flips(run_file):
    assert _datasets(run_file) == sorted(
        ["chunks_done", "final", "fm2", "layer", "log_final", "log_lengths", "net", "summary/log_mean",
         "summary/log_of_mean", "summary/log_of_var", "summary/log_var", "summary/mean", "summary/moment",
         "summary/moments", "summary/n_zero", "summary/quantity", "summary/var"])


@pytest.mark.parametrize("name", ["chunks_done", "final", "fm2", "layer", "log_final", "log_lengths", "net",
                                  "summary/log_mean", "summary/log_of_mean", "summary/log_of_var", "summary/log_var",
                                  "summary/mean", "summary/moment", "summary/moments", "summary/n_zero",
                                  "summary/quantity", "summary/var"])
def test_a_flipped_byte_in_every_dataset_is_caught(run_file, tmp_path, capsys, name):
    path = tmp_path / "flipped.h5"
    shutil.copy(run_file, path)
    offset, size = _raw_span(path, name)
    _flip(path, offset + size // 2)  # a byte of its data (of a label's heap reference, for the label datasets)
    err = _caught(path, capsys)
    assert name.split("/")[-1] in err or "chunks_done" in err or "counts" in err, err


def _labels(path):
    with h5py.File(path, "r") as f:
        return [f[n][()].tolist() for n in ("summary/quantity", "summary/moment")]


@pytest.mark.parametrize("label", [b"log_count", b"M_1"])
def test_a_flipped_byte_in_a_label_text_is_caught(run_file, tmp_path, capsys, label):
    """The label datasets hold references into HDF5's global heap, whose text has no checksum: it is checked
    against the labels the configuration gives."""
    path = tmp_path / "label.h5"
    data = run_file.read_bytes()
    for offset in (i for i in range(len(data)) if data.startswith(label, i)):  # the copy the labels read
        shutil.copy(run_file, path)
        _flip(path, offset)
        if _labels(path) != _labels(run_file):
            break
    else:
        pytest.fail(f"no copy of {label} in the file is a label's text")
    err = _caught(path, capsys)
    assert "summary/moment" in err or "summary/quantity" in err, err


@pytest.mark.parametrize("text", [b'"seed": 3', b"variance of M_1", b"fully_connected"])
def test_a_flipped_byte_in_an_attribute_text_is_caught(run_file, tmp_path, capsys, text):
    """String attributes (the configuration's JSON, long names, the flat configuration) also live in the global
    heap: the run's attribute digest covers them."""
    path = tmp_path / "attribute.h5"
    shutil.copy(run_file, path)
    data = path.read_bytes()
    _flip(path, data.index(text) + len(text) - 1)
    err = _caught(path, capsys)
    assert "differ from their checksum" in err, err


# ----------------------------------------------------------------------------- a disk that fills, for real
def _fmsim(args, timeout=300):
    return subprocess.run([sys.executable, "-m", "fmsim.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tmpfs(tmp_path):
    """``mount(size)``: a tmpfs of that size under tmp_path (root only: skipped elsewhere)."""
    mounted = []

    def mount(size: str):
        mnt = tmp_path / f"tmpfs{len(mounted)}"
        mnt.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _one_clean_line(r):
    assert r.returncode in (0, 2), (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr[-3000:]
    if r.returncode == 2:
        assert r.stderr.count("\n") == 1 and ": error: " in r.stderr, r.stderr[-3000:]


def _data(path, group="/"):
    out = {}
    with h5py.File(path, "r") as f:
        f[group].visititems(lambda name, obj: out.__setitem__(name, obj[()].tobytes() if obj.dtype.kind != "O" else
                                                              obj[()].tolist()) if isinstance(obj, h5py.Dataset)
                            else None)
    return out


SIMULATE = ["simulate", "--depth", "3", "--width", "4", "--nets", "5000", "--chunk-size", "1024", "--record",
            "layers", "--quiet"]
SWEEP = ["sweep", "--depths", "2,3", "--width", "4", "--nets", "20000", "--chunk-size", "1024", "--record", "layers",
         "--quiet"]


@pytest.mark.parametrize(("command", "sizes"), [
    (SIMULATE, ["4k", "16k", "36k", "64k", "128k"]),  # from no room for a superblock to a chunk in the middle
    (SWEEP, ["8k", "512k", "1m"]),
])
def test_a_disk_that_fills_at_any_moment_gives_one_line_and_a_resumable_file(tmpfs, tmp_path, command, sizes):
    clean = tmp_path / "clean.h5"
    assert _fmsim([*command, "--out", str(clean)]).returncode == 0
    moments = set()
    for size in sizes:
        mnt = tmpfs(size)
        out = mnt / "run.h5"
        r = _fmsim([*command, "--out", str(out)])
        _one_clean_line(r)
        moments.add(r.stderr.split(" while ")[-1].split(";")[0].split(" (")[0] if r.returncode else "done")
        if out.exists():  # what is left is a file that holds what it claims, and resumes
            assert _fmsim(["verify", str(out)]).returncode == 0
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        assert _fmsim([*command, "--out", str(out)]).returncode == 0
        with h5py.File(clean, "r") as f:
            groups = [g for g in f if isinstance(f[g], h5py.Group) and g != "summary"] or ["/"]
        for group in groups if command is SWEEP else ["/"]:
            assert _data(out, group) == _data(clean, group), (size, group)
    assert "writing chunk" in " ".join(moments), moments  # at least one size fills the disk mid-run


def test_a_disk_already_full_is_named_as_full(tmpfs):
    mnt = tmpfs("1m")
    subprocess.run(["dd", "if=/dev/zero", f"of={mnt / 'filler'}", "bs=64k"], capture_output=True)
    r = _fmsim([*SIMULATE, "--out", str(mnt / "run.h5")])
    _one_clean_line(r)
    assert r.returncode == 2 and "no space left on device" in r.stderr and "another process" not in r.stderr, r.stderr
    assert not (mnt / "run.h5").exists() and sorted(p.name for p in mnt.iterdir()) == ["filler"]


def test_an_experiment_on_a_disk_that_fills_gives_one_line(tmpfs):
    """``fmsim run fig1a`` lays out its runs, writes them, then its figure: each can meet the full disk."""
    for size in ("64k", "1600k"):
        mnt = tmpfs(size)
        r = _fmsim(["run", "fig1a", "--quick", "--quiet", "--out", str(mnt / "q")])
        _one_clean_line(r)
        assert r.returncode == 2 and ("no space left on device" in r.stderr.lower()), r.stderr
        assert not list((mnt / "q").glob("*.writing-*")), "a half-written figure was left"


def test_a_run_beside_other_runs_in_its_subgroups_keeps_its_checksum(tmp_path, capsys):
    """A run at ``/`` and another in ``/sub``: writing the second leaves the first's attribute digest whole (the
    digest covers the run's own objects, not runs beside it)."""
    path = tmp_path / "nested.h5"
    cfg = make_config(fmsim.FullyConnected((4, 5, 3)), fmsim.Init("uniform", 2.0), 1024, 3, method="full",
                      chunk_size=1024)
    fmsim.run_to_file(cfg, path)
    fmsim.run_to_file(cfg, path, group="sub")
    fmsim.run_to_file(cfg, path, group="he/depth_2")
    assert cli.main(["verify", str(path)]) == 0, capsys.readouterr()
    np.testing.assert_array_equal(fmsim.open(path).final, fmsim.open(path, "sub").final)
