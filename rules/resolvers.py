"""Rules about where a container's resolvers come from (``--from CONTAINER NAME:PORT``): the
engine's public fallback, a host file that gives it nothing, resolvers left from an earlier
start, and search domains that send names upstream first (doctor.facts.dns says how the
engine builds a container's resolv.conf)."""

from __future__ import annotations

from collections.abc import Iterator

from doctor.facts.model import Container, Facts, is_ip
from doctor.plugin import (
    FALLBACK_RESOLVERS,
    DnsAnswer,
    Evidence,
    Finding,
    Fix,
    HopName,
    Rule,
    RuleContext,
    Severity,
    finding,
    provenance,
    stale_resolvers,
)

FILES = "the container's etc files"
HOST_FILE = "/etc/resolv.conf"
LIVE = "queries from inside the container, in its resolver's order"
CLIENT = ("container",)
FAILURES = ("timeout", "refused", "error", "failed")
SLOW_MS = 500  # search-domain queries that cost this much before the name itself answers


def _failed_answer(ctx: RuleContext) -> DnsAnswer | None:
    answer = ctx.seen.answer if ctx.seen else None
    return answer if answer is not None and answer.outcome in FAILURES else None


def _lookup_failed(ctx: RuleContext) -> bool:
    """The name does not resolve: by the facts, or by the live query."""
    return ctx.broken(HopName.NAME_RESOLUTION) or _failed_answer(ctx) is not None


def host_file_gives_nothing(facts: Facts) -> bool:
    """/etc/resolv.conf is missing, a link to nothing, or names no nameserver."""
    if facts.resolv_conf_state in ("missing", "dangling"):
        return True
    return facts.resolv_conf_state == "file" and not (
        facts.resolv_conf and facts.resolv_conf.nameservers
    )


def explains_resolver_failure(ctx: RuleContext) -> bool:
    """Whether one of this module's rules speaks for a failed lookup: how the engine built the
    container's resolvers explains it better than DNS_RESOLVER_UNREACHABLE does."""
    causes = (dns_fallback_unreachable, host_resolv_conf_broken, stale_dns_config)
    return any(next(rule(ctx), None) is not None for rule in causes)


def _container_servers(c: Container) -> Evidence:
    conf = c.resolv_conf
    return Evidence(
        f"{c.name} resolv.conf nameservers", list(conf.nameservers) if conf else None, FILES
    )


def _engine_notes(c: Container) -> list[Evidence]:
    notes = c.resolv_conf.notes if c.resolv_conf else None
    if notes is None:
        return []
    said = [f"based on {notes.source or 'no file'} ({notes.transform})", *notes.warnings]
    if notes.ext_servers:
        said.append(f"ExtServers: {' '.join(notes.ext_servers)}")
    return [Evidence(f"{c.name} resolv.conf, the engine's notes", said, FILES)]


def _live(answer: DnsAnswer) -> Evidence:
    return Evidence("live DNS query", str(answer), LIVE)


def dns_fallback_unreachable(ctx: RuleContext) -> Iterator[Finding]:
    owner, answer = ctx.sender, _failed_answer(ctx)
    now = provenance(owner, ctx.facts)
    if answer is None or now is None or now.mode != "legacy" or not now.fallback:
        return
    if not now.host_servers or answer.server not in FALLBACK_RESOLVERS:
        return  # no host nameserver at all is HOST_RESOLV_CONF_BROKEN
    stub = now.dropped[0] if now.dropped else "the host's resolver"
    yield finding(
        "DNS_FALLBACK_UNREACHABLE",
        severity="error",
        confidence=0.9,
        hop=HopName.NAME_RESOLUTION,
        affects=CLIENT,
        explanation=f"{owner.name} is on the default bridge, which has no embedded DNS: the "
        f"engine read {now.source} ({', '.join(now.host_servers)}), left out those it cannot "
        f"use (a loopback one would be {owner.name}'s own loopback; an IPv6 one needs IPv6 on "
        f"the network), and with none left wrote its public fallback "
        f"{', '.join(now.servers)}. {answer.server} does not answer from here: "
        f"{answer.detail or answer.outcome}.",
        evidence=[
            Evidence("host resolv.conf nameservers", list(now.host_servers), now.source),
            _container_servers(owner),
            *_engine_notes(owner),
            Evidence("why", now.why, "how the engine builds resolv.conf"),
            _live(answer),
        ],
        fix=Fix(
            f"Put {owner.name} on a user-defined network, whose embedded DNS asks {stub} from "
            "the host's namespace, or give it a resolver it can reach",
            [
                f"docker network create {owner.name}-net",
                f"docker network connect {owner.name}-net {owner.name}",
                f"docker run --dns UPSTREAM_IP ...  # compose: dns: [UPSTREAM_IP], not {stub}",
                '# or for every container, /etc/docker/daemon.json: {"dns": ["UPSTREAM_IP"]}',
            ],
        ),
    )


def host_resolv_conf_broken(ctx: RuleContext) -> Iterator[Finding]:
    facts, owner = ctx.facts, ctx.sender
    now = provenance(owner, facts)
    if now is None or now.mode in ("override", "host") or not host_file_gives_nothing(facts):
        return
    answer = _failed_answer(ctx)
    unknown_name = not facts.known_to_engine(ctx.asked_name.lower())
    if answer is None and not (ctx.seen is None and unknown_name and _lookup_failed(ctx)):
        return  # a live answer came, or the name is a container's: the embedded DNS knows it
    state = facts.resolv_conf_state
    shown = {
        "missing": "missing",
        "dangling": f"a link to {facts.resolv_conf_link}, which does not exist",
    }.get(state or "", "no nameserver line")
    got = (
        f"wrote its public fallback {', '.join(now.servers)} into {owner.name}'s resolv.conf"
        if now.mode == "legacy"
        else f"gave {owner.name}'s embedded DNS "
        + (f"the public fallback {', '.join(now.servers)}" if now.servers else "no upstream")
    )
    restore = (
        "systemctl restart systemd-resolved  # it writes " + facts.resolv_conf_link
        if state == "dangling" and facts.resolv_conf_link and "systemd" in facts.resolv_conf_link
        else f"echo 'nameserver UPSTREAM_IP' > {HOST_FILE}"
    )
    yield finding(
        "HOST_RESOLV_CONF_BROKEN",
        severity="error",
        confidence=0.9,
        hop=HopName.NAME_RESOLUTION,
        affects=CLIENT,
        explanation=f"This host's {HOST_FILE} is {shown}, so the engine had no nameserver to "
        f"give and {got}: names outside the engine do not resolve for {owner.name}.",
        evidence=[
            Evidence(HOST_FILE, shown, "the host's file system"),
            _container_servers(owner),
            *_engine_notes(owner),
            *([_live(answer)] if answer else []),
        ],
        fix=Fix(
            f"Give the host a resolv.conf with a nameserver, then restart {owner.name} (the engine "
            "writes its resolvers when it starts)",
            [
                restore,
                f"docker restart {owner.name}",
                '# or name them for every container, /etc/docker/daemon.json: {"dns": ["IP"]}',
            ],
        ),
    )


def stale_dns_config(ctx: RuleContext) -> Iterator[Finding]:
    owner = ctx.sender
    found = stale_resolvers(owner, ctx.facts)
    if found is None or host_file_gives_nothing(ctx.facts):
        return
    has, now = found
    broken = _lookup_failed(ctx)
    what = "nameservers" if now.mode == "legacy" else "embedded DNS's upstreams"
    answer = ctx.seen.answer if ctx.seen else None
    yield finding(
        "STALE_DNS_CONFIG",
        severity="error" if broken else "warning",
        confidence=0.9 if broken else 0.7,
        hop=HopName.NAME_RESOLUTION,
        affects=CLIENT,
        explanation=f"{owner.name}'s {what} are {', '.join(has) or 'none'}, but started now "
        f"it would get {', '.join(now.servers) or 'none'} ({now.why}): the engine wrote them "
        f"when {owner.name} started and does not follow the host's file"
        + (", and the old ones no longer answer." if broken else "."),
        evidence=[
            Evidence(f"{owner.name} {what}", list(has), FILES),
            Evidence("what it would get now", list(now.servers), now.source),
            *_engine_notes(owner),
            *([_live(answer)] if answer else []),
        ],
        fix=Fix(
            f"Restart {owner.name}, so the engine writes its resolvers from today's host file",
            [
                f"docker restart {owner.name}",
                "# compose: docker compose up -d --force-recreate SERVICE",
            ],
        ),
    )


def dns_search_leak(ctx: RuleContext) -> Iterator[Finding]:
    owner = ctx.sender
    conf, r = owner.resolv_conf, ctx.target.resolution
    answer = ctx.seen.answer if ctx.seen else None
    if conf is None or not conf.search or answer is None or r is None or is_ip(r.name):
        return
    name = r.name
    if conf.tries(name)[0] == name:
        return  # the name itself is asked first
    searched = answer.outcome == "answered" and answer.name != name
    means = ", ".join(r.addresses) if r.addresses else None
    if searched and (means or "." in name):
        if means and set(answer.addresses) & set(r.addresses):
            return  # the search domain gives the same addresses
        severity: Severity = "error"
        confidence = 0.9
        said = (
            f"{answer.name} is answered first ({', '.join(answer.addresses)}), so the "
            f"application connects there, not to {means or name}"
        )
    elif answer.name != name and answer.outcome in FAILURES:
        severity, confidence = "error", 0.85
        said = (
            f"that query gets {answer.detail or answer.outcome}, and a stub resolver stops "
            f"there: {name} itself is never asked"
        )
    elif not searched and answer.before and answer.waited >= SLOW_MS:
        severity, confidence = "warning", 0.8
        said = f"every lookup of {name} first waits {answer.waited} ms for {answer.before[0]}"
    else:
        return
    host = ctx.facts.resolv_conf
    copied = host is not None and host.search == conf.search
    yield finding(
        "DNS_SEARCH_LEAK",
        severity=severity,
        confidence=confidence,
        hop=HopName.NAME_RESOLUTION,
        affects=CLIENT,
        explanation=f"{owner.name}'s resolv.conf has search {' '.join(conf.search)} with ndots "
        f"{conf.ndots}" + (", copied from the host's" if copied else "") + f": {name} has "
        f"fewer dots, so it is asked as {conf.tries(name)[0]} first; {said}.",
        evidence=[
            Evidence(
                f"{owner.name} resolv.conf",
                {"search": list(conf.search), "options": list(conf.options)},
                FILES,
            ),
            *(
                [Evidence("host resolv.conf search", list(host.search), HOST_FILE)]
                if host is not None
                else []
            ),
            _live(answer),
        ],
        fix=Fix(
            f"Keep the host's search domains out of {owner.name}, or ask for the name in full",
            [
                "docker run --dns-search . ...  # compose: dns_search: .",
                "docker run --dns-option ndots:0 ...  # names are asked as written first",
                f"# or in the application: {name}. with a trailing dot (never searched)",
            ],
        ),
    )


RULES = [
    Rule(
        "dns-fallback-unreachable",
        ("DNS_FALLBACK_UNREACHABLE",),
        dns_fallback_unreachable,
        CLIENT,
    ),
    Rule("host-resolv-conf-broken", ("HOST_RESOLV_CONF_BROKEN",), host_resolv_conf_broken, CLIENT),
    Rule("stale-dns-config", ("STALE_DNS_CONFIG",), stale_dns_config, CLIENT),
    Rule("dns-search-leak", ("DNS_SEARCH_LEAK",), dns_search_leak, CLIENT),
]
