"""The path of a flow this host forwards and no container is part of: ``--client 10.77.0.2
DEST:PORT``, a virtual machine or an LXD bridge reaching the world through this host.

filter FORWARD (where the engine's policy DROP catches what is not Docker's) → the replies,
ESTABLISHED, back through filter FORWARD.
"""

from __future__ import annotations

from doctor.facts.model import IP_FORWARD, Facts
from doctor.firewall.model import Decision, Packet
from doctor.path.hops import HopName, NetworkPath, Route
from doctor.path.host import filtered, judged, why_unread
from doctor.path.target import Target
from doctor.report.document import Hop


def build_forward_path(facts: Facts, target: Target) -> NetworkPath:
    client, port = target.client_address, target.port
    assert client is not None and port is not None
    destination = target.addresses[0]
    into, out = (
        route.device if (route := facts.route_to(a)) else None for a in (client, destination)
    )
    subnets = tuple(s for n in facts.networks for s in n.subnets)
    there = Packet(target.protocol, destination, port, into, out, client, docker_subnets=subnets)
    back = Packet(
        target.protocol,
        client,
        None,
        out,
        into,
        destination,
        ctstate="ESTABLISHED",
        sport=port,
        docker_subnets=subnets,
    )
    decisions: dict[str, Decision] = {}

    def walked(hop: HopName, packet: Packet, accepted: str) -> Hop:
        if facts.forwarding_disabled:
            return Hop(hop, "broken", f"{IP_FORWARD} = 0: the kernel forwards nothing")
        if not facts.rulesets.read:
            return Hop(hop, "unknown", why_unread(facts, "iptables"))
        decisions[hop] = filtered(facts, "FORWARD", packet)
        return judged(hop, decisions[hop], accepted.format(decision=decisions[hop]))

    where = f"{into or '?'} → {out or '?'}"
    hops = (
        walked(HopName.FILTER_FORWARD, there, f"{where}: accepted by {{decision}}"),
        walked(HopName.RETURN_PATH, back, "replies (ESTABLISHED) accepted by {decision}"),
    )
    return NetworkPath(hops, Route(), decisions)
