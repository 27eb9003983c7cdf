"""The host side: platform markers, listening sockets, docker-proxy processes, sysctls, /etc/hosts."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psutil

from doctor import artifacts as a
from doctor.plugins import Probe, ProbeContext, Skip

SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.ip_unprivileged_port_start",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv6.conf.all.disable_ipv6",
)


def collect_platform(ctx: ProbeContext) -> None:
    addresses = sorted(
        {addr.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for addr in addrs
         if addr.family in (socket.AF_INET, socket.AF_INET6)}
    )
    ctx.put(a.HOST, {
        "hostname": socket.gethostname(),
        "kernel": _read("/proc/sys/kernel/osrelease") or os.uname().release,
        "euid": os.geteuid(),
        "addresses": addresses,
    })


def collect_sockets(ctx: ProbeContext) -> None:
    listeners = []
    names: dict[int, str] = {}
    for conn in psutil.net_connections(kind="inet"):
        tcp = conn.type == socket.SOCK_STREAM
        if (tcp and conn.status != psutil.CONN_LISTEN) or (not tcp and conn.raddr):
            continue
        if conn.pid is not None and conn.pid not in names:
            try:
                names[conn.pid] = psutil.Process(conn.pid).name()
            except psutil.Error:
                names[conn.pid] = "?"
        listeners.append({
            "protocol": "tcp" if tcp else "udp",
            "address": conn.laddr.ip,
            "port": conn.laddr.port,
            "pid": conn.pid,
            "process": names.get(conn.pid) if conn.pid is not None else None,
        })
    # Without root, sockets of other users' processes come without their owner.
    ctx.put(a.HOST_SOCKETS, sorted(listeners, key=lambda l: (l["port"], l["protocol"], l["address"])))


def collect_proxies(ctx: ProbeContext) -> None:
    proxies = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        argv = proc.info["cmdline"] or []
        if proc.info["name"] == "docker-proxy" or (argv and argv[0].endswith("/docker-proxy")):
            proxies.append({"pid": proc.pid, "argv": argv})
    ctx.put(a.PROXIES, proxies)


def collect_sysctls(ctx: ProbeContext) -> None:
    ctx.put(a.SYSCTLS, {name: _read("/proc/sys/" + name.replace(".", "/")) for name in SYSCTLS})


def collect_hosts_file(ctx: ProbeContext) -> None:
    try:
        ctx.put(a.HOSTS_FILE, Path("/etc/hosts").read_bytes())
    except FileNotFoundError:
        raise Skip("/etc/hosts does not exist") from None


def _read(path: str) -> str | None:
    """A /proc value, or None where the kernel has no such knob (module not loaded)."""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


PROBES = [
    Probe("host-platform", collect_platform),
    Probe("host-sockets", collect_sockets),
    Probe("docker-proxy", collect_proxies),
    Probe("sysctl", collect_sysctls),
    Probe("hosts-file", collect_hosts_file),
]
