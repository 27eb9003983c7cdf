"""Rules about Docker networks and the host around them: subnets, MTU, macvlan."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from doctor.facts.model import DEFAULT_MTU, Container, Facts, HostRoute, Network
from doctor.plugin import (
    ENGINE_API,
    Evidence,
    Finding,
    Fix,
    HopName,
    Rule,
    RuleContext,
    finding,
)

ROUTES = "/proc/net/route"


def subnet_overlaps(facts: Facts) -> list[tuple[Network, ipaddress.IPv4Network, HostRoute]]:
    """Bridge networks whose subnet overlaps a host route that is not Docker's own."""
    bridges = facts.bridges()
    found = []
    for network in facts.networks:
        if network.driver != "bridge":
            continue  # macvlan/ipvlan subnets are meant to be the parent's LAN
        for text in network.subnets:
            subnet = ipaddress.ip_network(text, strict=False)
            if not isinstance(subnet, ipaddress.IPv4Network):
                continue
            found += [
                (network, subnet, r)
                for r in facts.routes or ()
                if r.device not in bridges
                and r.destination.prefixlen > 0
                and r.destination.overlaps(subnet)
            ]
    return found


def _networks_on_path(ctx: RuleContext) -> set[str] | None:
    """Network ids the diagnosed traffic crosses; None: every network (a host checkup)."""
    if ctx.target.kind == "host":
        return None
    c = ctx.sender if ctx.target.source else ctx.path.route.container
    ids = {a.network_id for a in c.attachments} if c else set()
    for address in ctx.target.addresses:
        ids |= {n.id for n in ctx.facts.networks if n.contains(address)}
    return ids


def subnet_overlap(ctx: RuleContext) -> Iterator[Finding]:
    wanted = _networks_on_path(ctx)
    hop = HopName.EGRESS if ctx.target.source else HopName.BRIDGE
    for network, subnet, route in subnet_overlaps(ctx.facts):
        if wanted is not None and network.id not in wanted:
            continue
        yield finding(
            "SUBNET_OVERLAP",
            severity="error",
            confidence=0.9,
            hop=hop,
            explanation=f"Docker network {network.name} ({subnet}) overlaps the host's route "
            f"{route}: packets for "
            f"addresses in both go to the Docker bridge, so hosts behind {route.device} in that "
            "range "
            "are unreachable from containers (and from the host, where the bridge route is "
            "longer).",
            evidence=[
                Evidence(f"network {network.name} subnet", str(subnet), ENGINE_API),
                Evidence("host route", str(route), ROUTES),
            ],
            fix=Fix(
                f"Move {network.name} to a free range (and keep Docker's pools away from the "
                "routed one)",
                [
                    f"docker network rm {network.name}",
                    f"docker network create --subnet FREE_SUBNET {network.name}",
                    '# /etc/docker/daemon.json: {"default-address-pools": [{"base": '
                    '"FREE_RANGE/16", "size": 24}]}',
                ],
            ),
        )


def mtu_mismatch(ctx: RuleContext) -> Iterator[Finding]:
    facts = ctx.facts
    if ctx.target.source:
        if ctx.path.destination.kind != "external":
            return
        owner = ctx.sender
        found = [facts.egress_mtu(owner, ctx.target.addresses[0])]
    elif ctx.target.kind == "host":
        default = facts.route_to("0.0.0.0")
        users = [c for c in facts.containers if c.running]
        found = [facts.egress_mtu(c, "0.0.0.0") for c in users] if default else []
    else:
        return
    seen: set[str] = set()
    egress = {f[0].id: f[3] for f in filter(None, found)}  # network id -> its egress MTU
    for network, said, where in _daemon_mtu_not_applied(ctx):
        seen.add(network.id)  # one finding per network: this one, with what fits both
        fits = min(said, egress.get(network.id, said))
        yield finding(
            "MTU_MISMATCH",
            severity="warning",
            confidence=0.8,
            hop=HopName.EGRESS if ctx.target.source else HopName.BRIDGE,
            explanation=f"The engine was told mtu {said} ({where}), but that applies to the "
            f"default bridge only: {network.name} sets no MTU of its own, so it kept "
            f"{DEFAULT_MTU}, and its containers send packets the path was meant to be spared.",
            evidence=[
                Evidence("daemon mtu", said, where),
                Evidence(f"network {network.name} MTU", DEFAULT_MTU, f"default {DEFAULT_MTU}"),
            ],
            fix=Fix(
                f"Give {network.name} the MTU too (a network's MTU is set when it is created)",
                [
                    f"docker network create -o com.docker.network.driver.mtu={fits} NETWORK",
                    "# compose: networks: default: driver_opts: "
                    f"com.docker.network.driver.mtu: {fits}",
                ],
            ),
        )
    for network, mtu, device, device_mtu in filter(None, found):
        if network.id in seen:
            continue
        seen.add(network.id)
        yield finding(
            "MTU_MISMATCH",
            severity="warning",
            confidence=0.7,
            hop=HopName.EGRESS if ctx.target.source else HopName.BRIDGE,
            explanation=f"{network.name} uses MTU {mtu}{'' if network.mtu else ' (the default)'}, "
            "but traffic leaves "
            f"through {device} with MTU {device_mtu}: small requests work, large packets (TLS "
            "handshakes, uploads) are dropped where path-MTU discovery is blocked.",
            evidence=[
                Evidence(
                    f"network {network.name} MTU",
                    mtu,
                    ENGINE_API if network.mtu else f"default {DEFAULT_MTU}",
                ),
                Evidence(f"{device} MTU", device_mtu, "/sys/class/net"),
            ],
            fix=Fix(
                f"Give {network.name} the egress MTU (or clamp TCP MSS)",
                [
                    f"docker network create -o com.docker.network.driver.mtu={device_mtu} NETWORK",
                    f'# for the default bridge, /etc/docker/daemon.json: {{"mtu": {device_mtu}}}',
                    "iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS "
                    "--clamp-mss-to-pmtu",
                ],
            ),
        )


def _daemon_mtu_not_applied(ctx: RuleContext) -> list[tuple[Network, int, str]]:
    """(network, the daemon's mtu, where it was said) for the user-defined bridge networks of
    the source (or, in a checkup, of every running container) that kept the default MTU
    although the daemon was told a smaller one."""
    facts = ctx.facts
    said = facts.daemon.setting("mtu") if facts.daemon else None
    if said is None or not str(said[0]).isdigit() or int(said[0]) >= DEFAULT_MTU:
        return []
    if ctx.target.source:
        users = [ctx.sender]
    elif ctx.target.kind == "host":
        users = [c for c in facts.containers if c.running]
    else:
        return []
    found: dict[str, Network] = {}
    for c in users:
        uplink = facts.uplink(c)  # the network its traffic out of the host leaves by
        network = uplink[1] if uplink else None
        if network and network.bridge and not network.is_default_bridge and not network.mtu:
            found.setdefault(network.id, network)
    return [(n, int(said[0]), said[1]) for n in found.values()]


def _host_isolated(c: Container, facts: Facts) -> list[Network]:
    networks = [facts.network(a.network_id) for a in c.attachments]
    if not networks or not all(n is not None and n.host_isolated for n in networks):
        return []
    return [n for n in networks if n]


def macvlan_host_isolation(ctx: RuleContext) -> Iterator[Finding]:
    t = ctx.target
    if t.source:
        if not ctx.facts.netns_owner(t.source).uses_host_network:
            return
        dest = ctx.path.destination.container
    elif t.vantage == "host" and t.kind == "container":
        dest = ctx.path.route.container
    else:
        return
    networks = _host_isolated(dest, ctx.facts) if dest else []
    if not dest or not networks:
        return
    net = networks[0]
    parent = net.options.get("parent", "PARENT")
    subnet = net.subnets[0] if net.subnets else "SUBNET"
    yield finding(
        "MACVLAN_HOST_ISOLATION",
        severity="error",
        confidence=0.95,
        hop=HopName.NETWORK if t.source else HopName.BRIDGE,
        explanation=f"{dest.name} is only on {net.driver} network {net.name} (parent {parent}). "
        "The kernel does not "
        f"let a {net.driver} parent talk to its own children: other machines on the LAN reach "
        f"{dest.name}, this host does not.",
        evidence=[
            Evidence(f"network {net.name} Driver", net.driver, ENGINE_API),
            Evidence(f"network {net.name} parent", parent, ENGINE_API),
        ],
        fix=Fix(
            f"Give the host its own {net.driver} interface on {parent} (a shim), or test from "
            "another machine",
            [
                f"ip link add {net.name[:10]}-shim link {parent} type {net.driver} mode bridge",
                f"ip addr add FREE_ADDRESS/32 dev {net.name[:10]}-shim",
                f"ip link set {net.name[:10]}-shim up",
                f"ip route add {subnet} dev {net.name[:10]}-shim",
            ],
        ),
    )


def mtu_blackhole(ctx: RuleContext) -> Iterator[Finding]:
    """The live probe found the largest packet that gets through below the interface's MTU,
    with no ICMP error back."""
    mtu = ctx.seen.mtu if ctx.seen else None
    if mtu is None or not mtu.blackhole or mtu.largest is None or ctx.target.source is None:
        return
    owner = ctx.sender
    uplink = ctx.facts.uplink(owner)
    network = uplink[1] if uplink else None
    fits = mtu.largest
    if network is None or network.is_default_bridge:
        setting = f'/etc/docker/daemon.json: {{"mtu": {fits}}}, then restart the engine'
    else:
        setting = (
            f"docker network create -o com.docker.network.driver.mtu={fits} NETWORK  "
            f"# {network.name} cannot change: recreate it (compose: driver_opts)"
        )
    yield finding(
        "MTU_BLACKHOLE",
        severity="error",
        confidence=0.85,
        hop=HopName.EGRESS,
        affects=("container",),
        explanation=f"From {owner.name}, {mtu.address} answers packets up to {fits} bytes; "
        f"{owner.name} sends up to {mtu.interface_mtu}, and larger ones vanish on the way with "
        "no ICMP fragmentation-needed back, so the sender never shrinks them: connections open, "
        "small requests work, TLS handshakes, uploads and large transfers hang.",
        evidence=[
            Evidence("largest packet through (DF set)", fits, "ICMP echoes from the container"),
            Evidence(f"{owner.name} route MTU to {mtu.address}", mtu.interface_mtu, "IP_MTU"),
            Evidence("ICMP fragmentation-needed", "none came back", "the same echoes"),
        ],
        fix=Fix(
            f"Make {owner.name}'s packets fit {fits} bytes, or let TCP agree on smaller segments",
            [
                setting,
                "iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS "
                f"--set-mss {fits - 40}",
                "# or let the ICMP through: fragmentation-needed must reach the sender",
            ],
        ),
    )


RULES = [
    Rule("subnet-overlap", ("SUBNET_OVERLAP",), subnet_overlap),
    Rule("mtu-mismatch", ("MTU_MISMATCH",), mtu_mismatch),
    Rule("mtu-blackhole", ("MTU_BLACKHOLE",), mtu_blackhole, ("container",)),
    Rule("macvlan-host-isolation", ("MACVLAN_HOST_ISOLATION",), macvlan_host_isolation),
]
