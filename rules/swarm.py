"""Rules about a Swarm cluster, from its manager's state: services whose name the embedded DNS
cannot answer, and nodes that run nothing new."""

from __future__ import annotations

from collections.abc import Iterator

from doctor.facts.model import Swarm, SwarmNode, SwarmService
from doctor.plugin import (
    ENGINE_API,
    Decision,
    Evidence,
    Finding,
    Fix,
    HopName,
    Packet,
    Rule,
    RuleContext,
    finding,
    walk,
)

TASKS_SHOWN = 5
#: What Swarm needs open between its nodes (inbound on each): protocol, port, what for
SWARM_PORTS = (
    ("tcp", 2377, "cluster management, to a manager"),
    ("tcp", 7946, "node discovery (gossip)"),
    ("udp", 7946, "node discovery (gossip)"),
    ("udp", 4789, "the overlay networks' data (VXLAN)"),
)


def service_by_name(ctx: RuleContext) -> Iterator[Finding]:
    """--from CONTAINER SERVICE:PORT, where the embedded DNS has no address for the service:
    the source is on none of its networks, or none of its tasks runs."""
    r, swarm = ctx.target.resolution, ctx.facts.swarm
    if r is None or r.via != "swarm" or r.status != "broken" or swarm is None:
        return
    service = swarm.service_named(r.name)
    assert service is not None  # the resolution named it
    source = ctx.sender
    if not any(source.attachment(n) for n in service.network_ids):
        networks = [(n, ctx.facts.network_name(n)) for n in service.network_ids]
        on = [name for _, name in networks]
        # the service onto an overlay the client is on, or the client onto the service's
        overlays = [a.network for a in source.attachments if _is_overlay(ctx, a.network_id)]
        attachable = [name for n, name in networks if _attachable(ctx, n)]
        commands = [f"docker service update --network-add {o} {service.name}" for o in overlays[:1]]
        commands += [f"docker network connect {name} {source.name}" for name in attachable[:1]]
        yield finding(
            "SWARM_SERVICE_NOT_ON_NETWORK",
            severity="error",
            confidence=0.95,
            hop=HopName.NAME_RESOLUTION,
            explanation=f"{service.name} is a swarm service on {', '.join(on) or 'no network'}; "
            f"{source.name} is on none of them, so the embedded DNS does not answer its name "
            f"there and no overlay carries the packets.",
            evidence=[
                Evidence(f"{service.name} networks", on, ENGINE_API),
                Evidence(
                    f"{source.name} networks", [a.network for a in source.attachments], ENGINE_API
                ),
            ],
            fix=Fix(
                f"Put {service.name} and {source.name} on one overlay network",
                commands,
            ),
        )
        return
    yield no_running_task(swarm, service, HopName.NAME_RESOLUTION)
    yield from unavailable_nodes(swarm, HopName.NAME_RESOLUTION, 0.6, swarm.nodes_of(service))


def _is_overlay(ctx: RuleContext, network_id: str) -> bool:
    network = ctx.facts.network(network_id)
    return network is not None and network.driver == "overlay"


def _attachable(ctx: RuleContext, network_id: str) -> bool:
    network = ctx.facts.network(network_id)
    return network is not None and network.attachable


def cluster_checkup(ctx: RuleContext) -> Iterator[Finding]:
    """The host checkup on a manager: every service that should run and runs nothing, every
    node that is down or takes no new tasks."""
    swarm = ctx.facts.swarm
    if ctx.target.kind != "host" or swarm is None:
        return
    for service in swarm.services if swarm.tasks_read else ():
        if swarm.wants_tasks(service) and not swarm.running(service):
            yield no_running_task(swarm, service, HopName.HOST)
    yield from unavailable_nodes(swarm, HopName.HOST, 0.9)


def swarm_ports_blocked(ctx: RuleContext) -> Iterator[Finding]:
    """The host checkup on a manager: this node's INPUT firewall stops a port another node must
    reach it on. Only this node's rules are read: another node's own firewall is not seen."""
    swarm, rulesets = ctx.facts.swarm, ctx.facts.rulesets
    here = swarm.node(swarm.node_id) if swarm else None
    if ctx.target.kind != "host" or swarm is None or here is None or not rulesets.read:
        return
    peers = [n for n in swarm.nodes if n.id != here.id and n.address]
    for protocol, port, what in SWARM_PORTS:
        if port == 2377 and here.role != "manager":
            continue
        for peer in peers:
            packet = Packet(protocol, here.address, port, None, src=peer.address, local_dst=True)
            decision = walk(rulesets, "filter", "INPUT", packet)
            if decision.verdict in ("drop", "reject"):
                yield _port_blocked(
                    here.address, peer.label, peer.address, protocol, port, what, decision
                )
                break  # one finding per port: the fix opens it to every node


def _port_blocked(
    address: str, peer: str, source: str, protocol: str, port: int, what: str, decision: Decision
) -> Finding:
    rule = (
        f"-t {decision.table} -A {decision.rule.chain} {decision.rule.text}"
        if decision.rule
        else None
    )
    if decision.tool == "nft":
        where = decision.table.removeprefix("nft ")
        command = f"nft insert rule {where} {decision.chain} ip saddr {source} {protocol} dport {port} accept"
    else:
        command = f"{decision.tool} -I INPUT -s {source} -p {protocol} --dport {port} -j ACCEPT"
    return finding(
        "SWARM_PORT_BLOCKED",
        severity="error",
        confidence=0.9,
        hop=HopName.HOST,
        explanation=f"This node's firewall {decision.verdict}s {port}/{protocol} ({what}) from "
        f"swarm node {peer} ({source} → {address}): {decision}.",
        evidence=[
            Evidence(f"{source} → {address}:{port}/{protocol}", str(decision), decision.tool),
            *([Evidence("rule", rule, decision.tool)] if rule else []),
        ],
        fix=Fix(
            f"Accept {port}/{protocol} from the other nodes before that rule (each node needs it)",
            [command],
        ),
    )


def no_running_task(swarm: Swarm, service: SwarmService, hop: str) -> Finding:
    tasks = swarm.tasks_of(service)
    shown = [
        {
            "task": f"{service.name}.{t.slot or t.node_id[:12]}",
            "node": n.label if (n := swarm.node(t.node_id)) else "none",
            "state": t.state,
            "desired": t.desired_state,
            "error": t.error or t.message,
        }
        for t in tasks[:TASKS_SHOWN]
    ]
    why = next((t.error for t in tasks if t.error), "") or next(
        (t.message for t in tasks if t.message), ""
    )
    return finding(
        "SWARM_SERVICE_NO_RUNNING_TASK",
        severity="error",
        confidence=0.95,
        hop=hop,
        explanation=f"No task of swarm service {service.name} is running"
        + (f": {why}" if why else "")
        + ". Its name resolves to nothing (dnsrr), or to a virtual IP with nothing behind it.",
        evidence=[Evidence(f"{service.name} tasks", shown, ENGINE_API)],
        fix=Fix(
            f"Find out why {service.name}'s tasks do not run, fix it, and let the scheduler start them",
            [
                f"docker service ps --no-trunc {service.name}",
                f"docker service logs --tail 50 {service.name}",
                "docker node ls",
            ],
        ),
    )


def unavailable_nodes(
    swarm: Swarm, hop: str, confidence: float, among: set[str] | None = None
) -> Iterator[Finding]:
    """Nodes down, drained or paused (``among``: of these node IDs only)."""
    for node in (n for n in swarm.nodes if among is None or n.id in among):
        if node.state != "ready":
            yield _node_finding(
                node,
                "SWARM_NODE_DOWN",
                f"is {node.state}"
                + (f" ({node.message})" if node.message else "")
                + ": its tasks are not running there, and the scheduler moves them elsewhere "
                "only where constraints allow.",
                Fix(
                    f"Bring {node.hostname}'s Docker Engine back, or remove the node",
                    [
                        f"# on {node.hostname}: systemctl start docker",
                        f"docker node inspect --pretty {node.id[:12]}",
                        f"docker node rm --force {node.id[:12]}  # if it is gone for good",
                    ],
                ),
                hop,
                confidence,
            )
        elif node.availability != "active":
            yield _node_finding(
                node,
                "SWARM_NODE_DRAINED",
                f"is set to {node.availability}: the scheduler gives it no new tasks"
                + (" and has moved its tasks away" if node.availability == "drain" else "")
                + ".",
                Fix(
                    f"Make {node.hostname} available again",
                    [f"docker node update --availability active {node.id[:12]}"],
                ),
                hop,
                confidence,
            )


def _node_finding(
    node: SwarmNode, code: str, what: str, fix: Fix, hop: str, confidence: float
) -> Finding:
    """A node's finding: down is an error, drained a warning (it may be on purpose)."""
    return finding(
        code,
        severity="error" if code == "SWARM_NODE_DOWN" else "warning",
        confidence=confidence,
        hop=hop,
        explanation=f"Swarm node {node.label} {what}",
        evidence=[Evidence(f"{node.label} Status", _status(node), ENGINE_API)],
        fix=fix,
    )


def _status(node: SwarmNode) -> dict[str, str]:
    return {
        key: getattr(node, key) for key in ("role", "state", "availability", "address", "message")
    }


RULES = [
    Rule(
        "swarm-service-by-name",
        ("SWARM_SERVICE_NOT_ON_NETWORK", "SWARM_SERVICE_NO_RUNNING_TASK", "SWARM_NODE_DOWN",
         "SWARM_NODE_DRAINED"),
        service_by_name,
        ("container",),
    ),
    Rule("swarm-ports-blocked", ("SWARM_PORT_BLOCKED",), swarm_ports_blocked, ("host",)),
    Rule(
        "swarm-cluster",
        ("SWARM_SERVICE_NO_RUNNING_TASK", "SWARM_NODE_DOWN", "SWARM_NODE_DRAINED"),
        cluster_checkup,
        ("host",),
    ),
]  # fmt: skip
