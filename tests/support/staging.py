"""Stage real Docker networking situations for tests and benchmarks.

Everything here talks to a real Docker Engine and the host's network stack and
needs root: starting the engine, creating network namespaces, reading a
container's sockets from /proc. A `Stage` removes all it created, and nothing
else, when it is closed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
import json
import os
import random
import re
import secrets
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

LOG_DIR = Path("/tmp/docker-doctor-tests")
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"

IMAGE_REPOSITORY = "docker-doctor-test/busybox"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
APPLETS = (
    "sh",
    "httpd",
    "nc",
    "nslookup",
    "wget",
    "cat",
    "ls",
    "sleep",
    "ip",
    "false",
    "true",
    "echo",
)
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


def _run(
    *cmd: str, timeout: float = 60.0, check: bool = True, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, cwd=cwd
        )
    except subprocess.TimeoutExpired as exc:
        stderr = (
            exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        )
        raise CommandError(
            f"timed out after {timeout:g}s: {' '.join(cmd)}\n{stderr or ''}"
        ) from None
    if check and result.returncode != 0:
        raise CommandError(
            f"exit status {result.returncode}: {' '.join(cmd)}\n{result.stderr.strip()}"
        )
    return result


def _docker(
    *args: str, timeout: float = 60.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return _run("docker", *args, timeout=timeout, check=check)


# --- engine ----------------------------------------------------------------
#
# Two generations: Engine 20.10 (the release's docker.io, as installed) and Engine
# 28.5 (Debian unstable's docker.io and containerd, unpacked beside the release and
# run with the release's runc). One runs at a time, chosen by $DOCKER_DOCTOR_ENGINE.

ENGINE_ENV = "DOCKER_DOCTOR_ENGINE"
DEFAULT_ENGINE = "20.10"
CACHE_DIR = Path("/var/cache/docker-doctor-tests")
UNSTABLE_PACKAGES = {
    "docker.io": "28.5.",
    "docker-cli": "28.5.",
    "containerd": "",
}  # package -> version prefix


@dataclass(frozen=True)
class EngineBuild:
    version: str  # what `docker version` must report, as a prefix
    bin_dirs: tuple[Path, ...]  # put first on the daemons' PATH (docker-proxy, the containerd shim)
    containerd: tuple[str, ...]
    dockerd: tuple[str, ...]

    @property
    def containerd_socket(self) -> str:
        return self.containerd[self.containerd.index("--address") + 1]


def wanted_engine() -> str:
    return os.environ.get(ENGINE_ENV, DEFAULT_ENGINE)


def engine_build(version: str) -> EngineBuild:
    if version == "20.10":
        return EngineBuild(
            "20.10",
            (),
            ("containerd", "--address", CONTAINERD_SOCKET),
            ("dockerd", f"--containerd={CONTAINERD_SOCKET}"),
        )
    if version == "28.5":
        root = unpack_unstable_engine()
        state = "/run/containerd-28.5"
        return EngineBuild(
            "28.5",
            (root / "usr/sbin", root / "usr/bin"),
            (
                str(root / "usr/bin/containerd"),
                "--root",
                "/var/lib/containerd-28.5",
                "--state",
                state,
                "--address",
                f"{state}/containerd.sock",
            ),
            (
                str(root / "usr/sbin/dockerd"),
                f"--containerd={state}/containerd.sock",
                "--data-root",
                "/var/lib/docker-28.5",
                "--exec-root",
                "/run/docker-28.5",
            ),
        )
    raise RuntimeError(f"{ENGINE_ENV}={version}: the tests know engines 20.10 and 28.5")


def running_engine_version(timeout: float = 10.0) -> str | None:
    """The answering daemon's version (as DOCKER_HOST or the default socket), or None."""
    try:
        return _docker("version", "--format", "{{.Server.Version}}", timeout=timeout).stdout.strip()
    except (CommandError, FileNotFoundError):
        return None


def engine_28() -> bool:
    """Whether the engine answering now is of the 28 generation."""
    return (running_engine_version() or "").startswith("28.")


def engine_answers(timeout: float = 10.0) -> bool:
    return running_engine_version(timeout) is not None


def _debian_mirror() -> str:
    """The Debian mirror of this machine's own apt configuration (deb822 or one-line format)."""
    sources = [
        *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
        Path("/etc/apt/sources.list"),
        *sorted(Path("/etc/apt/sources.list.d").glob("*.list")),
    ]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in re.findall(
            r"^\s*(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, re.MULTILINE
        ):
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    raise RuntimeError(
        "no Debian mirror (a URI ending in /debian) in this machine's apt configuration"
    )


def unpack_unstable_engine() -> Path:
    """Debian unstable's docker.io 28.5, its CLI and containerd, unpacked once under CACHE_DIR (root)."""
    root = CACHE_DIR / "engine-28.5"
    if all(
        (root / path).exists()
        for path in ("usr/sbin/dockerd", "usr/bin/containerd", "usr/bin/docker")
    ):
        return root
    apt_dir = CACHE_DIR / "apt-unstable"
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    (apt_dir / "sources.list").write_text(
        f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {_debian_mirror()} "
        "unstable main\n"
    )
    # A private sources list, lists and cache: the machine's own apt state is not touched.
    options = [
        f"-oDir::Etc::SourceList={apt_dir / 'sources.list'}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={apt_dir / 'lists'}",
        f"-oDir::Cache={apt_dir / 'cache'}",
        "-oAPT::Sandbox::User=root",
    ]
    _run("apt-get", *options, "update", timeout=300)
    pinned = []
    for package, prefix in UNSTABLE_PACKAGES.items():
        versions = [
            line.split("|")[1].strip()
            for line in _run("apt-cache", *options, "madison", package).stdout.splitlines()
            if "unstable" in line
        ]
        matching = [v for v in versions if v.startswith(prefix)]
        if not matching:
            raise RuntimeError(
                f"Debian unstable has no {package} {prefix}* any more (it has {versions})"
            )
        pinned.append(f"{package}={matching[0]}")
    with tempfile.TemporaryDirectory(prefix="docker-doctor-engine-") as tmp:
        _run("apt-get", *options, "download", *pinned, timeout=600, cwd=tmp)
        unpacking = root.with_name(root.name + ".partial")
        shutil.rmtree(unpacking, ignore_errors=True)
        for deb in Path(tmp).glob("*.deb"):
            _run("dpkg-deb", "-x", str(deb), str(unpacking))
        shutil.rmtree(root, ignore_errors=True)
        unpacking.rename(root)  # complete or absent, never half there
    return root


def _socket_answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def _start_daemon(cmd: Sequence[str], log: Path, bin_dirs: Sequence[Path]) -> None:
    # setsid -f: the daemon gets its own session and is not our child, so it
    # outlives this process (the next test run reuses it) and is never reaped here.
    env = {**os.environ, "PATH": os.pathsep.join([*map(str, bin_dirs), os.environ.get("PATH", "")])}
    with log.open("ab") as out:
        subprocess.run(
            ["setsid", "-f", *cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=10,
            check=True,
            env=env,
        )


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"({path} does not exist)"
    return f"--- last lines of {path} ---\n" + "\n".join(text)


def ensure_engine(timeout: float = 60.0, flags: Sequence[str] = ()) -> None:
    """Make sure the wanted engine answers: start it, or switch to it from the other one (root).
    ``flags``: more dockerd arguments, for an engine started here."""
    running = running_engine_version()
    if running is not None and running.startswith(wanted_engine()) and not flags:
        return
    if "DOCKER_HOST" in os.environ:
        raise RuntimeError(
            f"DOCKER_HOST={os.environ['DOCKER_HOST']} answers with {running}, not "
            f"{wanted_engine()}; not starting an engine"
        )
    if os.geteuid() != 0:
        raise RuntimeError(
            f"engine {wanted_engine()} does not answer ({running or 'none does'}), "
            "and starting one needs root"
        )
    for tool in ("containerd", "dockerd", "docker"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install docker.io iptables)")
    build = engine_build(wanted_engine())
    stop_engines()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    containerd_log = LOG_DIR / f"containerd-{build.version}.log"
    dockerd_log = LOG_DIR / f"dockerd-{build.version}.log"
    _start_daemon(build.containerd, containerd_log, build.bin_dirs)
    deadline = time.monotonic() + timeout
    while not _socket_answers(build.containerd_socket):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"containerd did not answer within {timeout:g}s\n{_tail(containerd_log)}"
            )
        time.sleep(0.2)
    _start_daemon((*build.dockerd, *flags), dockerd_log, build.bin_dirs)
    deadline = time.monotonic() + timeout
    while not (running := running_engine_version()):
        if time.monotonic() > deadline:
            raise RuntimeError(
                "dockerd did not answer within "
                f"{timeout:g}s\n{_tail(dockerd_log)}\n{_tail(containerd_log)}"
            )
        time.sleep(0.5)
    if not running.startswith(build.version):
        raise RuntimeError(f"wanted engine {build.version}, but {running} answers")


@contextlib.contextmanager
def engine_started_with(*flags: str) -> Iterator[None]:
    """The wanted engine, restarted with more dockerd ``flags`` (--config-file FILE) for the
    block, and as before afterwards: also when the block fails."""
    stop_engines()
    try:
        ensure_engine(flags=flags)
        yield
    finally:
        stop_engines()
        ensure_engine()


STAGE_NAME = re.compile(r"^dd-[0-9a-f]{6}-")


def remove_leftovers() -> None:
    """Containers and networks of stages that never closed (a killed run): an engine's data
    outlives it, and a checkup would report them. Two test runs must not share an engine."""
    containers = [
        n
        for n in _docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
        if STAGE_NAME.match(n)
    ]
    if containers:
        _docker("rm", "-f", "-v", *containers, check=False)
    networks = [
        n
        for n in _docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        if STAGE_NAME.match(n)
    ]
    if networks:
        _docker("network", "rm", *networks, check=False)
    # A killed Swarm test's cluster (tests/test_swarm.py): this engine still its manager
    if _docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() == "active":
        services = _docker("service", "ls", "--format", "{{.Name}}", check=False).stdout.split()
        if any(STAGE_NAME.match(s) for s in services):
            _docker("swarm", "leave", "--force", check=False)
            _docker("network", "rm", "docker_gwbridge", check=False)


def stop_engines(timeout: float = 30.0) -> None:
    """Stop every dockerd, then every containerd, and remove what Docker left in the firewall."""
    for name in ("dockerd", "containerd"):
        pids = [int(p) for p in _run("pgrep", "-x", name, check=False).stdout.split()]
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(Path(f"/proc/{pid}").exists() for pid in pids):
            if time.monotonic() > deadline:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.2)
    clean_docker_firewall()


DOCKER_MARK = re.compile(r"-j DOCKER|-g DOCKER|\bdocker0\b|\bbr-[0-9a-f]{12}\b")


def clean_docker_firewall() -> None:
    """Remove the chains, rules and bridges a Docker Engine leaves behind when it stops, and
    nothing else: the next engine starts from a clean state, as on a fresh host."""
    for save, tool in (("iptables-save", "iptables"), ("ip6tables-save", "ip6tables")):
        if shutil.which(save) is None:
            continue
        dump = _run(save, check=False).stdout
        table = None
        chains: dict[str, list[str]] = {}
        for line in dump.splitlines():
            if line.startswith("*"):
                table = line[1:]
                chains[table] = []
            elif line.startswith(":DOCKER") and table:
                chains[table].append(line[1:].split()[0])
            elif line.startswith("-A ") and table and DOCKER_MARK.search(line):
                chain, _, rule = line[3:].partition(" ")
                if not chain.startswith("DOCKER"):
                    _run(tool, "-t", table, "-D", chain, *shlex.split(rule), check=False)
        for table, names in chains.items():
            for flag in ("-F", "-X"):
                for name in names:
                    _run(tool, "-t", table, flag, name, check=False)
        _run(tool, "-t", "filter", "-P", "FORWARD", "ACCEPT", check=False)
    links = json.loads(_run("ip", "-j", "link", "show", "type", "bridge").stdout or "[]")
    for link in links:
        if link["ifname"] == "docker0" or re.fullmatch(r"br-[0-9a-f]{12}", link["ifname"]):
            _run("ip", "link", "delete", link["ifname"], check=False)


# --- image -----------------------------------------------------------------


def _image_tag() -> str:
    # The tag names the image's content, so a changed listener or applet list rebuilds it.
    digest = hashlib.sha256()
    for part in (
        UDP_LISTENER_SOURCE.read_bytes(),
        " ".join(APPLETS).encode(),
        INDEX_HTML.encode(),
        " ".join(HTTPD_CMD).encode(),
        BUSYBOX.read_bytes(),
    ):
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
        _run(
            "gcc",
            "-static",
            "-O2",
            "-o",
            str(root / "bin" / "udp-listener"),
            str(UDP_LISTENER_SOURCE),
        )
        (root / "www" / "index.html").write_text(INDEX_HTML)
        tarball = Path(tmp, "rootfs.tar")
        _run("tar", "-C", str(root), "-cf", str(tarball), ".")
        _docker(
            "import", "--change", f"CMD {json.dumps(HTTPD_CMD)}", str(tarball), ref, timeout=120
        )
    return ref


# --- outside client ----------------------------------------------------------

# Runs inside the client's namespace: argv = address, port, timeout[, source address].
_CONNECT_SNIPPET = """
import errno, socket, sys
address, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
source = (sys.argv[4], 0) if len(sys.argv) > 4 else None
try:
    sock = socket.create_connection((address, port), timeout=timeout, source_address=source)
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


def _connect(
    enter: Sequence[str], address: str, port: int, timeout: float, source: str | None = None
) -> str:
    """A real TCP client run after ``enter`` (into a namespace), from ``source`` if given; one
    of CONNECT_OUTCOMES."""
    result = _run(
        *enter,
        sys.executable,
        "-c",
        _CONNECT_SNIPPET,
        address,
        str(port),
        str(timeout),
        *([source] if source else []),
        timeout=timeout + 10,
    )
    outcome = result.stdout.strip()
    if outcome not in CONNECT_OUTCOMES:
        raise CommandError(f"unexpected connect outcome {outcome!r}\n{result.stderr}")
    return outcome


# argv = address, port, size, timeout. Sends size bytes, half-closes, and prints how many bytes
# the server says it got, or "timeout" when the transfer stalls.
_UPLOAD_SNIPPET = """
import socket, sys
address, port, size, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
try:
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(b"x" * size)
        sock.shutdown(socket.SHUT_WR)
        print(sock.recv(64).decode().strip() or "reset")
except (TimeoutError, socket.timeout):
    print("timeout")
"""
# argv = port, address. Reads each connection to its end (each in a thread of its own: a
# stalled upload must not hold up the next) and answers with the byte count.
_SINK_SNIPPET = """
import socket, sys, threading
port, address = int(sys.argv[1]), sys.argv[2]
server = socket.create_server((address, port))
print("ready", flush=True)

def sink(conn):
    with conn:
        got = 0
        while data := conn.recv(65536):
            got += len(data)
        conn.sendall(f"{got}\\n".encode())

while True:
    threading.Thread(target=sink, args=(server.accept()[0],), daemon=True).start()
"""


def connect_here(address: str, port: int, timeout: float = 2.0) -> str:
    """Connect over TCP from this host itself; one of CONNECT_OUTCOMES."""
    return _connect([], address, port, timeout)


class OutsideClient:
    """A network namespace joined to the host by a veth pair: a client on another machine.

    `host_address` is the host side of the link, an address of this host that
    is not loopback; the namespace's default route points to it.
    """

    def __init__(
        self,
        namespace: str,
        host_veth: str,
        subnet: ipaddress.IPv4Network,
        mtu: int | None = None,
        default_route: bool = True,
    ) -> None:
        self.namespace = namespace
        self.host_veth = host_veth
        self.host_address = str(subnet.network_address + 1)
        self.client_address = str(subnet.network_address + 2)
        prefix = subnet.prefixlen
        _run("ip", "netns", "add", namespace)
        try:  # from here on, a half-built client removes itself
            _run(
                "ip",
                "link",
                "add",
                host_veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                namespace,
            )
            _run("ip", "addr", "add", f"{self.host_address}/{prefix}", "dev", host_veth)
            _run("ip", "link", "set", host_veth, "up")
            _run(
                "ip",
                "-n",
                namespace,
                "addr",
                "add",
                f"{self.client_address}/{prefix}",
                "dev",
                "eth0",
            )
            _run("ip", "-n", namespace, "link", "set", "eth0", "up")
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
            if default_route:
                _run("ip", "-n", namespace, "route", "add", "default", "via", self.host_address)
            if mtu:
                _run("ip", "link", "set", host_veth, "mtu", str(mtu))
                _run("ip", "-n", namespace, "link", "set", "eth0", "mtu", str(mtu))
        except BaseException:
            self.close()
            raise

    def route(self, destination: str) -> None:
        """Route ``destination`` (e.g. a Docker subnet) through the host, as a LAN router would."""
        _run("ip", "-n", self.namespace, "route", "add", destination, "via", self.host_address)

    def connect(
        self, address: str, port: int, timeout: float = 2.0, source: str | None = None
    ) -> str:
        """Connect over TCP from the namespace (from ``source``, one of its addresses, if
        given); one of CONNECT_OUTCOMES."""
        return _connect(["ip", "netns", "exec", self.namespace], address, port, timeout, source)

    def add_address(self, address: str) -> None:
        """One more address of the client's own (as a VPN client has its tunnel's), on its link;
        the host knows no route to it unless a test adds one."""
        _run("ip", "-n", self.namespace, "addr", "add", f"{address}/32", "dev", "eth0")

    def sysctl(self, name: str, value: str) -> None:
        """Set a sysctl of the namespace's own network stack (it goes with the namespace)."""
        _run("ip", "netns", "exec", self.namespace, "sysctl", "-q", "-w", f"{name}={value}")

    def close(self) -> None:
        """Delete the veth pair and the namespace (idempotent)."""
        # The veth goes first: deleting it removes both ends at once, whereas
        # deleting the namespace first removes the host's end only eventually.
        for cmd, gone in (
            (("ip", "link", "delete", self.host_veth), "Cannot find device"),
            (("ip", "netns", "delete", self.namespace), "No such file"),
        ):
            result = _run(*cmd, check=False)
            if result.returncode != 0 and gone not in result.stderr:
                raise CommandError(f"{' '.join(cmd)}: {result.stderr.strip()}")


def _free_outside_subnet() -> ipaddress.IPv4Network:
    # A 198.(18|19).N.0/30 that no route of the host (its own addresses included) overlaps.
    routes = json.loads(_run("ip", "-j", "-4", "route", "show", "table", "all").stdout)
    used = [ipaddress.ip_network(r["dst"], strict=False) for r in routes if r["dst"] != "default"]
    for _ in range(100):
        base = OUTSIDE_NETWORK.network_address + 256 * random.randrange(
            OUTSIDE_NETWORK.num_addresses // 256
        )
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
        self._undo: list[tuple[str, ...]] = []
        self._ports: set[int] = set()

    def __enter__(self) -> Stage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def image(self) -> str:
        if self._image is None:
            self._image = ensure_image()
        return self._image

    def _docker_run(
        self, name_suffix: str, args: Sequence[str], cmd: Sequence[str]
    ) -> tuple[str, subprocess.CompletedProcess[str]]:
        name = f"{self.prefix}-{name_suffix}"
        # Recorded first: a run that fails or times out may still leave a container.
        self._containers.append(name)
        # STOP_SIGNAL_ARG comes first so that args can override it.
        result = _docker(
            "run", "-d", "--name", name, STOP_SIGNAL_ARG, *args, self.image, *cmd, check=False
        )
        return name, result

    def run(
        self,
        name_suffix: str,
        *docker_run_args: str,
        cmd: Sequence[str] = (),
        wait_port: int | str | None = None,
    ) -> str:
        """`docker run -d` the test image (cmd defaults to HTTPD_CMD); return the container name.

        wait_port: 80 or "80/tcp" waits for a TCP listener, "53/udp" for a bound
        UDP socket, inside the container's network namespace (10 s at most).
        """
        name, result = self._docker_run(name_suffix, docker_run_args, cmd)
        if result.returncode != 0:
            raise CommandError(f"docker run {name} failed: {result.stderr.strip()}")
        self._wait_for(name, wait_port)
        return name

    def create_container(
        self, name_suffix: str, *docker_run_args: str, cmd: Sequence[str] = ()
    ) -> str:
        """`docker run -d` expected to fail to start (a port conflict, say); return the name.

        Raises only when no container was created at all (bad arguments).
        """
        name, result = self._docker_run(name_suffix, docker_run_args, cmd)
        if _docker("container", "inspect", name, check=False).returncode != 0:
            raise CommandError(f"docker run {name} created no container: {result.stderr.strip()}")
        return name

    def wait_listening(
        self, name: str, port: int, proto: str = "tcp", timeout: float = 10.0
    ) -> None:
        """Until the running container NAME listens on PORT/PROTO (RuntimeError if it stops)."""
        deadline = time.monotonic() + timeout
        while True:
            running, pid = _docker(
                "inspect", "-f", "{{.State.Running}} {{.State.Pid}}", name
            ).stdout.split()
            if running != "true":
                logs = _docker("logs", "--tail", "20", name, check=False)
                raise RuntimeError(
                    f"{name} stopped before listening on {port}/{proto}:\n"
                    f"{logs.stdout}{logs.stderr}"
                )
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

    def start(self, container: str, wait_port: int | str | None = None) -> None:
        """`docker start CONTAINER` (a stopped one of this stage), waiting as :meth:`run` does."""
        _docker("start", container)
        self._wait_for(container, wait_port)

    def _wait_for(self, name: str, wait_port: int | str | None) -> None:
        if wait_port is not None:
            port, _, proto = str(wait_port).partition("/")
            self.wait_listening(name, int(port), proto or "tcp")

    def restart(self, container: str) -> None:
        """`docker restart CONTAINER`: the engine writes its resolv.conf anew."""
        _docker("restart", container)

    @staticmethod
    def inspect(name: str, template: str) -> str:
        """`docker inspect -f TEMPLATE NAME`, stripped."""
        return _docker("inspect", "-f", template, name).stdout.strip()

    def hold_port(
        self,
        port: int,
        addr: str = "0.0.0.0",
        proto: str = "tcp",
        client: OutsideClient | None = None,
    ) -> subprocess.Popen[str]:
        """A process bound to addr:port (listening, for TCP) on the host or in an outside
        client's namespace; returns once it is."""
        inside = ["ip", "netns", "exec", client.namespace] if client else []
        process = subprocess.Popen(
            [*inside, sys.executable, "-c", _HOLD_SNIPPET, str(port), addr, proto],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._processes.append(process)
        assert process.stdout is not None and process.stderr is not None
        ready, _, _ = select.select([process.stdout], [], [], 10.0)
        if not ready or process.stdout.readline().strip() != "ready":
            process.kill()
            _, stderr = process.communicate(timeout=10)
            raise CommandError(f"could not hold {addr}:{port}/{proto}:\n{stderr.strip()}")
        return process

    def unhealthy_web(self, check: str) -> tuple[str, int]:
        """A published web server whose healthcheck is ``check``, once it is unhealthy: its
        name and its host port."""
        port = self.free_port()
        web = self.run(
            "web",
            *("-p", f"{port}:80", "--health-cmd", check),
            *("--health-interval", "1s", "--health-retries", "1"),
            wait_port=80,
        )
        self.wait_health(web, "unhealthy")
        return web, port

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
                raise TimeoutError(
                    f"{name} is not {status} after {timeout:g}s: {json.dumps(health)}"
                )
            time.sleep(0.2)

    def free_port(self) -> int:
        """A port in 20000-40000 that nothing on the host uses (TCP and UDP, IPv4 and IPv6)."""
        for _ in range(200):
            port = random.randint(*PORT_RANGE)
            if port not in self._ports and _port_is_free(port):
                self._ports.add(port)
                return port
        raise RuntimeError(f"no free port found in {PORT_RANGE}")

    def outside_client(self, mtu: int | None = None, default_route: bool = True) -> OutsideClient:
        """A client in its own network namespace, routed to this host over a veth pair."""
        index = len(self._clients)
        # Interface names have at most 15 characters: dd-xxxxxxh0 is 11.
        client = OutsideClient(
            f"{self.prefix}-oc{index}",
            f"{self.prefix}h{index}",
            _free_outside_subnet(),
            mtu,
            default_route,
        )
        self._clients.append(client)
        return client

    def remote_server(self, port: int) -> OutsideClient:
        """A server on another machine: a namespace behind a veth pair that knows only its own
        link (as a server on the internet knows no route to this host's private subnets), with
        a TCP listener on ``port`` at its ``client_address``."""
        server = self.outside_client(default_route=False)
        self.hold_port(port, server.client_address, "tcp", client=server)
        return server

    def sink_server(self, port: int) -> OutsideClient:
        """A server on another machine (as remote_server) that reads each connection to its
        end and answers with how many bytes it got: the far end of an upload."""
        server = self.outside_client(default_route=False)
        process = subprocess.Popen(
            [
                *("ip", "netns", "exec", server.namespace),
                *(sys.executable, "-c", _SINK_SNIPPET, str(port), server.client_address),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._processes.append(process)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 10.0)
        if not ready or process.stdout.readline().strip() != "ready":
            raise CommandError(f"the sink server did not start on {server.client_address}:{port}")
        return server

    def upload_from(
        self, container: str, address: str, port: int, size: int, timeout: float = 3.0
    ) -> str:
        """Send ``size`` bytes from inside ``container``'s namespace: the byte count the far
        end confirms, or "timeout" when the transfer stalls."""
        pid = self.inspect(container, "{{.State.Pid}}")
        return _run(
            "nsenter",
            f"--net=/proc/{pid}/ns/net",
            sys.executable,
            "-c",
            _UPLOAD_SNIPPET,
            address,
            str(port),
            str(size),
            str(timeout),
            timeout=timeout + 10,
        ).stdout.strip()

    def shrink_path(self, server: OutsideClient, mtu: int) -> None:
        """Make the way to ``server`` carry at most ``mtu`` bytes, as a VPN or a cloud network
        would, and drop the ICMP fragmentation-needed this host would send back: a black hole
        for larger packets (undone when the stage closes)."""
        route = (f"{server.client_address}/32", "dev", server.host_veth)
        self.change_host(
            ("ip", "route", "add", *route, "mtu", "lock", str(mtu)),
            ("ip", "route", "del", *route),
        )
        self.insert_rule(
            "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"
        )

    def connect_from(self, container: str, address: str, port: int, timeout: float = 2.0) -> str:
        """Connect over TCP from inside ``container``'s network namespace, as the container would
        (the client runs in its namespace, so no tool is needed in the image)."""
        pid = self.inspect(container, "{{.State.Pid}}")
        return _connect(["nsenter", f"--net=/proc/{pid}/ns/net"], address, port, timeout)

    @staticmethod
    def iptables_rules(table: str, chain: str) -> list[str]:
        """`iptables -t TABLE -S CHAIN`: the chain's rules as -A lines."""
        return [
            line
            for line in _run("iptables", "-t", table, "-S", chain).stdout.splitlines()
            if line.startswith("-A ")
        ]

    @staticmethod
    def iptables_policy(chain: str) -> str:
        """The policy of a built-in filter ``chain``: ACCEPT or DROP."""
        lines = _run("iptables", "-S", chain).stdout.splitlines()
        return next(line.split()[2] for line in lines if line.startswith("-P "))

    def change_host(self, do: Sequence[str], undo: Sequence[str]) -> None:
        """Run ``do`` now (an iptables rule, a sysctl); ``undo`` runs when the stage closes, first."""
        self._undo.append(tuple(undo))
        _run(*do)

    def insert_rule(self, chain: str, *rule: str) -> None:
        """`iptables -I CHAIN RULE...` (filter table) now, deleted when the stage closes."""
        self.change_host(("iptables", "-I", chain, *rule), ("iptables", "-D", chain, *rule))

    def host_file(self, path: str, text: str | None, link: str | None = None) -> None:
        """Replace the host's file at ``path`` (/etc/resolv.conf, /etc/hosts) with ``text``, or
        remove it (``text`` None), or make it a link to ``link``; as it was when the stage
        closes, first. Containers get their resolvers from the host's when they start, so start
        them after this."""
        saved = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-file-")) / Path(path).name
        _run("cp", "-a", path, str(saved))
        self._undo.append(
            ("sh", "-c", f"rm -f {path} && cp -a {saved} {path} && rm -r {saved.parent}")
        )
        Path(path).unlink()
        if link is not None:
            os.symlink(link, path)
        elif text is not None:
            Path(path).write_text(text)

    def blackhole(self, *addresses: str) -> None:
        """Routes that drop every packet to ``addresses`` (public resolvers the engine could fall
        back to: nothing of a test may leave the machine), removed when the stage closes."""
        for address in addresses:
            family = "-6" if ":" in address else "-4"
            self.change_host(
                ("ip", family, "route", "add", "blackhole", address),
                ("ip", family, "route", "del", "blackhole", address),
            )

    def dns_server(
        self, records: Mapping[str, str], address: str | None = None, *, wildcard: bool = False
    ) -> str:
        """A real DNS server (dnsmasq) answering each name of ``records`` with its IPv4 address
        (with ``wildcard``, every name under it too), and nothing else: on the host at
        ``address`` (a stub such as 127.0.0.53), or in a namespace of its own (a resolver on
        another machine) when None. Returns the address it answers on, once it does."""
        if shutil.which("dnsmasq") is None:
            raise RuntimeError("dnsmasq is not installed (apt-get install dnsmasq-base)")
        client = None
        if address is None:
            client = self.outside_client(default_route=False)
            address = client.client_address
        inside = ["ip", "netns", "exec", client.namespace] if client else []
        # dnsmasq answers a name and everything under it; an exact name alone takes a host-record.
        answers = [
            f"--address=/{name}/{ip}" if wildcard else f"--host-record={name},{ip}"
            for name, ip in records.items()
        ]
        process = subprocess.Popen(
            [
                *inside,
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                f"--listen-address={address}",
                "--port=53",
                "--user=root",
                "--pid-file=",
                *answers,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._processes.append(process)
        deadline = time.monotonic() + 10
        while not _listening(process.pid, 53, "udp"):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, stderr = process.communicate(timeout=10)
                raise CommandError(f"dnsmasq did not start on {address}:\n{stderr.strip()}")
            time.sleep(0.05)
        return address

    def nslookup(self, container: str, name: str) -> list[str]:
        """The IPv4 addresses ``name`` resolves to inside ``container``, by the image's own
        nslookup (its resolver follows the container's resolv.conf, search and ndots too);
        [] when it does not resolve."""
        result = _docker("exec", container, "nslookup", "-type=a", name, check=False, timeout=30)
        answer = result.stdout.partition("Name:")[2]
        return re.findall(r"^Address:\s*(\d+\.\d+\.\d+\.\d+)\s*$", answer, re.MULTILINE)

    def ufw(self, *commands: Sequence[str]) -> None:
        """ufw turned on as it ships (default deny incoming), then ``ufw COMMAND...`` each; when
        the stage closes, ufw is off and its files, the rules and the kernel's settings are as
        they were (ufw's own sysctl file is not applied: it would change the host's)."""
        if shutil.which("ufw") is None:
            raise RuntimeError("ufw is not installed (apt-get install ufw)")
        saved = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-ufw-"))
        _run("tar", "-C", "/", "-cf", str(saved / "etc.tar"), "etc/ufw", "etc/default/ufw")
        for tool in ("iptables", "ip6tables"):
            (saved / tool).write_text(_run(f"{tool}-save").stdout)
        self._undo.append(
            ("sh", "-c", f"rm -rf /etc/ufw && tar -C / -xf {saved}/etc.tar && rm -rf {saved}")
        )
        for tool in ("ip6tables", "iptables"):
            self._undo.append(("sh", "-c", f"{tool}-restore < {saved}/{tool}"))
        self._undo.append(("ufw", "--force", "disable"))
        _run("sed", "-i", "s|^IPT_SYSCTL=.*|IPT_SYSCTL=/dev/null|", "/etc/default/ufw")
        _run("ufw", "--force", "enable")
        for command in commands:
            _run("ufw", *command)

    def spare_link(self, *routes: str) -> str:
        """An interface of the host's that leads nowhere (a parent for macvlan, a device for
        routes); its name.  One end of a veth pair: the kernel here may lack the dummy driver."""
        name = f"{self.prefix}v{len(self._links)}"
        self._links.append(name)  # deleting one end deletes both
        _run(
            "ip",
            "link",
            "add",
            name,
            "type",
            "veth",
            "peer",
            "name",
            f"{self.prefix}w{len(self._links) - 1}",
        )
        for end in (name, f"{self.prefix}w{len(self._links) - 1}"):
            _run("ip", "link", "set", end, "up")
        for route in routes:
            _run("ip", "route", "add", route, "dev", name)
        return name

    def close(self) -> None:
        """Remove everything this stage created; raise after trying all of it if anything failed."""
        errors: list[str] = []
        for undo in reversed(self._undo):
            result = _run(*undo, check=False)
            if result.returncode != 0:
                errors.append(f"{' '.join(undo)}: {result.stderr.strip()}")
        for process in self._processes:
            process.kill()
            process.communicate(timeout=10)
        if self._containers:
            # A benchmark's thousand containers take the engine minutes to remove.
            timeout = 60 + 0.5 * len(self._containers)
            result = _docker("rm", "-f", "-v", *self._containers, timeout=timeout, check=False)
            errors += [
                line for line in result.stderr.splitlines() if "No such container" not in line
            ]
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
        self._processes, self._containers, self._networks, self._clients, self._links = (
            [],
            [],
            [],
            [],
            [],
        )
        self._undo = []
        if errors:
            raise RuntimeError(f"stage {self.prefix} cleanup failed:\n" + "\n".join(errors))
