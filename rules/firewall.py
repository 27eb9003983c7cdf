"""Rules about the kernel's path: forwarding, the firewall, the engine's own rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from doctor.rules.exposure import is_direct_drop

from doctor.facts.model import IP_FORWARD, Facts
from doctor.plugin import (
    ENGINE_API,
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
INTERFACES = "/sys/class/net, interface addresses"
SYSCTL = "/proc/sys/net/ipv4/ip_forward"
#: Chain name prefixes of firewalld: its iptables backend (IN_public, FWDI_...) and its own
#: nftables table (inet firewalld: filter_IN_public, ...).
FIREWALLD_CHAINS = ("FORWARD_", "INPUT_", "IN_", "FWD_", "FWDI_", "FWDO_", "filter_")
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
    if (
        _engine_rule_missing(ctx, decision)
        or _direct_routing_drop(ctx, decision)
        or _input_from_a_container(ctx, hop)
        or (ctx.target.kind == "forward" and engine_forward_policy(decision, ctx.facts))
        or (decision.rule is not None and decision.table == "raw" and is_direct_drop(decision.rule))
    ):
        return  # DOCKER_RULES_MISSING, DIRECT_ROUTING_BLOCKED (or STALE_ENGINE_RULES under an
        # older engine), HOST_INPUT_BLOCKS_CONTAINERS or NON_DOCKER_FORWARD_BLOCKED say it better
    rule = decision.rule
    where = str(decision)
    port = ctx.target.port or ctx.path.route.container_port
    if ctx.target.source is not None:  # a container's own traffic out, or the replies to it
        owner, summary, commands = _egress_fix(hop, decision, ctx)
    else:
        owner, summary, commands = _firewall_fix(decision, ctx, port)
    what = (
        "the replies to the container's connection (no conntrack ESTABLISHED accept comes first)"
        if hop == HopName.RETURN_PATH
        else "the connection"
    )
    yield finding(
        "FIREWALL_DROP",
        severity="error",
        confidence=0.9,
        hop=hop,
        explanation=f"{owner} {decision.verdict}s {what}: {where}. The engine's own rules are in "
        "place; this rule comes first.",
        evidence=[Evidence("first rule that stops the packet", where, IPTABLES)]
        + (
            [Evidence("rule", f"-t {decision.table} -A {rule.chain} {rule.text}", IPTABLES)]
            if rule
            else []
        ),
        fix=Fix(summary, commands),
    )


def _egress_fix(hop: str, decision: Decision, ctx: RuleContext) -> tuple[str, str, list[str]]:
    """The fix for a rule that drops a container's traffic out, or the replies to it."""
    chain, (tool, table) = decision.chain, _tool_and_table(decision)
    if tool == "nft":
        return _nft_fix(decision, ctx)
    position = decision.rule.position if decision.rule else None
    delete = [f"{tool} -t {table} -D {chain} {position}"] if position else []
    owner = f"A rule in {table} {chain}" if decision.rule else f"The policy of {table} {chain}"
    if hop == HopName.RETURN_PATH:
        return (
            owner,
            f"Accept established connections' replies at the top of {chain}, before the rule",
            [
                f"{tool} -t {table} -I {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                *delete,
            ],
        )
    source = _source_address(ctx) or "SOURCE"
    return (
        owner,
        "Remove the rule, or accept the container's traffic before it",
        [
            *delete,
            f"{tool} -t {table} -I {chain} -s {source} -d {ctx.target.addresses[0]} -p "
            f"{ctx.target.protocol} --dport {ctx.target.port} -j ACCEPT",
        ],
    )


def _source_address(ctx: RuleContext) -> str | None:
    """The address the source's packets leave with: its network namespace's first gateway
    network's (a --network container:X source has X's)."""
    if ctx.target.source is None:
        return None
    owner = ctx.sender
    return next((a.ip for a in owner.attachments if a.gateway and a.ip), owner.ipv4)


def _tool_and_table(decision: Decision) -> tuple[str, str]:
    """The command and table that hold the decision's rule: the facts keep IPv6 tables as
    "filter6", which ip6tables calls "filter"."""
    if decision.tool.startswith("iptables") and decision.table.endswith("6"):
        return decision.tool.replace("iptables", "ip6tables", 1), decision.table.removesuffix("6")
    return decision.tool, decision.table


def _firewall_fix(
    decision: Decision, ctx: RuleContext, port: int | None
) -> tuple[str, str, list[str]]:
    chain, (tool, table) = decision.chain, _tool_and_table(decision)
    position = decision.rule.position if decision.rule else None
    if tool == "nft":
        return _nft_fix(decision, ctx)
    delete = [f"{tool} -t {table} -D {chain} {position}"] if position else []
    if _manager(decision, ctx.facts) == "ufw":
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
    if _manager(decision, ctx.facts) == "firewalld":
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


def engine_forward_policy(decision: Decision, facts: Facts) -> bool:
    """Whether the decision is filter FORWARD's policy in iptables with no firewall manager
    around (ufw sets its own policy, a foreign nft base chain has its own): the DROP the
    engine sets when it turns forwarding on."""
    return (
        decision.rule is None
        and decision.chain == "FORWARD"
        and decision.tool.startswith("iptables")
        and _manager(decision, facts) is None
    )


def _manager(decision: Decision, facts: Facts) -> str | None:
    """The firewall manager whose chain decided (ufw, firewalld), or whose default policy it
    is: the policy of a built-in chain that ufw hooks is ufw's "default deny". None: a rule
    of the host's own."""
    chains = {decision.chain}
    if decision.rule is None and facts.firewall is not None:
        chains |= set(facts.firewall.tables.get(decision.table, {}))
    if any(chain.lower().startswith("ufw") for chain in chains):
        return "ufw"
    if (
        any(chain.startswith(FIREWALLD_CHAINS) or "firewalld" in chain.lower() for chain in chains)
        or "firewalld" in decision.table
    ):
        return "firewalld"
    return None


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
    """Engine 28's own raw PREROUTING drop (under an older engine it is STALE_ENGINE_RULES)."""
    return (
        ctx.target.kind == "container"
        and decision.table == "raw"
        and decision.rule is not None
        and (ctx.facts.engine_major or 28) >= 28
    )


def _input_from_a_container(ctx: RuleContext, hop: str) -> bool:
    return (
        hop == HopName.FILTER_INPUT
        and ctx.target.source is not None
        and ctx.path.destination.kind == "host"
    )


def host_input_blocks_containers(ctx: RuleContext) -> Iterator[Finding]:
    """The host's INPUT firewall stops a container's connection to the host itself."""
    blocked = _blocking(ctx)
    if blocked is None or not _input_from_a_container(ctx, blocked[0]):
        return
    decision = blocked[1]
    owner = ctx.sender
    uplink = ctx.facts.uplink(owner)  # the packet leaves by the default route's bridge
    bridge = (uplink[1].bridge if uplink else None) or "BRIDGE"
    port, protocol, address = ctx.target.port, ctx.target.protocol, ctx.target.addresses[0]
    via_proxy = any(p.host_port == port and p.protocol == protocol for p in ctx.facts.proxies or ())
    owner_tool, fix = _input_fix(decision, ctx.facts, bridge, port, protocol)
    yield finding(
        "HOST_INPUT_BLOCKS_CONTAINERS",
        severity="error",
        confidence=0.9,
        hop=HopName.FILTER_INPUT,
        affects=("container",),
        explanation=f"{owner.name} → {address}:{port} arrives from {bridge} for the host itself, "
        f"so filter INPUT judges it, and {owner_tool} {decision.verdict}s it: {decision}."
        + (
            f" Port {port} is published, but from a container the userland proxy takes it: not "
            "DNAT'd into FORWARD, delivered to docker-proxy through INPUT."
            if via_proxy
            else ""
        ),
        evidence=[
            Evidence("first rule that stops the packet", str(decision), IPTABLES),
            Evidence(f"{owner.name} arrives on", bridge, ENGINE_API),
            *(
                [
                    Evidence(
                        "rule",
                        f"-t {decision.table} -A {decision.rule.chain} {decision.rule.text}",
                        IPTABLES,
                    )
                ]
                if decision.rule
                else []
            ),
        ],
        fix=fix,
    )


def _input_fix(
    decision: Decision, facts: Facts, bridge: str, port: int | None, protocol: str
) -> tuple[str, Fix]:
    """Who owns the INPUT rule (ufw, firewalld, nftables, a plain rule) and how to let the
    bridge's traffic to ``port`` through it."""
    chain, manager = decision.chain, _manager(decision, facts)
    if manager == "ufw":
        return "ufw", Fix(
            f"Allow the bridge's traffic to port {port} in ufw",
            [f"ufw allow in on {bridge} to any port {port} proto {protocol}"],
        )
    if manager == "firewalld":
        return "firewalld", Fix(
            f"Put {bridge} in a zone that accepts it (firewalld)",
            [
                f"firewall-cmd --permanent --zone=trusted --add-interface={bridge}",
                "firewall-cmd --reload",
            ],
        )
    if decision.tool == "nft":
        where = decision.table.removeprefix("nft ")
        return f"the nftables chain {where} {chain}", Fix(
            f"Accept the bridge's traffic to port {port} before the rule",
            [f'nft insert rule {where} {chain} iifname "{bridge}" {protocol} dport {port} accept'],
        )
    what = f"a rule in {decision.table} {chain}" if decision.rule else f"the policy of {chain}"
    return what, Fix(
        f"Accept the bridge's traffic to port {port} before the rule",
        [f"{decision.tool} -I INPUT -i {bridge} -p {protocol} --dport {port} -j ACCEPT"],
    )


def docker_rules_missing(ctx: RuleContext) -> Iterator[Finding]:
    route = ctx.path.route
    blocked = _blocking(ctx)
    nat = ctx.path.decisions.get(HopName.NAT_DNAT)
    # Broken with a DNAT found is a flow that bypasses it (STALE_CONNTRACK), not a lost rule.
    nat_missing = ctx.broken(HopName.NAT_DNAT) and not (nat and nat.dnat)
    if not nat_missing and not (blocked and _engine_rule_missing(ctx, blocked[1])):
        return
    c = route.container
    assert c is not None
    what = (
        f"the nat rule that sends port {ctx.target.port} to {c.ipv4}:{route.container_port}"
        if nat_missing
        else f"the filter rule that accepts forwarded traffic to {c.ipv4}:{route.container_port}"
    )
    evidence = [Evidence(f"{c.name} publishes", str(route.binding), ENGINE_API)]
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


def egress_not_masqueraded(ctx: RuleContext) -> Iterator[Finding]:
    """Nothing rewrites the source of the container's traffic out of the host."""
    if not ctx.broken(HopName.NAT_MASQUERADE) or ctx.target.source is None:
        return
    source, facts = ctx.sender, ctx.facts
    network = next(
        (n for a in source.attachments if a.gateway and (n := facts.network(a.network_id))), None
    )
    subnet = network.subnets[0] if network and network.subnets else "SUBNET"
    bridge = network.bridge if network and network.bridge else "BRIDGE"
    masquerade = f"iptables -t nat -A POSTROUTING -s {subnet} ! -o {bridge} -j MASQUERADE"
    # ("ip-masq": false reaches the default bridge only, as its enable_ip_masquerade option,
    # where the path skips the masquerade: it never explains a missing one.)
    told = {key: said for key in ("iptables",) if (said := _told_false(facts, key))}
    engine_chains = facts.firewall is not None and facts.firewall.chain("nat", "DOCKER") is not None
    if told:
        key, (_, where) = next(iter(told.items()))
        why = f"the engine was told {key} = false ({where}), so it writes no firewall rules at all"
        fix = Fix(
            "Let the engine write its rules, or add the masquerade yourself",
            [
                f'# {where}: remove "{key}": false'
                if where.startswith("/")
                else f"# dockerd's command line: drop --{key}=false",
                "systemctl restart docker",
                f"{masquerade}  # or this",
            ],
        )
    elif not engine_chains:
        why = (
            "the engine's own nat chain DOCKER is gone too: the nat table was flushed after the "
            "engine started (a firewall reload: firewalld, nft flush ruleset, iptables -t nat -F)"
        )
        fix = Fix(
            "Restart the engine so it writes its rules again, and keep the firewall from "
            "flushing them",
            [
                "systemctl restart docker",
                "# firewall reloads must keep Docker's chains (nftables: flush your own table, "
                "not the ruleset)",
            ],
        )
    else:
        why = f"the rule that masquerades {subnet} was deleted; the engine's other rules are there"
        fix = Fix(
            "Put the masquerade back (restarting the engine writes it too)",
            [masquerade, "systemctl restart docker  # or this, which rewrites all its rules"],
        )
    postrouting = facts.firewall.rules("nat", "POSTROUTING") if facts.firewall else ()
    yield finding(
        "EGRESS_NOT_MASQUERADED",
        severity="error",
        confidence=0.9,
        hop=HopName.NAT_MASQUERADE,
        affects=("container",),
        explanation=f"{source.name}'s traffic leaves the host from {_source_address(ctx)}, "
        "unmasqueraded: "
        f"{why}. The far end answers an address it has no route to.",
        evidence=[
            Evidence(f"network {network.name if network else '?'} subnet", subnet, ENGINE_API),
            Evidence("nat POSTROUTING", [r.text for r in postrouting], IPTABLES),
            Evidence("nat DOCKER chain present", engine_chains, IPTABLES),
            *(Evidence(f"engine told {key}", False, where) for key, (_, where) in told.items()),
        ],
        fix=fix,
    )


def _told_false(facts: Facts, key: str) -> tuple[Any, str] | None:
    """The daemon's ``key`` when it was set to false: the engine writes less than by default."""
    said = facts.daemon.setting(key) if facts.daemon else None
    return said if said is not None and said[0] is False else None


def bridge_address_missing(ctx: RuleContext) -> Iterator[Finding]:
    """A bridge with running containers lacks its network's gateway address."""
    facts = ctx.facts
    if facts.interfaces is None:
        return
    if ctx.target.source is not None:
        if not ctx.broken(HopName.BRIDGE):
            return
        owners = [ctx.sender]
    elif ctx.target.kind == "host":
        owners = [c for c in facts.containers if c.running]
    else:
        return
    said = set()
    for c in owners:
        for att in c.attachments:
            network = facts.network(att.network_id)
            if (
                network is None
                or network.bridge is None
                or not network.gateway_on_bridge
                or not att.gateway
                or network.id in said
            ):
                continue
            interface = facts.interfaces.get(network.bridge)
            if interface is not None and att.gateway in interface.addresses:
                continue
            said.add(network.id)
            prefix = network.subnets[0].partition("/")[2] if network.subnets else "16"
            yield finding(
                "BRIDGE_ADDRESS_MISSING",
                severity="error",
                confidence=0.9,
                hop=HopName.BRIDGE,
                affects=("container", "external"),
                explanation=f"{network.bridge}, the bridge of {network.name}, holds "
                f"{', '.join(interface.addresses) if interface and interface.addresses else 'no address'}: "
                f"the gateway {att.gateway} of its containers does not exist, so nothing they send "
                "leaves the bridge (a network manager may have taken the address).",
                evidence=[
                    Evidence(f"network {network.name} gateway", att.gateway, ENGINE_API),
                    Evidence(
                        f"{network.bridge} addresses",
                        list(interface.addresses) if interface else None,
                        INTERFACES,
                    ),
                ],
                fix=Fix(
                    f"Give {network.bridge} its address back, and keep the network manager away from it",
                    [
                        f"ip addr add {att.gateway}/{prefix} dev {network.bridge}",
                        "systemctl restart docker  # or this, which sets up the bridges again",
                        f"nmcli device set {network.bridge} managed no  # NetworkManager",
                    ],
                ),
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
    Rule("firewall-drop", ("FIREWALL_DROP",), firewall_drop, ("external", "container")),
    Rule(
        "egress-not-masqueraded",
        ("EGRESS_NOT_MASQUERADED",),
        egress_not_masqueraded,
        ("container",),
    ),
    Rule(
        "bridge-address-missing",
        ("BRIDGE_ADDRESS_MISSING",),
        bridge_address_missing,
        ("host", "container"),
    ),
    Rule(
        "host-input-blocks-containers",
        ("HOST_INPUT_BLOCKS_CONTAINERS",),
        host_input_blocks_containers,
        ("container",),
    ),
    Rule("docker-rules-missing", ("DOCKER_RULES_MISSING",), docker_rules_missing, ("external",)),
    Rule(
        "direct-routing-blocked", ("DIRECT_ROUTING_BLOCKED",), direct_routing_blocked, ("external",)
    ),
    Rule("iptables-backend-split", ("IPTABLES_BACKEND_SPLIT",), iptables_backend_split),
]
