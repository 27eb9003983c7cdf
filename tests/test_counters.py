"""The counters read around the live probe: which rule each firewall hop names, and how many
packets it counted meanwhile (the reading itself is staged in tests/test_egress.py)."""

from __future__ import annotations

import json

from doctor.firewall.model import Decision, FirewallRule
from doctor.live import counters

BEFORE = """*filter
:INPUT ACCEPT [10:600]
:FORWARD DROP [3:180]
:DOCKER-USER - [0:0]
[0:0] -A FORWARD -j DOCKER-USER
[5:300] -A DOCKER-USER -i eth0 -j DROP
[1:60] -A DOCKER-USER -j RETURN
COMMIT
"""
AFTER = BEFORE.replace("[5:300] -A DOCKER-USER", "[7:420] -A DOCKER-USER")


def test_the_deciding_rule_and_the_policy_are_watched_and_counted():
    drop = FirewallRule("filter", "DOCKER-USER", 1, "-i eth0 -j DROP", "DROP")
    watched = counters.watch(
        {
            "return-path": Decision("drop", drop, "DOCKER-USER", "filter"),
            "filter-forward": Decision("drop", None, "FORWARD", "filter", policy="DROP"),
            "nat-dnat": Decision("unknown", None, "PREROUTING", "nat"),  # nothing decided
        }
    )
    assert [w.shown for w in watched] == ["filter DOCKER-USER rule 1", "filter FORWARD policy"]
    before, after = (counters._iptables("iptables", text) for text in (BEFORE, AFTER))
    moved = counters.counted(watched, before, after)
    assert [str(c) for c in moved] == [
        "filter DOCKER-USER rule 1: +2 packets during the probe",
        "filter FORWARD policy: +0 packets during the probe",
    ]


def test_an_nft_rule_without_a_counter_is_uncountable_not_guessed():
    ruleset = {
        "nftables": [
            {
                "rule": {
                    "family": "inet",
                    "table": "filter",
                    "chain": "forward",
                    "handle": 7,
                    "expr": [{"counter": {"packets": 4, "bytes": 240}}, {"drop": None}],
                }
            },
            {
                "rule": {
                    "family": "inet",
                    "table": "filter",
                    "chain": "forward",
                    "handle": 9,
                    "expr": [{"drop": None}],
                }
            },
        ]
    }
    read = counters._nft(json.dumps(ruleset))
    assert read == {("nft", "nft inet filter", "forward", 7): 4}
    rules = [
        FirewallRule("nft inet filter", "forward", n, f"drop  # handle {h}", None)
        for n, h in ((1, 7), (2, 9))
    ]
    watched = counters.watch(
        {
            f"hop{n}": Decision("drop", r, "forward", "nft inet filter", tool="nft")
            for n, r in enumerate(rules)
        }
    )
    moved = counters.counted(watched, read, {**read, watched[0].key: 6})
    assert [str(c) for c in moved] == [
        "inet filter forward handle 7: +2 packets during the probe",
        "inet filter forward handle 9: uncountable (no counter)",
    ]


def test_hops_the_probe_does_not_pass_are_not_watched_and_v6_tables_keep_their_tool():
    drop = FirewallRule("filter6", "DOCKER-USER", 2, "-i eth0 -j DROP", "DROP")
    decisions = {
        "filter-forward": Decision("drop", drop, "DOCKER-USER", "filter6", tool="iptables-legacy"),
        "filter-input": Decision("accept", None, "INPUT", "filter", policy="ACCEPT"),
    }
    (watched,) = counters.watch(decisions, unseen=("filter-forward",))
    assert watched.hop == "filter-input"
    (legacy, _) = counters.watch(decisions)
    assert (legacy.tool, legacy.table, legacy.chain, legacy.position) == (
        "ip6tables-legacy",
        "filter",
        "DOCKER-USER",
        2,
    )
    assert "ip6tables-legacy" in counters.SAVE
