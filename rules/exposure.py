"""Rules about what the firewall really exposes: INPUT rules a published port bypasses,
DOCKER-USER rules that can never match, and rules another engine generation left behind."""

from __future__ import annotations

import re
from collections.abc import Iterator

from doctor.rules.fixes import port_spec, republish

from doctor.plugin import (
    ENGINE_API,
    Evidence,
    Finding,
    FirewallRule,
    Fix,
    HopName,
    IptablesRuleset,
    Rule,
    RuleContext,
    finding,
)

IPTABLES = "iptables-save"
#: A single destination port, not negated: the form a rewrite to --ctorigdstport keeps exact.
_DPORT = re.compile(r"(?<!! )(?:-m (?:tcp|udp) )?--dport (?P<port>\d+)(?= |$)")
#: Filter chains only Engine 28 and later write, and the one only Engine 29 does.
SINCE_28 = ("DOCKER-FORWARD", "DOCKER-CT", "DOCKER-BRIDGE")
SINCE_29 = ("DOCKER-INTERNAL",)
#: Engine 29 replaced these with DOCKER-INTERNAL.
UNTIL_28 = ("DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2")
#: Engine 28's raw PREROUTING rule that drops direct routing to a container's address.
#: (Engine 28.0 wrote one per unpublished port: ... -p tcp -m tcp --dport N -j DROP.)
_DIRECT_DROP = re.compile(
    r"^-d (?P<address>[\d.]+)/32 ! -i (?P<bridge>\S+)(?: -p \w+ -m \w+ --dport \d+)? -j DROP$"
)


def published_port_bypasses_input(ctx: RuleContext) -> Iterator[Finding]:
    """The host's INPUT firewall would stop this port, but a published port is DNAT'd and
    judged in FORWARD: it is open anyway."""
    route, port = ctx.path.route, ctx.target.port
    decision = ctx.path.decisions.get(HopName.FILTER_INPUT)
    nat = ctx.path.decisions.get(HopName.NAT_DNAT)
    if (
        ctx.target.kind != "port"
        or ctx.target.vantage != "external"
        or route.container is None
        or port is None
        or decision is None
        or decision.verdict not in ("drop", "reject")
        or (forward := ctx.path.hop(HopName.FILTER_FORWARD)) is None
        or forward.status != "ok"
        or nat is None
        or nat.dnat is None
    ):
        return
    c, protocol = route.container, ctx.target.protocol
    local = port_spec(port, route.container_port or port, protocol, "127.0.0.1")
    yield finding(
        "PUBLISHED_PORT_BYPASSES_INPUT_FIREWALL",
        severity="warning",
        confidence=0.9,
        hop=HopName.FILTER_INPUT,
        affects=("external",),
        explanation=f"The host's INPUT firewall would {decision.verdict} port {port} "
        f"({decision}), but {c.name} publishes it: the engine DNATs it to "
        f"{c.ipv4}:{route.container_port} in nat PREROUTING, so filter FORWARD judges it and "
        "INPUT never sees it. The port is open to every machine that reaches this host.",
        evidence=[
            Evidence("the INPUT rule relied on", str(decision), IPTABLES),
            Evidence(f"{c.name} publishes", str(route.binding), ENGINE_API),
        ],
        fix=Fix(
            "Filter published ports where they pass: in DOCKER-USER, by their original port, or "
            "publish on loopback only",
            [
                f"iptables -I DOCKER-USER -p {protocol} -m conntrack --ctorigdstport {port} "
                "--ctdir ORIGINAL -j DROP  # add ! -s TRUSTED/NET to keep some clients",
                *republish(c, local),
            ],
        ),
    )


def docker_user_matches_host_port(ctx: RuleContext) -> Iterator[Finding]:
    """A DOCKER-USER rule on the published port: FORWARD sees the packet after DNAT, with the
    container's port, so the rule never matches."""
    route, port, firewall = ctx.path.route, ctx.target.port, ctx.facts.firewall
    if route.container is None or port is None or firewall is None:
        return
    container_port = route.container_port
    if container_port is None or container_port == port:
        return
    for rule in firewall.rules("filter", "DOCKER-USER"):
        ports = [int(m["port"]) for m in _DPORT.finditer(rule.text)]
        if "--ctorig" in rule.text or "--dports" in rule.text or ports != [port]:
            continue  # already by the original port, a port list or range, or another port
        corrected = _DPORT.sub(
            f"-m conntrack --ctorigdstport {port} --ctdir ORIGINAL", rule.text, count=1
        )
        yield finding(
            "DOCKER_USER_MATCHES_HOST_PORT",
            severity="warning",
            confidence=0.9,
            hop=HopName.FILTER_FORWARD,
            explanation=f"DOCKER-USER rule {rule.position} matches port {port}, the published "
            f"port; FORWARD sees the packet after DNAT, addressed to {container_port}, so the "
            "rule never matches. Match the original port with conntrack instead.",
            evidence=[
                Evidence("rule", f"-A DOCKER-USER {rule.text}", IPTABLES),
                Evidence(
                    f"{route.container.name} publishes", f"{port} → {container_port}", ENGINE_API
                ),
            ],
            fix=Fix(
                "Match the published port by its original destination",
                [
                    f"iptables -R DOCKER-USER {rule.position} {corrected}",
                ],
            ),
        )
        return


def stale_engine_rules(ctx: RuleContext) -> Iterator[Finding]:
    """Chains and rules of another engine generation, left when the engine was replaced."""
    facts, firewall = ctx.facts, ctx.facts.firewall
    major = facts.engine_major
    if firewall is None or major is None:
        return
    chains = set(firewall.tables.get("filter", {}))
    foreign = [
        name
        for name, stale in (
            *((n, major < 28) for n in SINCE_28),
            *((n, major < 29) for n in SINCE_29),
            *((n, major >= 29) for n in UNTIL_28),
        )
        if stale and name in chains
    ]
    drops = [] if major >= 28 else _direct_drops(firewall.rules("raw", "PREROUTING"))
    if not foreign and not drops:
        return
    decided = ctx.path.decisions.get(HopName.RAW_PREROUTING)
    deciding = drops and decided is not None and decided.rule in drops
    shown = [f"filter {name}" for name in foreign] + [f"raw PREROUTING: {r.text}" for r in drops]
    yield finding(
        "STALE_ENGINE_RULES",
        severity="error" if deciding else "warning",
        confidence=0.85,
        hop=HopName.RAW_PREROUTING if deciding else HopName.HOST,
        explanation=f"Engine {facts.engine.version if facts.engine else major} runs, but the "
        "firewall holds rules another engine generation wrote ("
        + ", ".join(shown)
        + "). The running engine neither writes nor removes them"
        + (
            ", and the raw PREROUTING drop stops direct routing it allows."
            if deciding
            else ": they change what its own rules mean."
        ),
        evidence=[
            Evidence("running engine", facts.engine.version if facts.engine else None, ENGINE_API),
            Evidence("rules of another generation", shown, IPTABLES),
        ],
        fix=Fix(
            "Remove what the other engine left, then restart this one to write its own",
            [
                *(f"iptables -t raw -D PREROUTING {r.text}" for r in drops),
                *(f"iptables -D {r.chain} {r.text}" for r in _jumps_to(firewall, foreign)),
                *(f"iptables -F {name} && iptables -X {name}" for name in foreign),
                "systemctl restart docker",
            ],
        ),
    )


def _jumps_to(firewall: IptablesRuleset, chains: list[str]) -> list[FirewallRule]:
    """The filter rules that jump or go to one of ``chains``: a chain is deleted only unused."""
    return [
        rule
        for chain in firewall.tables.get("filter", {}).values()
        for rule in chain.rules
        if rule.target in chains and rule.chain not in chains
    ]


def _direct_drops(rules: tuple[FirewallRule, ...]) -> list[FirewallRule]:
    return [r for r in rules if is_direct_drop(r)]


def is_direct_drop(rule: FirewallRule) -> bool:
    """Engine 28's raw PREROUTING drop of direct routing to a container's address."""
    return _DIRECT_DROP.match(rule.text) is not None


RULES = [
    Rule(
        "published-port-bypasses-input",
        ("PUBLISHED_PORT_BYPASSES_INPUT_FIREWALL",),
        published_port_bypasses_input,
        ("external",),
    ),
    Rule(
        "docker-user-matches-host-port",
        ("DOCKER_USER_MATCHES_HOST_PORT",),
        docker_user_matches_host_port,
        ("host", "external"),
    ),
    Rule("stale-engine-rules", ("STALE_ENGINE_RULES",), stale_engine_rules, ("host", "external")),
]
