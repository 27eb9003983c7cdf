"""Walk one packet through iptables chains, the way the kernel would, from facts alone.

Pure: a ruleset (:class:`IptablesRuleset`, from :func:`parse_iptables_save`) and a
:class:`~doctor.firewall.model.Packet` in, a :class:`~doctor.firewall.model.Decision` out.
Every match is judged True, False or None (cannot tell: a match this module does not
understand, or a field of the packet that is not known).  A rule whose verdict
could change the outcome and whose matches cannot be told makes the decision
``unknown``, naming that rule: never a guess.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
from collections.abc import Iterator

from msgspec import Struct, field
from msgspec.structs import replace

from doctor.firewall.model import Action, Decision, FirewallRule, Packet, within

TERMINAL: dict[str, Action] = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject"}
#: Targets that act and let the packet go on through the chain.
NON_TERMINAL = {
    "LOG",
    "NFLOG",
    "ULOG",
    "MARK",
    "CONNMARK",
    "TCPMSS",
    "CT",
    "NOTRACK",
    "TRACE",
    "CLASSIFY",
    "CHECKSUM",
    "TOS",
    "DSCP",
    "TTL",
    "HL",
    "SNAT",
    "MASQUERADE",
    "AUDIT",
    "SET",
}
#: Targets that rewrite a packet's source: in the nat table they end its walk.
SOURCE_NAT = {"SNAT", "MASQUERADE"}
#: Matches that never decide anything for a first packet (comments, rate limits left at default).
NEUTRAL_MODULES = {"comment", "tcp", "udp", "limit", "hashlimit"}
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')
MAX_DEPTH = 32
MAX_STEPS = 100_000


class IptablesChain(Struct, frozen=True):
    name: str
    policy: str | None  # built-in chains only
    rules: tuple[FirewallRule, ...]


class ChainIndex(Struct, frozen=True):
    """A chain's rules by the one match that prunes most: an exact source or destination host
    (fail2ban's and CrowdSec's blocklists, kube-proxy's service addresses, Docker's per-container
    rules). A packet's walk then looks at the rules that can match it, not at every rule."""

    general: tuple[int, ...]  # rules with no such match: always candidates
    by_source: dict[str, tuple[int, ...]]
    by_destination: dict[str, tuple[int, ...]]
    #: rules with a source match, by target: for a packet whose source is not known, only the
    #: first of each target can change the outcome (the rest would be the same doubt again)
    sourced_by_target: dict[str, tuple[int, ...]]

    def candidates(self, start: int, packet: Packet, doubted: set[str]) -> Iterator[int]:
        """The positions (0-based, from ``start``, in order) of the rules that can match."""
        lists = [self.general]
        if packet.src is not None:
            lists.append(self.by_source.get(packet.src, ()))
        else:
            lists += [v for t, v in self.sourced_by_target.items() if t not in doubted]
        lists.append(self.by_destination.get(packet.dst, ()))
        heads = [(positions, bisect.bisect_left(positions, start)) for positions in lists]
        while True:
            best = None
            for n, (positions, at) in enumerate(heads):
                if at < len(positions) and (
                    best is None or positions[at] < heads[best][0][heads[best][1]]
                ):
                    best = n
            if best is None:
                return
            positions, at = heads[best]
            heads[best] = (positions, at + 1)
            yield positions[at]


class IptablesRuleset(Struct, frozen=True):
    """An iptables ruleset: table -> chain name -> chain."""

    tables: dict[str, dict[str, IptablesChain]]
    #: a cache: each chain's index, made the first time a packet walks the chain
    indexes: dict[tuple[str, str], ChainIndex] = field(default_factory=dict)

    def index(self, table: str, chain: IptablesChain) -> ChainIndex:
        found = self.indexes.get((table, chain.name))
        if found is None:
            found = self.indexes[table, chain.name] = index_chain(chain)
        return found

    def chain(self, table: str, name: str) -> IptablesChain | None:
        return self.tables.get(table, {}).get(name)

    def rules(self, table: str, name: str) -> tuple[FirewallRule, ...]:
        chain = self.chain(table, name)
        return chain.rules if chain else ()


def parse_iptables_save(text: str) -> IptablesRuleset:
    """The tables of iptables-save's output; a line it does not print is left out."""
    tables: dict[str, dict[str, IptablesChain]] = {}
    policies: dict[str, str | None] = {}
    rules: dict[str, list[FirewallRule]] = {}
    table = None

    def close_table() -> None:
        if table is not None:
            tables[table] = {
                name: IptablesChain(name, policy, tuple(rules[name]))
                for name, policy in policies.items()
            }

    for line in text.splitlines():
        if line.startswith("*"):
            close_table()
            table, policies, rules = line[1:].strip(), {}, {}
        elif line.startswith(":") and table and len(fields := line[1:].split()) >= 2:
            name, policy = fields[:2]
            policies[name] = None if policy == "-" else policy
            rules[name] = []
        elif line.startswith("-A ") and table and len(fields := line.split(None, 2)) == 3:
            _, chain, rest = fields
            policies.setdefault(chain, None)
            chain_rules = rules.setdefault(chain, [])
            chain_rules.append(
                FirewallRule(table, chain, len(chain_rules) + 1, rest, _jump_target(rest))
            )
        elif line.strip() == "COMMIT":
            close_table()
            table = None
    close_table()
    return IptablesRuleset(tables)


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
#: An exact host match (-s/-d ADDRESS, or ADDRESS/32 or /128), not negated; also the option
#: before it, to tell it is not negated.
_HOST_MATCH = re.compile(
    r"(?:^|(?<=\s))(!\s+)?(-s|--source|-d|--destination)\s+([0-9a-fA-F.:]+)(/32|/128)?(?=\s|$)"
)


def index_chain(chain: IptablesChain) -> ChainIndex:
    general: list[int] = []
    by_source: dict[str, list[int]] = {}
    by_destination: dict[str, list[int]] = {}
    sourced: dict[str, list[int]] = {}
    for n, rule in enumerate(chain.rules):
        source = destination = None
        text = _QUOTED.sub('""', rule.text) if '"' in rule.text else rule.text
        for negated, option, address, prefix in _HOST_MATCH.findall(text):
            host = _host(address, prefix)
            if negated or host is None:
                continue
            if option in ("-s", "--source"):
                source = host
            else:
                destination = host
        if source is not None:
            by_source.setdefault(source, []).append(n)
            sourced.setdefault(rule.target or "", []).append(n)
        elif destination is not None:
            by_destination.setdefault(destination, []).append(n)
        else:
            general.append(n)
    return ChainIndex(
        tuple(general),
        {k: tuple(v) for k, v in by_source.items()},
        {k: tuple(v) for k, v in by_destination.items()},
        {k: tuple(v) for k, v in sourced.items()},
    )


#: an IPv4 address as Python prints it (no leading zeros): iptables-save prints them so
_CANONICAL_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
)


def _host(address: str, prefix: str) -> str | None:
    """The address of an exact host match in the form a Packet carries it; None if not one."""
    if _CANONICAL_IPV4.fullmatch(address):  # most rules: a tenth of ipaddress's cost
        return address if prefix in ("", "/32") else None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None  # a name, or a network without a prefix length
    if prefix and prefix != f"/{ip.max_prefixlen}":
        return None
    return str(ip)


_JUMP = re.compile(r"(?:^|\s)(?:-j|--jump|-g|--goto)\s+(\S+)")


def _jump_target(rule: str) -> str | None:
    # Quoted text (comments) may say "-j" too: blank it out first. shlex would be exact
    # but costs ~0.2 ms a rule, most of a run on a host with hundreds of rules.
    match = _JUMP.search(_QUOTED.sub('""', rule) if '"' in rule else rule)
    return match.group(1) if match else None


@functools.lru_cache(maxsize=65536)
def tokens(text: str) -> tuple[str, ...]:
    # Cached: a checkup walks the same rules once per published port.
    return tuple(t[1:-1] if t.startswith('"') else t for t in _TOKEN.findall(text))


def traverse(firewall: IptablesRuleset, table: str, chain: str, packet: Packet) -> Decision:
    """Where ``packet`` ends in a built-in ``chain`` of ``table``: accepted, dropped, rejected, or
    unknown.  In the nat table, a DNAT rule ends the walk with ``dnat`` set, and a MASQUERADE or
    SNAT rule with ``snat``."""
    start = firewall.chain(table, chain)
    if start is None:
        return Decision("accept", None, chain, table, detail=f"no {table} {chain} chain")
    stack: list[tuple[IptablesChain, int]] = [(start, 0)]
    doubts: list[
        tuple[FirewallRule, str]
    ] = []  # rules that might have matched, each with the reason
    doubted: set[str] = set()  # their targets

    def decided(verdict: Action, rule: FirewallRule | None, where: str, **more: object) -> Decision:
        return _with_doubts(Decision(verdict, rule, where, table, **more), doubts)  # type: ignore[arg-type]

    def policy() -> Decision:  # the end of the built-in chain, also after a goto or a RETURN
        return decided(
            TERMINAL.get(start.policy or "ACCEPT", "accept"), None, start.name, policy=start.policy
        )

    steps = 0
    while stack:
        steps += 1
        if steps > MAX_STEPS:  # gotos and jumps in a cycle: a hostile or broken ruleset
            return Decision(
                "unknown",
                None,
                chain,
                table,
                detail=f"more than {MAX_STEPS} rules walked (a loop?)",
            )
        current, index = stack.pop()
        candidates = firewall.index(table, current).candidates(index, packet, doubted)
        position = next(candidates, None)
        if position is None:
            if not stack:
                return policy()
            continue  # the end of a user chain: back to the caller
        rule = current.rules[position]
        stack.append((current, position + 1))
        matched, why = matches(rule, packet)
        if matched is False:
            continue
        target = rule.target
        translates_source = table.startswith("nat") and target in SOURCE_NAT
        if target is None or (target in NON_TERMINAL and not translates_source):
            continue
        if matched is None:
            doubts.append((rule, why))
            doubted.add(target)
            continue  # as if it did not match; the doubt is weighed against the outcome
        if target in TERMINAL:
            return decided(TERMINAL[target], rule, current.name)
        if target == "RETURN":
            stack.pop()  # leave this chain
            if not stack:
                return policy()
            continue
        if target == "DNAT" or translates_source:  # nat: the walk ends at the first rewrite
            dnat = _dnat(rule) if target == "DNAT" else None
            return decided("accept", rule, current.name, dnat=dnat, snat=translates_source)
        called = firewall.chain(table, target)
        if called is None:
            return Decision(
                "unknown", rule, current.name, table, detail=f"target {target} is not understood"
            )
        if len(stack) > MAX_DEPTH:
            return Decision(
                "unknown", rule, current.name, table, detail="chains nest too deep (a loop?)"
            )
        if "-g" in tokens(rule.text) or "--goto" in tokens(rule.text):
            stack.pop()  # a goto does not come back here
        stack.append((called, 0))
    return policy()


def _with_doubts(decision: Decision, doubts: list[tuple[FirewallRule, str]]) -> Decision:
    """Unknown, if a rule that might have matched would have ended the walk differently."""
    for rule, why in doubts:
        if TERMINAL.get(rule.target or "") != decision.verdict or decision.dnat or decision.snat:
            return Decision(
                "unknown",
                rule,
                rule.chain,
                decision.table,
                detail=f"cannot tell whether this rule matches ({why}); without it: "
                f"{decision.verdict} "
                f"at {decision}",
            )
    return decision


def _dnat(rule: FirewallRule) -> tuple[str, int] | None:
    words = tokens(rule.text)
    if "--to-destination" not in words:
        return None
    to = words[words.index("--to-destination") + 1]
    address, _, port = to.rpartition(":") if to.count(":") == 1 or "]" in to else (to, "", "")
    address = address.strip("[]")
    return (address, int(port.split("-")[0])) if port else (address, 0)


def matches(rule: FirewallRule, packet: Packet) -> tuple[bool | None, str]:
    """Whether ``rule`` matches ``packet``: True, False, or None (cannot tell) with the reason."""
    words = tokens(rule.text)
    unknown = ""
    i = 0
    while i < len(words):
        negate = words[i] == "!"
        if negate:
            i += 1
        option = words[i] if i < len(words) else ""
        if option in ("-j", "--jump", "-g", "--goto"):
            break  # the target and its options follow
        if option == "-m":
            module = words[i + 1] if i + 1 < len(words) else ""
            i += 2
            if module not in NEUTRAL_MODULES | KNOWN_MODULES:
                unknown = unknown or f"-m {module}"
            continue
        value = words[i + 1] if i + 1 < len(words) else ""
        i += 2
        if option == "--comment":
            continue
        if option in OPTIONS_WITH_TWO_VALUES:
            i += 1
        result = _match(option, value, packet)
        if result is None:
            unknown = unknown or f"{'! ' if negate else ''}{option} {value}"
            continue
        if result == negate:
            return False, ""
    return (None, unknown) if unknown else (True, "")


KNOWN_MODULES = {"conntrack", "state", "addrtype", "multiport", "pkttype"}
OPTIONS_WITH_TWO_VALUES = {"--match-set"}


def _match(option: str, value: str, p: Packet) -> bool | None:
    if option in ("-p", "--protocol"):
        return value in ("all", "0") or value == p.protocol
    if option in ("-i", "--in-interface"):
        return _iface(value, p.in_iface, p.not_in)
    if option in ("-o", "--out-interface"):
        return _iface(value, p.out_iface, ())
    if option in ("-d", "--destination"):
        return _in(p.dst, value)
    if option in ("-s", "--source"):
        return _source(value, p)
    if option in ("--dport", "--destination-port", "--dports", "--destination-ports"):
        return None if p.dport is None else _port_in(p.dport, value)
    if option in ("--sport", "--source-port", "--sports", "--source-ports"):
        return None if p.sport is None else _port_in(p.sport, value)  # a client's is not known
    if option in CONNTRACK_OPTIONS:
        return _conntrack(option, value, p)
    if option == "--dst-type":
        return _dst_type(value.split(","), p)
    if option == "--pkt-type":
        return value == "unicast"
    if option == "--tcp-flags":
        return None
    if option in (
        "--limit",
        "--limit-burst",
        "--hashlimit",
        "--hashlimit-name",
        "--hashlimit-mode",
        "--hashlimit-upto",
        "--hashlimit-burst",
    ):
        return True  # under the rate, as one client's first packet is
    if option == "--hashlimit-above":
        return False  # matches only over the rate
    return None


CONNTRACK_OPTIONS = {
    "--ctstate",
    "--state",
    "--ctdir",
    "--ctorigdst",
    "--ctorigsrc",
    "--ctorigdstport",
}


def _conntrack(option: str, value: str, p: Packet) -> bool | None:
    """-m conntrack / -m state: what the connection tracker knows of the walked packet."""
    if option in ("--ctstate", "--state"):
        states = value.split(",")  # DNAT too, once a DNAT rule translated the connection
        return p.ctstate in states or ("DNAT" in states and p.orig_dst is not None)
    if option == "--ctdir":  # a first packet goes the original way; the walked replies the other
        return (value.upper() == "ORIGINAL") == (p.ctstate == "NEW")
    if option in ("--ctorigdst", "--ctorigsrc") and p.ctstate != "NEW":
        return None  # a reply's original direction is the other way round: not modelled
    if option == "--ctorigdst":
        return _in(p.orig_dst or p.dst, value)
    if option == "--ctorigsrc":
        return _source(value, p)
    port = p.orig_dport or p.dport  # --ctorigdstport
    return None if port is None else _port_in(port, value)


def _dst_type(types: list[str], p: Packet) -> bool | None:
    """-m addrtype --dst-type: what the kernel's routing says the destination address is."""
    try:
        ip = ipaddress.ip_address(p.dst)
    except ValueError:
        return None
    if ip.is_multicast:
        kinds = {"MULTICAST"}
    elif p.local_dst:  # an address of this host: LOCAL, and a unicast one
        kinds = {"LOCAL", "UNICAST"}
    elif any(
        ip in (net := ipaddress.ip_network(s, strict=False))
        and ip not in (net.network_address, net.broadcast_address)
        for s in p.docker_subnets
    ):
        kinds = {"UNICAST"}  # a container's address
    elif set(types) <= {"LOCAL", "MULTICAST"}:
        return False  # whatever else it is, it is neither of these
    else:
        return None  # broadcast or unicast: up to routes the walk does not see
    return bool(kinds & set(types))


def _iface(pattern: str, iface: str | None, not_in: tuple[str, ...]) -> bool | None:
    def fits(name: str) -> bool:
        return name.startswith(pattern[:-1]) if pattern.endswith("+") else name == pattern

    if iface is not None:
        return fits(iface)
    if not pattern.endswith("+") and pattern in not_in:
        return False  # e.g. -i docker0 for a packet from outside
    return None


@functools.lru_cache(maxsize=65536)
def _in(address: str, network: str) -> bool | None:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return None


def _source(network: str, p: Packet) -> bool | None:
    if p.src is not None:
        return _in(p.src, network)
    try:
        net = ipaddress.ip_network(network, strict=False)
    except ValueError:
        return None
    if net.prefixlen == 0:
        return True
    # An outside client is in no Docker subnet and not on loopback.
    if net.is_loopback or any(within(net, s) for s in p.docker_subnets):
        return False
    return None


def _port_in(port: int, spec: str) -> bool | None:
    """Whether ``port`` is in iptables' list of ports and ranges; None if it is not one."""
    for part in spec.split(","):
        low, _, high = part.partition(":")
        if not (low or "0").isdigit() or not (high or low or "0").isdigit():
            return None  # a service name (--dport http), or not a port at all
        if int(low or 0) <= port <= int(high or low or 65535):
            return True
    return False


def after_dnat(packet: Packet, dnat: tuple[str, int]) -> Packet:
    address, port = dnat
    return replace(
        packet,
        dst=address,
        dport=port or packet.dport,
        orig_dst=packet.dst,
        orig_dport=packet.dport,
        local_dst=False,
    )
