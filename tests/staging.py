"""Stage real Docker networking situations for tests and benchmarks.

Everything here talks to a real Docker Engine and the host's network stack and
needs root: starting the engine, creating network namespaces, reading a
container's sockets from /proc. A `Stage` removes all it created, and nothing
else, when it is closed.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import json
import os
import random
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

LOG_DIR = Path("/tmp/docker-doctor-tests")
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
DOCKER_PID_FILE = Path("/var/run/docker.pid")

IMAGE_REPOSITORY = "docker-doctor-test/busybox"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
APPLETS = ("sh", "httpd", "nc", "nslookup", "wget", "cat", "ls", "sleep", "ip", "false", "true", "echo")
UDP_LISTENER_SOURCE = Path(__file__).with_name("udp_listener.c")
INDEX_HTML = "<html><body>docker-doctor test page</body></html>\n"
# The image's default command, so that `Stage.run(name, "-p", "8080:80")` serves HTTP.
HTTPD_CMD = ("httpd", "-f", "-p", "80", "-h", "/www")
# PID 1 ignores SIGTERM unless it handles it (busybox httpd does not), so
# `docker stop` would wait 10 s and then SIGKILL anyway: same end, no wait.
# (`docker import --change` cannot set STOPSIGNAL, so every run passes it.)
STOP_SIGNAL_ARG = "--stop-signal=SIGKILL"

OUTSIDE_NETWORK = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 benchmarking range
PORT_RANGE = (20000, 40000)


class CommandError(RuntimeError):
    """A command failed or timed out; the message carries its stderr."""


def _run(*cmd: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        raise CommandError(f"timed out after {timeout:g}s: {' '.join(cmd)}\n{stderr or ''}") from None
    if check and result.returncode != 0:
        raise CommandError(
            f"exit status {result.returncode}: {' '.join(cmd)}\n{result.stderr.strip()}"
        )
    return result


def _docker(*args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run("docker", *args, timeout=timeout, check=check)


# --- engine ----------------------------------------------------------------


def engine_answers(timeout: float = 10.0) -> bool:
    """True when `docker version` reaches a daemon (as DOCKER_HOST or the default socket)."""
    try:
        _docker("version", "--format", "{{.Server.Version}}", timeout=timeout)
    except (CommandError, FileNotFoundError):
        return False
    return True


def _socket_answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def _pid_file_alive(path: Path) -> bool:
    try:
        os.kill(int(path.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def _start_daemon(cmd: Sequence[str], log: Path) -> None:
    # setsid -f: the daemon gets its own session and is not our child, so it
    # outlives this process (the next test run reuses it) and is never reaped here.
    with log.open("ab") as out:
        subprocess.run(["setsid", "-f", *cmd], stdin=subprocess.DEVNULL, stdout=out,
                       stderr=subprocess.STDOUT, timeout=10, check=True)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"({path} does not exist)"
    return f"--- last lines of {path} ---\n" + "\n".join(text)


def ensure_engine(timeout: float = 60.0) -> None:
    """Make sure a Docker Engine answers, starting containerd and dockerd if needed (root)."""
    if engine_answers():
        return
    if "DOCKER_HOST" in os.environ:
        raise RuntimeError(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer; not starting an engine")
    if os.geteuid() != 0:
        raise RuntimeError("no Docker Engine answers, and starting one needs root")
    for tool in ("containerd", "dockerd", "docker"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install docker.io iptables)")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    containerd_log, dockerd_log = LOG_DIR / "containerd.log", LOG_DIR / "dockerd.log"
    # A daemon that is still starting up is waited for, not started twice.
    if not _socket_answers(CONTAINERD_SOCKET):
        _start_daemon(["containerd"], containerd_log)
        deadline = time.monotonic() + timeout
        while not _socket_answers(CONTAINERD_SOCKET):
            if time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not answer within {timeout:g}s\n{_tail(containerd_log)}")
            time.sleep(0.2)
    if not _pid_file_alive(DOCKER_PID_FILE):
        _start_daemon(["dockerd", f"--containerd={CONTAINERD_SOCKET}"], dockerd_log)
    deadline = time.monotonic() + timeout
    while not engine_answers():
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"dockerd did not answer within {timeout:g}s\n{_tail(dockerd_log)}\n{_tail(containerd_log)}"
            )
        time.sleep(0.5)


# --- image -----------------------------------------------------------------


def _image_tag() -> str:
    # The tag names the image's content, so a changed listener or applet list rebuilds it.
    digest = hashlib.sha256()
    for part in (UDP_LISTENER_SOURCE.read_bytes(), " ".join(APPLETS).encode(), INDEX_HTML.encode(),
                 " ".join(HTTPD_CMD).encode(), BUSYBOX.read_bytes()):
        digest.update(hashlib.sha256(part).digest())
    return f"{IMAGE_REPOSITORY}:1-{digest.hexdigest()[:12]}"


def ensure_image() -> str:
    """Build (once) the busybox test image with /bin/udp-listener; return its reference."""
    ref = _image_tag()
    if _docker("image", "inspect", ref, check=False).returncode == 0:
        return ref
    with tempfile.TemporaryDirectory(prefix="docker-doctor-image-") as tmp:
        root = Path(tmp, "root")
        (root / "bin").mkdir(parents=True)
        (root / "www").mkdir()
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        for applet in APPLETS:
            (root / "bin" / applet).symlink_to("busybox")
        _run("gcc", "-static", "-O2", "-o", str(root / "bin" / "udp-listener"), str(UDP_LISTENER_SOURCE))
        (root / "www" / "index.html").write_text(INDEX_HTML)
        tarball = Path(tmp, "rootfs.tar")
        _run("tar", "-C", str(root), "-cf", str(tarball), ".")
        _docker("import", "--change", f"CMD {json.dumps(HTTPD_CMD)}", str(tarball), ref, timeout=120)
    return ref


# --- outside client ----------------------------------------------------------

# Runs inside the client's namespace: argv = address, port, timeout.
_CONNECT_SNIPPET = """
import errno, socket, sys
address, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    sock = socket.create_connection((address, port), timeout=timeout)
except TimeoutError:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except ConnectionResetError:
    print("reset")
except OSError as exc:
    if exc.errno not in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN):
        raise
    print("unreachable")
else:
    # A proxy (docker-proxy among them) accepts, then closes when its backend
    # refuses: a close right after accept is no working connection.
    sock.settimeout(0.5)
    try:
        print("connected" if sock.recv(1) else "reset")
    except TimeoutError:
        print("connected")  # open and silent, like a server waiting for a request
    except ConnectionResetError:
        print("reset")
"""
CONNECT_OUTCOMES = frozenset({"connected", "refused", "reset", "timeout", "unreachable"})


class OutsideClient:
    """A network namespace joined to the host by a veth pair: a client on another machine.

    `host_address` is the host side of the link, an address of this host that
    is not loopback; the namespace's default route points to it.
    """

    def __init__(self, namespace: str, host_veth: str, subnet: ipaddress.IPv4Network, mtu: int | None = None) -> None:
        self.namespace = namespace
        self.host_veth = host_veth
        self.host_address = str(subnet.network_address + 1)
        self.client_address = str(subnet.network_address + 2)
        prefix = subnet.prefixlen
        _run("ip", "netns", "add", namespace)
        try:  # from here on, a half-built client removes itself
            _run("ip", "link", "add", host_veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            _run("ip", "addr", "add", f"{self.host_address}/{prefix}", "dev", host_veth)
            _run("ip", "link", "set", host_veth, "up")
            _run("ip", "-n", namespace, "addr", "add", f"{self.client_address}/{prefix}", "dev", "eth0")
            _run("ip", "-n", namespace, "link", "set", "eth0", "up")
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
            _run("ip", "-n", namespace, "route", "add", "default", "via", self.host_address)
            if mtu:
                _run("ip", "link", "set", host_veth, "mtu", str(mtu))
                _run("ip", "-n", namespace, "link", "set", "eth0", "mtu", str(mtu))
        except BaseException:
            self.close()
            raise

    def connect(self, address: str, port: int, timeout: float = 2.0) -> str:
        """Connect over TCP from the namespace; one of CONNECT_OUTCOMES."""
        result = _run("ip", "netns", "exec", self.namespace, sys.executable, "-c", _CONNECT_SNIPPET,
                      address, str(port), str(timeout), timeout=timeout + 10)
        outcome = result.stdout.strip()
        if outcome not in CONNECT_OUTCOMES:
            raise CommandError(f"unexpected connect outcome {outcome!r}\n{result.stderr}")
        return outcome

    def close(self) -> None:
        """Delete the veth pair and the namespace (idempotent)."""
        # The veth goes first: deleting it removes both ends at once, whereas
        # deleting the namespace first removes the host's end only eventually.
        for cmd, gone in ((("ip", "link", "delete", self.host_veth), "Cannot find device"),
                          (("ip", "netns", "delete", self.namespace), "No such file")):
            result = _run(*cmd, check=False)
            if result.returncode != 0 and gone not in result.stderr:
                raise CommandError(f"{' '.join(cmd)}: {result.stderr.strip()}")


def _free_outside_subnet() -> ipaddress.IPv4Network:
    # A 198.(18|19).N.0/30 that no route of the host (its own addresses included) overlaps.
    routes = json.loads(_run("ip", "-j", "-4", "route", "show", "table", "all").stdout)
    used = [ipaddress.ip_network(r["dst"], strict=False) for r in routes if r["dst"] != "default"]
    for _ in range(100):
        base = OUTSIDE_NETWORK.network_address + 256 * random.randrange(OUTSIDE_NETWORK.num_addresses // 256)
        subnet = ipaddress.IPv4Network(f"{base}/30")
        if not any(subnet.overlaps(net) for net in used):
            return subnet
    raise RuntimeError(f"no free /30 found in {OUTSIDE_NETWORK}")


# --- host port holder ---------------------------------------------------------

# argv = port, address, proto. Prints "ready" once bound (and listening), then
# holds the port until its stdin closes: it dies with the stage, or with us.
_HOLD_SNIPPET = """
import socket, sys
port, address, proto = int(sys.argv[1]), sys.argv[2], sys.argv[3]
family = socket.AF_INET6 if ":" in address else socket.AF_INET
sock = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
if proto == "tcp":
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
sock.bind((address, port))
if proto == "tcp":
    sock.listen()
print("ready", flush=True)
sys.stdin.read()
"""


def _port_is_free(port: int) -> bool:
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            try:
                with socket.socket(family, kind) as sock:
                    if family == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    sock.bind((address, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return False
                if exc.errno != errno.EAFNOSUPPORT:  # no IPv6 on this host is fine
                    raise
    return True


def _listening(pid: int, port: int, proto: str) -> bool:
    # /proc/PID/net/* shows the sockets of PID's network namespace.
    for table in (proto, proto + "6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and (proto == "udp" or fields[3] == "0A"):  # 0A: TCP LISTEN
                return True
    return False


# --- stage -------------------------------------------------------------------


class Stage:
    """Containers, networks, host listeners, outside clients and spare links for one test.

    Names start with a unique `prefix` (dd-<6 hex>). Closing the stage (or
    leaving its `with` block, also on errors) removes exactly what it created.
    """

    def __init__(self, image: str | None = None) -> None:
        self.prefix = f"dd-{secrets.token_hex(3)}"
        self._image = image
        self._containers: list[str] = []
        self._networks: list[str] = []
        self._processes: list[subprocess.Popen[str]] = []
        self._clients: list[OutsideClient] = []
        self._links: list[str] = []
        self._ports: set[int] = set()

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def image(self) -> str:
        if self._image is None:
            self._image = ensure_image()
        return self._image

    def _docker_run(self, name_suffix: str, args: Sequence[str], cmd: Sequence[str]
                    ) -> tuple[str, subprocess.CompletedProcess[str]]:
        name = f"{self.prefix}-{name_suffix}"
        # Recorded first: a run that fails or times out may still leave a container.
        self._containers.append(name)
        # STOP_SIGNAL_ARG comes first so that args can override it.
        result = _docker("run", "-d", "--name", name, STOP_SIGNAL_ARG, *args, self.image, *cmd, check=False)
        return name, result

    def run(self, name_suffix: str, *docker_run_args: str, cmd: Sequence[str] = (),
            wait_port: int | str | None = None) -> str:
        """`docker run -d` the test image (cmd defaults to HTTPD_CMD); return the container name.

        wait_port: 80 or "80/tcp" waits for a TCP listener, "53/udp" for a bound
        UDP socket, inside the container's network namespace (10 s at most).
        """
        name, result = self._docker_run(name_suffix, docker_run_args, cmd)
        if result.returncode != 0:
            raise CommandError(f"docker run {name} failed: {result.stderr.strip()}")
        if wait_port is not None:
            port, _, proto = str(wait_port).partition("/")
            self._wait_listening(name, int(port), proto or "tcp")
        return name

    def create_container(self, name_suffix: str, *docker_run_args: str, cmd: Sequence[str] = ()) -> str:
        """`docker run -d` expected to fail to start (a port conflict, say); return the name.

        Raises only when no container was created at all (bad arguments).
        """
        name, result = self._docker_run(name_suffix, docker_run_args, cmd)
        if _docker("container", "inspect", name, check=False).returncode != 0:
            raise CommandError(f"docker run {name} created no container: {result.stderr.strip()}")
        return name

    def _wait_listening(self, name: str, port: int, proto: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            running, pid = _docker("inspect", "-f", "{{.State.Running}} {{.State.Pid}}", name).stdout.split()
            if running != "true":
                logs = _docker("logs", "--tail", "20", name, check=False)
                raise RuntimeError(f"{name} stopped before listening on {port}/{proto}:\n"
                                   f"{logs.stdout}{logs.stderr}")
            if _listening(int(pid), port, proto):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} is not listening on {port}/{proto} after {timeout:g}s")
            time.sleep(0.1)

    def network(self, name_suffix: str, *args: str) -> str:
        """`docker network create ARGS NAME`; return the network name."""
        name = f"{self.prefix}-{name_suffix}"
        self._networks.append(name)
        _docker("network", "create", *args, name)
        return name

    def connect(self, network: str, container: str) -> None:
        """`docker network connect NETWORK CONTAINER`."""
        _docker("network", "connect", network, container)

    def stop(self, container: str) -> None:
        _docker("stop", container)

    @staticmethod
    def inspect(name: str, template: str) -> str:
        """`docker inspect -f TEMPLATE NAME`, stripped."""
        return _docker("inspect", "-f", template, name).stdout.strip()

    def hold_port(self, port: int, addr: str = "0.0.0.0", proto: str = "tcp",
                  client: OutsideClient | None = None) -> subprocess.Popen[str]:
        """A process bound to addr:port (listening, for TCP) on the host or in an outside
        client's namespace; returns once it is."""
        inside = ["ip", "netns", "exec", client.namespace] if client else []
        process = subprocess.Popen(
            [*inside, sys.executable, "-c", _HOLD_SNIPPET, str(port), addr, proto],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self._processes.append(process)
        assert process.stdout is not None and process.stderr is not None
        ready, _, _ = select.select([process.stdout], [], [], 10.0)
        if not ready or process.stdout.readline().strip() != "ready":
            process.kill()
            _, stderr = process.communicate(timeout=10)
            raise CommandError(f"could not hold {addr}:{port}/{proto}:\n{stderr.strip()}")
        return process

    def wait_health(self, name: str, status: str, timeout: float = 30.0) -> None:
        """Wait until container `name` reports health `status` (healthy, unhealthy, starting)."""
        deadline = time.monotonic() + timeout
        while True:
            health = json.loads(_docker("inspect", "-f", "{{json .State.Health}}", name).stdout)
            if health is None:
                raise RuntimeError(f"{name} has no health check")
            if health["Status"] == status:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} is not {status} after {timeout:g}s: {json.dumps(health)}")
            time.sleep(0.2)

    def free_port(self) -> int:
        """A port in 20000-40000 that nothing on the host uses (TCP and UDP, IPv4 and IPv6)."""
        for _ in range(200):
            port = random.randint(*PORT_RANGE)
            if port not in self._ports and _port_is_free(port):
                self._ports.add(port)
                return port
        raise RuntimeError(f"no free port found in {PORT_RANGE}")

    def outside_client(self, mtu: int | None = None) -> OutsideClient:
        """A client in its own network namespace, routed to this host over a veth pair."""
        index = len(self._clients)
        # Interface names have at most 15 characters: dd-xxxxxxh0 is 11.
        client = OutsideClient(f"{self.prefix}-oc{index}", f"{self.prefix}h{index}", _free_outside_subnet(), mtu)
        self._clients.append(client)
        return client

    def spare_link(self, *routes: str) -> str:
        """An interface of the host's that leads nowhere (a parent for macvlan, a device for
        routes); its name.  One end of a veth pair: the kernel here may lack the dummy driver."""
        name = f"{self.prefix}v{len(self._links)}"
        self._links.append(name)  # deleting one end deletes both
        _run("ip", "link", "add", name, "type", "veth", "peer", "name", f"{self.prefix}w{len(self._links) - 1}")
        for end in (name, f"{self.prefix}w{len(self._links) - 1}"):
            _run("ip", "link", "set", end, "up")
        for route in routes:
            _run("ip", "route", "add", route, "dev", name)
        return name

    def close(self) -> None:
        """Remove everything this stage created; raise after trying all of it if anything failed."""
        errors: list[str] = []
        for process in self._processes:
            process.kill()
            process.communicate(timeout=10)
        if self._containers:
            result = _docker("rm", "-f", "-v", *self._containers, check=False)
            errors += [line for line in result.stderr.splitlines() if "No such container" not in line]
        for network in self._networks:
            result = _docker("network", "rm", network, check=False)
            if result.returncode != 0 and "not found" not in result.stderr:
                errors.append(result.stderr.strip())
        for client in self._clients:
            try:
                client.close()
            except CommandError as exc:
                errors.append(str(exc))
        for link in self._links:  # its routes go with it
            result = _run("ip", "link", "delete", link, check=False)
            if result.returncode != 0 and "Cannot find device" not in result.stderr:
                errors.append(result.stderr.strip())
        self._processes, self._containers, self._networks, self._clients, self._links = [], [], [], [], []
        if errors:
            raise RuntimeError(f"stage {self.prefix} cleanup failed:\n" + "\n".join(errors))
