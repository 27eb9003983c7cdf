"""What docker-doctor runs on a host over SSH, run here by ``sh`` itself: the installed command
or a copy sent on stdin, in a private temporary directory that is gone afterwards (or kept for a
bundle's fetch, then removed). The SSH transport itself is tested against a real OpenSSH server
in tests/test_remote.py."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from doctor import __version__
from doctor.errors import UsageError
from doctor.remote import ssh
from tests.support.command import command

INSTALLED = Path(command()[0]).parent


def _sh(
    script: str, tmp_path: Path, path: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": path, "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    return subprocess.run(
        ["sh", "-c", script], input=stdin, capture_output=True, env=env, timeout=60
    )


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("ssh://web1", ssh.SshHost("web1")),
        ("ssh://me@10.0.0.5:2222", ssh.SshHost("10.0.0.5", "me", 2222)),
        ("ssh://me@[fd00::5]", ssh.SshHost("fd00::5", "me")),
        (
            "ssh://host/run/user/1000/docker.sock",
            ssh.SshHost("host", socket="/run/user/1000/docker.sock"),
        ),
    ],
)
def test_ssh_urls_as_the_docker_cli_takes_them(url, host):
    assert ssh.parse_url(url) == host


@pytest.mark.parametrize("url", ["ssh://", "ssh://me:secret@host", "ssh://host:port"])
def test_an_ssh_url_that_is_none_is_a_usage_error(url):
    with pytest.raises(UsageError):
        ssh.parse_url(url)


def test_the_installed_command_runs_and_its_directory_goes(tmp_path):
    done = _sh(
        ssh._run_script(["--version"], None, None, None, copy=False),
        tmp_path,
        f"{INSTALLED}:/usr/bin:/bin",
    )
    assert (done.returncode, done.stdout.decode().strip()) == (0, f"docker-doctor {__version__}")
    assert list(tmp_path.iterdir()) == []


def test_without_the_command_it_says_not_installed_and_makes_nothing(tmp_path):
    done = _sh(
        ssh._run_script(["--version"], None, None, None, copy=False), tmp_path, "/usr/bin:/bin"
    )
    assert done.returncode == ssh.NOT_INSTALLED and list(tmp_path.iterdir()) == []


def test_a_copy_sent_on_stdin_runs_with_the_arguments_and_is_removed(tmp_path):
    sent = Path(command()[0]).read_bytes()
    script = ssh._run_script(["--version"], None, None, None, copy=True)
    done = _sh(script, tmp_path, "/usr/bin:/bin", stdin=sent)
    assert (done.returncode, done.stdout.decode().strip()) == (0, f"docker-doctor {__version__}")
    assert list(tmp_path.iterdir()) == []


def test_a_kept_directory_holds_what_is_fetched_until_it_is_removed(tmp_path):
    token = "0123456789abcdef"
    # the command's output there stands in for the bundle: `--output DIR/bundle.tar.gz` is added
    writes = tmp_path / "bin"
    writes.mkdir()
    (writes / "docker-doctor").write_text('#!/bin/sh\n[ "$1" = --output ] && echo archive > "$2"\n')
    (writes / "docker-doctor").chmod(0o755)
    made = _sh(
        ssh._run_script([], None, token, "bundle.tar.gz", copy=False),
        tmp_path,
        f"{writes}:/usr/bin:/bin",
    )
    assert made.returncode == 0, made.stderr
    kept = tmp_path / f"docker-doctor-{token}"
    assert oct(kept.stat().st_mode & 0o777) == "0o700"
    fetched = _sh(ssh._fetch_script(token), tmp_path, "/usr/bin:/bin")
    assert fetched.stdout == b"archive\n"
    _sh(ssh._remove_script(token), tmp_path, "/usr/bin:/bin")
    assert not kept.exists()


def test_a_directory_already_there_is_refused_not_reused(tmp_path):
    token = "fedcba9876543210"
    (tmp_path / f"docker-doctor-{token}").mkdir()  # another's, made first
    done = _sh(
        ssh._run_script([], None, token, "bundle.tar.gz", copy=True),
        tmp_path,
        "/usr/bin:/bin",
        stdin=b"#!/bin/sh\n",
    )
    assert done.returncode == ssh.NO_TEMPORARY_DIRECTORY


def test_a_copy_for_another_machine_is_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(ssh.platform, "machine", lambda: "riscv128")
    done = _sh(
        ssh._run_script(["--version"], None, None, None, copy=True),
        tmp_path,
        "/usr/bin:/bin",
        stdin=b"#!/bin/sh\necho ran\n",
    )
    assert done.returncode == ssh.CANNOT_RUN_COPY and b"ran" not in done.stdout
    assert b"riscv128" in done.stderr and list(tmp_path.iterdir()) == []


def test_the_socket_in_the_url_is_the_engine_there_and_the_run_knows_it_came_over_ssh(tmp_path):
    shows = tmp_path / "bin"
    shows.mkdir()
    (shows / "docker-doctor").write_text(f'#!/bin/sh\necho "$DOCKER_HOST ${ssh.OVER_SSH_ENV}"\n')
    (shows / "docker-doctor").chmod(0o755)
    done = _sh(
        ssh._run_script([], "/run/user/1000/docker.sock", None, None, copy=False),
        tmp_path,
        f"{shows}:/usr/bin:/bin",
    )
    assert done.stdout.decode().strip() == "unix:///run/user/1000/docker.sock 1"
    assert os.listdir(tmp_path) == ["bin"]


def test_a_run_that_came_over_ssh_does_not_go_on_over_ssh():
    """The engine there is ssh:// again (DOCKER_HOST in that login's profile): one line, not a
    chain of logins (the script there marks its run: see the test above)."""
    again = subprocess.run(
        [*command(), "localhost:1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DOCKER_HOST": "ssh://elsewhere", ssh.OVER_SSH_ENV: "1"},
    )
    assert again.returncode == 3 and "came over SSH" in again.stderr, again.stderr


NASTY = "it's \\\\ $(touch {mark}) `touch {mark}` \"x\nnew line\\"


@pytest.mark.parametrize("login", ["sh", "bash", "zsh", "fish", "csh"])
def test_the_script_reaches_sh_as_it_is_whatever_the_login_shell_there(login, tmp_path):
    """sshd hands the command line to the login shell, which reads quotes, backslashes and
    newlines its own way (fish takes \\' in single quotes as an escape, csh refuses a newline
    in them): the script goes as one base64 word that only sh decodes."""
    shell = shutil.which(login)
    if shell is None:
        pytest.skip(f"{login} is not installed here")
    mark = tmp_path / "ran"
    nasty = NASTY.format(mark=mark)
    script = f"printf %s {shlex.quote(nasty)}\n"
    done = subprocess.run(
        [shell, "-c", ssh.remote_command(script)], capture_output=True, text=True, timeout=30
    )
    assert (done.stdout, done.returncode) == (nasty, 0), done.stderr
    assert not mark.exists()
