"""The iptables ruleset the engine programmed, as iptables-save prints it."""

from __future__ import annotations

from doctor import artifacts as a
from doctor.plugins import Probe, ProbeContext


def collect_iptables(ctx: ProbeContext) -> None:
    ctx.need_root("read the iptables ruleset")
    ctx.put(a.IPTABLES, ctx.run(["iptables-save"]))
    try:
        ctx.put(a.IP6TABLES, ctx.run(["ip6tables-save"]))
    except RuntimeError:
        pass  # no IPv6 tables in this kernel: the v4 ruleset still stands


PROBES = [Probe("iptables", collect_iptables, timeout=4.0)]
