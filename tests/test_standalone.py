"""The standalone executable runs where there is no Python and no C library at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.command import COMMAND_ENV, command

pytestmark = pytest.mark.standalone
FIXTURE = (
    Path(__file__).resolve().parent.parent / "fixtures" / "snapshots" / "app-bound-to-loopback"
)


@pytest.fixture
def empty_root(tmp_path: Path) -> Path:
    """A root file system holding the executable, a snapshot and /tmp: nothing else."""
    if not os.environ.get(COMMAND_ENV):
        pytest.skip(f"needs the standalone executable in ${COMMAND_ENV} (scripts/test sets it)")
    if os.geteuid() != 0:
        pytest.skip("needs root to chroot")
    root = tmp_path / "root"
    for folder in ("bin", "tmp", "proc"):
        (root / folder).mkdir(parents=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(command()[0], root / "bin" / "docker-doctor")
    shutil.copytree(FIXTURE, root / "snapshot")
    return root


def in_root(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A private mount namespace with its own /proc, so the host's mounts are untouched.
    return subprocess.run(
        [
            shutil.which("unshare"),
            "--mount",
            "--pid",
            "--fork",
            f"--mount-proc={root}/proc",
            shutil.which("chroot"),
            str(root),
            "/bin/docker-doctor",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/bin"},
    )


def test_it_diagnoses_a_snapshot_in_an_empty_root(empty_root):
    assert not list(empty_root.rglob("libc.so*")) and not list(empty_root.rglob("python*"))
    done = in_root(empty_root, "localhost:8080", "--snapshot", "/snapshot", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["verdict"], report["findings"][0]["code"]) == (
        "unreachable",
        "APP_BOUND_TO_LOOPBACK",
    )
    done = in_root(empty_root, "explain", "PORT_NOT_PUBLISHED", "--json")
    assert json.loads(done.stdout)["detected_by"] == ["port-not-published"]
