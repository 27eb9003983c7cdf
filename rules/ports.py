"""Rules for the way into a published port: who listens, who publishes, on what."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

from doctor.rules.fixes import port_spec, republish

from doctor.facts.model import Container, Facts, Protocol, is_wildcard
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

NETNS = "/proc/<pid>/net of the container"
SOCKETS = "host sockets"
CONFLICT = re.compile(r"address already in use|port is already allocated", re.I)


def _other(protocol: Protocol) -> Protocol:
    return "udp" if protocol == "tcp" else "tcp"


def _published_summary(facts: Facts) -> list[str]:
    return sorted(
        {
            f"{c.name}: {port_spec(b.host_port, m.container_port, m.protocol, b.host_ip)}"
            for c in facts.containers
            for m in c.published
            for b in m.bindings
        }
    )


def _listening(container: Container) -> list[str]:
    return [str(listener) for listener in container.listeners or ()]


def nothing_on_port(ctx: RuleContext) -> Iterator[Finding]:
    t, facts = ctx.target, ctx.facts
    if t.kind != "port" or ctx.path.route.container or facts.host_listeners is None:
        return
    port = t.port or 0
    related = [
        c
        for c in facts.containers
        if c.publishing(port) or c.configured_on(port) or _serves(c, port, None)
    ]
    if related or facts.host_listeners_on(port, t.protocol):
        return  # a more specific rule explains it, or it is not a Docker port
    published = _published_summary(facts)
    yield finding(
        "NOTHING_ON_PORT",
        severity="error",
        confidence=0.9,
        hop=HopName.HOST_LISTENER,
        explanation=f"Nothing on this host listens on {t.protocol} {port}, and no container, "
        "running or "
        "stopped, publishes it or asks for it.",
        evidence=[
            Evidence(f"host sockets on {t.protocol} {port}", [], SOCKETS),
            Evidence(f"containers publishing {port}", [], ENGINE_API),
            Evidence("ports published on this host", published, ENGINE_API),
        ],
        fix=Fix(
            f"Start the service and publish it on {port}"
            + (f"; or use one of the ports published here ({len(published)})" if published else ""),
            [
                "docker ps -a --format 'table {{.Names}}\\t{{.Status}}\\t{{.Ports}}'",
                f"docker run -d -p {port_spec(port, port, t.protocol)} IMAGE",
            ],
        ),
    )


def _serves(container: Container, port: int, protocol: Protocol | None) -> bool:
    """Whether a container (not on the host network) listens on or EXPOSEs ``port``."""
    if container.uses_host_network:
        return False
    exposed = any(p == port and protocol in (None, proto) for p, proto in container.exposed)
    return exposed or bool(container.running and container.listeners_on(port, protocol))


def port_not_published(ctx: RuleContext) -> Iterator[Finding]:
    t, facts = ctx.target, ctx.facts
    if t.kind != "port" or ctx.path.route.container:
        return
    port = t.port or 0
    for c in facts.containers:
        if not _serves(c, port, t.protocol) or c.publishing(port) or c.configured_on(port):
            continue
        listening = c.listeners_on(port, t.protocol)
        elsewhere = [
            b
            for m in c.published
            if m.container_port == port and m.protocol == t.protocol
            for b in m.bindings
        ]
        evidence = [
            Evidence(f"{c.name} listeners", _listening(c), NETNS)
            if listening
            else Evidence(
                f"{c.name} Config.ExposedPorts",
                [f"{p}/{proto}" for p, proto in c.exposed],
                ENGINE_API,
            ),
            Evidence(
                f"{c.name} HostConfig.PortBindings",
                [
                    f"{port_spec(b.host_port, m.container_port, m.protocol, b.host_ip)}"
                    for m in c.configured
                    for b in m.bindings
                ],
                ENGINE_API,
            ),
        ]
        spec = port_spec(port, port, t.protocol)
        explanation = (
            f"{c.name} serves {t.protocol} {port} inside its network namespace, but no -p maps a "
            f"host port to it, so nothing on the host forwards {port}."
            if listening
            else f"{c.name}'s image EXPOSEs {port}/{t.protocol}, which only documents the port: "
            "nothing publishes it."
        )
        if elsewhere:
            explanation += f" It is published on host port {elsewhere[0].host_port} instead."
        commands = (
            [f"curl http://localhost:{elsewhere[0].host_port}/  # the port it is published on"]
            if elsewhere
            else []
        ) + republish(c, spec)
        yield finding(
            "PORT_NOT_PUBLISHED",
            severity="error",
            confidence=0.9 if listening else 0.6,
            hop=HopName.HOST_LISTENER,
            explanation=explanation,
            evidence=evidence,
            fix=Fix(f"Publish {c.name}'s port {port}: -p {spec}", commands),
        )


def published_port_mismatch(ctx: RuleContext) -> Iterator[Finding]:
    route, t = ctx.path.route, ctx.target
    c, port = route.container, route.container_port
    if c is None or port is None or not c.running or c.listeners is None or c.uses_host_network:
        return
    if c.listeners_on(port):  # any family, any protocol: other rules say what is wrong then
        return
    candidates = sorted(
        {
            listener.port
            for listener in c.listeners
            if listener.protocol == t.protocol and not listener.loopback_only
        }
    )
    published = route.mapping is not None and bool(route.mapping.bindings)
    evidence = [Evidence(f"{c.name} listeners", _listening(c), NETNS)]
    if published and route.binding:
        evidence.insert(
            0, Evidence("published", f"{route.binding} -> {port}/{t.protocol}", ENGINE_API)
        )
        host_port = route.binding.host_port
        if len(candidates) == 1:
            spec = port_spec(host_port, candidates[0], t.protocol, route.binding.host_ip)
            fix = Fix(f"Publish the port {c.name} listens on: -p {spec}", republish(c, spec))
        else:
            fix = Fix(
                f"Publish the port {c.name}'s application listens on (-p {host_port}:PORT), "
                f"or make it listen on {port}",
                [f"docker logs --tail 20 {c.name}"],
            )
        yield finding(
            "PUBLISHED_PORT_MISMATCH",
            severity="error",
            confidence=0.9 if c.listeners else 0.75,
            hop=HopName.CONTAINER_LISTENER,
            evidence=evidence,
            fix=fix,
            explanation=f"{route.binding} forwards to port {port} of {c.name}, where nothing "
            "listens"
            + (
                f"; it listens on {', '.join(map(str, candidates))}."
                if candidates
                else "; it listens on nothing at all (not started yet, or crashed inside)."
            ),
        )
    elif t.kind == "container":
        yield finding(
            "NOTHING_ON_PORT",
            severity="error",
            confidence=0.85,
            hop=HopName.CONTAINER_LISTENER,
            evidence=evidence,
            explanation=f"Nothing in {c.name} listens on {t.protocol} {port}.",
            fix=Fix(
                f"Start the service in {c.name} on port {port}, or use the port it listens on",
                [f"docker logs --tail 20 {c.name}"],
            ),
        )


def app_bound_to_loopback(ctx: RuleContext) -> Iterator[Finding]:
    route, t = ctx.path.route, ctx.target
    c, port = route.container, route.container_port
    if c is None or port is None or not c.running or c.listeners is None:
        return
    listening = c.listeners_on(port, t.protocol)
    if not listening or not all(listener.loopback_only for listener in listening):
        return
    yield finding(
        "APP_BOUND_TO_LOOPBACK",
        severity="error",
        confidence=0.95,
        hop=HopName.CONTAINER_LISTENER,
        explanation=f"The application in {c.name} listens on {', '.join(map(str, listening))}: the "
        "container's own "
        "loopback. Forwarded traffic arrives on the container's network address and finds no "
        "listener, "
        "so docker-proxy accepts the connection and then closes it (curl: empty reply / reset).",
        evidence=[
            Evidence(
                f"{c.name} listeners on {port}/{t.protocol}",
                [str(listener) for listener in listening],
                NETNS,
            )
        ],
        fix=Fix(
            f"Make the application in {c.name} listen on 0.0.0.0:{port} (or [::]:{port}), not "
            "127.0.0.1",
            [
                f"# e.g. --host 0.0.0.0 / --bind 0.0.0.0:{port} / listen 0.0.0.0:{port}; then",
                f"docker restart {c.name}",
            ],
        ),
    )


def protocol_mismatch(ctx: RuleContext) -> Iterator[Finding]:
    route, t, facts = ctx.path.route, ctx.target, ctx.facts
    other = _other(t.protocol)
    if t.kind == "port" and route.container is None:
        for c in facts.containers:
            for mapping, binding in c.publishing(t.port or 0, other):
                spec = port_spec(
                    binding.host_port, mapping.container_port, t.protocol, binding.host_ip
                )
                yield finding(
                    "PROTOCOL_MISMATCH",
                    severity="error",
                    confidence=0.85,
                    hop=HopName.HOST_LISTENER,
                    explanation=f"{c.name} publishes {t.port} as {other}, but this is a "
                    f"{t.protocol} request.",
                    evidence=[
                        Evidence(
                            "published",
                            f"{binding} -> {mapping.container_port}/{other}",
                            ENGINE_API,
                        ),
                        Evidence("target protocol", t.protocol, "command line"),
                    ],
                    fix=Fix(
                        f"Publish it as {t.protocol} (-p {spec}), or connect with {other}",
                        republish(c, spec),
                    ),
                )
                return
    backend, port = route.container, route.container_port
    if backend is None or port is None or not backend.running or backend.listeners is None:
        return
    if backend.listeners_on(port, t.protocol) or not backend.listeners_on(port, other):
        return
    bound = route.binding
    spec = port_spec(
        bound.host_port if bound else port, port, other, bound.host_ip if bound else ""
    )
    yield finding(
        "PROTOCOL_MISMATCH",
        severity="error",
        confidence=0.9,
        hop=HopName.CONTAINER_LISTENER,
        explanation=f"{backend.name} listens on {other} {port}, but the port is published (and was asked "
        "for) as "
        f"{t.protocol}; -p publishes tcp unless told otherwise.",
        evidence=[
            Evidence(
                f"{backend.name} listeners on {port}",
                [str(listener) for listener in backend.listeners_on(port)],
                NETNS,
            ),
            Evidence("published", f"{bound} -> {port}/{t.protocol}" if bound else None, ENGINE_API),
        ],
        fix=Fix(f"Publish it as {other}: -p {spec}", republish(backend, spec)),
    )


def host_binding_restricted(ctx: RuleContext) -> Iterator[Finding]:
    route, t = ctx.path.route, ctx.target
    c = route.container
    if t.kind != "port" or c is None or not route.live or route.binding is None:
        return
    if any(route.binding.accepts(a) for a in t.addresses) or _v6_loopback_only(ctx):
        return
    bindings = [str(b) for m in c.published for b in m.bindings if b.host_port == t.port]
    spec = port_spec(route.binding.host_port, route.container_port or 0, t.protocol)
    yield finding(
        "HOST_BINDING_RESTRICTED",
        severity="error",
        confidence=0.95,
        hop=HopName.HOST_LISTENER,
        affects=("external",)
        if all(b.startswith(("127.", "[::1]")) for b in bindings)
        else ("host", "external"),
        explanation=f"{c.name} publishes {t.port} only on {', '.join(bindings)}; "
        f"a client connecting to {', '.join(t.addresses)} is refused.",
        evidence=[
            Evidence(f"{c.name} bindings of {t.port}", bindings, ENGINE_API),
            Evidence("address connected to", list(t.addresses), "target"),
        ],
        fix=Fix(
            f"Publish on all interfaces (-p {spec}) or on the address clients use",
            republish(c, spec),
        ),
    )


def _v6_loopback_only(ctx: RuleContext) -> list[str]:
    """The bindings that take 127.0.0.1, when the target reaches for ::1 and nothing takes that."""
    route, t = ctx.path.route, ctx.target
    c = route.container
    if t.kind != "port" or c is None or not route.live or "::1" not in t.addresses:
        return []
    bindings = [
        b
        for m in c.published
        if m.protocol == t.protocol
        for b in m.bindings
        if b.host_port == t.port
    ]
    if any(b.accepts("::1") for b in bindings):
        return []
    return [str(b) for b in bindings if b.accepts("127.0.0.1")]


def ipv6_localhost_mismatch(ctx: RuleContext) -> Iterator[Finding]:
    v4 = _v6_loopback_only(ctx)
    if not v4:
        return
    t, c = ctx.target, ctx.path.route.container
    assert c is not None
    hosts = (ctx.facts.hosts_file or {}).get("localhost")
    yield finding(
        "IPV6_LOCALHOST_MISMATCH",
        severity="error",
        confidence=0.9,
        hop=HopName.HOST_LISTENER,
        explanation=f"The client connects to ::1 (IPv6 loopback), but {c.name}'s port {t.port} is "
        "published for IPv4 "
        f"only ({', '.join(v4)}). 127.0.0.1:{t.port} works; clients that resolve localhost to ::1 "
        "first, "
        "and do not fall back, fail.",
        evidence=[
            Evidence(f"{c.name} bindings of {t.port}", v4, ENGINE_API),
            Evidence("address connected to", list(t.addresses), "target"),
            Evidence("localhost in /etc/hosts", list(hosts) if hosts else None, "/etc/hosts"),
        ],
        fix=Fix(
            f"Connect to 127.0.0.1:{t.port}, or publish for IPv6 too",
            [
                f"curl http://127.0.0.1:{t.port}/",
                *republish(c, f"[::1]:{t.port}:{ctx.path.route.container_port}"),
            ],
        ),
    )


def port_conflict(ctx: RuleContext) -> Iterator[Finding]:
    t, facts = ctx.target, ctx.facts
    for c in _port_claimants(ctx):
        binding_port = _claimed_port(ctx, c)
        for mapping, binding in c.configured_on(binding_port, t.protocol)[:1]:
            holders = [
                listener
                for listener in facts.host_listeners_on(binding_port, mapping.protocol) or ()
                if listener.process != "docker-proxy"
            ]
            others = [
                o
                for o in facts.containers
                if o is not c and o.publishing(binding_port, mapping.protocol)
            ]
            if not (CONFLICT.search(c.error) or holders or others):
                continue
            evidence = [
                Evidence(f"{c.name} State", {"Status": c.status, "Error": c.error}, ENGINE_API)
            ]
            if others:
                held_by = f"container {others[0].name}"
                stop = f"docker stop {others[0].name}"
                evidence.append(
                    Evidence(
                        f"containers publishing {binding_port}",
                        [o.name for o in others],
                        ENGINE_API,
                    )
                )
            elif holders:
                held_by = holders[0].holder
                stop = (
                    f"kill {holders[0].pid}"
                    if holders[0].pid
                    else f"sudo ss -ltnp 'sport = :{binding_port}'"
                )
                evidence.append(
                    Evidence(
                        f"host sockets on {mapping.protocol} {binding_port}",
                        [
                            {
                                "socket": str(listener),
                                "pid": listener.pid,
                                "process": listener.process,
                            }
                            for listener in holders
                        ],
                        SOCKETS,
                    )
                )
            else:
                held_by = "another process"
                stop = f"sudo ss -lntup 'sport = :{binding_port}'"
            spec = port_spec(
                binding_port + 1, mapping.container_port, mapping.protocol, binding.host_ip
            )
            yield finding(
                "PORT_CONFLICT",
                severity="error",
                confidence=0.95 if CONFLICT.search(c.error) else 0.75,
                hop=HopName.HOST_LISTENER,
                evidence=evidence,
                explanation=f"{c.name} asks for host port {binding_port}/{mapping.protocol}, which "
                f"{held_by} "
                f"already holds, so the engine could not start it ({c.error or c.status}).",
                fix=Fix(
                    f"Free port {binding_port} ({held_by}) and start {c.name}, or publish it on "
                    "another port",
                    [f"{stop} && docker start {c.name}", *republish(c, spec)],
                ),
            )


def _port_claimants(ctx: RuleContext) -> list[Container]:
    if ctx.target.kind == "container":
        c = ctx.target.container
        return [c] if c and not c.running else []
    return [
        c for c in ctx.facts.containers if not c.running and c.configured_on(ctx.target.port or 0)
    ]


def _claimed_port(ctx: RuleContext, c: Container) -> int:
    if ctx.target.kind == "port":
        return ctx.target.port or 0
    return next((b.host_port for m in c.configured for b in m.bindings), 0)


BIND_FAILED = "cannot assign requested address"  # the kernel's EADDRNOTAVAIL, in State.Error


def bind_address_not_on_host(ctx: RuleContext) -> Iterator[Finding]:
    """-p ADDRESS:PORT:PORT names an address no interface has: the engine cannot bind it, so
    the container never started."""
    host = ctx.facts.host
    if host is None:
        return
    for c in _port_claimants(ctx):
        missing = [
            (m, b)
            for m in c.configured
            for b in m.bindings
            if b.host_ip
            and not is_wildcard(b.host_ip)
            and b.host_ip not in host.addresses
            and (ctx.target.kind != "port" or b.host_port == ctx.target.port)
        ]
        if not missing:
            continue
        mapping, binding = missing[0]
        everywhere = port_spec(binding.host_port, mapping.container_port, mapping.protocol)
        # The engine's own error names the cause; without it (the address left after the
        # container stopped) the missing address is the likely reason, not a certain one.
        said = BIND_FAILED in (c.error or "").lower()
        yield finding(
            "BIND_ADDRESS_NOT_ON_HOST",
            severity="error",
            confidence=0.97 if said else 0.75,
            hop=HopName.HOST_LISTENER,
            explanation=f"{c.name} asks to publish on {binding}, but no interface of this host "
            f"has {binding.host_ip}: the engine cannot bind it, "
            + (
                f'so {c.name} never started ("{BIND_FAILED}").'
                if said
                else f"so {c.name} cannot start while the address is missing."
            ),
            evidence=[
                Evidence(f"{c.name} HostConfig.PortBindings", str(binding), ENGINE_API),
                Evidence("this host's addresses", list(host.addresses), "interface addresses"),
                Evidence(f"{c.name} State", {"Status": c.status, "Error": c.error}, ENGINE_API),
            ],
            fix=Fix(
                f"Publish on an address this host has (or on all of them), then start {c.name}",
                [
                    *republish(c, everywhere),
                    "# or, for an address a failover daemon moves here (keepalived): "
                    "sysctl -w net.ipv4.ip_nonlocal_bind=1",
                ],
            ),
        )
        return


def host_network_publish_ignored(ctx: RuleContext) -> Iterator[Finding]:
    t, facts = ctx.target, ctx.facts
    if t.kind == "container":
        candidates = [t.container] if t.container and t.container.uses_host_network else []
    else:
        candidates = [
            c for c in facts.containers if c.uses_host_network and c.configured_on(t.port or 0)
        ]
    for c in candidates:
        if c is None or not c.configured:
            continue
        asked = [
            port_spec(b.host_port, m.container_port, m.protocol, b.host_ip)
            for m in c.configured
            for b in m.bindings
        ]
        first = c.configured[0]
        host_port = first.bindings[0].host_port if first.bindings else first.container_port
        yield finding(
            "HOST_NETWORK_PUBLISH_IGNORED",
            severity="error",
            confidence=0.9,
            hop=HopName.HOST_LISTENER,
            explanation=f"{c.name} runs with --network host, so it shares the host's ports and its "
            "-p "
            f"{', '.join(asked)} is ignored: only what the application itself listens on is "
            "reachable.",
            evidence=[
                Evidence(f"{c.name} HostConfig.NetworkMode", c.network_mode, ENGINE_API),
                Evidence(f"{c.name} HostConfig.PortBindings", asked, ENGINE_API),
            ],
            fix=Fix(
                f"Make the application in {c.name} listen on port {host_port} itself, "
                "or run it on a bridge network with -p",
                [
                    f"docker rm -f {c.name}",
                    f"docker run -d --name {c.name} -p {asked[0]} {c.image} "
                    f"{shlex.join(c.command)}".rstrip()
                    + "  # without --network host",
                ],
            ),
        )


# Rules about reaching a published port; --from CONTAINER traffic does not use one.
HOST_SIDE = ("host", "external")

RULES = [
    Rule("nothing-on-port", ("NOTHING_ON_PORT",), nothing_on_port, HOST_SIDE),
    Rule("port-not-published", ("PORT_NOT_PUBLISHED",), port_not_published, HOST_SIDE),
    Rule(
        "published-port-mismatch",
        ("PUBLISHED_PORT_MISMATCH", "NOTHING_ON_PORT"),
        published_port_mismatch,
    ),
    Rule("app-bound-to-loopback", ("APP_BOUND_TO_LOOPBACK",), app_bound_to_loopback),
    Rule("protocol-mismatch", ("PROTOCOL_MISMATCH",), protocol_mismatch, HOST_SIDE),
    Rule(
        "host-binding-restricted", ("HOST_BINDING_RESTRICTED",), host_binding_restricted, HOST_SIDE
    ),
    Rule(
        "ipv6-localhost-mismatch", ("IPV6_LOCALHOST_MISMATCH",), ipv6_localhost_mismatch, HOST_SIDE
    ),
    Rule("port-conflict", ("PORT_CONFLICT",), port_conflict, HOST_SIDE),
    Rule(
        "bind-address-not-on-host",
        ("BIND_ADDRESS_NOT_ON_HOST",),
        bind_address_not_on_host,
        HOST_SIDE,
    ),
    Rule(
        "host-network-publish-ignored",
        ("HOST_NETWORK_PUBLISH_IGNORED",),
        host_network_publish_ignored,
        HOST_SIDE,
    ),
]
