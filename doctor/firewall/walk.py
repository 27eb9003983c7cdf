"""One packet at one point of the kernel's path, through every ruleset that filters there.

iptables (what `iptables-save` shows), the other iptables backend when it holds rules
too, and native nftables tables (foreign ones, and Engine 29's nftables backend) all
see the packet: the first that does not accept decides; in the nat table, the first
that translates.
"""

from __future__ import annotations

from msgspec import Struct
from msgspec.structs import replace

from doctor.firewall.iptables import IptablesRuleset, traverse
from doctor.firewall.model import Decision, Packet
from doctor.firewall.nftables import NftRuleset, evaluate

#: iptables (table, built-in chain) -> the nft hook, and which base chains there.
NFT_HOOKS = {
    ("raw", "PREROUTING"): ("prerouting", {"raw": True}),
    ("nat", "PREROUTING"): ("prerouting", {"nat": True}),
    ("nat", "POSTROUTING"): ("postrouting", {"nat": True}),
    ("filter", "FORWARD"): ("forward", {}),
    ("filter", "INPUT"): ("input", {}),
}


class Rulesets(Struct, frozen=True):
    """Every ruleset read from one host; None: not read."""

    #: what `iptables-save` shows (v6 tables as "filter6", "nat6", ...)
    iptables: IptablesRuleset | None
    legacy: IptablesRuleset | None = None  # iptables-legacy's, when the other backend is nft
    #: native nft tables (not iptables-nft's, which `iptables` shows)
    nftables: NftRuleset | None = None

    @property
    def read(self) -> bool:
        return self.iptables is not None or self.nftables is not None


def walk(rulesets: Rulesets, table: str, chain: str, packet: Packet) -> Decision:
    decisions = [
        replace(traverse(ruleset, table, chain, packet), tool=tool)
        for ruleset, tool in ((rulesets.iptables, "iptables"), (rulesets.legacy, "iptables-legacy"))
        if ruleset
    ]
    if rulesets.nftables is not None and (table, chain) in NFT_HOOKS:
        hook, kind = NFT_HOOKS[table, chain]
        decisions.append(evaluate(rulesets.nftables, hook, packet, **kind))
    if not decisions:
        return Decision("unknown", None, chain, table, detail="no firewall ruleset was read")
    if table == "nat":
        return next((d for d in decisions if d.dnat or d.snat), decisions[0])
    return next((d for d in decisions if d.verdict != "accept"), decisions[0])
