"""The packet walkers on small rulesets: iptables chains and nftables base chains."""

from __future__ import annotations

from pathlib import Path

from msgspec.structs import replace

from doctor.firewall.iptables import after_dnat, parse_iptables_save, traverse
from doctor.firewall.model import Packet
from doctor.firewall.nftables import evaluate, parse_ruleset
from doctor.snapshot import artifacts as a

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "snapshots"
OUTSIDE = Packet(
    "tcp",
    "192.0.2.2",
    8080,
    "eth0",
    local_dst=True,
    docker_subnets=("172.17.0.0/16",),
    not_in=("docker0", "lo"),
)

ENGINE_20 = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
"""


def test_iptables_dnat_then_the_per_port_accept():
    rules = parse_iptables_save(ENGINE_20)
    nat = traverse(rules, "nat", "PREROUTING", OUTSIDE)
    assert nat.dnat == ("172.17.0.2", 80) and nat.rule.chain == "DOCKER"
    forwarded = after_dnat(OUTSIDE, nat.dnat)

    decision = traverse(rules, "filter", "FORWARD", replace(forwarded, out_iface="docker0"))
    assert (decision.verdict, decision.rule.chain, decision.rule.position) == (
        "accept",
        "DOCKER",
        1,
    )


def test_an_unjudgeable_match_before_a_drop_is_unknown_not_a_guess():
    rules = parse_iptables_save(
        ENGINE_20.replace(
            "-A DOCKER-USER -j RETURN", "-A DOCKER-USER -m set --match-set blocklist src -j DROP"
        )
    )

    packet = replace(after_dnat(OUTSIDE, ("172.17.0.2", 80)), out_iface="docker0")
    decision = traverse(rules, "filter", "FORWARD", packet)
    assert decision.verdict == "unknown" and "-m set" in decision.detail
    assert decision.rule.chain == "DOCKER-USER"


def test_goto_and_policy():
    rules = parse_iptables_save(
        "*filter\n:FORWARD DROP [0:0]\n:X - [0:0]\n-A FORWARD -g X\n-A FORWARD -j ACCEPT\nCOMMIT\n"
    )
    decision = traverse(rules, "filter", "FORWARD", OUTSIDE)
    assert (decision.verdict, decision.rule, decision.policy) == (
        "drop",
        None,
        "DROP",
    )  # a goto never returns


def test_engine_29_nftables_tables_walk_like_the_kernel():
    ruleset = parse_ruleset((FIXTURES / "engine29-nftables-healthy" / a.NFT_RULESET).read_text())
    nat = evaluate(ruleset, "prerouting", OUTSIDE, nat=True)
    assert nat.dnat is not None and nat.rule.text.startswith(
        'iifname != "docker0" tcp dport 8080 dnat to'
    )

    forwarded = replace(after_dnat(OUTSIDE, nat.dnat), out_iface="docker0")
    assert evaluate(ruleset, "forward", forwarded).verdict == "accept"
    direct = Packet(
        "tcp", nat.dnat[0], 80, None, docker_subnets=("172.17.0.0/16",), not_in=("docker0", "lo")
    )
    blocked = evaluate(ruleset, "prerouting", direct, raw=True)
    assert blocked.verdict == "drop" and 'comment "DROP DIRECT ACCESS"' in blocked.rule.text


#: A container's first packet out of docker0 to a server out there, and the server's reply.
OUT = Packet("tcp", "203.0.113.10", 443, "docker0", "eth0", "172.17.0.2")
REPLY = Packet(
    "tcp", "172.17.0.2", None, "eth0", "docker0", "203.0.113.10", ctstate="ESTABLISHED", sport=443
)


def test_a_containers_way_out_masqueraded_and_its_replies_accepted_by_conntrack():
    rules = parse_iptables_save(
        ENGINE_20.replace(
            "-A FORWARD -o docker0 -j DOCKER\n",
            "-A FORWARD -o docker0 -j DOCKER\n-A FORWARD -i docker0 ! -o docker0 -j ACCEPT\n",
        ).replace(
            ":DOCKER - [0:0]\n-A PREROUTING",
            ":POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n"
            "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n-A PREROUTING",
        )
    )
    masquerade = traverse(rules, "nat", "POSTROUTING", OUT)
    assert (masquerade.snat, masquerade.rule.position) == (True, 1)
    assert traverse(rules, "nat", "POSTROUTING", replace(OUT, src="172.18.0.2")).snat is False
    assert (
        traverse(rules, "filter", "FORWARD", OUT).rule.text == "-i docker0 ! -o docker0 -j ACCEPT"
    )
    back = traverse(rules, "filter", "FORWARD", REPLY)
    assert "--ctstate RELATED,ESTABLISHED" in back.rule.text
    # A new connection in from eth0 is no reply: no conntrack accept for it, and the policy drops.
    new = replace(REPLY, ctstate="NEW", dport=5000)
    assert traverse(rules, "filter", "FORWARD", new).verdict == "drop"
    # --ctdir: the first packet goes the original way, its replies the other.
    by_direction = parse_iptables_save(
        "*filter\n:FORWARD ACCEPT [0:0]\n"
        "-A FORWARD -m conntrack --ctorigdstport 443 --ctdir ORIGINAL -j DROP\nCOMMIT\n"
    )
    assert traverse(by_direction, "filter", "FORWARD", OUT).verdict == "drop"
    assert traverse(by_direction, "filter", "FORWARD", REPLY).verdict == "accept"
    # A reply's port is the client's own, not known: a rule on it is not guessed.
    assert traverse(rules, "filter", "FORWARD", replace(REPLY, ctstate="NEW")).verdict == "unknown"

    ruleset = parse_ruleset((FIXTURES / "engine29-nftables-healthy" / a.NFT_RULESET).read_text())
    nft = evaluate(ruleset, "postrouting", OUT, nat=True)
    assert nft.snat and "ip saddr 172.17.0.0/16 masquerade" in nft.rule.text
    assert evaluate(ruleset, "forward", REPLY).verdict == "accept"


def test_loops_end_as_unknown_not_hang():
    rules = parse_iptables_save(
        "*filter\n:FORWARD ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A FORWARD -g A\n"
        "-A A -g B\n-A B -g A\nCOMMIT\n"
    )
    assert traverse(rules, "filter", "FORWARD", OUTSIDE).verdict == "unknown"
    import json

    loop = parse_ruleset(
        json.dumps(
            {
                "nftables": [
                    {
                        "chain": {
                            "family": "inet",
                            "table": "t",
                            "name": "fwd",
                            "hook": "forward",
                            "type": "filter",
                            "prio": 0,
                            "policy": "accept",
                        }
                    },
                    {"chain": {"family": "inet", "table": "t", "name": "a"}},
                    {
                        "rule": {
                            "family": "inet",
                            "table": "t",
                            "chain": "fwd",
                            "expr": [{"jump": {"target": "a"}}],
                        }
                    },
                    {
                        "rule": {
                            "family": "inet",
                            "table": "t",
                            "chain": "a",
                            "expr": [{"jump": {"target": "a"}}],
                        }
                    },
                ]
            }
        )
    )
    assert evaluate(loop, "forward", OUTSIDE).verdict == "unknown"


def nft(*rules, policy="drop"):
    import json

    items = [
        {
            "chain": {
                "family": "inet",
                "table": "t",
                "name": "fwd",
                "hook": "forward",
                "type": "filter",
                "prio": 0,
                "policy": policy,
            }
        }
    ]
    items += [
        {"rule": {"family": "inet", "table": "t", "chain": "fwd", "expr": expr}} for expr in rules
    ]
    return parse_ruleset(json.dumps({"nftables": items}))


def test_nft_return_from_a_base_chain_meets_its_policy_and_named_sets_are_not_guessed():
    assert evaluate(nft([{"return": None}]), "forward", OUTSIDE).verdict == "drop"
    in_set = {
        "match": {
            "op": "==",
            "left": {"payload": {"protocol": "ip", "field": "saddr"}},
            "right": "@blocked",
        }
    }
    assert (
        evaluate(nft([in_set, {"drop": None}], policy="accept"), "forward", OUTSIDE).verdict
        == "unknown"
    )
    # ...but a later match that is surely false rules the rule out.
    port = {
        "match": {
            "op": "==",
            "left": {"payload": {"protocol": "tcp", "field": "dport"}},
            "right": 22,
        }
    }
    assert (
        evaluate(nft([in_set, port, {"drop": None}], policy="accept"), "forward", OUTSIDE).verdict
        == "accept"
    )


def blocklist(count: int, before: str = "", after: str = "") -> str:
    """A fail2ban-like FORWARD: ``count`` source DROP rules, with ``before``/``after`` rules."""
    lines = ["*filter", ":FORWARD ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":SVC - [0:0]"]
    lines += [f"-A FORWARD {before}"] if before else []
    lines += [f"-A FORWARD -s 100.64.{n // 256}.{n % 256}/32 -j DROP" for n in range(count)]
    lines += [f"-A FORWARD {after}"] if after else []
    lines += [
        f"-A INPUT -d 10.96.{n // 256}.{n % 256}/32 -p tcp --dport 443 -j SVC" for n in range(count)
    ]
    lines += ["-A SVC -j REJECT", "COMMIT", ""]
    return "\n".join(lines)


def test_a_walk_through_thousands_of_host_rules_finds_the_one_that_matches():
    rules = parse_iptables_save(blocklist(5000, after="! -s 192.0.2.9/32 -j DROP"))
    blocked = replace(OUTSIDE, src="100.64.7.200")  # rule 7 * 256 + 200, position + 1
    decision = traverse(rules, "filter", "FORWARD", blocked)
    assert (decision.verdict, decision.rule.position) == ("drop", 7 * 256 + 200 + 1)
    # Not on the list: past all of it, to the negated rule, which no index may skip.
    other = traverse(rules, "filter", "FORWARD", replace(OUTSIDE, src="192.0.2.10"))
    assert (other.verdict, other.rule.position) == ("drop", 5001)
    assert traverse(rules, "filter", "FORWARD", replace(OUTSIDE, src="192.0.2.9")).rule is None
    # An outside client of unknown address may be on the list: the first rule is named.
    unknown = traverse(rules, "filter", "FORWARD", OUTSIDE)
    assert (unknown.verdict, unknown.rule.position) == ("unknown", 1)
    # Order still rules: an accept before the list wins.
    first = parse_iptables_save(blocklist(100, before="-p tcp --dport 8080 -j ACCEPT"))
    assert traverse(first, "filter", "FORWARD", blocked).verdict == "accept"
    # By destination: the one service rule for the address is the one jumped through.
    to_service = replace(OUTSIDE, dst="10.96.3.4", dport=443, local_dst=False)
    service = traverse(rules, "filter", "INPUT", to_service)
    assert (service.verdict, service.rule.chain) == ("reject", "SVC")
    assert traverse(rules, "filter", "INPUT", replace(to_service, dst="10.97.0.1")).rule is None
