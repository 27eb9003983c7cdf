"""A host reached over SSH, diagnosed there: a real OpenSSH server on a host of its own (a
network and mount namespace with its own engine: tests.support.remote). The report is the
remote host's (its container publishes the port; this host has none), shown here; bundles come
back whole and leave nothing there; SSH refused, an unknown host key and no engine there are one
line and exit 3."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from doctor.snapshot.store import Snapshot
from tests.support import staging
from tests.support.command import COMMAND_ENV, doctor
from tests.support.remote import RemoteHost

pytestmark = pytest.mark.standalone  # run again against the standalone executable, which copies
STANDALONE = bool(os.environ.get(COMMAND_ENV))
HTTPD = ["httpd", "-f", "-h", "/www", "-p"]


@pytest.fixture(scope="module")
def remote(
    engine: None, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RemoteHost]:
    """The remote host, with docker-doctor installed there (on its PATH) unless this run tests
    the standalone executable, which copies itself there instead."""
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        pytest.fail("OpenSSH's server is not installed (scripts/test installs openssh-server)")
    host = RemoteHost(
        tmp_path_factory.mktemp("remote"), f"ddr{secrets.token_hex(3)}", installed=not STANDALONE
    )
    host.start()
    try:
        yield host
    finally:
        host.close()


@pytest.fixture(scope="module")
def published_there(remote: RemoteHost) -> Iterator[tuple[str, int]]:
    """A web server there, published on a port nothing of this host holds; proven with a real
    client from there."""
    port = staging.Stage().free_port()
    name = f"dd-{secrets.token_hex(3)}-web"
    remote.docker("run", "-d", "--name", name, "-p", f"{port}:80", remote.image, *HTTPD, "80")
    try:
        deadline = time.monotonic() + 10
        while remote.connect("127.0.0.1", port) != "connected":
            assert time.monotonic() < deadline, "the web server there is not reachable there"
            time.sleep(0.1)
        yield name, port
    finally:
        remote.docker("rm", "-f", name)


def test_a_diagnosis_runs_there_and_its_report_shows_here(remote, published_there) -> None:
    name, port = published_there
    here = doctor(f"localhost:{port}", "--json")
    assert json.loads(here.stdout)["findings"][0]["code"] == "NOTHING_ON_PORT"  # not this host's
    done = doctor("-H", remote.url, f"localhost:{port}", "--json", env=remote.ssh_env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "reachable"
    assert any(name in hop["detail"] for hop in report["path"])  # its container, there
    assert remote.files_there() == []  # a copy, if one was sent, is gone


def test_docker_host_and_a_context_go_there_too(remote, published_there, tmp_path) -> None:
    _, port = published_there
    by_env = doctor(
        f"localhost:{port}", "--json", env={**remote.ssh_env, "DOCKER_HOST": remote.url}
    )
    assert json.loads(by_env.stdout)["verdict"] == "reachable", by_env.stderr
    subprocess.run(
        [
            "docker",
            "--config",
            str(tmp_path),
            "context",
            "create",
            "far",
            "--docker",
            f"host={remote.url}",
        ],
        check=True,
        capture_output=True,
    )
    by_context = doctor(
        "--config",
        str(tmp_path),
        "--context",
        "far",
        f"localhost:{port}",
        "--json",
        env=remote.ssh_env,
    )
    assert json.loads(by_context.stdout)["verdict"] == "reachable", by_context.stderr


def test_a_bundle_is_written_there_and_fetched_whole(remote, published_there, tmp_path) -> None:
    name, _ = published_there
    output = tmp_path / "there.tar.gz"
    done = doctor("-H", remote.url, "bundle", "-o", str(output), "--json", env=remote.ssh_env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["path"] == str(output) and summary["bytes"] == output.stat().st_size
    snapshot = Snapshot.load(output)
    containers = json.loads(snapshot.artifacts["engine/containers.json"])
    assert [c["Name"].lstrip("/") for c in containers] == [name]  # the remote engine's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there.tar.gz"]  # no partial file
    assert output.stat().st_mode & 0o777 == 0o600  # as a bundle written here: it describes a host
    assert remote.files_there() == []
    into = tmp_path / "into"
    into.mkdir()
    named = doctor("-H", remote.url, "bundle", "-o", str(into), "--json", env=remote.ssh_env)
    written = Path(json.loads(named.stdout)["path"])  # -o DIR: the default name, in DIR
    assert written.parent == into and written.name.startswith(
        f"docker-doctor-bundle-{remote.address}-"
    )
    with tarfile.open(output) as archive:
        assert "report.json" in {Path(m.name).name for m in archive.getmembers()}


@pytest.mark.skipif(STANDALONE, reason="the standalone executable copies itself there")
def test_without_docker_doctor_there_a_python_installation_says_so(remote) -> None:
    with remote.without_docker_doctor():
        done = doctor("-H", remote.url, "localhost:1", env=remote.ssh_env)
    _one_line(done, "docker-doctor is not installed there")


def test_ssh_refused_an_unknown_host_key_and_no_engine_there(remote, tmp_path) -> None:
    refused = doctor("-H", f"ssh://root@{remote.address}:2", "localhost:1", env=remote.ssh_env)
    _one_line(refused, "the connection was refused")
    unknown = tmp_path / "ssh_config"
    unknown.write_text(
        (remote.directory / "ssh_config")
        .read_text()
        .replace(str(remote.directory / "known_hosts"), "/dev/null")
    )
    strange = doctor(
        "-H", remote.url, "localhost:1", env={"DOCKER_DOCTOR_SSH": f"ssh -F {unknown}"}
    )
    _one_line(strange, "host key is not known")
    no_engine = doctor("-H", f"{remote.url}/run/no-such.sock", "localhost:1", env=remote.ssh_env)
    _one_line(no_engine, "no-such.sock")  # the remote doctor's own line, passed on
    assert remote.files_there() == []


def _one_line(done: subprocess.CompletedProcess[str], said: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1, done.stderr
    assert lines[0].startswith("docker-doctor: ") and said in lines[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
