"""A host reached over SSH (``-H ssh://…``, ``DOCKER_HOST``, or a context's endpoint), diagnosed
on that host.

Its Engine API would answer for containers, not for the host's firewall, sockets and network
namespaces, so docker-doctor runs *there*, over the user's own ``ssh`` (their keys, agent,
``~/.ssh/config`` and known hosts), as ``docker -H ssh://`` runs ``docker system dial-stdio``
there. What runs is the ``docker-doctor`` on that host's PATH or, when there is none and this is
the standalone executable, a copy of it in a private temporary directory there, removed when the
run ends. Its report, its messages and its exit status are shown here unchanged. ``bundle``
writes the archive in such a directory there, fetches it, and removes it there.

``DOCKER_DOCTOR_SSH`` replaces the ``ssh`` command (as ``GIT_SSH_COMMAND`` does git's): another
client, or ``ssh -F FILE`` with options of its own.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import secrets
import shlex
import subprocess
import sys
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from msgspec import Struct

from doctor import PROG
from doctor.errors import CannotDiagnose, UsageError

SSH_ENV = "DOCKER_DOCTOR_SSH"
#: set for the run there: an engine there that is ssh:// again would go round in circles
OVER_SSH_ENV = "DOCKER_DOCTOR_OVER_SSH"
#: what a copy of the standalone executable adds to a run's time bound: tens of MB to send
COPY_TIME = 120.0
#: the remote script's own exit statuses (the doctor's are 0-3, 130, 141 and 143)
NOT_INSTALLED = 127  # as a shell says "command not found"
CANNOT_RUN_COPY = 126  # as a shell says "cannot execute": another system or machine
NO_TEMPORARY_DIRECTORY = 125
SSH_FAILED = 255  # ssh's own: it could not connect, authenticate or verify the host
#: what a docker-doctor run ends with (doctor.errors.ExitStatus): shown here as it is
DOCTOR_STATUSES = frozenset({0, 1, 2, 3, 130, 141, 143})
#: the first words of what ssh says when it fails, and what that means here
SSH_ERRORS = (
    ("Host key verification failed", "its host key is not known here (ssh-keyscan, known_hosts)"),
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "its host key has changed"),
    ("Permission denied", "the login was refused (no key it accepts)"),
    ("Connection refused", "the connection was refused (no SSH server on that port)"),
    ("Connection timed out", "no answer"),
    ("Could not resolve hostname", "the name does not resolve"),
    ("No route to host", "no route to it"),
)


class SshHost(Struct, frozen=True):
    host: str
    user: str | None = None
    port: int | None = None
    socket: str | None = None  # the Engine's socket there, when the URL names one

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host and self.port else self.host
        return f"{user}{host}" + (f":{self.port}" if self.port else "")


def parse_url(url: str) -> SshHost:
    """``ssh://[USER@]HOST[:PORT][/SOCKET]``, as the docker CLI takes it."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"invalid SSH URL {url}: bad port") from None
    if parts.scheme != "ssh" or not parts.hostname:
        raise UsageError(f"invalid SSH URL {url}: want ssh://[USER@]HOST[:PORT][/SOCKET]")
    if parts.password is not None:
        raise UsageError(f"invalid SSH URL {url}: a password does not go in it (use a key)")
    return SshHost(parts.hostname, parts.username, port, parts.path.rstrip("/") or None)


def diagnose(url: str, args: list[str], timeout: float) -> int:
    """Run the diagnosis ``args`` (docker-doctor's own command line) on the host at ``url``;
    its report goes to stdout here, its messages to stderr; its exit status."""
    _not_again(url)
    return _run_there(parse_url(url), args, timeout)


def bundle(
    url: str, args: list[str], output: Path, timeout: float
) -> tuple[int, dict[str, object] | None]:
    """Write a bundle on the host at ``url`` (``args``: bundle's options but -o and --json),
    fetch it to ``output`` (whole, or not at all) and remove it there. The remote run's exit
    status, and its JSON summary with the path here (None when it failed: it said why)."""
    _not_again(url)
    host = parse_url(url)
    token = secrets.token_hex(8)
    said_summary = bytearray()
    reached = False  # whether the run there began: else there is nothing there to remove
    try:
        status = _run_there(
            host,
            ["bundle", *args, "--json"],
            timeout,
            said_summary,
            keep=token,
            output="bundle.tar.gz",
        )
        reached = True
        if status != 0:
            return status, None
        try:
            summary: dict[str, object] = json.loads(bytes(said_summary))
            size = int(summary["bytes"])  # type: ignore[call-overload]
        except (ValueError, KeyError, TypeError):
            raise CannotDiagnose(f"{host}: its docker-doctor gave no bundle summary") from None
        _fetch(host, token, output, size, timeout)
    except CannotDiagnose:
        if not reached:  # refused, unknown, or silent: the removal would wait as long again
            token = ""
        raise
    finally:
        if token:
            with contextlib.suppress(CannotDiagnose):  # what stopped the run says more
                _session(host, _remove_script(token), 30.0)  # gone there, whatever happened
    return status, {**summary, "path": str(output), "bytes": size}


def _fetch(host: SshHost, token: str, output: Path, size: int, timeout: float) -> None:
    """The bundle there, into ``output`` here: whole (its summary's size), or not at all; made
    0600, as a bundle written here is (it describes a host)."""
    partial = output.with_name(f".{output.name}.{token}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as archive:
            fetched, said = _session(
                host, _fetch_script(token), COPY_TIME + timeout, stdout=archive
            )
        if fetched != 0 or partial.stat().st_size != size:
            raise CannotDiagnose(f"{host}: the bundle did not come whole: {_last(said)}")
        partial.replace(output)
    except OSError as exc:
        raise CannotDiagnose(
            f"cannot write the bundle to {output}: {exc.strerror or exc}"
        ) from None
    finally:
        partial.unlink(missing_ok=True)


def _not_again(url: str) -> None:
    if os.environ.get(OVER_SSH_ENV):
        raise CannotDiagnose(
            f"this run came over SSH, and the engine it is given here is {url} again: "
            "point DOCKER_HOST (or the context) here at this host's own engine"
        )


def _run_there(
    host: SshHost,
    args: list[str],
    timeout: float,
    stdout: IO[bytes] | bytearray | None = None,
    keep: str | None = None,
    output: str | None = None,
) -> int:
    """``docker-doctor ARGS`` there (the installed one, else a copy of this standalone one); what
    it says on stderr is shown here as it is. Its exit status."""
    script = _run_script(args, host.socket, keep, output, copy=False)
    status, said = _session(host, script, timeout + 10, stdout=stdout)
    if status == NOT_INSTALLED:
        executable = _standalone()
        if executable is None:
            raise CannotDiagnose(
                f"{host}: docker-doctor is not installed there (not on the PATH of its SSH "
                "login); install it there, or run the standalone executable here, which copies "
                "itself there for the run"
            )
        script = _run_script(args, host.socket, keep, output, copy=True)
        with executable.open("rb") as sent:
            status, said = _session(host, script, timeout + COPY_TIME, stdout=stdout, stdin=sent)
    if status not in DOCTOR_STATUSES:  # the script's own, or a copy that could not start
        raise CannotDiagnose(f"{host}: {_last(said) or f'exit status {status}'}")
    sys.stderr.write(said)
    return status


def _session(
    host: SshHost,
    script: str,
    timeout: float,
    stdout: IO[bytes] | bytearray | None = None,
    stdin: IO[bytes] | None = None,
) -> tuple[int, str]:
    """Run ``script`` with ``sh`` there; its exit status and what it said on stderr."""
    ssh = shlex.split(os.environ.get(SSH_ENV) or "ssh")
    command = [
        *ssh,
        "-o",
        "LogLevel=ERROR",  # no banner or notice mixed into the report's messages
        "-o",
        "BatchMode=yes",  # never a prompt: a password or an unknown host key is an error
        "-o",
        f"ConnectTimeout={max(1, math.ceil(min(timeout, 30)))}",
        *(["-l", host.user] if host.user else []),
        *(["-p", str(host.port)] if host.port else []),
        "--",
        host.host,
        remote_command(script),
    ]
    try:
        done = subprocess.run(
            command,
            stdin=stdin or subprocess.DEVNULL,
            stdout=subprocess.PIPE if isinstance(stdout, bytearray) else stdout,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
    except FileNotFoundError:
        raise CannotDiagnose(
            f"{ssh[0]} is not installed here: reaching {host} needs an SSH client "
            "(apt-get install openssh-client)"
        ) from None
    except subprocess.TimeoutExpired:
        raise CannotDiagnose(f"{host}: no answer over SSH within {timeout:.0f} s") from None
    if isinstance(stdout, bytearray):
        stdout += done.stdout
    said = done.stderr.decode(errors="replace")
    if done.returncode == SSH_FAILED:
        raise CannotDiagnose(f"cannot reach {host} over SSH: {_ssh_error(said)}")
    return done.returncode, said


def remote_command(script: str) -> str:
    """The command line ssh gives the login shell there, whichever it is (bash, zsh, fish, csh
    read quotes, backslashes and newlines each their own way): the script as one base64 word,
    which only sh decodes and runs."""
    import base64

    encoded = base64.b64encode(script.encode()).decode()
    return f"sh -c 'eval \"$(echo {encoded} | base64 -d)\"'"


def _ssh_error(said: str) -> str:
    for words, meaning in SSH_ERRORS:
        if words in said:
            return meaning
    return _last(said) or "ssh failed"


def _last(said: str) -> str:
    """The last thing said, on one line and inert (it comes from elsewhere)."""
    from doctor.report.inert import inert

    lines = [line for line in said.splitlines() if line.strip()]
    return inert(lines[-1].removeprefix(f"{PROG}: ")) if lines else ""


def _standalone() -> Path | None:
    """This standalone executable, to copy there; None when this is a Python installation."""
    if not getattr(sys, "frozen", False):
        return None
    from doctor.cli.dockercli import own_executable

    return own_executable()


def _directory(token: str | None) -> str:
    name = f"docker-doctor-{token}" if token else "docker-doctor-XXXXXXXXXX"
    return f'"${{TMPDIR:-/tmp}}/{name}"'


def _run_script(
    args: list[str], socket: str | None, keep: str | None, output: str | None, copy: bool
) -> str:
    """The sh script that runs ``docker-doctor ARGS`` there in a private directory of its own
    (kept, for a bundle to fetch from, when ``keep`` names it; else removed)."""
    # Whether it is installed, first: a copy sent next makes the same directory.
    lines = [] if copy else [f"command -v docker-doctor >/dev/null 2>&1 || exit {NOT_INSTALLED}"]
    if keep:
        lines += [
            f'd={_directory(keep)}; mkdir -m 700 "$d" || {_no_directory()}',
            "trap 'rm -rf \"$d\"; exit 130' INT",
            "trap 'rm -rf \"$d\"; exit 143' TERM HUP",
        ]
    else:
        lines += [
            f"d=$(mktemp -d {_directory(None)}) || {_no_directory()}",
            "trap 'rm -rf \"$d\"' EXIT",
            "trap 'exit 130' INT",
            "trap 'exit 143' TERM HUP",
        ]
    if copy:
        machine = f"{platform.system()} {platform.machine()}"
        lines += [
            f'[ "$(uname -sm)" = {shlex.quote(machine)} ] || {{ echo "the standalone executable '
            f'is for {machine}, not $(uname -sm)" >&2; exit {CANNOT_RUN_COPY}; }}',
            f'cat > "$d/docker-doctor" && chmod 700 "$d/docker-doctor" || {_no_directory()}',
            'exe="$d/docker-doctor"',
        ]
    else:
        lines.append("exe=docker-doctor")
    env = f"{OVER_SSH_ENV}=1 " + (
        f"DOCKER_HOST={shlex.quote('unix://' + socket)} " if socket else ""
    )
    where = f' --output "$d/{output}"' if output else ""
    lines.append(f'{env}"$exe" {shlex.join(args)}{where}')
    return "\n".join(lines) + "\n"


def _no_directory() -> str:
    return (
        "{ echo 'no private temporary directory could be made and written there' >&2; "
        f"exit {NO_TEMPORARY_DIRECTORY}; }}"
    )


def _fetch_script(token: str) -> str:
    return f"cat {_directory(token)}/bundle.tar.gz\n"


def _remove_script(token: str) -> str:
    return f"rm -rf {_directory(token)}\n"
