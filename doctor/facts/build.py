"""From a snapshot's raw artifacts to typed facts: every parser applied to what was read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from doctor.collect.scope import Scope
from doctor.facts.model import (
    DAEMON_JSON,
    Container,
    DaemonSettings,
    Engine,
    Facts,
    Host,
    Interface,
    Listener,
    ProxyProcess,
)
from doctor.facts.parse import (
    Unreadable,
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
from doctor.facts.swarm import parse_swarm
from doctor.firewall.iptables import IptablesRuleset, parse_iptables_save
from doctor.firewall.nftables import NftRuleset, parse_ruleset
from doctor.snapshot import artifacts as a
from doctor.snapshot.store import Snapshot

__all__ = ["Facts", "build_facts"]

T = TypeVar("T")


#: what a parser raises for an artifact that is not what it reads (a parser's own error is
#: ValueError; the rest are the shapes a hand-edited or fuzzed JSON artifact can take)
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError)


class _Reader:
    """The snapshot's artifacts for :func:`build_facts`: one that is not what its parser
    reads gives None and an entry in ``unparsable``, never an exception. The other facts
    still stand, and the report names what was left out."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        self.unparsable: dict[str, str] = {}

    def parsed(self, key: str, parse: Callable[[Any], T], shape: type = str) -> T | None:
        """``parse`` of artifact ``key`` (its text, or with ``shape`` dict or list its JSON
        value); None when the snapshot lacks it or it is malformed."""
        try:
            value = self.snapshot.text(key) if shape is str else self.snapshot.json(key)
            if value is None:
                return None
            if not isinstance(value, shape):
                raise TypeError(f"a JSON {type(value).__name__} where a {shape.__name__} belongs")
            return parse(value)
        except MALFORMED as exc:
            self.unparsable[key] = f"{type(exc).__name__}: {exc}"[:300]
            return None

    def json(self, key: str, shape: type) -> Any:
        return self.parsed(key, lambda value: value, shape)

    def each(self, key: str, parse: Callable[[Any], T]) -> tuple[T, ...]:
        """``parse`` of each item of the JSON list ``key``; the malformed ones are left out."""
        found, left_out = [], []
        for item in self.json(key, list) or ():
            try:
                found.append(parse(item))
            except MALFORMED as exc:
                left_out.append(str(exc))
        if left_out:
            self.unparsable[key] = f"{len(left_out)} left out: {'; '.join(left_out)}"[:300]
        return tuple(found)


def build_facts(snapshot: Snapshot) -> Facts:
    read = _Reader(snapshot)
    version = read.json(a.ENGINE_VERSION, dict)
    info = read.json(a.ENGINE_INFO, dict) or {}
    endpoint = read.json(a.ENGINE_ENDPOINT, dict) or {}
    engine = None if version is None else _engine(version, info, endpoint)
    containers = read.each(a.CONTAINERS, lambda inspect: _container(read, inspect))
    networks = read.each(a.NETWORKS, parse_network)
    host = read.parsed(a.HOST, _host, dict)
    interfaces = read.parsed(a.INTERFACES, _interfaces, dict)
    platform = detect(
        _string(info.get("OperatingSystem")),
        _string(info.get("KernelVersion")),
        tuple(map(_string, _list(info.get("SecurityOptions")))),
        host.kernel if host else "",
        tuple(interfaces or ()),
        _string(endpoint.get("source")) + " " + _string(endpoint.get("host")),
    )
    iptables = read.parsed(a.IPTABLES, lambda text: text)
    resolv_state = read.json(a.RESOLV_CONF_STATE, dict) or {}
    return Facts(
        engine=engine,
        containers=containers,
        networks=networks,
        host=host,
        host_listeners=read.parsed(
            a.HOST_SOCKETS, lambda sockets: tuple(Listener(**s) for s in sockets), list
        ),
        proxies=read.parsed(a.PROXIES, _proxies, list),
        sysctls=read.json(a.SYSCTLS, dict) or {},
        firewall=None
        if iptables is None
        else _merged_firewall(iptables, read.parsed(a.IP6TABLES, lambda text: text)),
        hosts_file=read.parsed(a.HOSTS_FILE, parse_hosts),
        resolv_conf=read.parsed(a.RESOLV_CONF, parse_resolv_conf),
        resolv_conf_state=resolv_state.get("state"),
        resolv_conf_link=resolv_state.get("link"),
        systemd_resolv_conf=read.parsed(a.SYSTEMD_RESOLV_CONF, parse_resolv_conf),
        conntrack=read.parsed(a.CONNTRACK, parse_conntrack),
        legacy_firewall=read.parsed(a.IPTABLES_LEGACY, parse_iptables_save),
        nftables=read.parsed(a.NFT_RULESET, lambda text: _nft(text, iptables is not None)),
        routes=read.parsed(a.ROUTES, parse_routes),
        swarm=read.parsed(a.SWARM, parse_swarm, dict),
        interfaces=interfaces,
        platform=platform,
        unreadable={p.name: p.detail for p in snapshot.probes if p.status != "ok"},
        unchecked=_unchecked(read),
        unparsable=read.unparsable,
        artifacts=snapshot.artifacts,
        daemon=_daemon(read),
        scope=_scope(read),
    )


def _engine(version: dict[str, Any], info: dict[str, Any], endpoint: dict[str, Any]) -> Engine:
    return Engine(
        version=_string(version.get("Version"), "?"),
        api_version=_string(version.get("ApiVersion"), "?"),
        os=_string(info.get("OperatingSystem")),
        kernel=_string(info.get("KernelVersion") or version.get("KernelVersion")),
        security_options=tuple(map(_string, _list(info.get("SecurityOptions")))),
        endpoint=_string(endpoint.get("host")),
    )


def _string(value: Any, missing: str = "") -> str:
    """A string of an Engine answer; ``missing`` when it is absent or not a string."""
    return value if isinstance(value, str) else missing


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _host(info: dict[str, Any]) -> Host:
    return Host(
        hostname=_string(info.get("hostname")),
        kernel=_string(info.get("kernel")),
        euid=info.get("euid") if isinstance(info.get("euid"), int) else None,
        addresses=tuple(map(_string, _list(info.get("addresses")))),
    )


def _proxies(entries: list[Any]) -> tuple[ProxyProcess, ...]:
    return tuple(p for p in (parse_proxy_cmdline(e["pid"], e["argv"]) for e in entries) if p)


def _container(read: _Reader, inspect: Any) -> Container:
    cid = _string(inspect.get("Id")) if isinstance(inspect, dict) else ""
    if not cid:
        raise Unreadable("a container without an ID")
    return parse_container(
        inspect,
        listeners=_container_listeners(read, cid),
        log_tail=demux_log(read.snapshot.artifacts.get(a.container_log(cid), b"")),
        resolv_conf=read.parsed(a.container_file(cid, "resolv.conf"), parse_resolv_conf),
        hosts=read.parsed(a.container_file(cid, "hosts"), parse_hosts),
    )


def _unchecked(read: _Reader) -> dict[str, str]:
    found: dict[str, str] = {}
    for key in read.snapshot.keys_under(a.UNCHECKED):
        found.update(
            read.parsed(
                key, lambda entries: {str(e["container"]): str(e["why"]) for e in entries}, list
            )
            or {}
        )
    return found


def _scope(read: _Reader) -> Scope | None:
    """None, as if every container was read (which is all there is), when there is none."""
    return read.parsed(a.SCOPE, lambda data: msgspec.convert(data, Scope), dict)


def _daemon(read: _Reader) -> DaemonSettings | None:
    process = read.json(a.DAEMON_ARGV, dict)
    # a file the engine itself would refuse to start with: unparsable, and no settings
    config = read.json(a.DAEMON_CONFIG, dict)
    if process is None and config is None:
        return None
    argv = (process or {}).get("argv")
    return DaemonSettings(
        config or {},
        _string((process or {}).get("config_file")) or DAEMON_JSON,
        tuple(map(_string, _list(argv))),
    )


def _nft(text: str, iptables_read: bool) -> NftRuleset:
    return parse_ruleset(text, iptables_read)


def _interfaces(raw: dict[str, Any]) -> dict[str, Interface]:
    return {
        name: Interface(name, v.get("mtu"), tuple(map(_string, _list(v.get("addresses")))))
        for name, v in raw.items()
    }


def _container_listeners(read: _Reader, container_id: str) -> list[Listener] | None:
    # Looked up by key, not by scanning every artifact: that was quadratic in containers.
    texts = [
        (read.snapshot.text(a.netns_file(container_id, name)), protocol)
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
