"""The firewall: iptables rules as iptables-save prints them (both backends), and nftables as JSON."""

from __future__ import annotations

import contextlib
import json
import shutil

from doctor.firewall.nftables import IPTABLES_TABLES
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
    """The native nft tables. Where iptables-save reads iptables-nft's own tables, only the
    others are listed: printing those as JSON costs nft ~30 ms on a Docker host, and the
    parser would drop them anyway. A bundle keeps the whole ruleset."""
    ctx.need_linux_host("nftables rules")
    ctx.need_root("read the nftables ruleset")
    if ctx.thorough or shutil.which("iptables-save") is None:
        ctx.put(a.NFT_RULESET, ctx.run(["nft", "-j", "list", "ruleset"]))
        return
    listed = json.loads(ctx.run(["nft", "-j", "list", "tables"])).get("nftables", [])
    items = [item for item in listed if "metainfo" in item]
    for item in listed:
        table = item.get("table") or {}
        family, name = str(table.get("family") or ""), str(table.get("name") or "")
        if not (family and name) or (family in ("ip", "ip6") and name in IPTABLES_TABLES):
            continue
        shown = json.loads(ctx.run(["nft", "-j", "list", "table", family, name]))
        items += [i for i in shown.get("nftables", []) if "metainfo" not in i]
    ctx.put(a.NFT_RULESET, {"nftables": items})


PROBES = [
    Probe("iptables", collect_iptables, timeout=4.0),
    Probe("nftables", collect_nftables, timeout=4.0),
]
