"""The path from a source container (``--from web``) to what it connects to.

source → name resolution → then, by where the address leads:
  another container: network (a shared one) → bridge (icc, driver) → container → its listener
  the source itself (loopback): its own listener
  this host (a gateway or host address): gateway → host listener
  elsewhere: egress (internal networks, the host's routes, subnet overlaps)
"""

from __future__ import annotations

from doctor.facts.model import IP_FORWARD, Container, Facts, is_wildcard
from doctor.path.hops import HopName, NetworkPath, Route
from doctor.path.host import Judge, find_route
from doctor.path.names import Place, locate
from doctor.path.target import Target
from doctor.report.document import Hop, HopStatus


def build_peer_path(facts: Facts, target: Target) -> NetworkPath:
    assert target.source is not None and target.resolution is not None
    judge = PeerJudge(facts, target)
    return NetworkPath(tuple(judge.hops()), judge.route, destination=judge.place)


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

    def hops(self) -> list[Hop]:
        hops = [self.source_hop(), self.name_resolution()]
        kind = self.place.kind
        if kind == "container":
            judge = Judge(self.facts, self.target, self.route)
            hops += [self.network(), self.bridge(), judge.container(), judge.container_listener()]
        elif kind == "self":
            hops.append(self.own_listener())
        elif kind == "host":
            hops += [self.gateway(), self.host_listener()]
        elif kind == "external":
            hops.append(self.egress())
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
        if self.facts.forwarding_disabled:
            return self._hop(
                HopName.EGRESS, "broken", f"{IP_FORWARD} = 0: the host forwards nothing out"
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


def _networks(c: Container) -> str:
    return ", ".join(a.network for a in c.attachments) or "no network"
