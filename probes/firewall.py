"""The firewall: iptables rules as iptables-save prints them (both backends), and nftables as JSON."""

from __future__ import annotations

import contextlib

from doctor.plugin import Probe, ProbeContext, Skip
from doctor.snapshot import artifacts as a


def collect_iptables(ctx: ProbeContext) -> None:
    ctx.need_linux_host("iptables rules")
    ctx.need_root("read the iptables ruleset")
    ctx.put(a.IPTABLES, ctx.run(["iptables-save"]))
    with contextlib.suppress(RuntimeError):  # no IPv6 tables in this kernel: the v4 ruleset stands
        ctx.put(a.IP6TABLES, ctx.run(["ip6tables-save"]))
    # Both backends filter packets when both hold rules, whichever one `iptables` names.
    try:
        legacy = ctx.run(["iptables-legacy-save"])
    except (Skip, RuntimeError):
        return  # no legacy tool, or no legacy tables in this kernel
    if legacy.strip():
        ctx.put(a.IPTABLES_LEGACY, legacy)


def collect_nftables(ctx: ProbeContext) -> None:
    ctx.need_linux_host("nftables rules")
    ctx.need_root("read the nftables ruleset")
    ctx.put(a.NFT_RULESET, ctx.run(["nft", "-j", "list", "ruleset"]))


PROBES = [
    Probe("iptables", collect_iptables, timeout=4.0),
    Probe("nftables", collect_nftables, timeout=4.0),
]
