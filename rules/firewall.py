"""Rules about the kernel's path: forwarding, the firewall, the engine's own rules."""

from __future__ import annotations

from collections.abc import Iterator

from doctor.facts.model import IP_FORWARD
from doctor.plugin import (
    FILTERING_HOPS,
    Decision,
    Evidence,
    Finding,
    Fix,
    HopName,
    IptablesRuleset,
    Rule,
    RuleContext,
    finding,
)

IPTABLES = "iptables-save"
SYSCTL = "/proc/sys/net/ipv4/ip_forward"
#: Chains the engine owns; a DROP there, or a chain policy, means its ACCEPT is missing.
DOCKER_CHAINS = (
    "DOCKER",
    "DOCKER-FORWARD",
    "DOCKER-CT",
    "DOCKER-BRIDGE",
    "DOCKER-INTERNAL",
    "DOCKER-ISOLATION-STAGE-1",
    "DOCKER-ISOLATION-STAGE-2",
)


def _blocking(ctx: RuleContext) -> tuple[str, Decision] | None:
    """The first firewall hop that drops or rejects, with its decision."""
    for hop in FILTERING_HOPS:
        decision = ctx.path.decisions.get(hop)
        if decision and decision.verdict in ("drop", "reject") and ctx.broken(hop):
            return hop, decision
    return None


def ip_forward_disabled(ctx: RuleContext) -> Iterator[Finding]:
    facts = ctx.facts
    if not facts.forwarding_disabled:
        return
    checkup = (
        ctx.target.kind == "host" and any(c.published for c in facts.containers if c.running)
    ) or (ctx.compose is not None and any(s.ports for s in ctx.compose.services))
    on_path = any(
        h.hop in (HopName.FILTER_FORWARD, HopName.EGRESS)
        and h.status == "broken"
        and IP_FORWARD in h.detail
        for h in ctx.path.hops
    )
    if not (checkup or on_path):
        return
    yield finding(
        "IP_FORWARD_DISABLED",
        severity="error",
        confidence=0.95,
        hop=HopName.EGRESS if ctx.target.source else HopName.FILTER_FORWARD,
        explanation="The kernel forwards nothing (net.ipv4.ip_forward = 0): clients on other "
        "machines cannot reach "
        "published ports, and containers cannot reach out. Connections from this host still work, "
        "which hides it. Often a sysctl.d file, hardening, or a network manager reset it after the "
        "engine "
        "started.",
        evidence=[Evidence(IP_FORWARD, "0", SYSCTL)],
        fix=Fix(
            "Turn forwarding back on, and keep it on",
            [
                "sysctl -w net.ipv4.ip_forward=1",
                "echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/99-docker-forward.conf",
                "grep -rn ip_forward /etc/sysctl.conf /etc/sysctl.d/  # what turned it off",
            ],
        ),
    )


def firewall_drop(ctx: RuleContext) -> Iterator[Finding]:
    blocked = _blocking(ctx)
    if blocked is None:
        return
    hop, decision = blocked
    if _engine_rule_missing(ctx, decision) or _direct_routing_drop(ctx, decision):
        return  # DOCKER_RULES_MISSING / DIRECT_ROUTING_BLOCKED say it better
    rule = decision.rule
    where = str(decision)
    port = ctx.target.port or ctx.path.route.container_port
    owner, summary, commands = _firewall_fix(decision, ctx, port)
    yield finding(
        "FIREWALL_DROP",
        severity="error",
        confidence=0.9,
        hop=hop,
        explanation=f"{owner} {decision.verdict}s the connection: {where}. The engine's own rules "
        "are in place; "
        "this rule comes first.",
        evidence=[Evidence("first rule that stops the packet", where, IPTABLES)]
        + (
            [Evidence("rule", f"-t {decision.table} -A {rule.chain} {rule.text}", IPTABLES)]
            if rule
            else []
        ),
        fix=Fix(summary, commands),
    )


def _firewall_fix(
    decision: Decision, ctx: RuleContext, port: int | None
) -> tuple[str, str, list[str]]:
    chain, table, tool = decision.chain, decision.table, decision.tool
    position = decision.rule.position if decision.rule else None
    if tool == "nft":
        return _nft_fix(decision, ctx)
    delete = [f"{tool} -t {table} -D {chain} {position}"] if position else []
    if chain.lower().startswith("ufw"):
        c = ctx.path.route.container
        target = f" to {c.ipv4} port {ctx.path.route.container_port}" if c and c.ipv4 else ""
        return (
            "ufw",
            "Allow it in ufw (published ports are forwarded, so it takes a route rule)",
            [
                f"ufw route allow proto {ctx.target.protocol} from any{target}",
                f"ufw allow {port}/{ctx.target.protocol}",
            ],
        )
    if (
        chain.startswith(("FORWARD_", "INPUT_", "IN_", "FWD_", "FWDI_", "FWDO_"))
        or "firewalld" in chain.lower()
    ):
        return (
            "firewalld",
            "Let firewalld pass Docker's traffic (the docker zone), or open the port",
            [
                "firewall-cmd --permanent --zone=docker --add-interface=docker0",
                f"firewall-cmd --permanent --add-port={port}/{ctx.target.protocol}",
                "firewall-cmd --reload",
            ],
        )
    if chain == "DOCKER-USER":
        return (
            "A rule in DOCKER-USER",
            "Change the DOCKER-USER rule; match published ports by their original port, since DNAT "
            "already "
            "rewrote the destination when FORWARD sees the packet",
            [
                *delete,
                f"iptables -I DOCKER-USER -p {ctx.target.protocol} -m conntrack --ctorigdstport "
                f"{port} "
                "-j ACCEPT  # or narrow the DROP with ! -m conntrack --ctorigdstport",
            ],
        )
    return (
        f"A rule in {table} {chain}",
        "Remove the rule, or accept this traffic before it",
        [
            *delete,
            f"iptables -t {table} -I {chain} -p {ctx.target.protocol} -m conntrack --ctorigdstport "
            f"{port} "
            "-j ACCEPT",
        ],
    )


def _nft_fix(decision: Decision, ctx: RuleContext) -> tuple[str, str, list[str]]:
    where = decision.table.removeprefix("nft ")  # "inet filter"
    c = ctx.path.route.container
    network = next(
        (n for n in ctx.facts.networks if c and c.ipv4 and n.contains(c.ipv4 or "")),
        None,
    )
    bridge = network.bridge if network and network.bridge else "docker0"
    if decision.rule is None:
        return (
            f"The nftables chain {where} {decision.chain} (policy drop)",
            f"Let Docker's traffic through {where} {decision.chain}: an accept in Docker's own "
            "tables does not "
            "count in another base chain on the same hook",
            [
                f'nft insert rule {where} {decision.chain} oifname "{bridge}" accept',
                f'nft insert rule {where} {decision.chain} iifname "{bridge}" accept',
            ],
        )
    handle = decision.rule.text.rpartition("# handle ")[2].strip()
    return (
        f"An nftables rule in {where} {decision.chain}",
        "Remove the rule, or accept Docker's traffic before it",
        [
            f"nft delete rule {where} {decision.chain} handle {handle}"
            if handle.isdigit()
            else f"nft -a list chain {where} {decision.chain}  # find the rule's handle, then "
            "delete it",
            f'nft insert rule {where} {decision.chain} oifname "{bridge}" accept',
        ],
    )


def _engine_rule_missing(ctx: RuleContext, decision: Decision) -> bool:
    """Dropped by the engine's catch-all or a chain policy, for a port the engine publishes."""
    route = ctx.path.route
    if route.container is None or not route.live or ctx.target.kind != "port":
        return False
    if decision.tool == "nft":  # Engine 29's nftables backend owns its table
        return decision.table.endswith(" docker-bridges")
    return decision.rule is None or decision.chain in DOCKER_CHAINS


def _direct_routing_drop(ctx: RuleContext, decision: Decision) -> bool:
    return ctx.target.kind == "container" and decision.table == "raw" and decision.rule is not None


def docker_rules_missing(ctx: RuleContext) -> Iterator[Finding]:
    route = ctx.path.route
    blocked = _blocking(ctx)
    nat_missing = ctx.broken(HopName.NAT_DNAT)
    if not nat_missing and not (blocked and _engine_rule_missing(ctx, blocked[1])):
        return
    c = route.container
    assert c is not None
    what = (
        f"the nat rule that sends port {ctx.target.port} to {c.ipv4}:{route.container_port}"
        if nat_missing
        else f"the filter rule that accepts forwarded traffic to {c.ipv4}:{route.container_port}"
    )
    evidence = [Evidence(f"{c.name} publishes", str(route.binding), "Engine API")]
    if blocked:
        evidence.append(Evidence("where the packet ends instead", str(blocked[1]), IPTABLES))
    yield finding(
        "DOCKER_RULES_MISSING",
        severity="error",
        confidence=0.85,
        hop=HopName.NAT_DNAT if nat_missing or blocked is None else blocked[0],
        explanation=f"{c.name}'s port is published, but {what} is gone. The engine programs these "
        "rules when a "
        "container starts; a firewall reload (firewalld, ufw, iptables-restore, a flush) removed "
        "them.",
        evidence=evidence,
        fix=Fix(
            "Restart the engine so it programs its rules again, and stop whatever flushes them",
            [
                "systemctl restart docker  # or: docker restart "
                + c.name
                + " (that container only)",
                "# firewalld/ufw reloads and iptables-restore scripts must keep Docker's chains",
            ],
        ),
    )


def direct_routing_blocked(ctx: RuleContext) -> Iterator[Finding]:
    blocked = _blocking(ctx)
    if blocked is None or not _direct_routing_drop(ctx, blocked[1]):
        return
    c = ctx.path.route.container
    port = ctx.path.route.container_port
    assert c is not None
    yield finding(
        "DIRECT_ROUTING_BLOCKED",
        severity="error",
        confidence=0.9,
        hop=blocked[0],
        explanation="Since Engine 28, packets from other machines addressed straight to a "
        f"container ({c.ipv4}) are "
        f"dropped in raw PREROUTING unless the port is published: {blocked[1]}.",
        evidence=[Evidence("raw PREROUTING rule", str(blocked[1]), IPTABLES)],
        fix=Fix(
            "Publish the port and use the host's address, or let the network route to containers",
            [
                f"docker run -p {port}:{port} ...  # then connect to HOST:{port}",
                "docker network create -o "
                "com.docker.network.bridge.gateway_mode_ipv4=nat-unprotected NETWORK",
            ],
        ),
    )


def _rule_count(firewall: IptablesRuleset | None) -> int:
    if firewall is None:
        return 0
    return sum(
        len(chain.rules)
        for table, chains in firewall.tables.items()
        if not table.endswith("6")
        for chain in chains.values()
    )


def iptables_backend_split(ctx: RuleContext) -> Iterator[Finding]:
    nft, legacy = _rule_count(ctx.facts.firewall), _rule_count(ctx.facts.legacy_firewall)
    if not nft or not legacy:
        return
    blocked = _blocking(ctx)
    yield finding(
        "IPTABLES_BACKEND_SPLIT",
        severity="warning",
        confidence=0.8,
        hop=blocked[0] if blocked else HopName.FILTER_FORWARD,
        explanation="Both iptables backends hold rules: `iptables` (the one the engine uses) shows "
        "only one of them, "
        "and the kernel applies both, so a rule in the hidden one can drop what the visible one "
        "accepts.",
        evidence=[
            Evidence("rules in iptables (nft)", nft, IPTABLES),
            Evidence("rules in iptables-legacy", legacy, "iptables-legacy-save"),
        ],
        fix=Fix(
            "Keep one backend: move the legacy rules to nft (or the other way), then restart the "
            "engine",
            [
                "iptables-legacy-save > legacy-rules.txt  # review them",
                "iptables-legacy -F; iptables-legacy -X",
                "update-alternatives --set iptables /usr/sbin/iptables-nft",
                "systemctl restart docker",
            ],
        ),
    )


RULES = [
    Rule(
        "ip-forward-disabled",
        ("IP_FORWARD_DISABLED",),
        ip_forward_disabled,
        ("host", "external", "container", "compose"),
    ),
    Rule("firewall-drop", ("FIREWALL_DROP",), firewall_drop, ("external",)),
    Rule("docker-rules-missing", ("DOCKER_RULES_MISSING",), docker_rules_missing, ("external",)),
    Rule(
        "direct-routing-blocked", ("DIRECT_ROUTING_BLOCKED",), direct_routing_blocked, ("external",)
    ),
    Rule("iptables-backend-split", ("IPTABLES_BACKEND_SPLIT",), iptables_backend_split),
]
