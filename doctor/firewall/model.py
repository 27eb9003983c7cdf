"""One model for every ruleset: a packet at one point of the kernel's path, a rule as
evidence (an iptables rule, or an nft rule shown the same way), and the decision."""

from __future__ import annotations

import ipaddress
from typing import Literal

from msgspec import Struct

Action = Literal["accept", "drop", "reject", "unknown"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def within(network: Network, subnet: str) -> bool:
    """Whether ``network`` lies inside ``subnet`` (of the same address family)."""
    outer = ipaddress.ip_network(subnet, strict=False)
    if isinstance(network, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return network.subnet_of(outer)
    if isinstance(network, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return network.subnet_of(outer)
    return False


class FirewallRule(Struct, frozen=True):
    """One rule, as its tool lists it: an iptables rule as iptables-save wrote it, or an nft rule."""

    table: str  # iptables' table, or "nft FAMILY TABLE"
    chain: str
    position: int  # 1-based, as `iptables -L --line-numbers` counts
    text: str  # the rule without "-A CHAIN"
    target: str | None

    def __str__(self) -> str:
        return f"-t {self.table} -A {self.chain} {self.text}"


class Packet(Struct, frozen=True):
    """A packet of a connection as it is at the hook being walked: its first packet (NEW), or
    a reply (ESTABLISHED), whose destination port is the client's and not known."""

    protocol: str  # tcp, udp
    dst: str
    dport: int | None  # None: not known (a reply's, to the client's own port)
    in_iface: str | None  # None: not known
    out_iface: str | None = None  # None: not routed yet, or not known
    src: str | None = None  # None: some address outside every Docker network and loopback
    orig_dst: str | None = None  # before DNAT (conntrack's original direction)
    orig_dport: int | None = None
    local_dst: bool = False  # addrtype LOCAL: dst is an address of this host
    docker_subnets: tuple[str, ...] = ()  # where an unknown src is known not to be
    not_in: tuple[str, ...] = ()  # interfaces an unknown in_iface is known not to be (bridges, lo)
    ctstate: str = "NEW"  # conntrack's state of the packet: NEW, or ESTABLISHED for a reply
    sport: int | None = None  # None: not known (a client's own port)


class Decision(Struct, frozen=True):
    verdict: Action
    rule: FirewallRule | None  # the rule that decided; None: the chain policy (or nothing decided)
    chain: str  # where it was decided
    table: str
    policy: str | None = None
    detail: str = ""
    dnat: tuple[str, int] | None = None  # nat: where DNAT sends the packet
    snat: bool = False  # nat: a MASQUERADE or SNAT rewrites the packet's source
    tool: str = "iptables"  # or iptables-legacy, nft: where the deciding rule lives

    def __str__(self) -> str:
        where = f"{self.table} {self.chain}" + (
            " (iptables-legacy)" if self.tool == "iptables-legacy" else ""
        )
        if self.rule is not None:
            return f"{where} rule {self.rule.position}: {self.rule.text}"
        return f"{where} policy {self.policy or 'ACCEPT'}"
