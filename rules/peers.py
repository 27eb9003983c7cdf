"""Rules about one container reaching another, this host or the world (``--from CONTAINER``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from doctor.rules.ports import NETNS, SOCKETS
from doctor.rules.resolvers import explains_resolver_failure

from doctor.facts.model import (
    HOST_GATEWAY_NAMES,
    Container,
    Facts,
    Listener,
    Network,
    is_loopback,
)
from doctor.plugin import (
    ENGINE_API,
    DnsAnswer,
    Evidence,
    Finding,
    Fix,
    HopName,
    Rule,
    RuleContext,
    finding,
)

FILES = "the container's etc files"
RESOLVER_FAILURES = ("timeout", "refused", "error", "failed")
CLIENT = ("container",)
LOOPBACK_NAMES = {
    "localhost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
}


def _with_port(name: str, port: int | None) -> str:
    return f"{name}:{port}" if port else name


def _user_networks(c: Container, facts: Facts) -> list[Network]:
    return [
        n for a in c.attachments if (n := facts.network(a.network_id)) and not n.is_default_bridge
    ]


def _resolver_failed(ctx: RuleContext) -> bool:
    return (
        ctx.seen is not None
        and ctx.seen.answer is not None
        and ctx.seen.answer.outcome in RESOLVER_FAILURES
    )


def name_not_found(ctx: RuleContext) -> Iterator[Finding]:
    name, owner = ctx.asked_name, ctx.sender
    key = name.lower()
    if (
        not ctx.broken(HopName.NAME_RESOLUTION)
        or ctx.facts.known_to_engine(key)
        or key in HOST_GATEWAY_NAMES
    ):
        return
    if _resolver_failed(ctx) or owner.loopback_resolvers_unserved:
        return  # the resolver, not the name, is what fails: DNS_RESOLVER_UNREACHABLE
    resolvable = sorted(_resolvable_names(owner, ctx.facts))
    hint = _naming_hint(key, owner, ctx.facts)
    import difflib  # only when a name is wrong

    close = [hint[1]] if hint else difflib.get_close_matches(key, resolvable, n=3, cutoff=0.6)
    evidence = [
        Evidence("name", name, "command line"),
        Evidence(f"names {owner.name} can resolve", resolvable, "embedded DNS and etc/hosts"),
    ]
    if ctx.seen and ctx.seen.answer:
        evidence.append(
            Evidence("live DNS answer", str(ctx.seen.answer), "query from inside the container")
        )
    port = ctx.target.port
    if close:
        fix = Fix(
            f"Use {close[0]}: it is the closest name {owner.name} can resolve",
            [
                f"# in {owner.name}'s configuration: {_with_port(close[0], port)} instead of "
                f"{_with_port(name, port)}"
            ],
        )
    else:
        fix = Fix(
            "Use a container name, network alias or compose service name on a network "
            f"{owner.name} is on",
            [
                f"docker network inspect {a.network} --format "
                f"'{{{{range .Containers}}}}{{{{.Name}}}} {{{{end}}}}'"
                for a in owner.attachments[:1]
            ],
        )
    yield finding(
        "NAME_NOT_FOUND",
        severity="error",
        confidence=0.95 if ctx.seen and ctx.seen.answer else 0.8,
        hop=HopName.NAME_RESOLUTION,
        evidence=evidence,
        fix=fix,
        explanation=f"No container, alias, service or hosts entry is called {name}, and DNS does "
        "not know it"
        + (f": {hint[0]}" if hint else f"; did you mean {', '.join(close)}?" if close else "."),
    )


#: Compose v1 named containers PROJECT_SERVICE_N; Compose v2 names them PROJECT-SERVICE-N.
_COMPOSE_V1_NAME = re.compile(r"^(?P<project>.+)_(?P<service>[^_]+)_(?P<index>\d+)$")


def _naming_hint(key: str, owner: Container, facts: Facts) -> tuple[str, str] | None:
    """(why, the name to use) when ``key`` is Compose v1's name of a container
    (project_service_1) that Compose v2 names project-service-1."""
    reachable = [
        c
        for c in facts.containers
        if c.running and c.id != owner.id and _shares_user_network(owner, c, facts)
    ]
    if old := _COMPOSE_V1_NAME.match(key):
        for c in reachable:
            if (c.compose_service or "").lower() == old["service"] and (
                (c.compose_project or "").lower() == old["project"].replace("_", "")
                or (c.compose_project or "").lower() == old["project"]
            ):
                return (
                    f"that is Compose v1's name for the {c.compose_service} service; Compose "
                    f"v2 calls the container {c.name}, and the service name "
                    f"{c.compose_service} resolves on the project's network whatever the "
                    "version",
                    c.compose_service or c.name,
                )
    return None


def _shares_user_network(a: Container, b: Container, facts: Facts) -> bool:
    return any(not n.is_default_bridge for n in facts.shared_networks(a, b))


def _resolvable_names(owner: Container, facts: Facts) -> set[str]:
    names = set(owner.hosts or {}) - LOOPBACK_NAMES
    if facts.uses_embedded_dns(owner):
        for att in owner.attachments:
            network = facts.network(att.network_id)
            if network is None or network.is_default_bridge:
                continue
            for c in facts.containers:
                peer = c.attachment(att.network_id)
                if c.running and peer:
                    names |= c.dns_names(peer)
    return names


def default_bridge_no_dns(ctx: RuleContext) -> Iterator[Finding]:
    owner, name = ctx.sender, ctx.asked_name
    if not ctx.broken(HopName.NAME_RESOLUTION) or ctx.facts.uses_embedded_dns(owner):
        return
    peers = ctx.facts.named_containers(name.lower())
    if not peers:
        return
    dest = peers[0]
    evidence = [
        Evidence(
            f"{owner.name} networks",
            [a.network for a in owner.attachments] or owner.network_mode,
            ENGINE_API,
        ),
        Evidence(
            f"{owner.name} resolv.conf nameservers",
            list(owner.resolv_conf.nameservers) if owner.resolv_conf else None,
            FILES,
        ),
        Evidence(f"{dest.name} networks", [a.network for a in dest.attachments], ENGINE_API),
    ]
    if owner.uses_host_network:
        published = [
            (m, b)
            for m in dest.published
            for b in m.bindings
            if m.container_port == ctx.target.port
        ]
        via = (
            f"localhost:{published[0][1].host_port}"
            if published
            else f"a port {dest.name} publishes"
        )
        yield finding(
            "DEFAULT_BRIDGE_NO_DNS",
            severity="error",
            confidence=0.9,
            hop=HopName.NAME_RESOLUTION,
            evidence=evidence,
            explanation=f"{owner.name} uses the host's network stack, so it has the host's "
            "resolvers and no embedded "
            f"DNS: container names do not resolve there. From the host's stack, {dest.name} is "
            "reached "
            "through its published port.",
            fix=Fix(
                f"Connect to {via}, or run {owner.name} on a user-defined network with {dest.name}",
                [f"# in {owner.name}'s configuration: {via}"],
            ),
        )
        return
    if not ctx.facts.shared_networks(owner, dest):
        return  # NO_SHARED_NETWORK says it, and its fix also brings the names
    network = f"{owner.name}-net"
    # The legacy --link the other way round: an etc/hosts entry in the linking container only.
    backwards = _link_aliases(dest, owner)
    link = (
        f" {dest.name} reaches {owner.name} as {backwards[0]} through --link, but a link is an "
        f"entry in {dest.name}'s etc/hosts only: {owner.name} gets no name for {dest.name}."
        if backwards
        else ""
    )
    if backwards:
        evidence.append(Evidence(f"{dest.name} HostConfig.Links", list(dest.links), ENGINE_API))
    yield finding(
        "DEFAULT_BRIDGE_NO_DNS",
        severity="error",
        confidence=0.95,
        hop=HopName.NAME_RESOLUTION,
        evidence=evidence,
        explanation=f"{owner.name} and {dest.name} are on the default bridge network, which has no "
        "embedded DNS: "
        f"container names resolve only on user-defined networks (compose's default network is one; "
        "`network_mode: bridge` is not)." + link,
        fix=Fix(
            "Put both containers on a user-defined network and use the name there",
            [
                f"docker network create {network}",
                f"docker network connect {network} {owner.name}",
                f"docker network connect {network} {dest.name}",
            ],
        ),
    )


def _link_aliases(linking: Container, linked: Container) -> list[str]:
    """The aliases ``linking`` gave ``linked`` with --link (HostConfig.Links holds
    "/LINKED:/LINKING/ALIAS")."""
    aliases = []
    for entry in linking.links:
        target, _, alias = entry.partition(":")
        if target.lstrip("/") == linked.name:
            aliases.append(alias.rsplit("/", 1)[-1] or linked.name)
    return aliases


def no_shared_network(ctx: RuleContext) -> Iterator[Finding]:
    owner = ctx.sender
    place = ctx.path.destination
    dest = place.container
    if place.kind != "container" or dest is None or owner.uses_host_network:
        return
    isolated = owner.network_mode == "none"
    if not isolated and not ctx.broken(HopName.NETWORK):
        return
    if ctx.facts.shared_networks(owner, dest) and place.attachment is None:
        return
    networks = _user_networks(dest, ctx.facts)
    if networks:
        net = networks[0].name
        summary = f"Connect {owner.name} to {net}, a network {dest.name} is on"
        commands = [f"docker network connect {net} {owner.name}"]
    else:  # the default bridge has no names: meet on a new user-defined network
        net = f"{dest.name}-net"
        summary = f"Put {owner.name} and {dest.name} on one user-defined network"
        commands = [
            f"docker network create {net}",
            f"docker network connect {net} {dest.name}",
            f"docker network connect {net} {owner.name}",
        ]
    if owner.compose_service:
        external = (
            "  # external: true when it belongs to another project"
            if dest.compose_project != owner.compose_project
            else ""
        )
        commands.append(
            f'# compose, service "{owner.compose_service}": networks: [{net}]{external}'
        )
    yield finding(
        "NO_SHARED_NETWORK",
        severity="error",
        confidence=0.95,
        hop=HopName.SOURCE if isolated else HopName.NETWORK,
        explanation=(
            f"{owner.name} runs with --network none: it has only its own loopback."
            if isolated
            else f"{owner.name} and {dest.name} share no network: each bridge network is isolated "
            "from the "
            f"others, so neither the name nor the address of {dest.name} is reachable from "
            f"{owner.name}."
        ),
        evidence=[
            Evidence(f"{owner.name} networks", [a.network for a in owner.attachments], ENGINE_API),
            Evidence(f"{dest.name} networks", [a.network for a in dest.attachments], ENGINE_API),
        ],
        fix=Fix(summary, commands),
    )


def host_port_used_inside(ctx: RuleContext) -> Iterator[Finding]:
    t, owner = ctx.target, ctx.sender
    place = ctx.path.destination
    port = t.port
    if port is None or place.kind not in ("self", "container"):
        return
    listener = owner if place.kind == "self" else place.container
    if listener is None or listener.listeners is None or listener.listeners_on(port, t.protocol):
        return
    publishers = [c for c in ctx.facts.containers if c.running and c.publishing(port, t.protocol)]
    if place.kind == "container":
        publishers = [c for c in publishers if c is listener]
    if not publishers:
        return
    dest = publishers[0]
    mapping, binding = dest.publishing(port, t.protocol)[0]
    used = _with_port(ctx.asked_name, port)
    right = f"{dest.compose_service or dest.name}:{mapping.container_port}"
    commands = [f"# in {owner.name}'s configuration: {right}"]
    if not ctx.facts.shared_networks(owner, dest) and (networks := _user_networks(dest, ctx.facts)):
        commands.append(f"docker network connect {networks[0].name} {owner.name}")
    yield finding(
        "HOST_PORT_USED_INSIDE",
        severity="error",
        confidence=0.95,
        hop=HopName.CONTAINER_LISTENER,
        explanation=f"{used} is the host side of {dest.name}'s published port ({binding} → "
        f"{mapping.container_port}). "
        + (
            "Inside a container, localhost is the container itself, not the host. "
            if place.kind == "self"
            else ""
        )
        + f"Between containers, use the name and the container port: {right}.",
        evidence=[
            Evidence(
                "published", f"{binding} -> {mapping.container_port}/{mapping.protocol}", ENGINE_API
            ),
            Evidence(
                f"{listener.name} listeners on {port}", [], "/proc/<pid>/net of the container"
            ),
        ],
        fix=Fix(f"Connect to {right} instead of {used}", commands),
    )


def icc_disabled(ctx: RuleContext) -> Iterator[Finding]:
    owner = ctx.sender
    dest = ctx.path.destination.container
    if dest is None or not ctx.broken(HopName.BRIDGE):
        return
    closed = [
        n for n in ctx.facts.shared_networks(owner, dest) if n.driver == "bridge" and not n.icc
    ]
    if not closed:
        return
    net = closed[0]
    yield finding(
        "ICC_DISABLED",
        severity="error",
        confidence=0.95,
        hop=HopName.BRIDGE,
        explanation=f"{net.name} is created with enable_icc=false: the engine drops traffic "
        "between its containers; "
        "only published ports (through the host) reach them.",
        evidence=[
            Evidence(
                f"network {net.name} Options",
                {
                    "com.docker.network.bridge.enable_icc": net.options.get(
                        "com.docker.network.bridge.enable_icc"
                    )
                },
                ENGINE_API,
            )
        ],
        fix=Fix(
            f"Put {owner.name} and {dest.name} on a network that allows inter-container traffic",
            [
                f"docker network create {net.name}-icc",
                f"docker network connect {net.name}-icc {owner.name}",
                f"docker network connect {net.name}-icc {dest.name}",
            ],
        ),
    )


def internal_network_egress(ctx: RuleContext) -> Iterator[Finding]:
    owner = ctx.sender
    if ctx.path.destination.kind != "external" or not ctx.broken(HopName.EGRESS):
        return
    networks = [ctx.facts.network(a.network_id) for a in owner.attachments]
    if not networks or not all(n is not None and n.internal for n in networks):
        return
    names = [n.name for n in networks if n]
    yield finding(
        "INTERNAL_NETWORK",
        severity="error",
        confidence=0.95,
        hop=HopName.EGRESS,
        explanation=f"{owner.name} is only on internal network(s) {', '.join(names)}: they have no "
        "route out of "
        "the host, by design.",
        evidence=[Evidence(f"network {n} Internal", True, ENGINE_API) for n in names],
        fix=Fix(
            f"Attach {owner.name} to a non-internal network as well, if it must reach the outside",
            [
                f"docker network create {owner.name}-egress",
                f"docker network connect {owner.name}-egress {owner.name}",
            ],
        ),
    )


def dns_resolver_unreachable(ctx: RuleContext) -> Iterator[Finding]:
    owner, name = ctx.sender, ctx.asked_name
    r = ctx.target.resolution
    if r is None or r.via not in ("none", "resolver") or ctx.facts.known_to_engine(name.lower()):
        return
    answer = ctx.seen.answer if ctx.seen and _resolver_failed(ctx) else None
    if explains_resolver_failure(ctx):
        return  # the engine's fallback, an empty host file or stale resolvers: said there
    if answer or owner.loopback_resolvers_unserved:
        yield _unreachable_resolver(owner, ctx.facts, answer)


def loopback_resolvers(ctx: RuleContext) -> Iterator[Finding]:
    """In a checkup: every running container whose only resolvers are its own loopback."""
    t = ctx.target
    if t.kind == "host":
        containers = [c for c in ctx.facts.containers if c.running]
    elif t.kind == "container" and t.port is None and t.container:
        containers = [t.container]
    else:
        return
    for c in containers:
        if c.loopback_resolvers_unserved:
            yield _unreachable_resolver(c, ctx.facts, None)


def _unreachable_resolver(c: Container, facts: Facts, answer: DnsAnswer | None) -> Finding:
    servers = list(c.resolv_conf.nameservers) if c.resolv_conf else []
    host = facts.resolv_conf.nameservers if facts.resolv_conf else ()
    reachable = [s for s in host if not is_loopback(s)]
    evidence = [
        Evidence(f"{c.name} resolv.conf nameservers", servers, FILES),
        Evidence(f"{c.name} HostConfig.Dns", list(c.dns), ENGINE_API),
        Evidence(
            "host resolv.conf nameservers",
            list(host) if facts.resolv_conf else None,
            "/etc/resolv.conf",
        ),
    ]
    if answer:
        evidence.insert(
            0, Evidence("live DNS query", str(answer), "query from inside the container")
        )
    server = reachable[0] if reachable else "RESOLVER_IP"
    why = (
        "that is its own loopback, where no DNS server runs (a host-local resolver such as "
        "systemd-resolved's "
        "127.0.0.53, copied or set into the container)."
        if c.loopback_resolvers_unserved
        else "no answer comes back."
    )
    return finding(
        "DNS_RESOLVER_UNREACHABLE",
        severity="error",
        confidence=0.9 if answer else 0.85,
        hop=HopName.NAME_RESOLUTION,
        explanation=f"{c.name} asks {', '.join(servers) or 'nobody'} for names, and {why}",
        evidence=evidence,
        fix=Fix(
            "Give the container a resolver it can reach (or use a user-defined network, whose "
            "embedded DNS "
            "forwards from the host)",
            [
                f"docker run --dns {server} ...  # compose: dns: [{server}]",
                f'# or for every container, /etc/docker/daemon.json: {{"dns": ["{server}"]}}',
            ],
        ),
    )


def hop_limit_too_low(ctx: RuleContext) -> Iterator[Finding]:
    """The far end answers the host with TTL 1: forwarding the reply to the container kills it."""
    seen = ctx.seen
    reply = seen.host_reply if seen else None
    if seen is None or reply is None or reply.ttl is None or reply.ttl > 1:
        return
    if any(o.outcome in ("open", "answered") for o in seen.connections):
        return
    owner = ctx.sender
    yield finding(
        "HOP_LIMIT_TOO_LOW",
        severity="error",
        confidence=0.85,
        hop=HopName.RETURN_PATH,
        affects=("container",),
        explanation=f"{reply.where} answers this host with TTL {reply.ttl}: the reply reaches the "
        f"host, and forwarding it into {owner.name}'s bridge takes its last hop, so {owner.name} "
        "never gets it: the service answers even the handshake with a hop limit of 1.",
        evidence=[
            Evidence("the answer to this host", str(reply), "a SYN sent from this host"),
            Evidence(
                f"{owner.name}'s attempt",
                [str(o) for o in seen.connections],
                "a connect from inside the container",
            ),
        ],
        fix=Fix(
            "Let the reply live one hop longer, or make this call from the host's network",
            [
                f"# on {reply.where}: "
                "sysctl -w net.ipv4.ip_default_ttl=64 (or the service's own hop-limit setting)",
                f"docker run --network host ...  # {owner.name}'s call on the host's own stack",
            ],
        ),
    )


def localhost_in_container(ctx: RuleContext) -> Iterator[Finding]:
    """--from web localhost:5432 while the service is another container's: localhost is web."""
    t, owner, facts = ctx.target, ctx.sender, ctx.facts
    if t.port is None or not t.addresses or not all(is_loopback(a) for a in t.addresses):
        return
    if not ctx.broken(HopName.CONTAINER_LISTENER):
        return

    def reachable(listeners: list[Listener] | None) -> bool:  # not on its own loopback only
        return any(not listener.loopback_only for listener in listeners or ())

    servers = [
        c
        for c in facts.containers
        if c.running and c.id != owner.id and reachable(c.listeners_on(t.port, t.protocol))
    ]
    on_host = reachable(facts.host_listeners_on(t.port, t.protocol))
    if not servers and not on_host:
        return
    shared = [c for c in servers if _shared_name(owner, c, facts)]
    if shared:
        server = shared[0]
        name = _shared_name(owner, server, facts)
        where = f"{server.name} listens on {t.protocol} {t.port}; {owner.name} reaches it as {name}"
        commands = [f"# in {owner.name}'s configuration: {name}:{t.port}, not localhost:{t.port}"]
    elif servers:
        server, name = servers[0], servers[0].compose_service or servers[0].name
        where = f"{server.name} listens on {t.protocol} {t.port}, on no network {owner.name} shares"
        commands = [
            f"docker network create {owner.name}-{server.name}",
            f"docker network connect {owner.name}-{server.name} {owner.name}",
            f"docker network connect {owner.name}-{server.name} {server.name}",
            f"# then in {owner.name}'s configuration: {name}:{t.port}",
        ]
    else:
        name = "host.docker.internal"
        where = f"a process of this host listens on {t.protocol} {t.port}"
        commands = [
            f"docker run --add-host host.docker.internal:host-gateway ...  # then {name}:{t.port}",
            '# compose: extra_hosts: ["host.docker.internal:host-gateway"]',
        ]
    yield finding(
        "LOCALHOST_IN_CONTAINER",
        severity="error",
        confidence=0.9,
        hop=HopName.CONTAINER_LISTENER,
        affects=CLIENT,
        explanation=f"Inside {owner.name}, localhost is {owner.name} itself, and nothing in it "
        f"listens on {t.protocol} {t.port}: {where}.",
        evidence=[
            Evidence(
                f"{owner.name} listeners",
                [str(listener) for listener in owner.listeners or ()],
                NETNS,
            ),
            Evidence(
                f"listening on {t.protocol} {t.port}",
                [c.name for c in servers] + (["this host"] if on_host else []),
                f"{NETNS}s, {SOCKETS}",
            ),
        ],
        fix=Fix(f"Connect to {name}:{t.port}, not localhost", commands),
    )


def _shared_name(a: Container, b: Container, facts: Facts) -> str | None:
    """The name ``a`` reaches ``b`` by on a user-defined network they share (the compose
    service name first), or None."""
    return (b.compose_service or b.name) if _shares_user_network(a, b, facts) else None


def host_gateway_missing(ctx: RuleContext) -> Iterator[Finding]:
    owner, name = ctx.sender, ctx.asked_name
    if name.lower() not in HOST_GATEWAY_NAMES or not ctx.broken(HopName.NAME_RESOLUTION):
        return
    yield finding(
        "HOST_GATEWAY_MISSING",
        severity="error",
        confidence=0.95,
        hop=HopName.NAME_RESOLUTION,
        explanation=f"On Linux, {name} exists only when the container is started with "
        f"--add-host {name}:host-gateway (Docker Desktop adds it by itself).",
        evidence=[
            Evidence(f"{owner.name} HostConfig.ExtraHosts", list(owner.extra_hosts), ENGINE_API),
            Evidence(f"{owner.name} etc/hosts has {name}", False, FILES),
        ],
        fix=Fix(
            f"Start {owner.name} with the host-gateway entry",
            [
                f"docker run --add-host {name}:host-gateway ...",
                f'# compose, service "{owner.compose_service or owner.name}": '
                f'extra_hosts: ["{name}:host-gateway"]',
            ],
        ),
    )


def host_service_bound_to_loopback(ctx: RuleContext) -> Iterator[Finding]:
    port = ctx.target.port
    if ctx.path.destination.kind != "host" or not ctx.broken(HopName.HOST_LISTENER) or not port:
        return
    listeners = ctx.facts.host_listeners_on(port, ctx.target.protocol) or []
    if not listeners or not all(is_loopback(listener.address) for listener in listeners):
        return
    address = ctx.target.addresses[0]
    yield finding(
        "HOST_SERVICE_BOUND_TO_LOOPBACK",
        severity="error",
        confidence=0.9,
        hop=HopName.HOST_LISTENER,
        explanation=f"The host service on port {port} listens on loopback only; from "
        f"{ctx.sender.name} the host is {address}, a different address, so the connection is "
        "refused.",
        evidence=[
            Evidence(
                f"host listeners on {port}", [str(listener) for listener in listeners], SOCKETS
            ),
            Evidence(f"{ctx.sender.name} dials", f"{address}:{port}", "the target"),
        ],
        fix=Fix(
            f"Make the host service listen on 0.0.0.0 or on {address}",
            [f"# e.g. --bind 0.0.0.0:{port}, or listen {address}:{port} in its configuration"],
        ),
    )


RULES = [
    Rule("name-not-found", ("NAME_NOT_FOUND",), name_not_found, CLIENT),
    Rule("default-bridge-no-dns", ("DEFAULT_BRIDGE_NO_DNS",), default_bridge_no_dns, CLIENT),
    Rule("no-shared-network", ("NO_SHARED_NETWORK",), no_shared_network, CLIENT),
    Rule("host-port-used-inside", ("HOST_PORT_USED_INSIDE",), host_port_used_inside, CLIENT),
    Rule("icc-disabled", ("ICC_DISABLED",), icc_disabled, CLIENT),
    Rule("internal-network-egress", ("INTERNAL_NETWORK",), internal_network_egress, CLIENT),
    Rule(
        "dns-resolver-unreachable", ("DNS_RESOLVER_UNREACHABLE",), dns_resolver_unreachable, CLIENT
    ),
    Rule("loopback-resolvers", ("DNS_RESOLVER_UNREACHABLE",), loopback_resolvers, ("host",)),
    Rule("host-gateway-missing", ("HOST_GATEWAY_MISSING",), host_gateway_missing, CLIENT),
    Rule("localhost-in-container", ("LOCALHOST_IN_CONTAINER",), localhost_in_container, CLIENT),
    Rule(
        "host-service-bound-to-loopback",
        ("HOST_SERVICE_BOUND_TO_LOOPBACK",),
        host_service_bound_to_loopback,
        CLIENT,
    ),
    Rule("hop-limit-too-low", ("HOP_LIMIT_TOO_LOW",), hop_limit_too_low, CLIENT),
]
