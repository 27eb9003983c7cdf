"""One packet at one point of the kernel's path, through every ruleset that filters there.

iptables (what `iptables-save` shows), the other iptables backend when it holds rules
too, and native nftables tables (foreign ones, and Engine 29's nftables backend) all
see the packet: the first that does not accept decides; in the nat table, the first
that translates.
"""

from __future__ import annotations

from dataclasses import replace

from doctor.facts.model import Facts
from doctor.firewall.iptables import Decision, Packet, traverse
from doctor.firewall.nftables import evaluate

#: iptables (table, built-in chain) -> the nft hook, and which base chains there.
NFT_HOOKS = {
    ("raw", "PREROUTING"): ("prerouting", {"raw": True}),
    ("nat", "PREROUTING"): ("prerouting", {"nat": True}),
    ("filter", "FORWARD"): ("forward", {}),
    ("filter", "INPUT"): ("input", {}),
}


def walk(facts: Facts, table: str, chain: str, packet: Packet) -> Decision:
    decisions = [replace(traverse(fw, table, chain, packet), tool=tool)
                 for fw, tool in ((facts.firewall, "iptables"), (facts.legacy_firewall, "iptables-legacy")) if fw]
    if facts.nftables is not None and (table, chain) in NFT_HOOKS:
        hook, kind = NFT_HOOKS[table, chain]
        decisions.append(evaluate(facts.nftables, hook, packet, **kind))
    if not decisions:
        return Decision("unknown", None, chain, table, detail="no firewall ruleset was read")
    if table == "nat":
        return next((d for d in decisions if d.dnat), decisions[0])
    return next((d for d in decisions if d.verdict != "accept"), decisions[0])
