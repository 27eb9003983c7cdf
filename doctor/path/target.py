"""TARGET on the command line: parsed alone first (bad input fails fast), then resolved against facts."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from typing import Literal
from urllib.parse import urlsplit

from msgspec import Struct
from msgspec.structs import replace

from doctor.bounded import call_bounded
from doctor.errors import UsageError
from doctor.facts.model import Container, Facts, Protocol, is_ip, is_loopback
from doctor.path.names import Resolution, locate, resolve_as
from doctor.report.document import TargetSummary

SCHEME_PORTS = {"http": 80, "https": 443}
SCHEME_PROTOCOLS: dict[str, Protocol] = {"http": "tcp", "https": "tcp", "tcp": "tcp", "udp": "udp"}
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$")
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:/\[\]]*)):(?P<port>[^:/]+)$")
RESOLVE_TIMEOUT = 2.0

Vantage = str  # "host", "external", or a container reference given to --from
PLACES = ("host", "external")


class TargetSpec(Struct, frozen=True):
    """What the user typed, checked for form only."""

    input: str
    host: str | None  # None: this host over loopback (":8080", "8080")
    port: int | None
    protocol: Protocol


def parse_client(text: str) -> str:
    """--client ADDRESS: an IPv4 or IPv6 address, not a name (a name has no one source address)."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise UsageError(f"--client {text!r}: give the client's IP address") from None
    if address.is_loopback or address.is_unspecified or address.is_multicast:
        raise UsageError(f"--client {text!r}: not the address of a client on another machine")
    return str(address)


def parse_target(text: str) -> TargetSpec:
    raw = text.strip()
    if not raw:
        raise UsageError("empty target")
    protocol: Protocol = "tcp"
    if "://" in raw:
        return _parse_url(raw)
    body, slash, proto = raw.rpartition("/") if "/" in raw else (raw, "", "")
    if slash:
        if proto.lower() not in ("tcp", "udp"):
            raise UsageError(f"bad target {text!r}: protocol must be tcp or udp, not {proto!r}")
        protocol = "udp" if proto.lower() == "udp" else "tcp"
    else:
        body = raw
    if body.isdigit() or (body.startswith(":") and body[1:].isdigit()):
        return TargetSpec(text, None, _port(body.lstrip(":"), text), protocol)
    match = _HOST_PORT.match(body)
    if match:
        host = match.group("v6") or match.group("host") or None
        return TargetSpec(
            text, _host(host, text) if host else None, _port(match.group("port"), text), protocol
        )
    if slash:
        raise UsageError(f"bad target {text!r}: a protocol needs a port (e.g. 8080/udp)")
    return TargetSpec(text, _host(body.strip("[]"), text), None, protocol)


def _parse_url(text: str) -> TargetSpec:
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError as exc:
        raise UsageError(f"bad target {text!r}: {exc}") from None
    scheme = url.scheme.lower()
    if scheme not in SCHEME_PROTOCOLS:
        raise UsageError(f"bad target {text!r}: unsupported scheme {url.scheme!r}")
    if port is None:
        port = SCHEME_PORTS.get(scheme)
        if port is None:
            raise UsageError(f"bad target {text!r}: {scheme}:// needs a port")
    if not url.hostname:
        raise UsageError(f"bad target {text!r}: no host")
    return TargetSpec(
        text, _host(url.hostname, text), _port(str(port), text), SCHEME_PROTOCOLS[scheme]
    )


def _port(value: str, text: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise UsageError(f"bad target {text!r}: port must be a number from 1 to 65535")
    return int(value)


def _host(value: str, text: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _NAME.match(value) or len(value) > 253:
        raise UsageError(
            f"bad target {text!r}: {value!r} is not a host name, address or container name"
        )
    return value


class Target(Struct, frozen=True):
    """A target resolved against the facts: what it is, and where a client would connect."""

    spec: TargetSpec
    #: forward: to an address elsewhere, from an outside client (--client), through this host
    kind: Literal["port", "container", "host", "compose", "forward"]
    port: int | None
    protocol: Protocol
    addresses: tuple[str, ...]  # where a client connects (empty for a container without port)
    vantage: Vantage  # host, external or container:NAME
    container: Container | None = None
    source: Container | None = None  # --from CONTAINER: the client is this container
    resolution: Resolution | None = None  # how the source resolves the host part
    client_address: str | None = None  # --client ADDRESS: the outside client's own address

    @property
    def client(self) -> str:
        """host, external or container: where the connection starts."""
        if self.kind == "compose":
            return "compose"
        return "container" if self.source else self.vantage

    def as_report(self) -> TargetSummary:
        return TargetSummary(
            input=self.spec.input,
            kind=self.kind,
            host=self.spec.host
            if self.spec.host is not None
            else ("localhost" if self.kind == "port" else None),
            port=self.port,
            protocol=self.protocol,
            container=self.container.name if self.container else None,
            client=self.client_address,
        )


def resolve_target(
    spec: TargetSpec, facts: Facts, vantage: Vantage | None = None, client: str | None = None
) -> Target:
    """``spec`` against the facts, as the client at ``vantage`` would connect; ``client``: the
    address of an outside client (--client), whose traffic this host receives or forwards."""
    if client is None:
        return _resolve(spec, facts, vantage)
    if vantage not in (None, "external"):
        raise UsageError(
            f"--client is the address of a client on another machine: not --from {vantage}"
        )
    loopback = UsageError(
        f"--client {client}: a client on another machine cannot use this host's loopback"
    )
    if spec.host is None or spec.host.lower() == "localhost":
        raise loopback
    try:
        target = _resolve(spec, facts, "external")
    except UsageError:
        if not is_ip(spec.host) or spec.port is None:
            raise
        # Neither this host nor a container: a flow this host forwards (a VM, an LXD bridge).
        target = Target(spec, "forward", spec.port, spec.protocol, (spec.host,), "external")
    if any(is_loopback(a) for a in target.addresses):  # 127.0.0.2, ::1, a name for them
        raise loopback
    return replace(target, client_address=client)


def _resolve(spec: TargetSpec, facts: Facts, vantage: Vantage | None) -> Target:
    if vantage is not None and vantage not in PLACES:
        return _from_container(spec, facts, find_container(vantage, facts, "--from"))
    host = spec.host
    if host is None or host.lower() == "localhost":
        return Target(spec, "port", spec.port, spec.protocol, _localhost(facts), vantage or "host")
    container = facts.container(host)
    if container is None and is_ip(host):
        container = next(
            (c for c in facts.containers for att in c.attachments if host in (att.ip, att.ipv6)),
            None,
        )
    if container is not None:
        return Target(spec, "container", spec.port, spec.protocol, (), vantage or "host", container)
    addresses = (host,) if is_ip(host) else _resolve_name(host)
    if any(is_loopback(a) for a in addresses) or any(facts.is_host_address(a) for a in addresses):
        default: Vantage = "host" if all(is_loopback(a) for a in addresses) else "external"
        if spec.port is None:
            raise UsageError(f"{spec.input!r} is this host: give a port (e.g. {host}:8080)")
        return Target(spec, "port", spec.port, spec.protocol, addresses, vantage or default)
    if is_ip(host) and _asked_for(host, facts):
        # Not an address of this host, but a container's -p names it: why it never started.
        if spec.port is None:
            raise UsageError(f"{spec.input!r}: give the port a container publishes on it")
        return Target(spec, "port", spec.port, spec.protocol, (host,), vantage or "external")
    raise UsageError(
        f"{host!r} is neither a container nor an address of this host{_did_you_mean(host, facts)}"
    )


def _asked_for(address: str, facts: Facts) -> bool:
    """Whether some container's -p ADDRESS:PORT:PORT names ``address``."""
    return any(
        b.host_ip == address for c in facts.containers for m in c.configured for b in m.bindings
    )


def host_target(facts: Facts) -> Target:
    """The whole host, for a checkup."""
    hostname = facts.host.hostname if facts.host else "this host"
    return Target(TargetSpec("", hostname, None, "tcp"), "host", None, "tcp", (), "host")


def find_container(ref: str, facts: Facts, what: str) -> Container:
    """By name, id prefix, or compose service name (the current project's first)."""
    container = facts.container(ref)
    if container is not None:
        return container
    services = [c for c in facts.containers if c.compose_service == ref]
    project = current_compose_project()
    ours = [c for c in services if c.compose_project == project]
    candidates = sorted(ours or services, key=lambda c: (not c.running, c.name))
    if len(ours) >= 1 or len({c.compose_project for c in services}) == 1:
        return candidates[0]
    if services:
        projects = ", ".join(sorted({c.compose_project or "?" for c in services}))
        raise UsageError(
            f"{what} {ref}: a service of several compose projects ({projects}); "
            "name the container, or set COMPOSE_PROJECT_NAME"
        )
    raise UsageError(f"{what} {ref}: no such container{_did_you_mean(ref, facts)}")


def current_compose_project() -> str:
    """The compose project of the current directory, as `docker compose` names it."""
    name = os.environ.get("COMPOSE_PROJECT_NAME") or os.path.basename(os.getcwd())
    return re.sub(r"[^a-z0-9_-]", "", name.lower())


def _did_you_mean(ref: str, facts: Facts) -> str:
    names = {c.name for c in facts.containers} | {
        c.compose_service for c in facts.containers if c.compose_service
    }
    import difflib  # only when a name is wrong

    close = difflib.get_close_matches(ref, sorted(names), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _from_container(spec: TargetSpec, facts: Facts, source: Container) -> Target:
    """The target as the source container sees it: its names, its loopback."""
    name = spec.host or "localhost"
    owner = facts.netns_owner(source)
    resolution = resolve_as(owner, name, facts)
    destination = None
    if resolution.addresses:
        place = locate(resolution.addresses[0], owner, facts)
        destination = place.container if place.kind == "container" else None
    else:
        destination = next(iter(facts.named_containers(name.lower())), None)
    return Target(
        spec,
        "container" if destination else "port",
        spec.port,
        spec.protocol,
        resolution.addresses,
        f"container:{source.name}",
        destination,
        source,
        resolution,
    )


def _localhost(facts: Facts) -> tuple[str, ...]:
    from_file = (facts.hosts_file or {}).get("localhost")
    return from_file or ("127.0.0.1", "::1")


def _resolve_name(name: str) -> tuple[str, ...]:
    # getaddrinfo cannot be interrupted: stop waiting for it instead.
    try:
        infos = call_bounded(
            lambda: socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP), RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError):
        return ()
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))
