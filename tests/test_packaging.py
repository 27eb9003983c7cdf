"""What a user installs: the wheel holds every module and data file, and the suite tests it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Where each source folder lands in the wheel: probes/ and rules/ must not be top-level
# packages there (PyPI's `probes` and `rules` own those names).
INSTALLED_AS = {"doctor": "doctor", "probes": "doctor/probes", "rules": "doctor/rules"}
NOT_SHIPPED = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "__pycache__", "*.pyc", "*.egg-info"
)


def shipped_files() -> list[str]:
    """Every file of the three source folders, as its path inside the wheel."""
    names = []
    for folder, inside in INSTALLED_AS.items():
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                names.append(f"{inside}/{path.relative_to(ROOT / folder).as_posix()}")
    return names


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[zipfile.ZipFile, tarfile.TarFile]:
    """The sdist and the wheel built from it, as `python -m build` makes them, from a copy of
    the tree (so that the build writes nothing into the checkout)."""
    work = tmp_path_factory.mktemp("build")
    shutil.copytree(ROOT, work / "src", ignore=NOT_SHIPPED)
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(work / "src")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = (work / "dist").glob("*.whl")
    (sdist,) = (work / "dist").glob("*.tar.gz")
    return zipfile.ZipFile(wheel), tarfile.open(sdist)


def test_the_wheel_holds_every_module_and_data_file(built):
    wheel, _ = built
    names = set(wheel.namelist())
    missing = [name for name in shipped_files() if name not in names]
    assert missing == []
    assert "doctor/report/schema/report-v1.json" in names and "doctor/py.typed" in names


def test_the_wheel_installs_nothing_but_doctor(built):
    wheel, _ = built
    tops = {name.split("/")[0] for name in wheel.namelist()}
    (dist_info,) = {top for top in tops if top.endswith(".dist-info")}
    data = dist_info.replace(".dist-info", ".data")
    assert tops - {dist_info, data} == {"doctor"}  # no top-level probes or rules
    entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert "[docker_doctor]\nprobes = doctor.probes\nrules = doctor.rules" in entry_points
    # The command is our own script (pip rewrites its #!python), not a console_scripts launcher
    assert "console_scripts" not in entry_points
    assert wheel.read(f"{data}/scripts/docker-doctor").startswith(b"#!python\n")


def test_the_installed_command_starts_with_nothing_it_does_not_need():
    """`docker-doctor --version` as a user runs it: the launcher pip would write for a
    console_scripts entry imports `re` (40% of this command's time); ours imports only doctor's
    own two modules beyond what the interpreter imports to start."""
    command = Path(sys.executable).parent / "docker-doctor"
    done = subprocess.run(
        [str(command), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert done.returncode == 0 and done.stdout.startswith("docker-doctor ")
    bare = subprocess.run(
        [sys.executable, "-c", "pass"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "PYTHONPROFILEIMPORTTIME": "1"},
    )

    def imported(stderr: str) -> set[str]:
        return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if "|" in line}

    assert imported(done.stderr) - imported(bare.stderr) - {"imported package"} == {
        "__future__",
        "doctor",
        "doctor.cli",
    }


def test_the_sdist_carries_the_test_suite(built):
    _, sdist = built
    names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {
        "setup.py",
        "pyproject.toml",
        "tests/conftest.py",
        "tests/support/staging.py",
        "fixtures/snapshots/healthy/manifest.json",
    } <= names


def test_the_suite_imports_the_installed_package_not_the_checkout():
    import doctor

    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert Path(doctor.__file__).resolve().is_relative_to(site_packages), (
        f"doctor is imported from {doctor.__file__}: run the suite with scripts/test, which "
        "installs the wheel"
    )
    assert str(ROOT) not in {str(Path(p or ".").resolve()) for p in sys.path}
