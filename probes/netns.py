"""What each running container listens on, read from its network namespace without `docker exec`.

Listeners come from the kernel's sock_diag netlink interface, asked inside the container's
namespace for listening TCP and unconnected UDP sockets only. The /proc/<pid>/net files cost
more: /proc/net/tcp makes the kernel walk every established-connection bucket of the host,
~4 ms a file, most of a run with a hundred containers; /proc/net/udp restarts its walk for
every page it prints, 6.7 s for a container with 50,000 UDP sockets. They are read where
entering a namespace is not allowed (not root) or the kernel has no sock_diag for them.
Either way the artifact is in /proc/net/tcp's format, so there is one parser.
This works for distroless images too.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from doctor.collect import netlink
from doctor.collect.namespaces import setns
from doctor.facts.parse import TCP_LISTEN, UDP_UNCONNECTED, format_proc_net, socket_address
from doctor.plugin import Probe, ProbeContext, Skip
from doctor.snapshot import artifacts as a

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
#: the kernel's sk_state of what listens: a listening TCP socket, an unconnected UDP one
LISTENING = {socket.IPPROTO_TCP: 10, socket.IPPROTO_UDP: 7}
_FILES = {
    "tcp": (socket.AF_INET, socket.IPPROTO_TCP),
    "tcp6": (socket.AF_INET6, socket.IPPROTO_TCP),
    "udp": (socket.AF_INET, socket.IPPROTO_UDP),
    "udp6": (socket.AF_INET6, socket.IPPROTO_UDP),
}
_STATE_IN_FILE = {socket.IPPROTO_TCP: TCP_LISTEN, socket.IPPROTO_UDP: UDP_UNCONNECTED}


def collect_listeners(ctx: ProbeContext) -> None:
    ctx.need_linux_host("container network namespaces (/proc/<pid>/net)", rootless=True)
    denied = hidden = 0
    for container, pid in ctx.running_containers():
        if (container.get("HostConfig") or {}).get("NetworkMode") == "host":
            continue  # the host's own sockets: the host-sockets probe reads them
        try:
            files = _read_namespace(pid, use_netlink=ctx.is_root)
        except PermissionError:
            denied += 1
            continue
        except FileNotFoundError:
            if _hidden(pid, ctx.is_root):
                hidden += 1
            else:  # exited meanwhile: a race, not an error
                ctx.could_not_check(container, "its process exited before its namespace was read")
            continue
        for name, text in files.items():
            ctx.put(a.netns_file(container["Id"], name), text)
    if (denied or hidden) and not ctx.artifacts:
        why = " (this /proc hides other users' processes: hidepid)" if hidden else ""
        raise Skip(f"needs root to read the containers' network namespaces{why}")


def _hidden(pid: int, is_root: bool) -> bool:
    """Whether ``pid`` lives although /proc does not show it: /proc mounted with hidepid hides
    another user's processes (never from root). A process that exited, or a zombie whose
    namespace is gone, is not hidden."""
    if is_root or os.path.exists(f"/proc/{pid}"):
        return False
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and is another user's
        return True
    return True


def _read_namespace(pid: int, use_netlink: bool) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    if use_netlink:
        with _diag_socket(pid) as sock:
            for name, (family, protocol) in _FILES.items():
                try:
                    found = [
                        (address, port) for address, port, _ in listen_dump(sock, family, protocol)
                    ]
                except netlink.NetlinkError:  # no sock_diag for it in this kernel: /proc's file
                    continue
                files[name] = format_proc_net(found, _STATE_IN_FILE[protocol]).encode()
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


def diag_socket() -> socket.socket:
    """A sock_diag socket in this process's own network namespace."""
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)


def listen_dump(sock: socket.socket, family: int, protocol: int) -> list[tuple[str, int, int]]:
    """(address, port, inode) of every listening TCP, or unconnected UDP, socket of
    ``family``, from sock_diag; NetlinkError when the kernel cannot dump ``protocol``."""
    # struct inet_diag_req_v2: family, protocol, ext, pad, states; then a zeroed inet_diag_sockid.
    states = 1 << LISTENING[protocol]
    request = struct.pack("=BBBBI", family, protocol, 0, 0, states) + bytes(48)
    width = 4 if family == socket.AF_INET else 16
    listeners: list[tuple[str, int, int]] = []
    for body in netlink.dump(sock, SOCK_DIAG_BY_FAMILY, request):
        # struct inet_diag_msg: family, state, timer, retrans, then sport (big-endian), dport, src...
        port = struct.unpack_from(">H", body, 4)[0]
        inode = struct.unpack_from("=I", body, 68)[0]
        listeners.append((_address(body[8 : 8 + width]), port, inode))
    return listeners


@functools.lru_cache(maxsize=4096)  # 100,000 sockets hold a handful of addresses
def _address(packed: bytes) -> str:
    return socket_address(ipaddress.ip_address(packed))


PROBES = [Probe("container-listeners", collect_listeners, requires=("engine",))]
