"""The firewall: iptables rules as iptables-save prints them (both backends), and nftables as JSON."""

from __future__ import annotations

import contextlib
import json

from doctor.collect import netlink
from doctor.firewall.tables import WHOLE_RULESET, listing, owned_by_iptables
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
    """The native nft tables. Where iptables-save read iptables-nft's own tables, only the
    others are listed, each by itself: nft prints the whole ruleset only after translating
    every iptables-nft rule (0.5 s with 10,000 of them), and the parser would drop those
    anyway. The tables are named by netlink, for `nft list tables` translates them all too.
    A bundle keeps the whole ruleset, and so does a run whose iptables-save failed (the nft
    view of those tables is then all there is)."""
    ctx.need_linux_host("nftables rules")
    ctx.need_root("read the nftables ruleset")
    if ctx.thorough or a.IPTABLES not in ctx.snapshot.artifacts:
        ctx.put(a.NFT_RULESET, ctx.run(list(WHOLE_RULESET)))
        return
    try:
        tables = netlink.nft_tables(ctx.remaining())
    except OSError:  # no nfnetlink here: as nft lists them
        listed = json.loads(ctx.run(["nft", "-j", "list", "tables"])).get("nftables", [])
        tables = [(t["family"], t["name"]) for i in listed if (t := i.get("table"))]
    foreign = [t for t in tables if not owned_by_iptables(*t)]
    shown = [ctx.run(list(listing(family, name))) for family, name in foreign]
    if len(shown) == 1:
        ctx.put(a.NFT_RULESET, shown[0])  # as nft printed it: decoding it to join costs 0.1 s
        return
    items = [
        i for text in shown for i in json.loads(text).get("nftables", []) if "metainfo" not in i
    ]
    ctx.put(a.NFT_RULESET, {"nftables": items})


PROBES = [
    Probe("iptables", collect_iptables, timeout=4.0),
    Probe("nftables", collect_nftables, timeout=4.0, requires=("iptables",)),
]
