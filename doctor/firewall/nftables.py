"""nftables rulesets (``nft -j list ruleset``): parsed, and walked for one packet at one hook.

Native nft tables sit beside iptables' (which iptables-nft keeps as nft tables too,
read through iptables-save instead).  Every base chain on a hook sees the packet: an
``accept`` ends only its own chain, a ``drop`` anywhere is final, so a foreign table
with ``policy drop`` on the forward hook drops what Docker's rules accept.  Engine 29's
nftables backend (tables ``ip docker-bridges`` / ``ip6 docker-bridges``) is walked the
same way.  Expressions this module does not understand make the decision ``unknown``.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import msgspec
from msgspec import Struct, field

from doctor.firewall.model import Action, Decision, FirewallRule, Packet, within
from doctor.firewall.tables import owned_by_iptables

MAX_STEPS = 100_000
MAX_DEPTH = 64
RAW_PRIORITY_MAX = -200  # raw is -300, conntrack -200: base chains before connection tracking
NEUTRAL = {"counter", "log", "notrack", "meta-set", "mangle", "ct-set"}
SOURCE_NAT = {"masquerade", "snat"}  # in a nat chain: the rewrite that ends it
FAMILIES = {"ip": 4, "ip6": 6, "inet": 0}


class NftRule(Struct, frozen=True):
    position: int
    handle: int | None
    expr: tuple[Any, ...]
    comment: str | None

    def text(self) -> str:
        shown = " ".join(filter(None, (_render(e) for e in self.expr)))
        return shown + (f' comment "{self.comment}"' if self.comment else "")


class NftChain(Struct, frozen=True):
    family: str
    table: str
    name: str
    rules: tuple[NftRule, ...]
    hook: str | None = None
    kind: str | None = None  # filter, nat, route
    priority: int = 0
    policy: str = "accept"

    @property
    def where(self) -> str:
        return f"{self.family} {self.table}"


class NftRuleset(Struct, frozen=True):
    chains: dict[tuple[str, str, str], NftChain]  # (family, table, name) -> chain
    maps: dict[tuple[str, str, str], dict[str, Any]] = field(
        default_factory=dict
    )  # name -> {key: verdict}
    tables: tuple[tuple[str, str], ...] = ()

    def base_chains(self, hook: str, version: int) -> list[NftChain]:
        found = [
            c
            for c in self.chains.values()
            if c.hook == hook and FAMILIES.get(c.family, -1) in (0, version)
        ]
        return sorted(found, key=lambda c: c.priority)


def parse_ruleset(text: str, iptables_read: bool = False) -> NftRuleset:
    """The native tables of ``nft -j list ruleset``; with ``iptables_read``, without the tables
    iptables-nft owns (iptables-save showed those already)."""
    try:  # msgspec's decoder: three times the standard library's on 10,000 rules
        document = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise ValueError(f"nft ruleset: {exc}") from None
    try:
        return _ruleset(document["nftables"], iptables_read)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # Not what nft prints (a hand-edited snapshot): the whole ruleset is unknown rather
        # than a rule silently dropped.
        raise ValueError(f"nft ruleset: not nft's JSON ({type(exc).__name__}: {exc})") from None


def _ruleset(items: list[Any], iptables_read: bool) -> NftRuleset:
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[NftRule]] = {}
    maps: dict[tuple[str, str, str], dict[str, Any]] = {}
    tables = []
    for item in items:
        ((kind, body),) = item.items()
        table = body.get("table", body.get("name"))
        if iptables_read and kind != "metainfo" and owned_by_iptables(body.get("family"), table):
            continue
        if kind == "table":
            tables.append((_name(body["family"]), _name(body["name"])))
        elif kind == "chain":
            chains[(_name(body["family"]), _name(body["table"]), _name(body["name"]))] = body
        elif kind == "rule":
            key = (_name(body["family"]), _name(body["table"]), _name(body["chain"]))
            found = rules.setdefault(key, [])
            expr = body.get("expr", [])
            # each statement is an object of one key, its kind ({"match": {...}}), as nft prints
            if not isinstance(expr, list) or not all(
                isinstance(e, dict) and len(e) == 1 for e in expr
            ):
                raise TypeError("a rule's expr is not a list of statements")
            comment = body.get("comment")
            found.append(
                NftRule(
                    len(found) + 1,
                    body.get("handle"),
                    tuple(expr),
                    comment if isinstance(comment, str) else None,
                )
            )
        elif kind == "map":
            key = (_name(body["family"]), _name(body["table"]), _name(body["name"]))
            maps[key] = {_key(k): v for k, v in body.get("elem", ())}
    return NftRuleset(
        {
            key: NftChain(
                key[0],
                key[1],
                key[2],
                tuple(rules.get(key, ())),
                _optional_name(c.get("hook")),
                _optional_name(c.get("type")),
                int(c.get("prio", 0)) if not isinstance(c.get("prio"), dict) else 0,
                _name(c.get("policy", "accept")),
            )
            for key, c in chains.items()
        },
        maps,
        tuple(tables),
    )


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} where nft prints a name")
    return value


def _optional_name(value: Any) -> str | None:
    return None if value is None else _name(value)


def _key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def evaluate(
    ruleset: NftRuleset, hook: str, packet: Packet, *, nat: bool = False, raw: bool = False
) -> Decision:
    """The packet at ``hook`` through every native base chain there (nat chains only with ``nat``;
    with ``raw``, only the filter chains that run before connection tracking)."""

    def wanted(chain: NftChain) -> bool:
        if nat or chain.kind == "nat":
            return nat and chain.kind == "nat"
        return chain.priority <= RAW_PRIORITY_MAX if raw else True

    version = 6 if ":" in packet.dst else 4
    for chain in filter(wanted, ruleset.base_chains(hook, version)):
        decision = _walk(ruleset, chain, packet)
        if nat and (decision.dnat or decision.snat):
            return decision
        if decision.verdict != "accept":
            return decision
    return Decision("accept", None, hook, "nft", tool="nft")


def _walk(ruleset: NftRuleset, base: NftChain, packet: Packet) -> Decision:
    def policy() -> Decision:  # the end of the base chain, or a return from it: its policy decides
        verdict: Action = "drop" if base.policy == "drop" else "accept"
        return Decision(
            verdict, None, base.name, f"nft {base.where}", policy=base.policy, tool="nft"
        )

    stack: list[tuple[NftChain, int]] = [(base, 0)]
    steps = 0
    while stack:
        steps += 1
        if steps > MAX_STEPS or len(stack) > MAX_DEPTH:  # a jump cycle: hostile or broken
            return Decision(
                "unknown",
                None,
                base.name,
                f"nft {base.where}",
                detail="jumps in a loop",
                tool="nft",
            )
        chain, index = stack.pop()
        if index >= len(chain.rules):
            if not stack:
                return policy()
            continue
        rule = chain.rules[index]
        stack.append((chain, index + 1))
        outcome, detail = _rule(ruleset, chain, rule, packet)
        if outcome is None:
            return _decision("unknown", chain, rule, detail)
        if outcome == "next":
            continue
        kind, argument = outcome
        if kind in ("accept", "drop", "reject"):
            return _decision(VERDICTS[kind], chain, rule, "")
        if kind in ("dnat", "snat"):  # a nat chain's rewrite ends its walk
            return Decision(
                "accept",
                _as_rule(chain, rule),
                chain.name,
                f"nft {chain.where}",
                dnat=argument if kind == "dnat" else None,
                snat=kind == "snat",
                tool="nft",
            )
        if kind == "return":
            stack.pop()
            if not stack:
                return policy()
            continue
        called = ruleset.chains.get((chain.family, chain.table, argument))
        if called is None:
            return _decision("unknown", chain, rule, f"no chain {argument}")
        if kind == "goto":
            stack.pop()
        stack.append((called, 0))
    return Decision("accept", None, base.name, f"nft {base.where}", tool="nft")


VERDICTS: dict[str, Action] = {"accept": "accept", "drop": "drop", "reject": "reject"}


def _decision(verdict: Action, chain: NftChain, rule: NftRule, detail: str) -> Decision:
    return Decision(
        verdict,
        _as_rule(chain, rule),
        chain.name,
        f"nft {chain.where}",
        detail=detail,
        tool="nft",
    )


def _as_rule(chain: NftChain, rule: NftRule) -> FirewallRule:
    return FirewallRule(
        f"nft {chain.where}",
        chain.name,
        rule.position,
        rule.text() + (f"  # handle {rule.handle}" if rule.handle is not None else ""),
        None,
    )


def _rule(ruleset: NftRuleset, chain: NftChain, rule: NftRule, packet: Packet) -> tuple[Any, str]:
    """("next" | (verdict, argument) | None, why unknown)."""
    unknown = ""
    for expr in rule.expr:
        ((name, value),) = expr.items()
        if name == "match":
            result = _match(value, packet)
            if result is None:
                unknown = unknown or f"cannot judge {json.dumps(value)[:120]}"
                continue  # a later match may still rule the rule out
            if not result:
                return "next", ""
            continue
        if unknown and name not in NEUTRAL:
            return None, unknown
        elif name in ("accept", "drop", "reject", "return"):
            return (name, None), ""
        elif name in ("jump", "goto"):
            return (name, value["target"]), ""
        elif name == "dnat":
            return ("dnat", (value.get("addr"), int(value.get("port") or 0))), ""
        elif name in SOURCE_NAT:
            return ("snat", None), ""
        elif name == "vmap":
            verdict = _vmap(ruleset, chain, value, packet)
            if verdict is None:
                return None, f"cannot judge the verdict map {value.get('data')}"
            if verdict != "next":
                return verdict, ""
        elif name == "limit" or name == "quota":
            if value.get("inv"):  # "over": matches only past the rate or quota
                return "next", ""
        elif name not in NEUTRAL:
            return None, f"cannot judge {name}"
    return "next", ""


def _vmap(ruleset: NftRuleset, chain: NftChain, value: dict[str, Any], packet: Packet) -> Any:
    key = _field(value.get("key"), packet)
    data = value.get("data")
    if key is None:
        return None
    elements = (
        ruleset.maps.get((chain.family, chain.table, data[1:]))
        if isinstance(data, str)
        else {_key(k): v for k, v in (data or {}).get("set", ())}
    )
    if elements is None or any(
        not isinstance(k, str) or k.startswith("{") or "*" in k for k in elements
    ):
        return None  # prefixes, ranges or wildcards as keys: not judged
    verdict = elements.get(str(key))
    if verdict is None:
        return "next"
    ((kind, argument),) = verdict.items()
    return (kind, argument["target"] if isinstance(argument, dict) else None)


def _field(left: Any, p: Packet) -> Any:
    """The packet's value for an expression's left side, or None when not known."""
    if not isinstance(left, dict):
        return None
    if "meta" in left:
        key = left["meta"]["key"]
        return {
            "iifname": p.in_iface,
            "oifname": p.out_iface,
            "l4proto": p.protocol,
            "nfproto": "ipv6" if ":" in p.dst else "ipv4",
        }.get(key)
    if "payload" in left:
        proto, name = left["payload"].get("protocol"), left["payload"].get("field")
        if proto in ("tcp", "udp"):
            if proto != p.protocol:
                return _Absent()
            return p.dport if name == "dport" else p.sport if name == "sport" else None
        if proto in ("ip", "ip6"):
            if (proto == "ip6") != (":" in p.dst):
                return _Absent()
            return p.dst if name == "daddr" else p.src if name == "saddr" else None
    if "ct" in left and left["ct"].get("key") == "state":
        return p.ctstate.lower()
    if (
        "fib" in left
        and left["fib"].get("result") == "type"
        and "daddr" in left["fib"].get("flags", ())
    ):
        return "local" if p.local_dst else "unicast"
    return None


class _Absent:
    """A header the packet does not have (tcp dport of a UDP packet): no match."""


def _match(value: dict[str, Any], p: Packet) -> bool | None:
    op: str = value.get("op", "==")
    left, right = value.get("left"), value.get("right")
    actual = _field(left, p)
    if isinstance(actual, _Absent):
        return False
    if actual is None:
        # An unknown interface is still known not to be a Docker bridge or lo.
        if (
            isinstance(left, dict)
            and left.get("meta", {}).get("key") == "iifname"
            and isinstance(right, str)
            and right in p.not_in
        ):
            return op == "!="
        if isinstance(left, dict) and left.get("payload", {}).get("field") == "saddr":
            return _outside_source(op, right, p)
        return None
    hit = _contains(right, actual)
    if hit is None:
        return None
    return hit if op in ("==", "in") else (not hit if op == "!=" else None)


def _contains(right: Any, actual: Any) -> bool | None:
    if isinstance(right, dict):
        if "set" in right:
            hits = [_contains(item, actual) for item in right["set"]]
            return True if True in hits else (None if None in hits else False)
        if "range" in right:
            low, high = right["range"]
            return low <= actual <= high if isinstance(actual, int) else None
        if "prefix" in right:
            try:
                network = ipaddress.ip_network(
                    f"{right['prefix']['addr']}/{right['prefix']['len']}", strict=False
                )
                return ipaddress.ip_address(actual) in network
            except ValueError:
                return None
        return None
    if isinstance(right, list):
        return actual in right
    if isinstance(right, str) and right.startswith("@"):
        return None  # a named set: its elements are not in the rule
    if isinstance(right, str) and right.endswith("*") and isinstance(actual, str):
        return actual.startswith(right[:-1])  # an interface wildcard, "eth*"
    return actual == right or str(actual) == str(right)


def _outside_source(op: str, right: Any, p: Packet) -> bool | None:
    if not isinstance(right, dict) or "prefix" not in right:
        return None
    network = ipaddress.ip_network(
        f"{right['prefix']['addr']}/{right['prefix']['len']}", strict=False
    )
    inside = network.is_loopback or any(within(network, s) for s in p.docker_subnets)
    if not inside:
        return None
    return op == "!="


def _render(expr: dict[str, Any]) -> str:
    ((name, value),) = expr.items()
    if name == "match":
        return (
            f"{_render_side(value.get('left'))} "
            f"{'' if value.get('op') in ('==', 'in') else value.get('op') + ' '}"
            f"{_render_side(value.get('right'))}"
        )
    if name in ("accept", "drop", "return", "reject"):
        return name
    if name in ("jump", "goto"):
        return f"{name} {value['target']}"
    if name == "dnat":
        return f"dnat to {value.get('addr')}:{value.get('port')}"
    if name == "vmap":
        return f"{_render_side(value.get('key'))} vmap {value.get('data')}"
    return "" if name in NEUTRAL else name


def _render_side(side: Any) -> str:
    if isinstance(side, dict):
        if "meta" in side:
            return str(side["meta"]["key"])
        if "payload" in side:
            return f"{side['payload']['protocol']} {side['payload']['field']}"
        if "ct" in side:
            return f"ct {side['ct']['key']}"
        if "fib" in side:
            return f"fib {' . '.join(side['fib'].get('flags', ()))} {side['fib'].get('result')}"
        if "prefix" in side:
            return f"{side['prefix']['addr']}/{side['prefix']['len']}"
        if "set" in side:
            return "{ " + ", ".join(_render_side(x) for x in side["set"]) + " }"
        if "range" in side:
            return f"{side['range'][0]}-{side['range'][1]}"
    if isinstance(side, list):
        return ",".join(map(str, side))
    return f'"{side}"' if isinstance(side, str) and not side[:1].isdigit() else str(side)
