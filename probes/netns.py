"""What each running container listens on, read from its network namespace without `docker exec`.

TCP listeners come from the kernel's sock_diag netlink interface, asked inside the
container's namespace for LISTEN sockets only: reading /proc/<pid>/net/tcp instead makes
the kernel walk every established-connection bucket of the host, ~4 ms a file, which
is most of a run with a hundred containers.  UDP comes from /proc/<pid>/net/udp{,6}
(cheap), and so does TCP where entering a namespace is not allowed (not root).
Either way the artifact is in /proc/net/tcp's format, so there is one parser.
This works for distroless images too.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from doctor.collect import netlink
from doctor.collect.namespaces import setns
from doctor.facts.parse import format_proc_net
from doctor.plugin import Probe, ProbeContext, Skip
from doctor.snapshot import artifacts as a

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
TCP_LISTEN = 10
_FAMILIES = {"tcp": socket.AF_INET, "tcp6": socket.AF_INET6}


def collect_listeners(ctx: ProbeContext) -> None:
    ctx.need_linux_host("container network namespaces (/proc/<pid>/net)", rootless=True)
    denied = 0
    for container, pid in ctx.running_containers():
        if (container.get("HostConfig") or {}).get("NetworkMode") == "host":
            continue  # the host's own sockets: the host-sockets probe reads them
        try:
            files = _read_namespace(pid, use_netlink=ctx.is_root)
        except PermissionError:
            denied += 1
            continue
        except FileNotFoundError:  # exited meanwhile: a race, not an error
            ctx.could_not_check(container, "its process exited before its namespace was read")
            continue
        for name, text in files.items():
            ctx.put(a.netns_file(container["Id"], name), text)
    if denied and not ctx.artifacts:
        raise Skip("needs root to read the containers' network namespaces")


def _read_namespace(pid: int, use_netlink: bool) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    if use_netlink:
        with _diag_socket(pid) as sock:
            for name, family in _FAMILIES.items():
                files[name] = format_proc_net(_tcp_listeners(sock, family)).encode()
    for name in a.NETNS_FILES:
        if name not in files:
            try:
                files[name] = Path(f"/proc/{pid}/net/{name}").read_bytes()
            except FileNotFoundError:
                if name.endswith("6"):
                    continue  # no IPv6 in this kernel
                raise
    return files


@contextmanager
def _diag_socket(pid: int) -> Iterator[socket.socket]:
    """A sock_diag socket bound to the network namespace of ``pid``.

    Only this thread enters the namespace, and only while the socket is made: a
    socket keeps the namespace it was created in.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            setns(target)
            try:
                sock = diag_socket()
            finally:
                setns(own)  # if this fails the probe fails: never go on in the wrong namespace
        finally:
            os.close(target)
    finally:
        os.close(own)
    with sock:
        yield sock


def _tcp_listeners(sock: socket.socket, family: int) -> list[tuple[str, int]]:
    return [(address, port) for address, port, _ in tcp_listen_dump(sock, family)]


def diag_socket() -> socket.socket:
    """A sock_diag socket in this process's own network namespace."""
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)


def tcp_listen_dump(sock: socket.socket, family: int) -> list[tuple[str, int, int]]:
    """(address, port, inode) of every TCP socket in LISTEN state, from sock_diag."""
    # struct inet_diag_req_v2: family, protocol, ext, pad, states; then a zeroed inet_diag_sockid.
    request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN) + bytes(48)
    width = 4 if family == socket.AF_INET else 16
    listeners: list[tuple[str, int, int]] = []
    for body in netlink.dump(sock, SOCK_DIAG_BY_FAMILY, request):
        # struct inet_diag_msg: family, state, timer, retrans, then sport (big-endian), dport, src...
        port = struct.unpack_from(">H", body, 4)[0]
        address = ipaddress.ip_address(body[8 : 8 + width])
        inode = struct.unpack_from("=I", body, 68)[0]
        listeners.append((str(address), port, inode))
    return listeners


PROBES = [Probe("container-listeners", collect_listeners, requires=("engine",))]
