"""What a user installs and reads: one version, the licence, a short README, no development paths."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import fmsim

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_written_once_and_the_changelog_has_it():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "fmsim.__version__"}
    newest = re.search(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert newest and newest.group(1) == fmsim.__version__
    out = subprocess.run([sys.executable, "-m", "fmsim.cli", "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == f"fmsim {fmsim.__version__}"


def test_licence_and_citation_are_there():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "MIT"  # an SPDX expression (PEP 639; the table form is deprecated)
    assert pyproject["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "cff-version:" in (ROOT / "CITATION.cff").read_text()


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    assert "python -m pip install -e . && fmsim demo" in lines


def test_nothing_a_user_reads_names_the_development_tree():
    # Users have no ../shared folder; messages, docs and examples must not send them there.
    texts = [*ROOT.glob("fmsim/**/*.py"), *ROOT.glob("docs/**/*.md"), *ROOT.glob("docs/**/*.rst"),
             *ROOT.glob("examples/*.py"), ROOT / "README.md"]
    offenders = [str(p.relative_to(ROOT)) for p in texts if "../shared" in p.read_text()]
    assert offenders == []


def test_every_experiment_runs_as_a_module():
    from fmsim import cli

    for name in cli.EXPERIMENTS:
        assert (ROOT / "fmsim" / "experiments" / f"{name}.py").read_text().count('if __name__ == "__main__":') == 1
