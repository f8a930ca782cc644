"""The set-up scripts skip what is already done: pip runs only when what it installs from
(pyproject.toml, the JavaScript lock file, the Python version, the extras) changed since the last
install. Run on a copy of the scripts with a virtual environment that has no pip at all, so that
a run which calls pip fails."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALLING = "==> installing the project into .venv"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The set-up script, the files it hashes and a pip-less .venv, in ``tmp_path``."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup.sh", tmp_path / "scripts")
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    (tmp_path / "js").mkdir()
    for name in ("package.json", "yarn.lock"):
        shutil.copy(REPO / "js" / name, tmp_path / "js")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / ".venv"], check=True)
    return tmp_path


def stamp(project: Path, extras: str) -> None:
    """Record an install of ``extras`` made from the project's current files."""
    version = subprocess.run(
        [project / ".venv" / "bin" / "python", "-V"], capture_output=True, check=True
    ).stdout
    files = [
        project / "pyproject.toml",
        project / "js" / "package.json",
        project / "js" / "yarn.lock",
    ]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files) + version).hexdigest()
    (project / ".venv" / "swan-install.stamp").write_text(f"{digest} {extras}\n")


def set_up(project: Path, extras: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"SWAN_EXTRAS={extras!r} source scripts/setup.sh"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_second_set_up_of_an_unchanged_project_does_not_run_pip(project):
    stamp(project, "")
    done = set_up(project)
    assert done.returncode == 0, done.stderr
    assert INSTALLING not in done.stdout


def test_an_install_with_the_test_extras_also_serves_the_plain_set_up(project):
    stamp(project, "[test]")
    assert set_up(project).returncode == 0
    assert INSTALLING in set_up(project, "[dev]").stdout


def test_a_changed_pyproject_runs_pip_again(project):
    stamp(project, "")
    with open(project / "pyproject.toml", "a") as f:
        f.write("\n# a new dependency\n")
    done = set_up(project)
    assert INSTALLING in done.stdout
    assert done.returncode != 0  # this environment has no pip: proof that pip was called
