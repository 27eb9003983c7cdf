"""The path into a published port or to a container, from this host or another machine: each
hop judged from facts alone.

name resolution → host listener / docker-proxy → nat DNAT → filter FORWARD → bridge →
container → the listener in the container's network namespace.  Live probes may
later confirm or contradict a hop (see :mod:`doctor.live.connect`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from msgspec.structs import replace

from doctor.facts.model import (
    IP_FORWARD,
    Binding,
    ConntrackEntry,
    Container,
    Facts,
    Listener,
    PortMapping,
)
from doctor.firewall.iptables import after_dnat
from doctor.firewall.model import Decision, Packet
from doctor.firewall.walk import walk
from doctor.path.hops import (
    CONTAINER_PATH,
    DIRECT_PATH,
    HOST_PATH,
    HopName,
    NetworkPath,
    Route,
)
from doctor.path.target import Target
from doctor.report.document import Hop, HopStatus

NOT_FORWARDED = "traffic from this host to its own address is not forwarded"
LOCAL = "sent from this host: it does not pass PREROUTING"


def find_route(facts: Facts, target: Target) -> Route:
    """Which container the target leads to: a live binding first, then a requested one."""
    if target.kind == "container":
        return _container_route(target)
    assert target.port is not None
    live = [
        (c, m, b) for c in facts.containers for m, b in c.publishing(target.port, target.protocol)
    ]
    accepting = [(c, m, b) for c, m, b in live if any(b.accepts(addr) for addr in target.addresses)]
    if accepting or live:
        container, mapping, binding = (accepting or live)[0]
        return Route(container, mapping, binding, live=True)
    for container in facts.containers:
        requested = container.configured_on(target.port, target.protocol)
        if requested:
            mapping, binding = requested[0]
            return Route(container, mapping, binding, live=False)
    return Route()


def _container_route(target: Target) -> Route:
    container = target.container
    assert container is not None
    port = target.port
    if port is None:  # the container's first published, exposed or listening port
        ports = [m.container_port for m in container.published or container.configured]
        # Not loopback listeners: on user-defined networks the embedded DNS listens on 127.0.0.11.
        ports += [p for p, _ in container.exposed]
        ports += sorted(
            listener.port for listener in container.listeners or () if not listener.loopback_only
        )
        port = ports[0] if ports else None
    if port is None:
        return Route(container)
    mapping = next(
        (
            m
            for m in container.published + container.configured
            if m.container_port == port and m.protocol == target.protocol
        ),
        PortMapping(port, target.protocol),
    )
    return Route(container, mapping, mapping.bindings[0] if mapping.bindings else None, live=True)


def build_path(facts: Facts, target: Target) -> NetworkPath:
    route = find_route(facts, target)
    judge = Judge(facts, target, route)
    names: tuple[HopName, ...] = HOST_PATH
    if target.kind == "container" and target.vantage == "external":  # straight to its address
        names = DIRECT_PATH
    elif target.kind == "container":
        names = CONTAINER_PATH
    if target.client_address is not None:
        names = (*names, HopName.RETURN_PATH)
    hops = tuple(judge.judges[name]() for name in names)
    return NetworkPath(hops, route, judge.decisions)


class Judge:
    """One method per hop; each returns the hop's static verdict."""

    def __init__(self, facts: Facts, target: Target, route: Route):
        self.facts, self.target, self.route = facts, target, route
        self.backend = route.container
        self.decisions: dict[str, Decision] = {}
        self.judges: dict[HopName, Callable[[], Hop]] = {
            HopName.NAME_RESOLUTION: self.name_resolution,
            HopName.HOST_LISTENER: self.host_listener,
            HopName.RAW_PREROUTING: self.raw_prerouting,
            HopName.NAT_DNAT: self.nat_dnat,
            HopName.FILTER_FORWARD: self.filter_forward,
            HopName.FILTER_INPUT: self.filter_input,
            HopName.BRIDGE: self.bridge,
            HopName.CONTAINER: self.container,
            HopName.CONTAINER_LISTENER: self.container_listener,
            HopName.RETURN_PATH: self.return_path,
        }

    def _hop(self, name: str, status: HopStatus, detail: str) -> Hop:
        return Hop(name, status, detail)

    def _no_container(self, name: str) -> Hop:
        return self._hop(name, "skipped", "no container behind this port")

    def name_resolution(self) -> Hop:
        spec = self.target.spec
        shown = ", ".join(self.target.addresses)
        if spec.host is None or spec.host == shown:
            return self._hop(HopName.NAME_RESOLUTION, "ok", f"connects to {shown}")
        return self._hop(HopName.NAME_RESOLUTION, "ok", f"{spec.host} → {shown}")

    def host_listener(self) -> Hop:
        t, route, c = self.target, self.route, self.backend
        if t.kind == "container":
            return self._published_side()
        platform = self.facts.platform
        if platform.kind == "wsl2" and platform.wsl_mode == "nat" and t.vantage == "external":
            return self._hop(
                HopName.HOST_LISTENER,
                "broken",
                f"{', '.join(t.addresses)} is the WSL2 VM's NAT address: "
                "only Windows reaches it (other machines reach neither it nor Windows' localhost "
                "relay)",
            )
        port = f"{t.protocol} {t.port}"
        holders = self.facts.host_listeners_on(t.port or 0, t.protocol)
        foreign = [listener for listener in holders or () if listener.process != "docker-proxy"]
        if c is not None and route.live:
            if route.binding and any(route.binding.accepts(a) for a in t.addresses):
                return self._hop(
                    HopName.HOST_LISTENER,
                    "ok",
                    f"{c.name} publishes {route.binding} → "
                    f"{route.container_port}/{t.protocol}{self._proxy_note()}",
                )
            bound = ", ".join(
                str(b) for m in c.published for b in m.bindings if b.host_port == t.port
            )
            return self._hop(
                HopName.HOST_LISTENER,
                "broken",
                f"{c.name} publishes {port} only on {bound}, not on {', '.join(t.addresses)}",
            )
        if c is not None:  # requested but not applied
            why = (
                "runs with --network host, so -p is ignored"
                if c.uses_host_network
                else f"is {c.status}"
                if not c.running
                else "has no published binding (its networks: "
                f"{', '.join(a.network for a in c.attachments) or 'none'})"
            )
            held = f"; {foreign[0].holder} holds the port" if foreign else ""
            return self._hop(
                HopName.HOST_LISTENER, "broken", f"{c.name} asks for {port} but {why}{held}"
            )
        if holders is None:
            return self._hop(
                HopName.HOST_LISTENER,
                "unknown",
                "no container publishes it; host sockets unreadable",
            )
        if foreign:
            return self._hop(
                HopName.HOST_LISTENER,
                "ok",
                f"no container publishes {port}; {foreign[0].holder} listens",
            )
        return self._hop(
            HopName.HOST_LISTENER,
            "broken",
            f"nothing listens on {port} and no container publishes it",
        )

    def _published_side(self) -> Hop:
        """For a container target: is its port published on the host, as asked?"""
        c, mapping = self.backend, self.route.mapping
        if c is None or mapping is None or not mapping.bindings:
            return self._hop(
                HopName.HOST_LISTENER, "skipped", "the port is not published on the host"
            )
        shown = ", ".join(str(b) for b in mapping.bindings)
        if any(mapping == m for m in c.published):
            return self._hop(HopName.HOST_LISTENER, "ok", f"published on {shown}")
        return self._hop(
            HopName.HOST_LISTENER,
            "broken",
            f"asks for {shown} but the engine did not publish it ({c.error or c.status})",
        )

    def _proxy_note(self) -> str:
        if self.facts.proxies is None:
            return ""
        proxies = [
            p
            for p in self.facts.proxies
            if p.host_port == self.target.port and p.protocol == self.target.protocol
        ]
        if proxies:
            return f" (docker-proxy pid {', '.join(str(p.pid) for p in proxies)})"
        return " (no docker-proxy: the kernel's NAT rules carry it)"

    # --- the kernel's path for a packet from another machine -----------------

    @cached_property
    def _arriving(self) -> Packet | None:
        """The first packet of an outside client's connection, as it arrives; None from the host."""
        t, c = self.target, self.backend
        if t.vantage != "external":
            return None
        bridges = tuple(self.facts.bridges())
        subnets = tuple(s for n in self.facts.networks for s in n.subnets)
        if t.kind == "container":  # straight to the container's address
            address, port, local = (
                (self.backend.ipv4 if self.backend else None),
                self.route.container_port,
                False,
            )
        else:
            address, port, local = (t.addresses[0] if t.addresses else None), t.port, True
        if address is None or port is None or (c is None and t.kind == "container"):
            return None
        arrives = self.facts.interface_with(address) if local else None
        client = t.client_address
        if client is not None and (route := self.facts.route_to(client)) is not None:
            # The host's route back to the client is where it arrives, unless that route
            # leads into a bridge: then where it arrives is not known (and its replies go astray).
            arrives = None if route.device in bridges else route.device
        return Packet(
            t.protocol,
            address,
            port,
            arrives,
            src=client,
            local_dst=local,
            docker_subnets=subnets,
            not_in=(*bridges, "lo"),
        )

    @cached_property
    def _nat(self) -> Decision | None:
        packet = self._arriving
        if packet is None or not self._rules_read or not packet.local_dst:
            return None
        return walk(self.facts.rulesets, "nat", "PREROUTING", packet)

    @cached_property
    def _forwarded(self) -> Packet | None:
        """The packet as FORWARD sees it: after DNAT, routed out of the container's bridge."""
        packet, nat = self._arriving, self._nat
        if packet is None:
            return None
        if nat is not None and nat.dnat:
            packet = after_dnat(packet, nat.dnat)
        elif packet.local_dst:
            return None  # for the host itself: INPUT, not FORWARD
        network = next((n for n in self.facts.networks if n.contains(packet.dst)), None)
        return replace(packet, out_iface=network.bridge if network and network.bridge else None)

    @property
    def _rules_read(self) -> bool:
        return self.facts.rulesets.read

    def raw_prerouting(self) -> Hop:
        packet = self._arriving
        if packet is None:
            return self._hop(HopName.RAW_PREROUTING, "skipped", LOCAL)
        if not self._rules_read:
            return self._hop(HopName.RAW_PREROUTING, "unknown", why_unread(self.facts, "iptables"))
        return self._decided(
            HopName.RAW_PREROUTING,
            walk(self.facts.rulesets, "raw", "PREROUTING", packet),
            "nothing in raw PREROUTING drops it",
        )

    def _clients_stale_flows(self, c: Container) -> ConntrackEntry | None:
        """The --client's first tracked flow to the port that bypasses today's DNAT."""
        t = self.target
        if t.client_address is None or t.port is None:
            return None
        flows = self.facts.stale_flows(c, t.port, t.protocol)
        return next((e for e in flows if e.original.src == t.client_address), None)

    def nat_dnat(self) -> Hop:
        c, route = self.backend, self.route
        if c is None or not route.live:
            return self._no_container(HopName.NAT_DNAT)
        if self.target.vantage != "external":
            if self._has_proxy():
                return self._hop(
                    HopName.NAT_DNAT,
                    "skipped",
                    "loopback traffic goes to docker-proxy, not through DNAT",
                )
            return self._hop(HopName.NAT_DNAT, "skipped", LOCAL)
        if not self._rules_read:
            return self._hop(HopName.NAT_DNAT, "unknown", why_unread(self.facts, "iptables"))
        nat, nat_packet = self._nat, self._arriving
        if nat is None or nat_packet is None:
            return self._hop(
                HopName.NAT_DNAT, "skipped", "addressed to the container itself: no DNAT"
            )
        self.decisions[HopName.NAT_DNAT] = nat
        if nat.dnat:
            address, port = nat.dnat
            if stale := self._clients_stale_flows(c):
                return self._hop(
                    HopName.NAT_DNAT,
                    "broken",
                    f"{nat} → {address}:{port}, but the client's flow "
                    f"{stale.original.src}:{stale.original.sport} keeps a tracked entry made "
                    "before it: its packets bypass the DNAT",
                )
            return self._hop(HopName.NAT_DNAT, "ok", f"{nat} → {address}:{port}")
        if nat.verdict == "unknown":
            return self._hop(HopName.NAT_DNAT, "unknown", f"{nat}: {nat.detail}")
        if self._proxy_accepts():
            return self._hop(
                HopName.NAT_DNAT,
                "ok",
                "no DNAT rule: the packet is for the host, where docker-proxy "
                "listens (see filter-input)",
            )
        return self._hop(
            HopName.NAT_DNAT,
            "broken",
            f"no rule in nat PREROUTING sends {nat_packet.dst}:{nat_packet.dport} to "
            f"{c.ipv4}:{route.container_port}",
        )

    def _has_proxy(self) -> bool:
        return bool(self.facts.proxies) and any(
            p.host_port == self.target.port and p.protocol == self.target.protocol
            for p in self.facts.proxies or ()
        )

    def _proxy_accepts(self) -> bool:
        packet = self._arriving
        return packet is not None and any(
            p.host_port == packet.dport
            and p.protocol == packet.protocol
            and Binding(p.host_ip, p.host_port).accepts(packet.dst)
            for p in self.facts.proxies or ()
        )

    def filter_forward(self) -> Hop:
        if self.target.vantage != "external":
            return self._hop(HopName.FILTER_FORWARD, "skipped", NOT_FORWARDED)
        if self.backend is None or not self.route.live:
            return self._no_container(HopName.FILTER_FORWARD)
        if not self._rules_read:
            return self._hop(HopName.FILTER_FORWARD, "unknown", why_unread(self.facts, "iptables"))
        packet = self._forwarded
        if packet is None:
            return self._hop(
                HopName.FILTER_FORWARD, "skipped", "for the host itself (INPUT), not forwarded"
            )
        if self.facts.forwarding_disabled:
            return self._hop(
                HopName.FILTER_FORWARD, "broken", f"{IP_FORWARD} = 0: the kernel forwards nothing"
            )
        return self._decided(HopName.FILTER_FORWARD, filtered(self.facts, "FORWARD", packet), "")

    def filter_input(self) -> Hop:
        packet = self._arriving
        if packet is not None and self._nat is not None and self._nat.dnat is not None:
            return self._input_bypassed(packet)
        if packet is None or not packet.local_dst or self._forwarded is not None:
            return self._hop(HopName.FILTER_INPUT, "skipped", "not for a process of the host")
        if not self._rules_read:
            return self._hop(HopName.FILTER_INPUT, "unknown", why_unread(self.facts, "iptables"))
        return self._decided(
            HopName.FILTER_INPUT, walk(self.facts.rulesets, "filter", "INPUT", packet), ""
        )

    def _input_bypassed(self, packet: Packet) -> Hop:
        """A DNAT'd packet is forwarded, so INPUT never judges it; what INPUT would have done
        is kept (as this hop's decision) for the rule that warns of a firewall bypassed."""
        would = walk(self.facts.rulesets, "filter", "INPUT", packet)
        self.decisions[HopName.FILTER_INPUT] = would
        if would.verdict in ("drop", "reject"):
            said = f"; INPUT would {would.verdict} it ({would}), but never sees it"
        else:
            said = ""
        return self._hop(
            HopName.FILTER_INPUT, "skipped", f"DNAT'd and forwarded: not for the host{said}"
        )

    def _decided(self, hop: HopName, decision: Decision, accepted: str) -> Hop:
        self.decisions[hop] = decision
        return judged(hop, decision, accepted)

    def bridge(self) -> Hop:
        c = self.backend
        if c is None:
            return self._no_container(HopName.BRIDGE)
        if c.uses_host_network:
            return self._hop(HopName.BRIDGE, "skipped", f"{c.name} shares the host's network stack")
        if not c.running:
            return self._hop(HopName.BRIDGE, "skipped", f"{c.name} is not running")
        if not c.attachments:
            return self._hop(
                HopName.BRIDGE,
                "broken",
                f"{c.name} is on no network (network mode {c.network_mode})",
            )
        internal = [
            a.network
            for a in c.attachments
            if (n := self.facts.network(a.network_id)) and n.internal
        ]
        if internal and len(internal) == len(c.attachments):
            return self._hop(
                HopName.BRIDGE,
                "broken",
                f"{c.name} is only on internal network(s) {', '.join(internal)}: "
                "nothing is published from there",
            )
        if (
            self.facts.platform.kind == "desktop"
            and self.target.kind == "container"
            and self.target.vantage == "host"
        ):
            return self._hop(
                HopName.BRIDGE,
                "broken" if self.target.spec.host in c.addresses else "skipped",
                f"{c.name}'s addresses are inside Docker Desktop's VM: not routable from this host",
            )
        networks = [self.facts.network(a.network_id) for a in c.attachments]
        isolated = [n for n in networks if n is not None and n.host_isolated]
        if self.target.vantage == "host" and len(isolated) == len(networks):
            first = isolated[0]
            return self._hop(
                HopName.BRIDGE,
                "broken",
                f"{c.name} is only on {first.driver} network "
                f"{first.name}: this host cannot reach its own {first.driver} children",
            )
        shown = ", ".join(f"{a.network} ({a.ip})" if a.ip else a.network for a in c.attachments)
        return self._hop(HopName.BRIDGE, "ok", f"{c.name} on {shown}")

    def container(self) -> Hop:
        c = self.backend
        if c is None:
            return self._no_container(HopName.CONTAINER)
        if not c.running:
            code = f", exit code {c.exit_code}" if c.status == "exited" else ""
            return self._hop(HopName.CONTAINER, "broken", f"{c.name} is {c.status}{code}")
        if c.health == "unhealthy":
            return self._hop(HopName.CONTAINER, "ok", f"{c.name} is running but unhealthy")
        return self._hop(
            HopName.CONTAINER, "ok", f"{c.name} is running" + (f" ({c.health})" if c.health else "")
        )

    def container_listener(self) -> Hop:
        c, port = self.backend, self.route.container_port
        if c is None:
            return self._no_container(HopName.CONTAINER_LISTENER)
        if port is None:
            return self._hop(
                HopName.CONTAINER_LISTENER, "skipped", f"{c.name} has no port to check"
            )
        if not c.running:
            return self._hop(HopName.CONTAINER_LISTENER, "skipped", f"{c.name} is not running")
        if c.uses_host_network:
            return self._hop(HopName.CONTAINER_LISTENER, "skipped", "its sockets are the host's")
        if c.listeners is None:
            return self._hop(
                HopName.CONTAINER_LISTENER,
                "unknown",
                why_unread(self.facts, "container-listeners"),
            )
        protocol = self.target.protocol
        listening = c.listeners_on(port, protocol)
        if any(not listener.loopback_only for listener in listening):
            return self._hop(
                HopName.CONTAINER_LISTENER, "ok", f"{_listeners(listening)} in {c.name}"
            )
        if listening:
            return self._hop(
                HopName.CONTAINER_LISTENER,
                "broken",
                f"{c.name} listens on {_listeners(listening)} only: loopback inside the container",
            )
        others = sorted({str(listener) for listener in c.listeners if not listener.loopback_only})
        return self._hop(
            HopName.CONTAINER_LISTENER,
            "broken",
            f"nothing in {c.name} listens on {protocol} {port}"
            + (f" (it listens on {', '.join(others)})" if others else ""),
        )

    def return_path(self) -> Hop:
        """How this host routes the replies to the --client address."""
        client = self.target.client_address
        assert client is not None
        return route_back(self.facts, client)


def route_back(facts: Facts, client: str) -> Hop:
    """The replies to an outside ``client``: the host's route to it must lead back out, not into
    a Docker bridge whose subnet holds the client's address."""
    if ":" in client:
        return Hop(HopName.RETURN_PATH, "skipped", "IPv6 routes are not read")
    if facts.routes is None:
        return Hop(HopName.RETURN_PATH, "unknown", why_unread(facts, "routes"))
    route = facts.route_to(client)
    if route is None:
        return Hop(HopName.RETURN_PATH, "broken", f"this host has no route back to {client}")
    network = facts.bridges().get(route.device)
    if network is not None:
        subnet = next((s for s in network.subnets if network.contains(client)), None)
        return Hop(
            HopName.RETURN_PATH,
            "broken",
            f"replies to {client} go into {route.device}, the bridge of {network.name}"
            + (f", whose subnet {subnet} holds {client}" if subnet else "")
            + ": not back to the client",
        )
    return Hop(HopName.RETURN_PATH, "ok", f"replies to {client} leave by {route}")


def _listeners(listeners: list[Listener]) -> str:
    return ", ".join(str(listener) for listener in listeners)


def filtered(facts: Facts, chain: str, packet: Packet) -> Decision:
    """Where ``packet`` ends in the filtering tables' ``chain``: mangle first, then filter."""
    mangle = walk(facts.rulesets, "mangle", chain, packet)
    return mangle if mangle.verdict != "accept" else walk(facts.rulesets, "filter", chain, packet)


def judged(hop: HopName, decision: Decision, accepted: str = "") -> Hop:
    """A hop as a firewall decision leaves it."""
    if decision.verdict == "accept":
        return Hop(hop, "ok", accepted or f"accepted by {decision}")
    if decision.verdict == "unknown":
        return Hop(hop, "unknown", f"{decision}: {decision.detail}")
    return Hop(hop, "broken", f"{decision.verdict}ed by {decision}".replace("droped", "dropped"))


def why_unread(facts: Facts, probe: str) -> str:
    return f"not read: {facts.unreadable.get(probe, 'no data')}"
