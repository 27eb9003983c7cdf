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

from typing import Literal

from msgspec import Struct

from doctor.facts.model import (
    EMBEDDED_DNS,
    HOST_GATEWAY_NAMES,
    Attachment,
    Container,
    Facts,
    is_ip,
    is_loopback,
)
from doctor.facts.swarm import SwarmService
from doctor.report.document import HopStatus

#: swarm: a Swarm service's name, which the embedded DNS answers from the cluster's state
Via = Literal["address", "hosts", "embedded-dns", "resolver", "swarm", "none"]
Destination = Literal["self", "container", "host", "external", "unknown"]


class Resolution(Struct, frozen=True):
    """What a name becomes inside the source container, as far as the facts tell."""

    name: str
    addresses: tuple[str, ...]
    status: HopStatus  # ok: resolved; broken: cannot resolve; unknown: up to a DNS server
    via: Via
    detail: str
    nameserver: str | None = None  # the server a live query would ask


def _on_overlay(source: Container, facts: Facts) -> bool:
    return any(
        (n := facts.network(att.network_id)) is not None and n.driver == "overlay"
        for att in source.attachments
    )


def resolve_as(source: Container, name: str, facts: Facts) -> Resolution:
    key = name.lower()
    if is_ip(name):
        return Resolution(name, (name,), "ok", "address", f"{name} is an address")
    hosts = source.hosts if source.hosts is not None else _hosts_from_config(source, facts)
    if key in hosts:
        where = (
            "etc/hosts" if source.hosts is not None else "--add-host / --link (etc/hosts unread)"
        )
        return Resolution(
            name, hosts[key], "ok", "hosts", f"{name} → {', '.join(hosts[key])} from {where}"
        )
    if key == "localhost":
        return Resolution(
            name, ("127.0.0.1",), "ok", "hosts", "localhost is the container's own loopback"
        )
    embedded = facts.uses_embedded_dns(source)
    if embedded:
        found = embedded_answers(source, key, facts)
        if found:
            shown = ", ".join(f"{ip} ({net})" for net, ip in found)
            return Resolution(
                name,
                tuple(ip for _, ip in found),
                "ok",
                "embedded-dns",
                f"{name} → {shown} by the embedded DNS",
            )
    nameserver = (
        EMBEDDED_DNS
        if embedded
        else _first(source.resolv_conf.nameservers if source.resolv_conf else ())
    )
    by = "the embedded DNS" if embedded else "the container's resolvers"
    service = facts.swarm.service_named(key) if embedded and facts.swarm else None
    if service is not None:
        return _swarm_service(source, name, service, facts)
    if facts.known_to_engine(key) or key in HOST_GATEWAY_NAMES:
        return Resolution(name, (), "broken", "none", f"{by} cannot resolve {name}", nameserver)
    if not embedded and source.resolv_conf is not None and nameserver is None:
        return Resolution(
            name, (), "broken", "none", f"{source.name}'s resolv.conf has no nameserver"
        )
    if not embedded and source.loopback_resolvers_unserved:
        return Resolution(
            name,
            (),
            "broken",
            "none",
            f"{source.name}'s only resolver {nameserver} is its own "
            "loopback, where no DNS server runs",
            nameserver,
        )
    if embedded and _on_overlay(source, facts):
        return Resolution(
            name,
            (),
            "unknown",
            "resolver",
            f"{name} is not on this node; on an overlay network it "
            "may be a service or task on another node, which one node cannot see",
            nameserver,
        )
    if "." not in name:
        # A single label that no container, alias or hosts entry carries: only a
        # search domain could still make it resolve, which a live query tells.
        return Resolution(
            name,
            (),
            "broken",
            "none",
            f"no container, alias or hosts entry is called {name}",
            nameserver,
        )
    return Resolution(
        name,
        (),
        "unknown",
        "resolver",
        f"{name} is up to {by} ({nameserver or 'none'})",
        nameserver,
    )


def _swarm_service(source: Container, name: str, service: SwarmService, facts: Facts) -> Resolution:
    """A service's name: the embedded DNS answers it on the service's networks, with its
    running tasks' addresses (dnsrr) or its virtual IP while a task runs (vip)."""
    swarm = facts.swarm
    assert swarm is not None
    shared = [n for n in service.network_ids if source.attachment(n)]
    if not shared:
        on = ", ".join(map(facts.network_name, service.network_ids)) or "no network"
        return Resolution(
            name,
            (),
            "broken",
            "swarm",
            f"{name} is swarm service {service.name}, on {on}: {source.name} is on none of them",
            EMBEDDED_DNS,
        )
    if not swarm.tasks_read:
        return Resolution(
            name,
            (),
            "unknown",
            "swarm",
            f"{name} is swarm service {service.name}; the manager did not give its tasks",
            EMBEDDED_DNS,
        )
    running = swarm.running(service)
    if not running:
        return Resolution(
            name,
            (),
            "broken",
            "swarm",
            f"{name} is swarm service {service.name}: none of its tasks is running, so the "
            "embedded DNS has no address for it",
            EMBEDDED_DNS,
        )
    nodes = sorted({n.label if (n := swarm.node(t.node_id)) else t.node_id for t in running})
    elsewhere = any(t.node_id != swarm.node_id for t in running)
    return Resolution(
        name,
        (),
        "unknown",
        "swarm",
        f"{name} is swarm service {service.name}: {len(running)} running task(s), on "
        f"{', '.join(nodes)}"
        + ("; the path to another node is not checked from this one" if elsewhere else ""),
        EMBEDDED_DNS,
    )


def embedded_answers(source: Container, key: str, facts: Facts) -> list[tuple[str, str]]:
    """(network, address) pairs the embedded DNS answers for ``key`` to ``source``."""
    found = []
    for att in source.attachments:
        if facts.is_default_bridge(att.network_id):
            continue
        for c in facts.containers:
            peer = c.attachment(att.network_id)
            if c.running and peer and peer.ip and key in c.dns_names(peer):
                found.append((att.network, peer.ip))
    return found


def _hosts_from_config(source: Container, facts: Facts) -> dict[str, tuple[str, ...]]:
    """What the engine writes into etc/hosts from --add-host, for when the file was unreadable."""
    hosts: dict[str, tuple[str, ...]] = {}
    gateway = facts.host_gateway()
    for entry in source.extra_hosts:
        name, _, address = entry.partition(":")
        if address == "host-gateway":
            if gateway is None:
                continue
            address = gateway
        hosts.setdefault(name.lower(), (address,))
    return hosts


def _first(values: tuple[str, ...]) -> str | None:
    return values[0] if values else None


class Place(Struct, frozen=True):
    """Where an address leads from the source."""

    kind: Destination
    container: Container | None = None
    attachment: Attachment | None = None  # the destination's endpoint that has the address


UNKNOWN_PLACE = Place("unknown")  # where a name that does not resolve leads


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
