"""Rules about the kernel's connection tracking: a flow keeps the NAT decision of its first
packet, so a flow that began before a port was published (or while it pointed at another
address) never meets today's DNAT."""

from __future__ import annotations

from collections.abc import Iterator

from doctor.facts.model import ConntrackEntry
from doctor.plugin import ENGINE_API, Evidence, Finding, Fix, HopName, Rule, RuleContext, finding

CONNTRACK = "/proc/net/nf_conntrack"
SHOWN = 3  # entries shown, and cleared one by one


def _stale(ctx: RuleContext) -> list[ConntrackEntry]:
    t, route = ctx.target, ctx.path.route
    if t.kind != "port" or t.port is None or route.container is None or not route.live:
        return []
    nat = ctx.path.decisions.get(HopName.NAT_DNAT)
    if nat is None or nat.dnat is None:
        return []  # no DNAT to bypass: DOCKER_RULES_MISSING, not old flows
    return ctx.facts.stale_flows(route.container, t.port, t.protocol)


def stale_conntrack(ctx: RuleContext) -> Iterator[Finding]:
    stale = _stale(ctx)
    client = ctx.target.client_address
    if client:
        stale = [e for e in stale if e.original.src == client]
    if not stale:
        return
    t, c = ctx.target, ctx.path.route.container
    assert c is not None
    first = stale[0]
    went = (
        "to this host itself"
        if not first.translated
        else f"to {first.reply.src}, an address {c.name} no longer has"
    )
    yield finding(
        "STALE_CONNTRACK",
        severity="error" if client else "warning",
        confidence=0.85,
        hop=HopName.NAT_DNAT,
        explanation=f"{len(stale)} {t.protocol.upper()} flow(s) to port {t.port} began before "
        f"today's DNAT to {c.name} existed, and the kernel keeps each flow's first NAT "
        f"decision: packets from {first.original.src}:{first.original.sport} still go {went}, "
        f"not to {c.name}, for as long as the client keeps sending (each packet renews the "
        "entry). New flows work.",
        evidence=[
            Evidence(
                "tracked flows that bypass the DNAT", [e.text for e in stale[:SHOWN]], CONNTRACK
            ),
            Evidence(f"{c.name} addresses", list(c.addresses), ENGINE_API),
        ],
        fix=Fix(
            "Delete just those flows' entries: their next packet is a new flow, and meets the DNAT",
            [
                f"conntrack -D{' -f ipv6' if ':' in e.original.src else ''} -p {e.protocol} "
                f"--orig-src {e.original.src} --orig-dst {e.original.dst} "
                f"--sport {e.original.sport} --dport {e.original.dport}"
                for e in stale[:SHOWN]
            ],
        ),
    )


RULES = [Rule("stale-conntrack", ("STALE_CONNTRACK",), stale_conntrack, ("host", "external"))]
