"""The host side: platform markers, listening sockets, docker-proxy processes, sysctls, resolver
files, routes."""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from doctor.probes.netns import diag_socket, listen_dump

from doctor.collect import netlink
from doctor.facts.model import DAEMON_JSON
from doctor.facts.parse import proc_net_listeners
from doctor.plugin import Probe, ProbeContext, Skip
from doctor.snapshot import artifacts as a

# Processes that hold many descriptors and never a listening socket of the host: one
# containerd shim per container. Skipping them keeps the descriptor scan short.
NEVER_LISTENS = ("containerd-shim",)
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.ip_unprivileged_port_start",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv6.conf.all.disable_ipv6",
    # the guide's tuning advice for hosts with many connections
    "net.core.somaxconn",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.ip_local_port_range",
)


def collect_platform(ctx: ProbeContext) -> None:
    if sys.platform == "linux":
        addresses = sorted({address for _, address in netlink.addresses(ctx.remaining())})
    else:  # Docker Desktop's host: psutil asks the OS
        import psutil

        addresses = sorted(
            {
                addr.address.split("%")[0]
                for addrs in psutil.net_if_addrs().values()
                for addr in addrs
                if addr.family in (socket.AF_INET, socket.AF_INET6)
            }
        )
    ctx.put(
        a.HOST,
        {
            "hostname": socket.gethostname(),
            "kernel": _read("/proc/sys/kernel/osrelease") or os.uname().release,
            "euid": os.geteuid(),
            "addresses": addresses,
        },
    )


def collect_sockets(ctx: ProbeContext) -> None:
    """Listening sockets with their owners, and the docker-proxy processes.

    psutil.net_connections() reads every fd of every process and /proc/net/tcp (which
    walks all connection buckets): ~0.3 s on a host with a hundred published ports.
    Here listeners come from sock_diag (/proc/net/udp restarts its walk for every page it
    prints: seconds with tens of thousands of sockets); docker-proxy processes, the bulk of such a
    host, own the sockets their command line names; other owners are looked up by fd.
    Elsewhere (macOS, Windows: Docker Desktop's backend holds the published ports)
    psutil asks the OS.
    """
    if sys.platform != "linux":
        ctx.put(a.HOST_SOCKETS, _psutil_listeners())
        ctx.put(a.PROXIES, [])
        return
    found: list[tuple[str, str, int, int | None]] = []
    with diag_socket() as sock:
        protocols: tuple[tuple[int, Literal["tcp", "udp"]], ...] = (
            (socket.IPPROTO_TCP, "tcp"),
            (socket.IPPROTO_UDP, "udp"),
        )
        for number, kind in protocols:
            for family, suffix in ((socket.AF_INET, ""), (socket.AF_INET6, "6")):
                listed: Sequence[tuple[str, int, int | None]]
                try:
                    listed = listen_dump(sock, family, number)
                except netlink.NetlinkError:  # no sock_diag for it in this kernel
                    listed = _proc_listeners(kind, suffix)
                found += [(kind, address, port, inode) for address, port, inode in listed]
    # docker-proxy processes are dockerd's children: their command lines name the sockets
    # they hold. Every other process is read only if a socket that matters has no owner yet.
    children = _dockerd_children(ctx.endpoint.host)
    proxies = [p for p in map(_proxy, _pids() if children is None else sorted(children)) if p]
    by_proxy = {
        (
            _arg(p["argv"], "-proto") or "tcp",
            _arg(p["argv"], "-host-ip"),
            _arg(p["argv"], "-host-port"),
        ): p["pid"]
        for p in proxies
    }
    owners: dict[int | None, tuple[int | None, str | None]] = {
        inode: (by_proxy[(protocol, address, str(port))], "docker-proxy")
        for protocol, address, port, inode in found
        if (protocol, address, str(port)) in by_proxy
    }
    # The rest are found by their file descriptors, lowest pids (system daemons) first,
    # stopping as soon as every socket has its owner; for a question about one port, only
    # the sockets on that port (the others' owners cannot change its answer).
    port = ctx.question.host_port if ctx.question else None
    wanted = {inode for _, _, on, inode in found if port is None or on == port} - set(owners)
    for pid in _pids() if wanted else ():
        try:
            name = _read_proc(f"/proc/{pid}/comm").strip().decode(errors="replace")
            if name.startswith(NEVER_LISTENS):
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and int(link[8:-1]) in wanted:
                    wanted.discard(int(link[8:-1]))
                    owners[int(link[8:-1])] = (pid, name)
        except OSError:
            continue  # gone meanwhile, or another user's (without root)
        orphan = name == "docker-proxy" and children is not None and pid not in children
        if orphan and (proxy := _proxy(pid)):
            proxies.append(proxy)  # left by an earlier dockerd: not its child
        if not wanted:
            break
    listeners: list[dict[str, Any]] = []
    for protocol, address, port, inode in found:
        owner, process = owners.get(inode, (None, None))
        listeners.append(
            {
                "protocol": protocol,
                "address": address,
                "port": port,
                "pid": owner,
                "process": process,
            }
        )
    ctx.put(a.HOST_SOCKETS, sorted(listeners, key=_socket_order))
    ctx.put(a.PROXIES, proxies)


def _psutil_listeners() -> list[dict[str, Any]]:
    import psutil  # off Linux only: 20 ms to import

    listeners: list[dict[str, Any]] = []
    for conn in psutil.net_connections(kind="inet"):
        tcp = conn.type == socket.SOCK_STREAM
        if (
            (tcp and conn.status != psutil.CONN_LISTEN)
            or (not tcp and conn.raddr)
            or not conn.laddr
        ):
            continue
        try:
            process = psutil.Process(conn.pid).name() if conn.pid else None
        except psutil.Error:
            process = None
        listeners.append(
            {
                "protocol": "tcp" if tcp else "udp",
                "address": conn.laddr.ip,
                "port": conn.laddr.port,
                "pid": conn.pid,
                "process": process,
            }
        )
    return sorted(listeners, key=_socket_order)


def _pids() -> list[int]:
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())


def _proxy(pid: int) -> dict[str, Any] | None:
    """{"pid", "argv"} of docker-proxy process ``pid``; None for any other (or one gone)."""
    try:  # a thousand containers run two thousand processes: no pathlib per file here
        if _read_proc(f"/proc/{pid}/comm").strip() != b"docker-proxy":
            return None
        argv = _read_proc(f"/proc/{pid}/cmdline").decode(errors="replace")
    except OSError:
        return None
    return {"pid": pid, "argv": argv.split("\0")[:-1]}


def _dockerd_children(endpoint: str) -> set[int] | None:
    """The child processes of the dockerd answering on ``endpoint``; None when that is not
    known (a remote engine, another user's daemon, a kernel without the children file)."""
    peer = _dockerd_peer(endpoint)
    if peer is None:
        return None
    try:
        return {
            int(child)
            for task in os.listdir(f"/proc/{peer}/task")
            for child in _read_proc(f"/proc/{peer}/task/{task}/children").split()
        }
    except OSError:
        return None


def _socket_order(listener: dict[str, Any]) -> tuple[int, str, str]:
    return listener["port"], listener["protocol"], listener["address"]


def _read_proc(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def _arg(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None


def _proc_listeners(
    protocol: Literal["tcp", "udp"], suffix: str
) -> list[tuple[str, int, int | None]]:
    try:
        return proc_net_listeners(Path(f"/proc/net/{protocol}{suffix}").read_text(), protocol)
    except FileNotFoundError:  # no IPv6 here
        return []


def collect_sysctls(ctx: ProbeContext) -> None:
    ctx.need_linux_host("sysctls", rootless=True)
    ctx.put(a.SYSCTLS, {name: _read("/proc/sys/" + name.replace(".", "/")) for name in SYSCTLS})


def collect_resolver_files(ctx: ProbeContext) -> None:
    """/etc/hosts and /etc/resolv.conf, where the engine takes containers' resolvers from:
    what /etc/resolv.conf is (a file, missing, a link to nothing) and, when it names only
    systemd-resolved's stub, the file of real upstreams the default bridge gets instead."""
    missing = []
    for key, path in (
        (a.HOSTS_FILE, "/etc/hosts"),
        (a.RESOLV_CONF, RESOLV_CONF),
        (a.SYSTEMD_RESOLV_CONF, SYSTEMD_RESOLV_CONF),
    ):
        try:
            ctx.put(key, Path(path).read_bytes())
        except FileNotFoundError:
            missing.append(path)
    link = os.readlink(RESOLV_CONF) if os.path.islink(RESOLV_CONF) else None
    state = "missing" if RESOLV_CONF in missing else "file"
    if state == "missing" and link is not None:
        state = "dangling"
    ctx.put(a.RESOLV_CONF_STATE, {"state": state, "link": link})
    if "/etc/hosts" in missing and state != "file":
        raise Skip("neither /etc/hosts nor /etc/resolv.conf exists")


RESOLV_CONF = "/etc/resolv.conf"
SYSTEMD_RESOLV_CONF = "/run/systemd/resolve/resolv.conf"


def collect_daemon_config(ctx: ProbeContext) -> None:
    """What the engine was told: dockerd's command line (flags such as --iptables=false, and
    which configuration file it reads) and that file, /etc/docker/daemon.json by default."""
    daemon = _dockerd(ctx.endpoint.host)
    path = DAEMON_JSON
    if daemon is not None:
        path = _config_file(daemon["argv"]) or DAEMON_JSON
        ctx.put(a.DAEMON_ARGV, {**daemon, "config_file": path})
    try:
        ctx.put(a.DAEMON_CONFIG, Path(path).read_bytes())
    except FileNotFoundError:
        if daemon is None:
            raise Skip(f"no dockerd on this host, and no {path}") from None
    except PermissionError:
        raise Skip(f"needs root to read {path}") from None


def _dockerd(endpoint: str) -> dict[str, Any] | None:
    """The dockerd that answers on ``endpoint``, as {"pid", "argv"}: the peer of its unix
    socket; else the one dockerd of this host. None when there is none (a remote or
    virtual-machine engine) or more than one (which of them answers is not known)."""
    peer = _dockerd_peer(endpoint)
    if peer is not None:
        try:
            argv = _read_proc(f"/proc/{peer}/cmdline").decode(errors="replace")
            return {"pid": peer, "argv": argv.split("\0")[:-1]}
        except OSError:
            pass  # gone: look for it by name
    import psutil  # only here and off Linux: 20 ms to import

    found = []
    for p in psutil.process_iter(["name"]):  # names are cheap; command lines only of dockerd
        if p.info["name"] == "dockerd":
            try:
                argv_list = p.cmdline()
            except psutil.Error:
                continue  # gone meanwhile, or not ours to read
            if argv_list:
                found.append({"pid": p.pid, "argv": argv_list})
    return found[0] if len(found) == 1 else None


def _dockerd_peer(endpoint: str) -> int | None:
    """The pid of the dockerd listening on a unix:// ``endpoint``; None when that is not
    known (a remote engine, socket activation by systemd, another user's daemon)."""
    peer = _socket_peer(endpoint)
    try:
        return peer if peer and _read_proc(f"/proc/{peer}/comm").strip() == b"dockerd" else None
    except OSError:
        return None


def _socket_peer(endpoint: str) -> int | None:
    """The pid of the process that listens on a unix:// endpoint (SO_PEERCRED): dockerd, or
    systemd when the socket is socket-activated. No scan of every process: a host with a
    thousand containers runs two thousand of them."""
    if not endpoint.startswith("unix://") or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(endpoint.removeprefix("unix://"))
            credentials = sock.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, PEER_CREDENTIALS.size
            )
    except OSError:
        return None
    pid, _, _ = PEER_CREDENTIALS.unpack(credentials)
    return pid or None


PEER_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def _config_file(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config-file" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config-file="):
            return arg.partition("=")[2]
    return None


def collect_routes(ctx: ProbeContext) -> None:
    """The IPv4 routing table, and every interface with its MTU and addresses (where clients arrive)."""
    ctx.need_linux_host("routes and interfaces", rootless=True)
    ctx.put(a.ROUTES, Path("/proc/net/route").read_bytes())
    # netlink, not psutil and /sys: a thousand containers mean a thousand veths
    links = netlink.links(ctx.remaining())
    interfaces: dict[str, dict[str, Any]] = {
        name: {"mtu": mtu, "addresses": []} for name, mtu in links.values()
    }
    for index, address in netlink.addresses(ctx.remaining()):
        if index in links:
            interfaces[links[index][0]]["addresses"].append(address)
    ctx.put(a.INTERFACES, interfaces)


def _read(path: str) -> str | None:
    """A /proc value, or None where the kernel has no such knob (module not loaded)."""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


CONNTRACK_PROC = "/proc/net/nf_conntrack"
CONNTRACK_MAX_LINES = 20_000  # UDP flows kept at most (the table is in hash order, not age)


def collect_conntrack(ctx: ProbeContext) -> None:
    """The kernel's UDP connection-tracking entries: a flow keeps the NAT decision of its
    first packet, so an entry made before a port was published bypasses its DNAT. Read from
    /proc/net/nf_conntrack, or `conntrack -L` (netlink) where the kernel has no proc file."""
    ctx.need_linux_host("connection tracking")
    ctx.need_root("read the connection-tracking table")
    kept: list[str] = []
    try:
        with open(CONNTRACK_PROC, encoding="ascii", errors="replace") as table:
            for line in table:
                if time.monotonic() > ctx.deadline:
                    raise TimeoutError(f"{CONNTRACK_PROC} is too large to read in time")
                if " udp " in line:
                    kept.append(line)
                    if len(kept) >= CONNTRACK_MAX_LINES:
                        break
    except FileNotFoundError:
        listed = ctx.run(["conntrack", "-L", "-p", "udp", "-o", "extended"])
        kept = [line + "\n" for line in listed.splitlines()[:CONNTRACK_MAX_LINES]]
    ctx.put(a.CONNTRACK, "".join(kept))


PROBES = [
    Probe("host-platform", collect_platform),
    Probe("host-sockets", collect_sockets),
    Probe("sysctl", collect_sysctls),
    Probe("resolver-files", collect_resolver_files),
    Probe("routes", collect_routes),
    Probe("daemon-config", collect_daemon_config),
    Probe("conntrack", collect_conntrack),
]
