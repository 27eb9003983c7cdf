"""Parsers: one raw artifact in, typed facts out.  Pure functions, no I/O."""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from doctor.facts.model import (
    Attachment,
    Binding,
    ConntrackEntry,
    Container,
    EngineNotes,
    FlowTuple,
    HostRoute,
    Listener,
    Mount,
    Network,
    PortMapping,
    Protocol,
    ProxyProcess,
    ResolvConf,
)


class Unreadable(ValueError):
    """An artifact that is not what its parser reads (a hand-edited snapshot, an engine
    answering garbage): its facts are left out, and the report says which and why."""


TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"  # TCP_CLOSE: a bound UDP socket with no peer


@functools.lru_cache(maxsize=4096)  # a table of 100,000 sockets holds a handful of addresses
def _proc_net_address(hex_address: str) -> str:
    """Decode /proc/net/tcp's address: 32-bit words in host byte order (little-endian here);
    an IPv4-mapped v6 address is the v4 address it stands for. ValueError if it is none."""
    raw = bytes.fromhex(hex_address)
    words = struct.unpack(f"<{len(raw) // 4}I", raw)
    return socket_address(ipaddress.ip_address(struct.pack(f">{len(words)}I", *words)))


def socket_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """A socket's address as a listener's fact: an IPv4-mapped v6 address is the v4 one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


def format_proc_net(listeners: Iterable[tuple[str, int]], state: str = TCP_LISTEN) -> str:
    """Sockets in /proc/net/tcp's format: the inverse of :func:`parse_proc_net`."""
    lines = ["  sl  local_address rem_address   st"]
    for index, (address, port) in enumerate(listeners):
        local = _proc_net_hex(address)
        lines.append(f"{index:4}: {local}:{port:04X} {'0' * len(local)}:0000 {state}")
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=4096)
def _proc_net_hex(address: str) -> str:
    packed = ipaddress.ip_address(address).packed
    words = struct.unpack(f">{len(packed) // 4}I", packed)
    return struct.pack(f"<{len(words)}I", *words).hex().upper()


def parse_proc_net(text: str, protocol: Protocol) -> list[Listener]:
    """Listeners in one of /proc/<pid>/net/{tcp,tcp6,udp,udp6}."""
    return [
        Listener(protocol, address, port) for address, port, _ in proc_net_listeners(text, protocol)
    ]


def proc_net_listeners(text: str, protocol: Protocol) -> list[tuple[str, int, int | None]]:
    """(address, port, inode) of the listening (TCP) or unconnected (UDP) sockets in the file;
    a line the kernel would not write is left out."""
    wanted = TCP_LISTEN if protocol == "tcp" else UDP_UNCONNECTED
    listeners = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != wanted:
            continue
        local, _, port = fields[1].partition(":")
        try:
            address = _proc_net_address(local)
            number = int(port, 16)
        except (ValueError, struct.error):
            continue  # not a line the kernel writes
        inode = int(fields[9]) if len(fields) > 9 and fields[9].isdigit() else None
        listeners.append((address, number, inode))
    return listeners


def parse_hosts(text: str) -> dict[str, tuple[str, ...]]:
    """/etc/hosts: each name with its addresses, in the order a resolver meets them."""
    names: dict[str, list[str]] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            names.setdefault(name.lower(), []).append(fields[0])
    return {name: tuple(addresses) for name, addresses in names.items()}


def parse_resolv_conf(text: str) -> ResolvConf:
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) < 2:
            continue
        if fields[0] == "nameserver":
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]  # the last one wins, as in glibc
        elif fields[0] == "options":
            options += fields[1:]
    return ResolvConf(tuple(nameservers), tuple(search), tuple(options), _engine_notes(text))


_BASED_ON = re.compile(r"^# Based on host file: '(?P<source>[^']*)'(?: \((?P<transform>[^)]*)\))?")
_NOTE = re.compile(r"^# (?P<key>ExtServers|Overrides|Invalid nameservers|Option ndots from): ?")


def _engine_notes(text: str) -> EngineNotes | None:
    """The comments an engine (25 and later) writes below the file: see EngineNotes."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _BASED_ON.match(line)), None)
    if start is None:
        return None
    based = _BASED_ON.match(lines[start])
    assert based is not None
    warnings, values = [], {}
    for line in lines[start + 1 :]:
        if not line.startswith("# "):
            continue
        if note := _NOTE.match(line):
            values[note["key"]] = tuple(line[note.end() :].strip("[] ").split())
        else:
            warnings.append(line[2:].strip())
    return EngineNotes(
        based["source"],
        based["transform"] or "",
        tuple(warnings),
        values.get("ExtServers", ()),
        values.get("Overrides", ()),
    )


def parse_routes(text: str) -> tuple[HostRoute, ...]:
    """/proc/net/route: Iface Destination Gateway Flags RefCnt Use Metric Mask ... (hex, host order)."""
    routes = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            flags = int(fields[3], 16)
            destination, gateway, mask = (
                ipaddress.IPv4Address(struct.pack("<I", int(f, 16)))
                for f in (fields[1], fields[2], fields[7])
            )
            network = ipaddress.IPv4Network(f"{destination}/{mask}", strict=False)
        except (ValueError, struct.error):
            continue  # not a line the kernel writes
        if not flags & 0x1:  # RTF_UP
            continue
        routes.append(
            HostRoute(network, fields[0], str(gateway) if flags & 0x2 else None)
        )  # RTF_GATEWAY
    return tuple(routes)


def parse_proxy_cmdline(pid: int, argv: list[str]) -> ProxyProcess | None:
    """docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip IP -container-port 80"""
    args: dict[str, str] = {}
    for flag, value in itertools.pairwise(argv[1:]):
        if flag.startswith("-"):
            args[flag.lstrip("-")] = value
    try:
        return ProxyProcess(
            pid=pid,
            protocol="udp" if args.get("proto") == "udp" else "tcp",
            host_ip=args["host-ip"],
            host_port=int(args["host-port"]),
            container_ip=args["container-ip"],
            container_port=int(args["container-port"]),
        )
    except (KeyError, ValueError):
        return None


def _port_key(key: str) -> tuple[int, Protocol]:
    port, _, proto = key.partition("/")
    return int(port), "udp" if proto == "udp" else "tcp"


def _mappings(ports: Mapping[str, Any] | None) -> tuple[PortMapping, ...]:
    mappings = []
    for key, bindings in (ports or {}).items():
        port, protocol = _port_key(key)
        mappings.append(
            PortMapping(
                port,
                protocol,
                tuple(
                    Binding(b.get("HostIp") or "", int(b["HostPort"]))
                    for b in bindings or ()
                    if b.get("HostPort")
                ),
            )
        )
    return tuple(sorted(mappings, key=lambda m: (m.container_port, m.protocol)))


def parse_container(
    inspect: Mapping[str, Any],
    listeners: Iterable[Listener] | None = None,
    log_tail: Iterable[str] = (),
    resolv_conf: ResolvConf | None = None,
    hosts: dict[str, tuple[str, ...]] | None = None,
) -> Container:
    """A container from its inspect object; Unreadable if it is not one."""
    try:
        return _container(inspect, listeners, log_tail, resolv_conf, hosts)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise Unreadable(f"container {_id(inspect)}: {type(exc).__name__}: {exc}") from None


def _id(inspect: Any) -> str:
    found = inspect.get("Id") if isinstance(inspect, Mapping) else None
    return found[:12] if isinstance(found, str) else "without an ID"


def _text(value: Any) -> str:
    """A string the Engine writes; TypeError for anything else."""
    if not isinstance(value, str):
        raise TypeError(f"{value!r} where the Engine writes a string")
    return value


def _container(
    inspect: Mapping[str, Any],
    listeners: Iterable[Listener] | None,
    log_tail: Iterable[str],
    resolv_conf: ResolvConf | None,
    hosts: dict[str, tuple[str, ...]] | None,
) -> Container:
    state = inspect.get("State") or {}
    config = inspect.get("Config") or {}
    host_config = inspect.get("HostConfig") or {}
    settings = inspect.get("NetworkSettings") or {}
    health = state.get("Health") or None
    health_log = (health or {}).get("Log") or []
    attachments = tuple(
        Attachment(
            network=_text(name),
            network_id=net.get("NetworkID") or "",
            ip=net.get("IPAddress") or None,
            ipv6=net.get("GlobalIPv6Address") or None,
            gateway=net.get("Gateway") or None,
            # DNSNames (API 1.44+) lists every name the embedded DNS answers to.
            aliases=tuple(
                dict.fromkeys([*(net.get("Aliases") or ()), *(net.get("DNSNames") or ())])
            ),
        )
        for name, net in sorted((settings.get("Networks") or {}).items())
    )
    return Container(
        id=_text(inspect["Id"]),
        name=_text(inspect.get("Name", "")).lstrip("/"),
        image=_text(config.get("Image") or inspect.get("Image", "")),
        command=tuple(config.get("Cmd") or ()),
        status=_text(state.get("Status", "unknown")),
        pid=state.get("Pid") or None,
        exit_code=state.get("ExitCode"),
        oom_killed=bool(state.get("OOMKilled")),
        restart_count=int(inspect.get("RestartCount") or 0),
        error=state.get("Error") or "",
        health=health.get("Status") if health else None,
        health_output=(health_log[-1].get("Output") or "").strip() if health_log else None,
        health_exit_code=health_log[-1].get("ExitCode") if health_log else None,
        health_test=tuple((config.get("Healthcheck") or {}).get("Test") or ()),
        hostname=config.get("Hostname") or "",
        network_mode=host_config.get("NetworkMode") or "default",
        attachments=attachments,
        published=_mappings(settings.get("Ports")),
        configured=_mappings(host_config.get("PortBindings")),
        exposed=tuple(sorted(_port_key(k) for k in (config.get("ExposedPorts") or {}))),
        labels=dict(config.get("Labels") or {}),
        mounts=tuple(
            Mount(m.get("Type", ""), m.get("Source", ""), m.get("Destination", ""))
            for m in inspect.get("Mounts") or ()
        ),
        extra_hosts=tuple(host_config.get("ExtraHosts") or ()),
        links=tuple(host_config.get("Links") or ()),
        dns=tuple(host_config.get("Dns") or ()),
        listeners=None if listeners is None else tuple(listeners),
        resolv_conf=resolv_conf,
        hosts=hosts,
        log_tail=tuple(log_tail),
    )


def parse_network(inspect: Mapping[str, Any]) -> Network:
    """A network from its inspect object; Unreadable if it is not one."""
    try:
        return _network(inspect)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise Unreadable(f"network {_id(inspect)}: {type(exc).__name__}: {exc}") from None


def _network(inspect: Mapping[str, Any]) -> Network:
    ipam = (inspect.get("IPAM") or {}).get("Config") or []
    return Network(
        id=_text(inspect["Id"]),
        name=_text(inspect.get("Name", "")),
        driver=_text(inspect.get("Driver", "")),
        internal=bool(inspect.get("Internal")),
        enable_ipv6=bool(inspect.get("EnableIPv6")),
        subnets=tuple(c["Subnet"] for c in ipam if c.get("Subnet")),
        gateways=tuple(c["Gateway"] for c in ipam if c.get("Gateway")),
        options=dict(inspect.get("Options") or {}),
        scope=inspect.get("Scope") or "local",
        attachable=bool(inspect.get("Attachable")),
    )


def multiplexed(raw: bytes) -> bool:
    """Whether ``raw`` is an Engine log stream in frames (a container without a TTY): each an
    8-byte header (stream 0-2, three zero bytes, the payload's length) and its payload."""
    return len(raw) >= 8 and raw[0] in (0, 1, 2) and raw[1:4] == b"\0\0\0"


def demux_log(raw: bytes) -> list[str]:
    """Engine logs, frames taken apart when they come in frames: the lines."""
    if multiplexed(raw):
        chunks, offset = [], 0
        while offset + 8 <= len(raw):
            size = struct.unpack(">I", raw[offset + 4 : offset + 8])[0]
            chunks.append(raw[offset + 8 : offset + 8 + size])
            offset += 8 + size
        raw = b"".join(chunks)
    return raw.decode("utf-8", "replace").splitlines()


_FIELD = re.compile(r"(src|dst|sport|dport)=(\S+)")


def parse_conntrack(text: str) -> tuple[ConntrackEntry, ...]:
    """/proc/net/nf_conntrack (or `conntrack -L -o extended`): each flow's two tuples. Lines
    not of the form are left out."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[2] not in ("tcp", "udp"):
            continue
        values = _FIELD.findall(line)
        if len(values) < 8:
            continue
        try:
            tuples = [
                FlowTuple(_address(v["src"]), _address(v["dst"]), int(v["sport"]), int(v["dport"]))
                for v in (dict(values[:4]), dict(values[4:8]))
            ]
        except (KeyError, ValueError):
            continue
        protocol: Protocol = "tcp" if fields[2] == "tcp" else "udp"
        entries.append(
            ConntrackEntry(protocol, tuples[0], tuples[1], "[UNREPLIED]" in line, line.strip())
        )
    return tuple(entries)


def _address(text: str) -> str:
    """An address as the rest of the facts write it (the kernel prints IPv6 uncompressed)."""
    return str(ipaddress.ip_address(text))
