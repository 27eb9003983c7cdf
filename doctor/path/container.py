"""The path from a source container (``--from web``) to what it connects to.

source → name resolution → then, by where the address leads:
  another container: network (a shared one) → bridge (icc, driver) → filter FORWARD (when
    br_netfilter shows bridged traffic to iptables) → container → its listener
  the source itself (loopback): its own listener
  this host (a gateway or host address): gateway → filter INPUT → host listener, or, when
    nat PREROUTING sends it on (a published port without the userland proxy): nat DNAT →
    filter FORWARD → the publishing container's listener
  elsewhere: the bridge's gateway → filter FORWARD → nat POSTROUTING (masquerade) → the host's
    route out → the replies back through filter FORWARD
"""

from __future__ import annotations

from functools import cached_property

from msgspec.structs import replace

from doctor.facts.model import IP_FORWARD, Attachment, Container, Facts, Network, is_wildcard
from doctor.firewall.iptables import after_dnat
from doctor.firewall.model import Decision, Packet
from doctor.firewall.walk import walk
from doctor.path.hops import HopName, NetworkPath, Route
from doctor.path.host import Judge, filtered, find_route, judged, why_unread
from doctor.path.names import Place, locate
from doctor.path.target import Target
from doctor.report.document import Hop, HopStatus

BRIDGE_NF_CALL = "net.bridge.bridge-nf-call-iptables"
MASQUERADE_OPTION = "com.docker.network.bridge.enable_ip_masquerade"
GATEWAY_MODE_OPTION = "com.docker.network.bridge.gateway_mode_ipv4"


def build_peer_path(facts: Facts, target: Target) -> NetworkPath:
    assert target.source is not None and target.resolution is not None
    judge = PeerJudge(facts, target)
    return NetworkPath(tuple(judge.hops()), judge.route, judge.decisions, judge.place)


def destination(facts: Facts, target: Target) -> Place:
    """Where the target leads from its source; "unknown" while the name does not resolve."""
    assert target.source is not None
    owner = facts.netns_owner(target.source)
    if target.addresses:
        return locate(target.addresses[0], owner, facts)
    if target.container is not None:
        return Place("container", target.container)
    return Place("unknown")


class PeerJudge:
    def __init__(self, facts: Facts, target: Target):
        assert target.source is not None and target.resolution is not None
        self.facts, self.target = facts, target
        self.source = target.source
        self.owner = facts.netns_owner(target.source)  # whose network namespace it is
        self.resolution = target.resolution
        self.place = destination(facts, target)
        self.route = find_route(facts, target) if self.place.kind == "container" else Route()
        self.decisions: dict[str, Decision] = {}

    def hops(self) -> list[Hop]:
        hops = [self.source_hop(), self.name_resolution()]
        kind = self.place.kind
        if kind == "container":
            judge = Judge(self.facts, self.target, self.route)
            hops += [self.network(), self.bridge()]
            hops += [self.bridged()] if self._shared_bridges else []
            hops += [judge.container(), judge.container_listener()]
        elif kind == "self":
            hops.append(self.own_listener())
        elif kind == "host":
            hops += [self.gateway(), *self.into_host()]
        elif kind == "external" and (
            self.owner.uses_host_network or self._into_a_bridge or self._ipv6
        ):
            hops.append(self.egress())  # IPv6 out of the host: its tables are not walked yet
        elif kind == "external":
            hops += [
                self.gateway_address(),
                self.forward_out(),
                self.masquerade(),
                self.egress(),
                self.return_path(),
            ]
        return hops

    def _hop(self, name: str, status: HopStatus, detail: str) -> Hop:
        return Hop(name, status, detail)

    def source_hop(self) -> Hop:
        s, owner = self.source, self.owner
        if not s.running:
            return self._hop(HopName.SOURCE, "broken", f"{s.name} is {s.status}: it sends nothing")
        if owner.network_mode == "none":
            return self._hop(
                HopName.SOURCE, "broken", f"{s.name} runs with --network none: it has only loopback"
            )
        shared = f" (it shares {owner.name}'s network namespace)" if owner is not s else ""
        if owner.uses_host_network:
            return self._hop(
                HopName.SOURCE, "ok", f"{s.name} uses the host's network stack{shared}"
            )
        shown = ", ".join(f"{a.network} ({a.ip})" if a.ip else a.network for a in owner.attachments)
        return self._hop(HopName.SOURCE, "ok", f"{s.name} on {shown or 'no network'}{shared}")

    def name_resolution(self) -> Hop:
        r = self.resolution
        return self._hop(HopName.NAME_RESOLUTION, r.status, r.detail)

    # --- to another container

    def network(self) -> Hop:
        dest, owner = self.place.container, self.owner
        assert dest is not None
        if owner.uses_host_network:
            return self._host_reaches(dest)
        shared = self.facts.shared_networks(owner, dest)
        if not shared:
            return self._hop(
                HopName.NETWORK,
                "broken",
                f"{owner.name} is on {_networks(owner)}, {dest.name} on "
                f"{_networks(dest)}: no network in common",
            )
        endpoint = (
            self.place.attachment
        )  # the network of the address the source dials, if it dials one
        if endpoint and endpoint.network_id not in {n.id for n in shared}:
            return self._hop(
                HopName.NETWORK,
                "broken",
                f"{self.target.addresses[0]} is {dest.name}'s address on "
                f"{endpoint.network}, which {owner.name} is not on",
            )
        return self._hop(HopName.NETWORK, "ok", f"both on {', '.join(n.name for n in shared)}")

    def _host_reaches(self, dest: Container) -> Hop:
        networks = [self.facts.network(a.network_id) for a in dest.attachments]
        isolated = [n for n in networks if n is not None and n.host_isolated]
        if isolated and len(isolated) == len(networks):
            driver = isolated[0].driver
            return self._hop(
                HopName.NETWORK,
                "broken",
                f"{dest.name} is only on {_networks(dest)} ({driver}): "
                f"the host cannot reach its own {driver} children",
            )
        return self._hop(HopName.NETWORK, "ok", f"the host reaches {dest.name} over its bridge")

    def bridge(self) -> Hop:
        dest = self.place.container
        assert dest is not None
        if self.owner.uses_host_network:
            return self._hop(HopName.BRIDGE, "skipped", "traffic from the host's own stack")
        shared = self.facts.shared_networks(self.owner, dest)
        if not shared:
            return self._hop(HopName.BRIDGE, "skipped", "no shared network")
        open_ = [n for n in shared if n.icc or n.driver != "bridge"]
        if not open_:
            return self._hop(
                HopName.BRIDGE,
                "broken",
                f"{', '.join(n.name for n in shared)} has inter-container "
                "traffic disabled (enable_icc=false)",
            )
        notes = [
            f"{n.name}: {n.driver} network spanning nodes; only this node's side is checked"
            for n in open_
            if n.driver == "overlay"
        ]
        return self._hop(
            HopName.BRIDGE,
            "ok",
            "; ".join(notes) or f"{open_[0].name} ({open_[0].driver}) lets containers talk",
        )

    @cached_property
    def _shared_bridges(self) -> list[tuple[Network, Attachment]]:
        """The bridge networks the source shares with the destination (icc on), each with the
        source's endpoint there: where their traffic stays inside one bridge."""
        dest = self.place.container
        if dest is None or self.owner.uses_host_network:
            return []
        return [
            (n, a)
            for n in self.facts.shared_networks(self.owner, dest)
            if n.bridge and n.icc and (a := self.owner.attachment(n.id)) and a.ip
        ]

    def bridged(self) -> Hop:
        """Traffic inside one bridge passes filter FORWARD too, when br_netfilter makes the
        bridge hand its frames to iptables (net.bridge.bridge-nf-call-iptables = 1)."""
        dest, port, shared = self.place.container, self.target.port, self._shared_bridges
        assert dest is not None
        address = self.target.addresses[0] if self.target.addresses else dest.ipv4
        if port is None or address is None:
            return self._hop(HopName.FILTER_FORWARD, "skipped", "not bridged between the two")
        calls = self.facts.sysctls.get(BRIDGE_NF_CALL)
        network, attachment = next(((n, a) for n, a in shared if n.contains(address)), shared[0])
        if calls != "1":
            return self._hop(
                HopName.FILTER_FORWARD,
                "skipped",
                f"bridged inside {network.bridge}; iptables does not see it "
                f"({BRIDGE_NF_CALL} = {calls or 'absent: br_netfilter is not loaded'})",
            )
        if not self.facts.rulesets.read:
            return self._hop(HopName.FILTER_FORWARD, "unknown", why_unread(self.facts, "iptables"))
        packet = Packet(
            self.target.protocol,
            address,
            port,
            network.bridge,
            network.bridge,
            attachment.ip,
            docker_subnets=tuple(s for n in self.facts.networks for s in n.subnets),
        )
        return self._walked(
            HopName.FILTER_FORWARD,
            "FORWARD",
            packet,
            f"bridged inside {network.bridge}, and br_netfilter shows it to iptables: "
            "accepted by {decision}",
        )

    # --- to itself

    def own_listener(self) -> Hop:
        owner, port, protocol = self.owner, self.target.port, self.target.protocol
        if port is None:
            return self._hop(HopName.CONTAINER_LISTENER, "skipped", "no port given")
        if owner.uses_host_network:
            listeners = self.facts.host_listeners_on(port, protocol)
        else:
            listeners = None if owner.listeners is None else owner.listeners_on(port, protocol)
        if listeners is None:
            return self._hop(
                HopName.CONTAINER_LISTENER, "unknown", f"{owner.name}'s sockets were not read"
            )
        if listeners:
            return self._hop(
                HopName.CONTAINER_LISTENER,
                "ok",
                f"{', '.join(map(str, listeners))} in {owner.name} itself",
            )
        return self._hop(
            HopName.CONTAINER_LISTENER,
            "broken",
            f"loopback is {owner.name}'s own, and nothing in "
            f"{owner.name} listens on {protocol} {port}",
        )

    # --- to this host

    def gateway(self) -> Hop:
        owner = self.owner
        if owner.uses_host_network:
            return self._hop(HopName.GATEWAY, "ok", "the source is on the host's own stack")
        address = self.target.addresses[0]
        via = [a for a in owner.attachments if a.gateway]
        if not via:
            return self._hop(HopName.GATEWAY, "broken", f"{owner.name} has no gateway to the host")
        return self._hop(
            HopName.GATEWAY,
            "ok",
            f"{address} is this host; {owner.name} reaches it via {via[0].gateway}",
        )

    @cached_property
    def _to_host(self) -> Packet | None:
        """The first packet to this host as it arrives from the source's bridge."""
        uplink, port = self._uplink, self.target.port
        if uplink is None or uplink[0].ip is None or port is None or uplink[1].bridge is None:
            return None
        return Packet(
            self.target.protocol,
            self.target.addresses[0],
            port,
            uplink[1].bridge,
            src=uplink[0].ip,
            local_dst=True,
            docker_subnets=tuple(s for n in self.facts.networks for s in n.subnets),
        )

    def into_host(self) -> list[Hop]:
        """The hops from the source's bridge into this host: INPUT and the listener, or, for a
        published port that nat PREROUTING sends on, DNAT and FORWARD to the container."""
        packet = self._to_host
        if self.owner.uses_host_network or packet is None:
            return [self.host_listener()]
        if not self.facts.rulesets.read:
            hop = self._hop(HopName.FILTER_INPUT, "unknown", why_unread(self.facts, "iptables"))
            return [hop, self.host_listener()]
        nat = walk(self.facts.rulesets, "nat", "PREROUTING", packet)
        if nat.dnat is None:
            proxy = self._proxy_note()
            return [
                self._walked(
                    HopName.FILTER_INPUT, "INPUT", packet, f"accepted by {{decision}}{proxy}"
                ),
                self.host_listener(),
            ]
        self.decisions[HopName.NAT_DNAT] = nat
        address, port = nat.dnat
        self.route = find_route(self.facts, self.target)
        network = next((n for n in self.facts.networks if n.contains(address)), None)
        forwarded = replace(
            after_dnat(packet, nat.dnat), out_iface=network.bridge if network else None
        )
        return [
            self._hop(HopName.NAT_DNAT, "ok", f"{nat} → {address}:{port}"),
            self._walked(HopName.FILTER_FORWARD, "FORWARD", forwarded),
            Judge(self.facts, self.target, self.route).container_listener(),
        ]

    def _proxy_note(self) -> str:
        port, protocol = self.target.port, self.target.protocol
        if any(p.host_port == port and p.protocol == protocol for p in self.facts.proxies or ()):
            return (
                f"; port {port} is published, and from a container the userland proxy takes it: "
                "not DNAT'd into FORWARD, delivered to docker-proxy through INPUT"
            )
        return ""

    def host_listener(self) -> Hop:
        port, protocol, address = self.target.port, self.target.protocol, self.target.addresses[0]
        if port is None:
            return self._hop(HopName.HOST_LISTENER, "skipped", "no port given")
        listeners = self.facts.host_listeners_on(port, protocol)
        if listeners is None:
            return self._hop(HopName.HOST_LISTENER, "unknown", "the host's sockets were not read")
        reachable = [
            listener
            for listener in listeners
            if is_wildcard(listener.address) or listener.address == address
        ]
        if reachable:
            return self._hop(
                HopName.HOST_LISTENER,
                "ok",
                ", ".join(f"{listener} ({listener.process or '?'})" for listener in reachable),
            )
        if listeners:
            return self._hop(
                HopName.HOST_LISTENER,
                "broken",
                f"the host listens on {', '.join(map(str, listeners))} only, not on {address}",
            )
        return self._hop(
            HopName.HOST_LISTENER, "broken", f"nothing on the host listens on {protocol} {port}"
        )

    # --- elsewhere

    def egress(self) -> Hop:
        owner, address = self.owner, self.target.addresses[0]
        if owner.uses_host_network:
            return self._hop(HopName.EGRESS, "ok", "the source is on the host's own stack")
        networks = [self.facts.network(a.network_id) for a in owner.attachments]
        if networks and all(n is not None and n.internal for n in networks):
            return self._hop(
                HopName.EGRESS,
                "broken",
                f"{owner.name} is only on internal network(s) {_networks(owner)}: no way out",
            )
        docker = [n for n in self.facts.networks if n.contains(address)]
        route = self.facts.route_to(address)
        if docker:
            return self._hop(
                HopName.EGRESS,
                "broken",
                f"{address} is inside Docker network {docker[0].name} "
                f"({', '.join(docker[0].subnets)}): packets go to its bridge, not "
                f"{'to ' + str(route) if route else 'out'}",
            )
        if self.facts.routes is not None and route is None:
            return self._hop(HopName.EGRESS, "broken", f"the host has no route to {address}")
        mismatch = self.facts.egress_mtu(owner, address)
        mtu = (
            f"; MTU {mismatch[1]} on {mismatch[0].name} > {mismatch[3]} on {mismatch[2]}"
            if mismatch
            else ""
        )
        return self._hop(
            HopName.EGRESS, "ok", f"out through the host{f': {route}' if route else ''}{mtu}"
        )

    # --- out of the host, and the replies back in

    @property
    def _ipv6(self) -> bool:
        return ":" in self.target.addresses[0]

    @property
    def _into_a_bridge(self) -> bool:
        """The address lies in a Docker network's subnet: it never leaves the host (egress
        says where it goes instead)."""
        return any(n.contains(self.target.addresses[0]) for n in self.facts.networks)

    @cached_property
    def _uplink(self) -> tuple[Attachment, Network] | None:
        return self.facts.uplink(self.owner)

    @cached_property
    def _packets(self) -> tuple[Packet, Packet] | None:
        """The first packet out (from the source, through its bridge, to the host's route) and a
        reply back (ESTABLISHED, to the source's address), as FORWARD sees them."""
        uplink, port = self._uplink, self.target.port
        if uplink is None or uplink[0].ip is None or port is None or uplink[1].bridge is None:
            return None
        att, network = uplink
        address = self.target.addresses[0]
        route = self.facts.route_to(address)
        out_iface = route.device if route else None
        subnets = tuple(s for n in self.facts.networks for s in n.subnets)
        out = Packet(
            self.target.protocol,
            address,
            port,
            network.bridge,
            out_iface,
            att.ip,
            docker_subnets=subnets,
        )
        back = Packet(
            self.target.protocol,
            att.ip or "",
            None,
            out_iface,
            network.bridge,
            address,
            orig_dport=port,  # the original direction's port: --ctorigdstport still matches
            ctstate="ESTABLISHED",
            sport=port,
        )
        return out, back

    def gateway_address(self) -> Hop:
        """The source's gateway is an address of its bridge: else nothing routes it out."""
        uplink = self._uplink
        if uplink is None:
            return self._hop(
                HopName.BRIDGE,
                "broken",
                f"{self.owner.name} has no gateway out (on {_networks(self.owner)})",
            )
        att, network = uplink
        if network.bridge is None:
            return self._hop(
                HopName.BRIDGE, "skipped", f"{network.name} is a {network.driver} network"
            )
        if not network.gateway_on_bridge:
            return self._hop(
                HopName.BRIDGE,
                "skipped",
                f"{network.name}'s bridge holds no gateway address by its options",
            )
        if self.facts.interfaces is None:
            return self._hop(HopName.BRIDGE, "unknown", why_unread(self.facts, "routes"))
        bridge = self.facts.interfaces.get(network.bridge)
        if bridge is None:
            return self._hop(
                HopName.BRIDGE,
                "broken",
                f"{network.name}'s bridge {network.bridge} is not on this host",
            )
        if att.gateway not in bridge.addresses:
            held = ", ".join(bridge.addresses) or "no address"
            return self._hop(
                HopName.BRIDGE,
                "broken",
                f"{network.bridge} has {held}, not the "
                f"gateway {att.gateway} of {self.owner.name}'s default route",
            )
        return self._hop(
            HopName.BRIDGE, "ok", f"{self.owner.name} → {att.gateway} on {network.bridge}"
        )

    def forward_out(self) -> Hop:
        packets = self._packets
        if self.facts.forwarding_disabled:  # whatever the port: nothing leaves
            return self._hop(
                HopName.FILTER_FORWARD, "broken", f"{IP_FORWARD} = 0: the host forwards nothing out"
            )
        if packets is None:
            return self._hop(HopName.FILTER_FORWARD, "skipped", "no address and port to follow")
        if not self.facts.rulesets.read:
            return self._hop(HopName.FILTER_FORWARD, "unknown", why_unread(self.facts, "iptables"))
        return self._walked(HopName.FILTER_FORWARD, "FORWARD", packets[0])

    def masquerade(self) -> Hop:
        packets, uplink = self._packets, self._uplink
        if packets is None or uplink is None:
            return self._hop(HopName.NAT_MASQUERADE, "skipped", "no address and port to follow")
        network = uplink[1]
        if (
            network.options.get(MASQUERADE_OPTION, "true").lower() == "false"
            or network.options.get(GATEWAY_MODE_OPTION) == "routed"
        ):
            return self._hop(
                HopName.NAT_MASQUERADE,
                "skipped",
                f"{network.name} does not masquerade "
                "by its options: replies need a route back to it",
            )
        if not self.facts.rulesets.read:
            return self._hop(HopName.NAT_MASQUERADE, "unknown", why_unread(self.facts, "iptables"))
        out = packets[0]
        decision = walk(self.facts.rulesets, "nat", "POSTROUTING", out)
        self.decisions[HopName.NAT_MASQUERADE] = decision
        if decision.snat:
            return self._hop(HopName.NAT_MASQUERADE, "ok", f"{decision}")
        if decision.verdict == "unknown":
            return self._hop(HopName.NAT_MASQUERADE, "unknown", f"{decision}: {decision.detail}")
        return self._hop(
            HopName.NAT_MASQUERADE,
            "broken",
            f"no rule in nat POSTROUTING masquerades "
            f"{out.src} going out{' of ' + out.out_iface if out.out_iface else ''}: "
            f"replies to {out.src} find no way back",
        )

    def return_path(self) -> Hop:
        packets = self._packets
        if packets is None:
            return self._hop(HopName.RETURN_PATH, "skipped", "no address and port to follow")
        if not self.facts.rulesets.read:
            return self._hop(HopName.RETURN_PATH, "unknown", why_unread(self.facts, "iptables"))
        return self._walked(
            HopName.RETURN_PATH,
            "FORWARD",
            packets[1],
            "replies (ESTABLISHED) accepted by {decision}",
        )

    def _walked(self, hop: HopName, chain: str, packet: Packet, accepted: str = "") -> Hop:
        decision = filtered(self.facts, chain, packet)
        self.decisions[hop] = decision
        return judged(hop, decision, accepted.format(decision=decision))


def _networks(c: Container) -> str:
    return ", ".join(a.network for a in c.attachments) or "no network"
