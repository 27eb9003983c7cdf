"""Pre-flight checks of a compose file (`docker-doctor preflight`): the guide's networking mistakes,
found before the deploy.  Each finding points at the file and line it is about."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from doctor.plugin import (
    Evidence,
    Finding,
    Fix,
    HopName,
    Location,
    Rule,
    RuleContext,
    finding,
)

if TYPE_CHECKING:  # only preflight loads compose files
    from doctor.plugin import Port, Service, Where

COMPOSE = ("compose",)
#: Container ports that should not face every interface: databases, caches, brokers, admin APIs.
SENSITIVE = {
    5432: "PostgreSQL",
    3306: "MySQL/MariaDB",
    1433: "SQL Server",
    1521: "Oracle",
    27017: "MongoDB",
    6379: "Redis",
    11211: "memcached",
    9200: "Elasticsearch",
    9300: "Elasticsearch",
    5672: "RabbitMQ",
    15672: "RabbitMQ management",
    9092: "Kafka",
    2181: "ZooKeeper",
    2375: "the Docker API (no TLS)",
    2376: "the Docker API",
    2379: "etcd",
    8500: "Consul",
    5984: "CouchDB",
    9042: "Cassandra",
    8086: "InfluxDB",
    4222: "NATS",
    6443: "the Kubernetes API",
    10250: "the kubelet",
}
DATABASE_IMAGE = re.compile(
    r"(^|/)(postgres|postgis|mysql|mariadb|mongo|redis|valkey|rabbitmq|elasticsearch|"
    r"opensearch|cassandra|couchdb|mssql|oracle|kafka|zookeeper|memcached|influxdb)\b"
)
BROAD_CAPS = {
    "ALL",
    "SYS_ADMIN",
    "NET_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "DAC_READ_SEARCH",
    "NET_RAW",
}


def _at(where: Where) -> Location:
    return Location(where.file, where.line)


def _all_interfaces(port: Port) -> bool:
    return port.host_ip in ("", "0.0.0.0", "::")


def _effective_networks(s: Service) -> set[str]:
    return set() if s.network_mode else set(s.networks)


def sensitive_port_exposed(ctx: RuleContext) -> Iterator[Finding]:
    project = ctx.compose
    if project is None:
        return
    for s in project.services:
        for port in s.ports:
            what = SENSITIVE.get(port.container_port)
            if what is None or not _all_interfaces(port):
                continue
            yield finding(
                "SENSITIVE_PORT_EXPOSED",
                severity="error",
                confidence=0.9,
                hop=f"service {s.name}",
                location=_at(port.where),
                explanation=f"{s.name} publishes {what} (container port {port.container_port}) on "
                "every interface "
                f"of the host ({port}): anyone who reaches the host reaches it. Other services "
                "reach it "
                "by name on a shared network without any publish.",
                evidence=[Evidence(f"services.{s.name}.ports", str(port), f"{port.where}")],
                fix=Fix(
                    "Do not publish it; let services use the name on a (internal) backend network, "
                    "or bind it to "
                    "loopback for local tools",
                    [
                        f"# {port.where}:  - "
                        f'"127.0.0.1:{port.host_port or port.container_port}:{port.container_port}"',
                        "# or remove the ports: entry and put the service on an internal backend "
                        "network",
                    ],
                ),
            )


def duplicate_host_port(ctx: RuleContext) -> Iterator[Finding]:
    project = ctx.compose
    seen: dict[tuple[int, str], list[tuple[Service, Port]]] = {}
    for s in project.services if project else ():
        for port in s.ports:
            if port.host_port is not None:
                seen.setdefault((port.host_port, port.protocol), []).append((s, port))
    for (host_port, protocol), users in seen.items():
        clashing = [(s, p) for s, p in users if any(_overlap(p, q) for t, q in users if q is not p)]
        if len(clashing) < 2:
            continue
        (first, p1), (second, p2) = clashing[0], clashing[1]
        yield finding(
            "DUPLICATE_HOST_PORT",
            severity="error",
            confidence=0.95,
            hop=f"service {second.name}",
            location=_at(p2.where),
            explanation=f"Host port {host_port}/{protocol} is published twice: by {first.name} "
            f"({p1.where}) and "
            f"{second.name}. One host port takes one container; the second fails to start.",
            evidence=[
                Evidence(f"services.{s.name}.ports", str(p), str(p.where)) for s, p in clashing
            ],
            fix=Fix(
                f"Give {second.name} another host port, or put a reverse proxy in front of both",
                [f'# {p2.where}:  - "{host_port + 1}:{p2.container_port}"'],
            ),
        )


def _overlap(a: Port, b: Port) -> bool:
    return _all_interfaces(a) or _all_interfaces(b) or a.host_ip == b.host_ip


def no_shared_network(ctx: RuleContext) -> Iterator[Finding]:
    project = ctx.compose
    if project is None:
        return
    for s in project.services:
        for other, where in [
            *s.depends_where.items(),
            *((link, s.line("links")) for link in s.links),
        ]:
            peer = project.service(other)
            if peer is None or s.network_mode or peer.network_mode:
                continue
            if _effective_networks(s) & _effective_networks(peer):
                continue
            yield finding(
                "NO_SHARED_NETWORK",
                severity="error",
                confidence=0.9,
                hop=f"service {s.name}",
                location=_at(where),
                affects=("container",),
                explanation=f"{s.name} depends on {other}, but they share no network ({s.name}: "
                f"{', '.join(sorted(s.networks))}; {other}: {', '.join(sorted(peer.networks))}): "
                f"{other}'s name will not resolve from {s.name}.",
                evidence=[
                    Evidence(
                        f"services.{s.name}.networks", sorted(s.networks), str(s.line("networks"))
                    ),
                    Evidence(
                        f"services.{other}.networks",
                        sorted(peer.networks),
                        str(peer.line("networks")),
                    ),
                ],
                fix=Fix(
                    f"Put {s.name} on a network {other} is on",
                    [
                        f"# {s.line('networks')}:  networks: "
                        f"[{', '.join(sorted(_effective_networks(peer))) or 'NETWORK'}"
                        ", ...]"
                    ],
                ),
            )


def depends_on_without_healthcheck(ctx: RuleContext) -> Iterator[Finding]:
    project = ctx.compose
    if project is None:
        return
    for s in project.services:
        for other, condition in s.depends_on.items():
            peer = project.service(other)
            if peer is None or condition == "service_healthy":
                continue
            if not (
                DATABASE_IMAGE.search(peer.image)
                or any(p.container_port in SENSITIVE for p in peer.ports)
            ):
                continue
            missing = "" if peer.healthcheck else f" and {other} has no healthcheck"
            yield finding(
                "DEPENDS_ON_WITHOUT_HEALTHCHECK",
                severity="warning",
                confidence=0.8,
                hop=f"service {s.name}",
                location=_at(s.depends_where[other]),
                affects=("container",),
                explanation=f"{s.name} waits only for {other} to start ({condition}){missing}: a "
                "database takes "
                f"seconds to accept connections after its container starts, so {s.name}'s first "
                "connections fail.",
                evidence=[
                    Evidence(
                        f"services.{s.name}.depends_on.{other}",
                        condition,
                        str(s.depends_where[other]),
                    ),
                    Evidence(
                        f"services.{other}.healthcheck",
                        peer.healthcheck,
                        str(peer.line("healthcheck")),
                    ),
                ],
                fix=Fix(
                    f"Wait for {other} to be healthy",
                    [
                        f"# {s.depends_where[other]}:  depends_on: "
                        f"{{{other}: {{condition: service_healthy}}}}",
                        f"# {peer.where}:  healthcheck: "
                        f'{{test: ["CMD-SHELL", "pg_isready || exit 1"], '
                        "interval: 5s, retries: 10}",
                    ],
                ),
            )


def host_network_publish_ignored(ctx: RuleContext) -> Iterator[Finding]:
    project = ctx.compose
    if project is None:
        return
    for s in project.services:
        if s.network_mode == "host" and s.ports:
            yield finding(
                "HOST_NETWORK_PUBLISH_IGNORED",
                severity="error",
                confidence=0.95,
                hop=f"service {s.name}",
                location=_at(s.line("ports")),
                explanation=f"{s.name} uses network_mode: host, so its ports: entries are ignored: "
                "the application "
                "binds the host's ports itself.",
                evidence=[
                    Evidence(
                        f"services.{s.name}.network_mode", "host", str(s.line("network_mode"))
                    ),
                    Evidence(
                        f"services.{s.name}.ports", [str(p) for p in s.ports], str(s.line("ports"))
                    ),
                ],
                fix=Fix(
                    "Remove ports: (and make the application listen on the port), or drop "
                    "network_mode: host"
                ),
            )


def internal_network(ctx: RuleContext) -> Iterator[Finding]:
    project = ctx.compose
    if project is None:
        return
    for s in project.services:
        if not s.ports or s.network_mode:
            continue
        declared = [project.networks.get(n) for n in s.networks]
        if declared and all(n is not None and n.internal for n in declared):
            yield finding(
                "INTERNAL_NETWORK",
                severity="error",
                confidence=0.9,
                hop=f"service {s.name}",
                location=_at(s.line("ports")),
                explanation=f"{s.name} publishes ports but is only on internal network(s) "
                f"{', '.join(sorted(s.networks))}: the engine publishes nothing from there.",
                evidence=[
                    Evidence(f"networks.{n}.internal", True, str(project.networks[n].where))
                    for n in s.networks
                ],
                fix=Fix(
                    f"Also attach {s.name} to a non-internal (frontend) network",
                    [
                        f"# {s.line('networks')}:  networks: [frontend, "
                        f"{', '.join(sorted(s.networks))}]"
                    ],
                ),
            )


def privileged_or_broad_caps(ctx: RuleContext) -> Iterator[Finding]:
    project = ctx.compose
    if project is None:
        return
    for s in project.services:
        broad = sorted({c.removeprefix("CAP_") for c in s.cap_add} & BROAD_CAPS)
        if s.privileged or broad:
            what = "privileged: true" if s.privileged else f"cap_add: {', '.join(broad)}"
            yield finding(
                "PRIVILEGED_OR_BROAD_CAPS",
                severity="warning",
                confidence=0.9,
                hop=f"service {s.name}",
                location=_at(s.line("privileged" if s.privileged else "cap_add")),
                affects=("container",),
                explanation=f"{s.name} runs with {what}: a compromise of it is close to a "
                "compromise of the host "
                "(NET_ADMIN also lets it rewrite the host's view of its network).",
                evidence=[Evidence(f"services.{s.name}", what, str(s.where))],
                fix=Fix(
                    "Grant only the capability it needs (e.g. NET_BIND_SERVICE), not privileged or "
                    "ALL"
                ),
            )
        missing = [
            advice
            for advice, ok in (
                ("cap_drop: [ALL]", "ALL" in {c.removeprefix("CAP_") for c in s.cap_drop}),
                ("read_only: true", s.read_only),
                (
                    "a non-root user:",
                    bool(s.user) and (s.user or "").split(":")[0] not in ("root", "0"),
                ),
            )
            if not ok
        ]
        if missing:
            yield finding(
                "PRIVILEGED_OR_BROAD_CAPS",
                severity="info",
                confidence=0.5,
                hop=f"service {s.name}",
                location=_at(s.where),
                affects=("container",),
                explanation=f"Hardening {s.name} (the guide's advice): {', '.join(missing)} are "
                "not set.",
                evidence=[
                    Evidence(
                        f"services.{s.name}",
                        {"cap_drop": list(s.cap_drop), "read_only": s.read_only, "user": s.user},
                        str(s.where),
                    )
                ],
                fix=Fix(
                    "Drop what the service does not need",
                    [f'# {s.where}:  cap_drop: [ALL]   read_only: true   user: "1000:1000"'],
                ),
            )


def obsolete_version(ctx: RuleContext) -> Iterator[Finding]:
    project = ctx.compose
    if project and project.version:
        yield finding(
            "OBSOLETE_VERSION_KEY",
            severity="info",
            confidence=1.0,
            hop="file",
            location=_at(project.version),
            evidence=[Evidence("version", "present", str(project.version))],
            fix=Fix(
                "Delete the top-level version: line", [f"# {project.version}: delete this line"]
            ),
        )


def host_port_in_use(ctx: RuleContext) -> Iterator[Finding]:
    project, facts = ctx.compose, ctx.facts
    if project is None or facts.host_listeners is None:
        return
    for s in project.services:
        for port in s.ports:
            if port.host_port is None:
                continue
            # The project's own running containers will be replaced by the deploy: no conflict.
            holders = [
                c
                for c in facts.containers
                if c.running
                and c.compose_project != project.name
                and c.publishing(port.host_port, port.protocol)
            ]
            listeners = [
                listener
                for listener in facts.host_listeners_on(port.host_port, port.protocol) or ()  # type: ignore[arg-type]
                if listener.process != "docker-proxy"
                and (not port.host_ip or listener.address in ("0.0.0.0", "::", "", port.host_ip))
            ]
            if not holders and not listeners:
                continue
            who = (
                f"container {holders[0].name} (project {holders[0].compose_project or 'none'})"
                if holders
                else f"{listeners[0].process or 'a process'} (pid {listeners[0].pid})"
                if listeners[0].pid
                else "a process of another user"
            )
            yield finding(
                "HOST_PORT_IN_USE",
                severity="error",
                confidence=0.95,
                hop=f"service {s.name}",
                location=_at(port.where),
                explanation=f"Host port {port.host_port}/{port.protocol}, which {s.name} "
                f"publishes, is taken by {who}: "
                f"{s.name} would fail to start (address already in use).",
                evidence=[Evidence("held by", who, "host sockets and running containers")],
                fix=Fix(
                    f"Free port {port.host_port} or publish {s.name} on another",
                    [
                        f"docker rm -f {holders[0].name}"
                        if holders
                        else f"ss -ltnp 'sport = :{port.host_port}'",
                        f'# {port.where}:  - "{port.host_port + 1}:{port.container_port}"',
                    ],
                ),
            )


def subnet_overlap(ctx: RuleContext) -> Iterator[Finding]:
    project, facts = ctx.compose, ctx.facts
    if project is None:
        return
    for network in project.networks.values():
        for text in network.subnets:
            try:
                subnet = ipaddress.ip_network(text, strict=False)
            except ValueError:
                continue
            taken = [
                f"route {r}"
                for r in facts.routes or ()
                if r.destination.prefixlen > 0
                and r.device not in facts.bridges()
                and r.destination.overlaps(subnet)
            ]
            taken += [
                f"network {n.name} ({s})"
                for n in facts.networks
                if n.name != f"{project.name}_{network.name}"
                for s in n.subnets
                if ipaddress.ip_network(s, strict=False).overlaps(subnet)
            ]
            if taken:
                yield finding(
                    "SUBNET_OVERLAP",
                    severity="error",
                    confidence=0.9,
                    hop=f"network {network.name}",
                    location=_at(network.where),
                    explanation=f"Network {network.name}'s subnet {subnet} overlaps "
                    f"{', '.join(taken)} on this host.",
                    evidence=[
                        Evidence(
                            f"networks.{network.name}.ipam.config.subnet",
                            str(subnet),
                            str(network.where),
                        )
                    ],
                    fix=Fix("Pick a free subnet", [f"# {network.where}:  subnet: FREE_SUBNET"]),
                )


def sysctl_tuning(ctx: RuleContext) -> Iterator[Finding]:
    project, sysctls = ctx.compose, ctx.facts.sysctls
    if project is None or not any(s.ports for s in project.services):
        return
    advice = []
    somaxconn, fin = sysctls.get("net.core.somaxconn"), sysctls.get("net.ipv4.tcp_fin_timeout")
    ports = sysctls.get("net.ipv4.ip_local_port_range")
    if somaxconn and somaxconn.isdigit() and int(somaxconn) < 1024:
        advice.append(("net.core.somaxconn", somaxconn, "1024"))
    if fin and fin.isdigit() and int(fin) > 30:
        advice.append(("net.ipv4.tcp_fin_timeout", fin, "30"))
    if ports and len(ports.split()) == 2 and int(ports.split()[1]) - int(ports.split()[0]) < 30000:
        advice.append(("net.ipv4.ip_local_port_range", ports, '"1024 65000"'))
    if advice:
        yield finding(
            "SYSCTL_TUNING",
            severity="info",
            confidence=0.5,
            hop=HopName.HOST,
            explanation="Under many connections (the guide's tuning advice): "
            + "; ".join(f"{name} is {value}" for name, value, _ in advice),
            evidence=[Evidence(name, value, "/proc/sys") for name, value, _ in advice],
            fix=Fix(
                "Tune the host for many connections",
                [f"sudo sysctl -w {name}={wanted}" for name, _, wanted in advice],
            ),
        )


RULES = [
    Rule(
        "compose-sensitive-port-exposed",
        ("SENSITIVE_PORT_EXPOSED",),
        sensitive_port_exposed,
        COMPOSE,
    ),
    Rule("compose-duplicate-host-port", ("DUPLICATE_HOST_PORT",), duplicate_host_port, COMPOSE),
    Rule("compose-no-shared-network", ("NO_SHARED_NETWORK",), no_shared_network, COMPOSE),
    Rule(
        "compose-depends-on-without-healthcheck",
        ("DEPENDS_ON_WITHOUT_HEALTHCHECK",),
        depends_on_without_healthcheck,
        COMPOSE,
    ),
    Rule(
        "compose-host-network-publish-ignored",
        ("HOST_NETWORK_PUBLISH_IGNORED",),
        host_network_publish_ignored,
        COMPOSE,
    ),
    Rule("compose-internal-network", ("INTERNAL_NETWORK",), internal_network, COMPOSE),
    Rule(
        "compose-privileged-or-broad-caps",
        ("PRIVILEGED_OR_BROAD_CAPS",),
        privileged_or_broad_caps,
        COMPOSE,
    ),
    Rule("compose-obsolete-version", ("OBSOLETE_VERSION_KEY",), obsolete_version, COMPOSE),
    Rule("compose-host-port-in-use", ("HOST_PORT_IN_USE",), host_port_in_use, COMPOSE),
    Rule("compose-subnet-overlap", ("SUBNET_OVERLAP",), subnet_overlap, COMPOSE),
    Rule("compose-sysctl-tuning", ("SYSCTL_TUNING",), sysctl_tuning, COMPOSE),
]
