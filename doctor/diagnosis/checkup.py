"""What a checkup looks at: the host as a whole (no target), or one container's whole picture.

Each subject becomes one line of the report (a :class:`~doctor.model.Hop` whose name
says what was checked).  Published ports are diagnosed one by one, each exactly as
``docker-doctor localhost:PORT`` would; the lines here are the rest, read from facts.
"""

from __future__ import annotations

from doctor.facts.model import IP_FORWARD, Container, Facts, PortMapping
from doctor.path.target import TargetSpec
from doctor.report.document import Hop, HopStatus

BUILTIN_NETWORKS = ("host", "none")


def port_targets(containers: list[Container]) -> list[TargetSpec]:
    """One target per host port the containers publish or ask for, as a local client would dial it."""
    specs: dict[tuple[str, int, str], TargetSpec] = {}
    for c in containers:
        for mapping in c.published or c.configured:
            for binding in mapping.bindings:
                host = _dial(binding.host_ip)
                shown = f"[{host}]" if ":" in host else host
                text = f"{shown}:{binding.host_port}" + (
                    "/udp" if mapping.protocol == "udp" else ""
                )
                specs.setdefault(
                    (host, binding.host_port, mapping.protocol),
                    TargetSpec(text, host, binding.host_port, mapping.protocol),
                )
    return sorted(specs.values(), key=lambda s: (s.port or 0, s.protocol, s.host or ""))


def _dial(host_ip: str) -> str:
    if host_ip in ("", "0.0.0.0"):
        return "127.0.0.1"
    return "::1" if host_ip == "::" else host_ip


def engine_line(facts: Facts) -> Hop:
    e = facts.engine
    assert e is not None
    return Hop(
        "engine",
        "ok",
        f"Docker Engine {e.version} (API {e.api_version}) at {e.endpoint}"
        + (f", {e.os}" if e.os else ""),
    )


def container_line(c: Container) -> Hop:
    name = f"container {c.name}"
    if c.running:
        if c.health == "unhealthy":
            return Hop(name, "broken", f"running but unhealthy: {c.health_output or 'no output'}")
        return Hop(
            name,
            "ok",
            "running"
            + (f" ({c.health})" if c.health else "")
            + f", publishes {_ports(c.published)}",
        )
    if c.status == "exited" and c.exit_code == 0 and not c.configured:
        return Hop(name, "skipped", "exited with code 0 (a finished job)")
    why = {"exited": f"exit code {c.exit_code}", "created": "never started"}.get(
        c.status, c.error or c.status
    )
    wants = f", wants to publish {_ports(c.configured)}" if c.configured else ""
    return Hop(name, "broken", f"{c.status}: {c.error or why}{wants}")


def _ports(mappings: tuple[PortMapping, ...]) -> str:
    return (
        ", ".join(f"{b}→{m.container_port}/{m.protocol}" for m in mappings for b in m.bindings)
        or "nothing"
    )


def network_lines(facts: Facts, only: Container | None = None) -> list[Hop]:
    lines = []
    wanted = {a.network_id for a in only.attachments} if only else None
    for n in sorted(facts.networks, key=lambda n: n.name):
        if n.name in BUILTIN_NETWORKS or (wanted is not None and n.id not in wanted):
            continue
        members = [c.name for c in facts.containers if c.running and c.attachment(n.id)]
        traits = [n.driver, *n.subnets]
        traits += ["internal"] if n.internal else []
        traits += ["icc off"] if n.bridge and not n.icc else []
        traits += [f"MTU {n.mtu}"] if n.mtu else []
        if only is not None:
            peers = [m for m in members if m != only.name]
            who = f"peers: {', '.join(peers)}" if peers else "no running peers"
        else:
            who = f"{len(members)} running container(s)"
        detail = f"{', '.join(traits)}; {who}"
        if n.driver == "overlay":
            lines.append(
                Hop(
                    f"network {n.name}",
                    "unknown",
                    f"{detail}; it spans swarm nodes: only this node's side can be checked from "
                    "here",
                )
            )
        else:
            lines.append(Hop(f"network {n.name}", "ok", detail))
    return lines


def swarm_lines(facts: Facts) -> list[Hop]:
    """On a Swarm manager: one line per node and per service, as the manager sees them."""
    swarm = facts.swarm
    if swarm is None:
        return []
    lines = [
        Hop("swarm", "unknown", f"the manager did not give its {kind}: {why}")
        for kind, why in swarm.unread.items()
    ]
    for node in swarm.nodes:
        here = " (this node)" if node.id == swarm.node_id else ""
        detail = f"{node.role}, {node.state}, {node.availability}, {node.address}{here}"
        status: HopStatus = "ok" if node.state == "ready" else "broken"
        lines.append(Hop(f"node {node.label}", status, detail))
    for service in swarm.services:
        running = swarm.running(service)
        wanted = service.replicas if service.replicas is not None else len(swarm.tasks_of(service))
        nets = ", ".join(map(facts.network_name, service.network_ids))
        detail = f"{service.mode}, {len(running)}/{wanted} running, {service.endpoint_mode}" + (
            f", on {nets}" if nets else ""
        )
        if not swarm.tasks_read:
            lines.append(Hop(f"service {service.name}", "unknown", "its tasks were not read"))
        elif not swarm.wants_tasks(service):
            lines.append(Hop(f"service {service.name}", "skipped", detail))
        elif not running:
            trouble = next((t.error or t.message for t in swarm.tasks_of(service)), "no task")
            lines.append(Hop(f"service {service.name}", "broken", f"{detail}: {trouble}"))
        else:
            lines.append(Hop(f"service {service.name}", "ok", detail))
    return lines


def dns_line(c: Container, facts: Facts) -> Hop:
    name = f"dns {c.name}"
    if c.resolv_conf is None:
        return Hop(name, "unknown", f"{c.name}'s resolv.conf was not read")
    servers = ", ".join(c.resolv_conf.nameservers) or "none"
    if facts.uses_embedded_dns(c):
        return Hop(
            name,
            "ok",
            "the engine's embedded DNS (127.0.0.11): container names, then the host's resolvers",
        )
    if c.loopback_resolvers_unserved:
        return Hop(
            name,
            "broken",
            f"only {servers}: the container's own loopback, where no DNS server runs",
        )
    if not c.resolv_conf.nameservers:
        return Hop(name, "broken", "no nameserver in resolv.conf")
    return Hop(name, "ok", f"resolvers {servers} (no container names on this network)")


def listeners_line(c: Container) -> Hop:
    name = f"listeners {c.name}"
    if not c.running:
        return Hop(name, "skipped", "not running")
    if c.uses_host_network:
        return Hop(name, "skipped", "its sockets are the host's")
    if c.listeners is None:
        return Hop(name, "unknown", "its network namespace was not read")
    shown = sorted({str(listener) for listener in c.listeners}) or ["nothing"]
    return Hop(name, "ok", ", ".join(shown))


def sysctl_lines(facts: Facts) -> list[Hop]:
    forward = facts.sysctls.get(IP_FORWARD)
    if forward is None:
        return [Hop(f"sysctl {IP_FORWARD}", "unknown", "not read")]
    if facts.forwarding_disabled:
        return [
            Hop(
                f"sysctl {IP_FORWARD}",
                "broken",
                "0: published ports are unreachable from other machines, "
                "and containers cannot reach out",
            )
        ]
    return [Hop(f"sysctl {IP_FORWARD}", "ok", forward)]
