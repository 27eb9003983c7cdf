"""From a snapshot's raw artifacts to typed facts: every parser applied to what was read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from doctor.collect.scope import Scope
from doctor.facts.model import (
    DAEMON_JSON,
    DaemonSettings,
    Engine,
    Facts,
    Host,
    Interface,
    Listener,
)
from doctor.facts.parse import (
    demux_log,
    parse_conntrack,
    parse_container,
    parse_hosts,
    parse_network,
    parse_proc_net,
    parse_proxy_cmdline,
    parse_resolv_conf,
    parse_routes,
)
from doctor.facts.platform import detect
from doctor.firewall.iptables import IptablesRuleset, parse_iptables_save
from doctor.firewall.nftables import NftRuleset, parse_ruleset
from doctor.snapshot import artifacts as a
from doctor.snapshot.store import Snapshot

__all__ = ["Facts", "build_facts"]

T = TypeVar("T")


def build_facts(snapshot: Snapshot) -> Facts:
    version = snapshot.json(a.ENGINE_VERSION)
    info = snapshot.json(a.ENGINE_INFO) or {}
    endpoint = snapshot.json(a.ENGINE_ENDPOINT) or {}
    engine = None
    if version is not None:
        engine = Engine(
            version=version.get("Version", "?"),
            api_version=version.get("ApiVersion", "?"),
            os=info.get("OperatingSystem", ""),
            kernel=info.get("KernelVersion") or version.get("KernelVersion", ""),
            security_options=tuple(info.get("SecurityOptions") or ()),
            endpoint=endpoint.get("host", ""),
        )
    containers = tuple(
        parse_container(
            inspect,
            listeners=_container_listeners(snapshot, inspect["Id"]),
            log_tail=demux_log(snapshot.artifacts.get(a.container_log(inspect["Id"]), b"")),
            resolv_conf=_parsed(
                snapshot, a.container_file(inspect["Id"], "resolv.conf"), parse_resolv_conf
            ),
            hosts=_parsed(snapshot, a.container_file(inspect["Id"], "hosts"), parse_hosts),
        )
        for inspect in snapshot.json(a.CONTAINERS) or ()
    )
    networks = tuple(parse_network(n) for n in snapshot.json(a.NETWORKS) or ())
    host_info = snapshot.json(a.HOST)
    host = None
    if host_info is not None:
        host = Host(
            hostname=host_info.get("hostname", ""),
            kernel=host_info.get("kernel", ""),
            euid=host_info.get("euid"),
            addresses=tuple(host_info.get("addresses", ())),
        )
    interfaces = _interfaces(snapshot.json(a.INTERFACES))
    platform = detect(
        info.get("OperatingSystem", ""),
        info.get("KernelVersion", ""),
        tuple(info.get("SecurityOptions") or ()),
        host.kernel if host else "",
        tuple(interfaces or ()),
        endpoint.get("source", "") + " " + endpoint.get("host", ""),
    )
    sockets = snapshot.json(a.HOST_SOCKETS)
    proxies = snapshot.json(a.PROXIES)
    iptables = snapshot.text(a.IPTABLES)
    hosts_text = snapshot.text(a.HOSTS_FILE)
    return Facts(
        engine=engine,
        containers=containers,
        networks=networks,
        host=host,
        host_listeners=None if sockets is None else tuple(Listener(**s) for s in sockets),
        proxies=None
        if proxies is None
        else tuple(p for p in (parse_proxy_cmdline(e["pid"], e["argv"]) for e in proxies) if p),
        sysctls=snapshot.json(a.SYSCTLS) or {},
        firewall=None
        if iptables is None
        else _merged_firewall(iptables, snapshot.text(a.IP6TABLES)),
        hosts_file=None if hosts_text is None else parse_hosts(hosts_text),
        resolv_conf=_parsed(snapshot, a.RESOLV_CONF, parse_resolv_conf),
        resolv_conf_state=(snapshot.json(a.RESOLV_CONF_STATE) or {}).get("state"),
        resolv_conf_link=(snapshot.json(a.RESOLV_CONF_STATE) or {}).get("link"),
        systemd_resolv_conf=_parsed(snapshot, a.SYSTEMD_RESOLV_CONF, parse_resolv_conf),
        conntrack=_parsed(snapshot, a.CONNTRACK, parse_conntrack),
        legacy_firewall=_parsed(snapshot, a.IPTABLES_LEGACY, parse_iptables_save),
        nftables=_parsed(snapshot, a.NFT_RULESET, lambda text: _nft(text, iptables is not None)),
        routes=_parsed(snapshot, a.ROUTES, parse_routes),
        interfaces=interfaces,
        platform=platform,
        unreadable={p.name: p.detail for p in snapshot.probes if p.status != "ok"},
        artifacts=snapshot.artifacts,
        daemon=_daemon(snapshot),
        scope=_scope(snapshot),
    )


def _scope(snapshot: Snapshot) -> Scope | None:
    data = snapshot.json(a.SCOPE)
    try:
        return None if data is None else msgspec.convert(data, Scope)
    except msgspec.ValidationError:
        return None  # unreadable: as if every container was read, which is all there is


def _daemon(snapshot: Snapshot) -> DaemonSettings | None:
    process = snapshot.json(a.DAEMON_ARGV)
    try:
        config = snapshot.json(a.DAEMON_CONFIG)
    except ValueError:  # a file the engine itself would refuse to start with
        config = None
    if process is None and config is None:
        return None
    return DaemonSettings(
        config if isinstance(config, dict) else {},
        (process or {}).get("config_file") or DAEMON_JSON,
        tuple((process or {}).get("argv") or ()),
    )


def _parsed(snapshot: Snapshot, key: str, parse: Callable[[str], T]) -> T | None:
    text = snapshot.text(key)
    return None if text is None else parse(text)


def _nft(text: str, iptables_read: bool) -> NftRuleset:
    return parse_ruleset(text, iptables_read)


def _interfaces(raw: dict[str, Any] | None) -> dict[str, Interface] | None:
    if raw is None:
        return None
    return {
        name: Interface(name, v.get("mtu"), tuple(v.get("addresses", ())))
        for name, v in raw.items()
    }


def _container_listeners(snapshot: Snapshot, container_id: str) -> list[Listener] | None:
    # Looked up by key, not by scanning every artifact: that was quadratic in containers.
    texts = [
        (snapshot.text(a.netns_file(container_id, name)), protocol)
        for name, protocol in a.NETNS_FILES.items()
    ]
    if all(text is None for text, _ in texts):
        return None
    return [
        listener
        for text, protocol in texts
        if text is not None
        for listener in parse_proc_net(text, protocol)
    ]


def _merged_firewall(v4: str, v6: str | None) -> IptablesRuleset:
    # v6 tables are kept apart under their own names ("nat6", "filter6") so that no
    # rule mixes the two address families by accident.
    firewall = parse_iptables_save(v4)
    if v6:
        firewall.tables.update({f"{t}6": c for t, c in parse_iptables_save(v6).tables.items()})
    return firewall
