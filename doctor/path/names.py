"""From inside a container: how it resolves a name, and the hops its packets take.

``docker-doctor --from web db:5432`` judges the path as ``web`` itself would walk it:
its own etc/hosts first (``--add-host``, legacy ``--link``), then the engine's
embedded DNS (127.0.0.11, user-defined networks only: container names, aliases,
compose service names of containers on a network ``web`` is attached to), then the
resolvers of its resolv.conf.  The destination is then the source itself
(loopback), another container, this host (a gateway or host address), or the
world outside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from doctor.facts.model import (
    EMBEDDED_DNS,
    Attachment,
    Container,
    Facts,
    Network,
    is_ip,
    is_loopback,
)
from doctor.report.document import Hop, HopStatus

HOST_GATEWAY_NAMES = ("host.docker.internal", "gateway.docker.internal")

Via = Literal["address", "hosts", "embedded-dns", "resolver", "none"]
Destination = Literal["self", "container", "host", "external", "unknown"]


@dataclass(frozen=True)
class Resolution:
    """What a name becomes inside the source container, as far as the facts tell."""

    name: str
    addresses: tuple[str, ...]
    status: HopStatus  # ok: resolved; broken: cannot resolve; unknown: up to a DNS server
    via: Via
    detail: str
    nameserver: str | None = None  # the server a live query would ask


def netns_owner(container: Container, facts: Facts) -> Container:
    """The container whose network namespace (and resolver files) ``container`` uses.

    ``--network container:X`` joins X's namespace: X's addresses, names and resolvers.
    """
    mode = container.network_mode
    if mode.startswith("container:"):
        owner = facts.container(mode.partition(":")[2])
        if owner is not None:
            return owner
    return container


def uses_embedded_dns(source: Container, facts: Facts) -> bool:
    if source.resolv_conf is not None:
        return source.resolv_conf.embedded
    # Unread: the engine gives every container on a user-defined network its embedded DNS.
    return any(not _is_default_bridge(facts.network(att.network_id)) for att in source.attachments)


def _on_overlay(source: Container, facts: Facts) -> bool:
    return any((n := facts.network(att.network_id)) is not None and n.driver == "overlay" for att in source.attachments)


def _is_default_bridge(network: Network | None) -> bool:
    return network is None or network.is_default_bridge


def resolve_as(source: Container, name: str, facts: Facts) -> Resolution:
    key = name.lower()
    if is_ip(name):
        return Resolution(name, (name,), "ok", "address", f"{name} is an address")
    hosts = source.hosts if source.hosts is not None else _hosts_from_config(source, facts)
    if key in hosts:
        where = "etc/hosts" if source.hosts is not None else "--add-host / --link (etc/hosts unread)"
        return Resolution(name, hosts[key], "ok", "hosts", f"{name} → {', '.join(hosts[key])} from {where}")
    if key == "localhost":
        return Resolution(name, ("127.0.0.1",), "ok", "hosts", "localhost is the container's own loopback")
    embedded = uses_embedded_dns(source, facts)
    if embedded:
        found = embedded_answers(source, key, facts)
        if found:
            shown = ", ".join(f"{ip} ({net})" for net, ip in found)
            return Resolution(name, tuple(ip for _, ip in found), "ok", "embedded-dns",
                              f"{name} → {shown} by the embedded DNS")
    nameserver = EMBEDDED_DNS if embedded else _first(source.resolv_conf.nameservers if source.resolv_conf else ())
    by = "the embedded DNS" if embedded else "the container's resolvers"
    if known_to_engine(key, facts) or key in HOST_GATEWAY_NAMES:
        return Resolution(name, (), "broken", "none", f"{by} cannot resolve {name}", nameserver)
    if not embedded and source.resolv_conf is not None and nameserver is None:
        return Resolution(name, (), "broken", "none", f"{source.name}'s resolv.conf has no nameserver")
    if not embedded and own_loopback_resolvers(source):
        return Resolution(name, (), "broken", "none", f"{source.name}'s only resolver {nameserver} is its own "
                          "loopback, where no DNS server runs", nameserver)
    if embedded and _on_overlay(source, facts):
        return Resolution(name, (), "unknown", "resolver", f"{name} is not on this node; on an overlay network it "
                          "may be a service or task on another node, which one node cannot see", nameserver)
    if "." not in name:
        # A single label that no container, alias or hosts entry carries: only a
        # search domain could still make it resolve, which a live query tells.
        return Resolution(name, (), "broken", "none", f"no container, alias or hosts entry is called {name}",
                          nameserver)
    return Resolution(name, (), "unknown", "resolver", f"{name} is up to {by} ({nameserver or 'none'})",
                      nameserver)


def own_loopback_resolvers(source: Container) -> bool:
    """All of the container's nameservers are on its own loopback and nothing serves DNS there."""
    servers = source.resolv_conf.nameservers if source.resolv_conf else ()
    if not servers or EMBEDDED_DNS in servers or not all(is_loopback(s) for s in servers):
        return False
    return source.listeners is not None and not source.listeners_on(53, "udp")


def embedded_answers(source: Container, key: str, facts: Facts) -> list[tuple[str, str]]:
    """(network, address) pairs the embedded DNS answers for ``key`` to ``source``."""
    found = []
    for att in source.attachments:
        if _is_default_bridge(facts.network(att.network_id)):
            continue
        for c in facts.containers:
            peer = c.attachment(att.network_id)
            if c.running and peer and peer.ip and key in c.dns_names(peer):
                found.append((att.network, peer.ip))
    return found


def known_to_engine(key: str, facts: Facts) -> bool:
    return any(key in c.dns_names(att) for c in facts.containers for att in c.attachments) or \
        facts.container(key) is not None


def named_containers(key: str, facts: Facts) -> list[Container]:
    """Containers the name means anywhere on this engine (name, alias, service, id prefix)."""
    found = [c for c in facts.containers if any(key in c.dns_names(att) for att in c.attachments)]
    by_ref = facts.container(key)
    if by_ref is not None and by_ref not in found:
        found.insert(0, by_ref)
    found.sort(key=lambda c: not c.running)
    return found


def _hosts_from_config(source: Container, facts: Facts) -> dict[str, tuple[str, ...]]:
    """What the engine writes into etc/hosts from --add-host, for when the file was unreadable."""
    hosts: dict[str, tuple[str, ...]] = {}
    gateway = _host_gateway(facts)
    for entry in source.extra_hosts:
        name, _, address = entry.partition(":")
        if address == "host-gateway":
            if gateway is None:
                continue
            address = gateway
        hosts.setdefault(name.lower(), (address,))
    return hosts


def _host_gateway(facts: Facts) -> str | None:
    # The engine's host-gateway-ip defaults to the default bridge's gateway.
    bridge = next((n for n in facts.networks if n.is_default_bridge), None)
    return bridge.gateways[0] if bridge and bridge.gateways else None


def _first(values: tuple[str, ...]) -> str | None:
    return values[0] if values else None



@dataclass(frozen=True)
class Place:
    """Where an address leads from the source."""

    kind: Destination
    container: Container | None = None
    attachment: Attachment | None = None  # the destination's endpoint that has the address


def locate(address: str, source: Container, facts: Facts) -> Place:
    if is_loopback(address):
        return Place("self", source)
    found = facts.container_at(address)
    if found:
        return Place("container", *found)
    gateways = {g for att in source.attachments if att.gateway for g in (att.gateway,)}
    gateways |= {g for n in facts.networks for g in n.gateways}
    if address in gateways or facts.is_host_address(address):
        return Place("host")
    return Place("external")


def shared_networks(a: Container, b: Container, facts: Facts) -> list[Network]:
    ids = {att.network_id for att in a.attachments} & {att.network_id for att in b.attachments}
    return [n for n in facts.networks if n.id in ids]


def hop(name: str, status: HopStatus, detail: str) -> Hop:
    return Hop(name, status, detail)
