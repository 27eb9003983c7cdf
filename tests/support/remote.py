"""Another host, reached over SSH: a machine of its own, on this one.

A network namespace joined to this host by a veth pair (as an outside client is), with a mount
namespace of its own in which ``/run`` is its own: there run a containerd and a dockerd of the
engine under test (their own data root and exec root, the socket at ``/run/docker.sock`` as on any
host), and an OpenSSH server that lets in one key. The rest of the file system is this host's, so
the docker-doctor under test runs there too: on its PATH (``/usr/local/bin``, a directory of its
own there) when a test has it installed there, else copied there by the standalone executable.

The client side is an ``ssh_config`` of its own (the key, the host key as known), which
docker-doctor's ``ssh`` reads through ``DOCKER_DOCTOR_SSH``: the user's ``~/.ssh`` is not touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support import staging

SSH_ENV = "DOCKER_DOCTOR_SSH"


class RemoteHost:
    """Start with :meth:`start`, stop with :meth:`close` (both idempotent about what exists)."""

    def __init__(self, directory: Path, name: str, installed: bool) -> None:
        self.directory = directory
        self.name = name  # of its namespace and veth; at most 11 characters
        self.installed = installed
        self.link: staging.OutsideClient | None = None
        self.holder: subprocess.Popen[bytes] | None = None
        self.daemons: list[subprocess.Popen[bytes]] = []

    # --- what a test uses

    @property
    def address(self) -> str:
        assert self.link is not None
        return self.link.client_address

    @property
    def url(self) -> str:
        return f"ssh://root@{self.address}"

    @property
    def ssh_env(self) -> dict[str, str]:
        """The environment in which docker-doctor's ssh reaches this host."""
        return {SSH_ENV: f"ssh -F {self.directory / 'ssh_config'}"}

    @property
    def docker_host(self) -> str:
        """Its engine's socket, as seen from here."""
        assert self.holder is not None
        return f"unix:///proc/{self.holder.pid}/root/run/docker.sock"

    def docker(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``docker ARGS`` against its engine."""
        return subprocess.run(
            ["docker", "-H", self.docker_host, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            stdin=subprocess.DEVNULL,
        )

    def connect(self, address: str, port: int, timeout: float = 2.0) -> str:
        """A real TCP client there; one of staging.CONNECT_OUTCOMES."""
        assert self.holder is not None
        enter = ["nsenter", f"--target={self.holder.pid}", "--net", "--"]
        return staging._connect(enter, address, port, timeout)

    @contextlib.contextmanager
    def without_docker_doctor(self) -> Iterator[None]:
        """docker-doctor off its PATH for the block (the directory there is this one's)."""
        installed = self.directory / "bin" / "docker-doctor"
        target = os.readlink(installed) if installed.is_symlink() else None
        installed.unlink(missing_ok=True)
        try:
            yield
        finally:
            if target:
                installed.symlink_to(target)

    def files_there(self) -> list[str]:
        """The private directories docker-doctor made there and left (its /tmp is this host's):
        ``mktemp -d …/docker-doctor-XXXXXXXXXX`` for a run, ``docker-doctor-TOKEN`` for a bundle."""
        made = re.compile(r"docker-doctor-(?:[A-Za-z0-9]{10}|[0-9a-f]{16})")
        return sorted(p.name for p in Path("/tmp").iterdir() if made.fullmatch(p.name))

    # --- start and stop

    def start(self, timeout: float = 60.0) -> None:
        try:
            self._start(timeout)
        except BaseException:
            self.close()
            raise

    def _start(self, timeout: float) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._keys()
        self.link = staging.OutsideClient(
            f"{self.name}-ns", f"{self.name}h", staging._free_outside_subnet()
        )
        self._config()
        bin_dir = self.directory / "bin"
        bin_dir.mkdir(exist_ok=True)
        if self.installed:
            from tests.support.command import command

            (bin_dir / "docker-doctor").symlink_to(command()[0])
        # The holder: a shell in the namespace, in a mount namespace of its own, that makes /run
        # and /sys its own (the sysfs of its network namespace, this host's cgroups put back in
        # it, which `ip netns exec` would leave out) and then waits (its stdin closes with us).
        cgroups = self.directory / "cgroup"
        cgroups.mkdir(exist_ok=True)
        self.holder = subprocess.Popen(
            [
                *("nsenter", f"--net=/run/netns/{self.link.namespace}", "--"),
                *("unshare", "--mount", "--propagation", "private", "sh", "-c"),
                f"mount --rbind /sys/fs/cgroup {cgroups} && mount -t sysfs remote-sys /sys && "
                f"mount --rbind {cgroups} /sys/fs/cgroup && "
                "mount -t tmpfs -o mode=755 remote-run /run && "
                "mkdir -p /run/sshd /run/containerd /run/docker && "
                f"mount --bind {bin_dir} /usr/local/bin && echo ready && exec cat",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the remote host did not start: {self.holder.stderr.read()!r}")
        build = staging.engine_build(staging.wanted_engine())
        self._daemon(
            "containerd",
            build,
            build.containerd[0],
            "--root",
            str(self.directory / "containerd"),
            "--state",
            "/run/containerd",
            "--address",
            "/run/containerd/containerd.sock",
        )
        self._wait(lambda: self._exists("/run/containerd/containerd.sock"), timeout, "containerd")
        self._daemon(
            "dockerd",
            build,
            build.dockerd[0],
            "--containerd=/run/containerd/containerd.sock",
            *("--data-root", str(self.directory / "docker")),
            *("--exec-root", "/run/docker"),
            *("--pidfile", "/run/docker.pid"),
            *("-H", "unix:///run/docker.sock"),
        )
        self._wait(self._engine_answers, timeout, "dockerd")
        self._daemon(
            "sshd", build, "/usr/sbin/sshd", "-D", "-e", "-f", str(self.directory / "sshd_config")
        )
        self._wait(
            lambda: staging.connect_here(self.address, 22, timeout=1) == "connected",
            timeout,
            "sshd",
        )
        image = staging.ensure_image()
        if subprocess.run(
            ["docker", "-H", self.docker_host, "image", "inspect", image], capture_output=True
        ).returncode:
            saved = subprocess.run(["docker", "save", image], capture_output=True, check=True)
            subprocess.run(
                ["docker", "-H", self.docker_host, "load"],
                input=saved.stdout,
                capture_output=True,
                check=True,
            )
        self.image = image

    def close(self) -> None:
        """Its containers, daemons, mounts, namespace and veth: gone (also half-started)."""
        if self.holder is not None and self._engine_answers():
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", *ids)
        for daemon in reversed(self.daemons):  # sshd, dockerd, containerd
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(10)
        self.daemons.clear()
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait(10)
            self.holder = None
        if self.link is not None:
            self.link.close()
            self.link = None
        shutil.rmtree(self.directory, ignore_errors=True)  # its mounts went with its namespace

    # --- pieces

    def _keys(self) -> None:
        for key in ("host_key", "client_key"):
            if not (self.directory / key).exists():
                subprocess.run(
                    [
                        "ssh-keygen",
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-f",
                        str(self.directory / key),
                    ],
                    check=True,
                    capture_output=True,
                )
        (self.directory / "authorized_keys").write_text(
            (self.directory / "client_key.pub").read_text()
        )

    def _config(self) -> None:
        d = self.directory
        (d / "sshd_config").write_text(
            f"ListenAddress {self.address}\n"
            f"HostKey {d / 'host_key'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "PidFile /run/sshd.pid\n"
        )
        host_key = (d / "host_key.pub").read_text().split()
        (d / "known_hosts").write_text(f"{self.address} {host_key[0]} {host_key[1]}\n")
        (d / "ssh_config").write_text(
            f"Host {self.address}\n"
            f"  IdentityFile {d / 'client_key'}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {d / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
            "  LogLevel ERROR\n"
        )

    def _daemon(self, name: str, build: staging.EngineBuild, *cmd: str) -> None:
        assert self.holder is not None and self.link is not None
        path = os.pathsep.join([*map(str, build.bin_dirs), os.environ.get("PATH", "")])
        with (self.directory / f"{name}.log").open("ab") as log:
            self.daemons.append(
                subprocess.Popen(
                    [
                        *("nsenter", f"--target={self.holder.pid}", "--mount", "--net", "--"),
                        *cmd,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "PATH": path},
                    start_new_session=True,  # its own process group: stopped with its children
                )
            )

    def _exists(self, path: str) -> bool:
        assert self.holder is not None
        return Path(f"/proc/{self.holder.pid}/root{path}").exists()

    def _engine_answers(self) -> bool:
        if not self._exists("/run/docker.sock"):
            return False
        return (
            subprocess.run(
                ["docker", "-H", self.docker_host, "version"], capture_output=True, timeout=10
            ).returncode
            == 0
        )

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if any(d.poll() is not None for d in self.daemons) or time.monotonic() > deadline:
                logs = self.directory / f"{what}.log"
                tail = logs.read_text(errors="replace")[-2000:] if logs.exists() else ""
                raise RuntimeError(f"the remote host's {what} did not start:\n{tail}")
            time.sleep(0.2)
