"""Where a container's resolvers come from: what the engine would write for it now.

The engine does not copy the host's resolv.conf. For the default bridge ("legacy") it reads
/etc/resolv.conf, or systemd-resolved's list of real upstreams when that file names only the
127.0.0.53 stub; drops loopback nameservers (and IPv6 ones on a network without IPv6); and
when none are left, writes its public fallback servers. On a user-defined network the
container asks the embedded DNS (127.0.0.11), which forwards to the host file's nameservers;
loopback ones (a stub resolver) it asks from the host's own namespace. Engine 28 dropped the
fallback there: with no host nameservers the embedded DNS has no upstream at all. ``--dns``
replaces the host's nameservers in both cases. The file is written when the container
starts, not when the host's changes. (moby: libnetwork/internal/resolvconf, sandbox_dns_unix.go)
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

from doctor.facts.model import Container, Facts, ResolvConf, is_loopback

FALLBACK_V4 = ("8.8.8.8", "8.8.4.4")
FALLBACK_V6 = ("2001:4860:4860::8888", "2001:4860:4860::8844")
FALLBACK_RESOLVERS = FALLBACK_V4 + FALLBACK_V6
ETC_RESOLV_CONF = "/etc/resolv.conf"
SYSTEMD_RESOLV_CONF = "/run/systemd/resolve/resolv.conf"
SYSTEMD_STUB = "127.0.0.53"
#: The engine that stopped giving the embedded DNS the fallback servers (moby PR 48290).
NO_INTERNAL_FALLBACK_SINCE = 28

Mode = Literal["legacy", "internal", "override", "host"]


class Provenance(Struct, frozen=True):
    """What the engine writes for one container today, and from what."""

    mode: Mode  # legacy: the default bridge; internal: the embedded DNS; override: --dns
    source: str  # the host file it reads
    host_servers: tuple[str, ...] | None  # that file's nameservers; None: the file is missing
    #: legacy and override: the nameservers its resolv.conf gets; internal: the embedded DNS's
    #: upstreams; host: the host's own
    servers: tuple[str, ...]
    dropped: tuple[str, ...] = ()  # host nameservers the engine left out (loopback, IPv6)
    fallback: bool = False  # ``servers`` are the engine's public fallback

    @property
    def why(self) -> str:
        """One sentence on how ``servers`` came about."""
        if self.mode == "override":
            return "--dns (HostConfig.Dns) names them"
        if self.mode == "host":
            return "a host-network container uses the host's own file"
        read = (
            f"{self.source} is missing"
            if self.host_servers is None
            else f"{self.source} lists {', '.join(self.host_servers) or 'no nameserver'}"
        )
        if self.mode == "internal":
            if not self.servers:
                return f"{read}, and the embedded DNS has no fallback (Engine 28 and later)"
            return f"{read}; the embedded DNS forwards there (loopback ones from the host)"
        if self.fallback:
            left = "; the engine drops " + ", ".join(self.dropped) if self.dropped else ""
            return f"{read}{left}, so none is left and the engine writes its public fallback"
        return f"{read}" + (f"; the engine drops {', '.join(self.dropped)}" if self.dropped else "")


def provenance(container: Container, facts: Facts) -> Provenance | None:
    """Where ``container``'s resolvers come from (its namespace owner's, for
    ``--network container:X``); None when the host's resolv.conf was not read."""
    owner = facts.netns_owner(container)
    if facts.resolv_conf_state is None:
        return None
    if owner.dns:
        return Provenance("override", "HostConfig.Dns", None, owner.dns)
    told = facts.daemon.setting("dns") if facts.daemon else None
    if told and isinstance(told[0], list) and told[0]:  # daemon.json dns: every container's
        return Provenance("override", told[1], None, tuple(map(str, told[0])))
    if facts.daemon and facts.daemon.setting("resolv-conf"):
        return None  # the engine reads another file, which the doctor did not
    etc = facts.resolv_conf if facts.resolv_conf_state == "file" else None
    etc_servers = etc.nameservers if etc is not None else None
    if owner.uses_host_network:
        return Provenance("host", ETC_RESOLV_CONF, etc_servers, etc_servers or ())
    if facts.uses_embedded_dns(owner):
        return _internal(etc_servers, facts)
    return _legacy(owner, etc, facts)


def _internal(etc_servers: tuple[str, ...] | None, facts: Facts) -> Provenance:
    servers = etc_servers or ()
    major = facts.engine_major
    if major is not None and major < NO_INTERNAL_FALLBACK_SINCE:
        servers = tuple(s for s in servers if ":" not in s)[:3]  # IPv4 only, three at most
        if not servers:
            return Provenance("internal", ETC_RESOLV_CONF, etc_servers, FALLBACK_V4, (), True)
    return Provenance("internal", ETC_RESOLV_CONF, etc_servers, servers)


def _legacy(owner: Container, etc: ResolvConf | None, facts: Facts) -> Provenance:
    source, conf = ETC_RESOLV_CONF, etc
    if etc is not None and etc.nameservers == (SYSTEMD_STUB,) and facts.systemd_resolv_conf:
        source, conf = SYSTEMD_RESOLV_CONF, facts.systemd_resolv_conf
    host_servers = conf.nameservers if conf is not None else None
    ipv6 = any(
        (n := facts.network(att.network_id)) is not None and n.enable_ipv6
        for att in owner.attachments
    )
    kept = tuple(s for s in host_servers or () if not is_loopback(s) and (ipv6 or ":" not in s))
    dropped = tuple(s for s in host_servers or () if s not in kept)
    if kept:
        return Provenance("legacy", source, host_servers, kept, dropped)
    fallback = FALLBACK_V4 + (FALLBACK_V6 if ipv6 else ())
    return Provenance("legacy", source, host_servers, fallback, dropped, True)


def stale_resolvers(
    container: Container, facts: Facts
) -> tuple[tuple[str, ...], Provenance] | None:
    """(what the container has, what it would get now) when the two differ: it started before
    the host's resolvers changed, or during a boot race with an empty host file."""
    owner = facts.netns_owner(container)
    conf, now = owner.resolv_conf, provenance(container, facts)
    if conf is None or now is None or now.mode in ("override", "host"):
        return None
    if any(m.destination == "/etc/resolv.conf" for m in owner.mounts):
        return None  # the user's own file, bind-mounted: the engine writes none
    if conf.notes is not None and "nameservers" in conf.notes.overrides:
        return None  # named by --dns (or the daemon's dns) when it started: not the host's
    if now.mode == "legacy":
        has = conf.nameservers
        return (has, now) if set(has) != set(now.servers) and not conf.embedded else None
    notes = conf.notes  # the embedded DNS's upstreams are written down only by Engine 25+
    if notes is None or not conf.embedded or "nameservers" in notes.overrides:
        return None
    has = tuple(s.removeprefix("host(").rstrip(")") for s in notes.ext_servers)
    return (has, now) if set(has) != set(now.servers) else None
