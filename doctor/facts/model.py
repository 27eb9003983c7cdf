"""Typed facts: what the artifacts of a snapshot say, and nothing more.

``None`` always means "could not be read" and never "empty": a rule must not conclude
that nothing listens because the listeners of a container were unreadable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Literal

from msgspec import Struct, field

from doctor.collect.scope import Scope
from doctor.facts.platform import Platform
from doctor.facts.swarm import Swarm as Swarm  # the cluster's facts: rules read them from here
from doctor.facts.swarm import SwarmNode as SwarmNode
from doctor.facts.swarm import SwarmService as SwarmService
from doctor.firewall.iptables import IptablesRuleset
from doctor.firewall.nftables import NftRuleset
from doctor.firewall.walk import Rulesets

Protocol = Literal["tcp", "udp"]

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
MAX_SEARCH_DOMAINS = 6  # glibc's MAXDNSRCH
EMBEDDED_DNS = "127.0.0.11"  # the engine's resolver inside containers on user-defined networks
DEFAULT_MTU = 1500  # the engine's, when neither the network nor the daemon sets one
IP_FORWARD = "net.ipv4.ip_forward"
#: The names of this host, from a container.
HOST_GATEWAY_NAMES = ("host.docker.internal", "gateway.docker.internal")


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def is_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value or "")
        return True
    except ValueError:
        return False


def is_wildcard(address: str) -> bool:
    return address in ("", "0.0.0.0", "::")


class Listener(Struct, frozen=True):
    """A bound socket: a TCP socket in LISTEN state, or an unconnected UDP socket."""

    protocol: Protocol
    address: str
    port: int
    pid: int | None = None
    process: str | None = None

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.address)

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.protocol} {host}:{self.port}"

    @property
    def holder(self) -> str:
        """Who holds the socket, as far as it could be seen."""
        if self.pid is None:
            return "a process of another user (run as root to name it)"
        return f"{self.process} (pid {self.pid})"


class Binding(Struct, frozen=True):
    """One host side of a published port."""

    host_ip: str
    host_port: int

    def accepts(self, address: str) -> bool:
        """Whether a client connecting to ``address`` reaches this binding."""
        if self.host_ip == "":
            return True
        if self.host_ip in ("0.0.0.0", "::"):  # each family's wildcard takes only its own
            return (":" in address) == (self.host_ip == "::")
        return ipaddress.ip_address(self.host_ip) == ipaddress.ip_address(address)

    def __str__(self) -> str:
        if not self.host_ip:
            return str(self.host_port)
        host = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{host}:{self.host_port}"


class PortMapping(Struct, frozen=True):
    """A container port, and the host bindings that publish it (none: only exposed)."""

    container_port: int
    protocol: Protocol
    bindings: tuple[Binding, ...] = ()


class Attachment(Struct, frozen=True):
    """A container's endpoint on one network."""

    network: str
    network_id: str
    ip: str | None
    ipv6: str | None
    gateway: str | None
    aliases: tuple[str, ...] = ()


class Mount(Struct, frozen=True):
    type: str  # bind, volume, tmpfs, npipe
    source: str
    destination: str


class FlowTuple(Struct, frozen=True):
    """One direction of a tracked flow."""

    src: str
    dst: str
    sport: int
    dport: int


class ConntrackEntry(Struct, frozen=True):
    """A flow the kernel tracks: the first packet's NAT decision holds for all the rest."""

    protocol: Protocol
    original: FlowTuple  # as the first packet came
    reply: FlowTuple  # what replies look like: src is where the packet really went
    unreplied: bool
    text: str  # the line as the kernel printed it

    @property
    def translated(self) -> bool:
        """A DNAT (or REDIRECT) took the first packet somewhere else."""
        return self.reply.src != self.original.dst or self.reply.sport != self.original.dport


class EngineNotes(Struct, frozen=True):
    """What Engine 25 and later write below a container's resolv.conf about how they built it:
    ``# Based on host file: '/etc/resolv.conf' (legacy)``, ``# Used default nameservers.``,
    ``# ExtServers: [host(127.0.0.53)]``, ``# Overrides: []``. Older engines write none."""

    source: str  # the host file it was built from ('' when there was none)
    transform: str  # legacy (the default bridge) or internal resolver (the embedded DNS)
    warnings: tuple[str, ...] = ()  # "Used default nameservers.", "NO EXTERNAL NAMESERVERS ..."
    ext_servers: tuple[str, ...] = ()  # the embedded DNS's upstreams: "host(127.0.0.53)", ...
    overrides: tuple[str, ...] = ()  # which of nameservers, search, options --dns* replaced


class ResolvConf(Struct, frozen=True):
    nameservers: tuple[str, ...]
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    notes: EngineNotes | None = None

    @property
    def embedded(self) -> bool:
        """Whether names go to the engine's embedded DNS server first."""
        return EMBEDDED_DNS in self.nameservers

    @property
    def ndots(self) -> int:
        """How many dots a name needs to be tried as it is before the search domains (glibc:
        1 by default, at most 15; the last ndots option wins)."""
        values = [o.partition(":")[2] for o in self.options if o.startswith("ndots:")]
        return min(int(values[-1]), 15) if values and values[-1].isdigit() else 1

    def tries(self, name: str) -> tuple[str, ...]:
        """The names a stub resolver asks for ``name``, in its order: with fewer dots than
        ndots the search domains first, else the name itself first (glibc reads six domains)."""
        expanded = tuple(f"{name}.{domain}" for domain in self.search[:MAX_SEARCH_DOMAINS])
        if name.count(".") < self.ndots:
            return (*expanded, name)
        return (name, *expanded)


class Container(Struct, frozen=True):
    id: str
    name: str
    image: str
    command: tuple[str, ...]  # Config.Cmd
    status: str  # running, exited, created, restarting, paused, dead
    pid: int | None
    exit_code: int | None
    oom_killed: bool
    restart_count: int
    error: str  # State.Error: why the engine could not start it
    health: str | None  # healthy, unhealthy, starting, or None without a healthcheck
    health_output: str | None
    network_mode: str
    attachments: tuple[Attachment, ...]
    published: tuple[PortMapping, ...]  # NetworkSettings.Ports: live bindings
    configured: tuple[PortMapping, ...]  # HostConfig.PortBindings: what was asked for
    exposed: tuple[tuple[int, Protocol], ...]
    labels: dict[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    health_exit_code: int | None = None  # of the last healthcheck run
    health_test: tuple[str, ...] = ()  # Config.Healthcheck.Test: ["CMD-SHELL", "curl ..."]
    hostname: str = ""  # Config.Hostname: its short id unless --hostname (compose: hostname:)
    extra_hosts: tuple[str, ...] = ()  # HostConfig.ExtraHosts: "name:address" (--add-host)
    links: tuple[str, ...] = ()  # HostConfig.Links: legacy --link
    dns: tuple[str, ...] = ()  # HostConfig.Dns: --dns
    listeners: tuple[Listener, ...] | None = None  # read from its netns; None: unknown
    resolv_conf: ResolvConf | None = None  # its etc/resolv.conf; None: unread
    hosts: dict[str, tuple[str, ...]] | None = None  # its etc/hosts; None: unread
    log_tail: tuple[str, ...] = ()

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def compose_service(self) -> str | None:
        return self.labels.get(COMPOSE_SERVICE)

    @property
    def compose_project(self) -> str | None:
        return self.labels.get(COMPOSE_PROJECT)

    @property
    def uses_host_network(self) -> bool:
        return self.network_mode == "host"

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(x for att in self.attachments for x in (att.ip, att.ipv6) if x)

    @property
    def ipv4(self) -> str | None:
        """Its first IPv4 address (on its first network that has one)."""
        return next((att.ip for att in self.attachments if att.ip), None)

    @property
    def loopback_resolvers_unserved(self) -> bool:
        """All of its nameservers are on its own loopback, and nothing serves DNS there."""
        servers = self.resolv_conf.nameservers if self.resolv_conf else ()
        if not servers or EMBEDDED_DNS in servers or not all(is_loopback(s) for s in servers):
            return False
        return self.listeners is not None and not self.listeners_on(53, "udp")

    def attachment(self, network_id: str) -> Attachment | None:
        return next((att for att in self.attachments if att.network_id == network_id), None)

    def dns_names(self, attachment: Attachment) -> set[str]:
        """The names the embedded DNS answers with this container's address on that network:
        its name, short id, aliases, compose service and hostname (both engines here answer
        --hostname; moby's buildEndpointDNSNames)."""
        names = {self.name, self.id[:12], *attachment.aliases}
        if self.hostname:
            names.add(self.hostname)
        if self.compose_service:
            names.add(self.compose_service)
        return {n.lower() for n in names}

    def listeners_on(self, port: int, protocol: Protocol | None = None) -> list[Listener]:
        return [
            listener
            for listener in self.listeners or ()
            if listener.port == port and (protocol is None or listener.protocol == protocol)
        ]

    def publishing(
        self, host_port: int, protocol: str | None = None
    ) -> list[tuple[PortMapping, Binding]]:
        """The live bindings of this container on ``host_port``."""
        return [
            (m, b)
            for m in self.published
            for b in m.bindings
            if b.host_port == host_port and (protocol is None or m.protocol == protocol)
        ]

    def configured_on(
        self, host_port: int, protocol: Protocol | None = None
    ) -> list[tuple[PortMapping, Binding]]:
        """The requested bindings on ``host_port``, even if the engine never applied them."""
        return [
            (m, b)
            for m in self.configured
            for b in m.bindings
            if b.host_port == host_port and (protocol is None or m.protocol == protocol)
        ]


class Network(Struct, frozen=True):
    id: str
    name: str
    driver: str
    internal: bool
    enable_ipv6: bool
    subnets: tuple[str, ...]
    gateways: tuple[str, ...]
    options: dict[str, str] = field(default_factory=dict)
    scope: str = "local"
    attachable: bool = False  # a swarm overlay that plain containers may join

    @property
    def is_default_bridge(self) -> bool:
        """The default `bridge` network: no embedded DNS, legacy links only."""
        return self.driver == "bridge" and (
            self.options.get("com.docker.network.bridge.default_bridge") == "true"
            or self.name == "bridge"
        )

    @property
    def host_isolated(self) -> bool:
        """macvlan/ipvlan: the kernel keeps the parent (this host) from reaching the children."""
        return self.driver in ("macvlan", "ipvlan")

    @property
    def icc(self) -> bool:
        return self.options.get("com.docker.network.bridge.enable_icc", "true").lower() != "false"

    @property
    def gateway_on_bridge(self) -> bool:
        """Whether the bridge holds the network's IPv4 gateway: not with inhibit_ipv4 (someone
        else routes the subnet) or gateway mode isolated (no gateway at all)."""
        inhibit = self.options.get("com.docker.network.bridge.inhibit_ipv4", "").lower() == "true"
        mode = self.options.get("com.docker.network.bridge.gateway_mode_ipv4", "")
        return not inhibit and mode != "isolated"

    @property
    def mtu(self) -> int | None:
        """The MTU set on the network; None: the engine's default (daemon `mtu`, else 1500)."""
        value = self.options.get("com.docker.network.driver.mtu", "")
        return int(value) if value.isdigit() else None

    @property
    def bridge(self) -> str | None:
        """The host's bridge interface for this network (bridge driver only)."""
        if self.driver != "bridge":
            return None
        return self.options.get("com.docker.network.bridge.name") or f"br-{self.id[:12]}"

    def contains(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
            return any(ip in ipaddress.ip_network(s, strict=False) for s in self.subnets)
        except ValueError:
            return False


class ProxyProcess(Struct, frozen=True):
    """A docker-proxy process: the userland side of one published port."""

    pid: int
    protocol: Protocol
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int


class HostRoute(Struct, frozen=True):
    """One IPv4 route of the host's main table."""

    destination: ipaddress.IPv4Network
    device: str
    gateway: str | None

    def __str__(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        dst = "default" if self.destination.prefixlen == 0 else str(self.destination)
        return f"{dst}{via} dev {self.device}"


class Interface(Struct, frozen=True):
    name: str
    mtu: int | None
    addresses: tuple[str, ...]


DAEMON_JSON = "/etc/docker/daemon.json"


class DaemonSettings(Struct, frozen=True):
    """What dockerd was told: its command-line flags, and its configuration file."""

    config: Mapping[str, Any] = field(default_factory=dict)
    config_file: str = DAEMON_JSON
    argv: tuple[str, ...] = ()

    def setting(self, key: str) -> tuple[Any, str] | None:
        """A daemon.json ``key`` ("iptables", "ip-masq"): its value and where it was said
        (a flag, or the file), or None when the engine runs on its default."""
        for arg in self.argv[1:]:
            if arg == f"--{key}":
                return True, f"dockerd --{key}"
            if arg.startswith(f"--{key}="):
                value = arg.partition("=")[2]
                return {"true": True, "false": False}.get(value.lower(), value), f"dockerd {arg}"
        if key in self.config:
            return self.config[key], self.config_file
        return None


class Engine(Struct, frozen=True):
    version: str
    api_version: str
    os: str  # info.OperatingSystem
    kernel: str
    security_options: tuple[str, ...]
    endpoint: str


class Host(Struct, frozen=True):
    hostname: str
    kernel: str
    euid: int | None
    addresses: tuple[str, ...]  # every address on an interface, loopback included


class Facts(Struct, frozen=True):
    engine: Engine | None
    containers: tuple[Container, ...]
    networks: tuple[Network, ...]
    host: Host | None
    host_listeners: tuple[Listener, ...] | None
    proxies: tuple[ProxyProcess, ...] | None
    sysctls: dict[str, str | None]
    #: what `iptables-save` shows (v6 tables as "filter6", "nat6", ...)
    firewall: IptablesRuleset | None
    hosts_file: dict[str, tuple[str, ...]] | None  # name -> addresses, in file order
    resolv_conf: ResolvConf | None = None
    #: what /etc/resolv.conf is: file, missing or dangling (a link to nothing); None: unread
    resolv_conf_state: Literal["file", "missing", "dangling"] | None = None
    resolv_conf_link: str | None = None  # where /etc/resolv.conf links to, if it is a link
    #: /run/systemd/resolve/resolv.conf, when there is one
    systemd_resolv_conf: ResolvConf | None = None
    #: the kernel's tracked UDP flows; None: unread
    conntrack: tuple[ConntrackEntry, ...] | None = None
    #: iptables-legacy rules, when the other backend is nft
    legacy_firewall: IptablesRuleset | None = None
    #: native nft tables (not iptables-nft's, which `firewall` shows)
    nftables: NftRuleset | None = None
    routes: tuple[HostRoute, ...] | None = None
    interfaces: dict[str, Interface] | None = None
    platform: Platform = field(default_factory=lambda: Platform("linux", "Linux"))
    unreadable: dict[str, str] = field(default_factory=dict)  # probe -> why it read nothing
    #: artifact -> why it could not be parsed (read, but malformed: its facts are left out)
    unparsable: dict[str, str] = field(default_factory=dict)
    #: container -> why a probe could not check it (removed or stopped while the run read it)
    unchecked: dict[str, str] = field(default_factory=dict)
    #: what dockerd was told; None: neither its command line nor its file was read
    daemon: DaemonSettings | None = None
    #: Every raw artifact of the snapshot, by key: a plugin's rule reads its own probe's here.
    artifacts: Mapping[str, bytes] = field(default_factory=dict)
    #: which containers were read in full (``containers``), and why; None: every one (a
    #: snapshot from before scopes)
    scope: Scope | None = None
    #: the cluster, when this engine is a Swarm manager
    swarm: Swarm | None = None

    @property
    def every_container_read(self) -> bool:
        return self.scope is None or self.scope.complete

    @property
    def rulesets(self) -> Rulesets:
        return Rulesets(self.firewall, self.legacy_firewall, self.nftables)

    def container(self, ref: str) -> Container | None:
        """By name, full id or unique id prefix (as the docker CLI resolves them)."""
        ref = ref.lstrip("/")
        for c in self.containers:
            if ref in (c.name, c.id):
                return c
        matches = [c for c in self.containers if len(ref) >= 3 and c.id.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def network(self, name_or_id: str) -> Network | None:
        return next((n for n in self.networks if name_or_id in (n.name, n.id)), None)

    def network_name(self, network_id: str) -> str:
        """Its name; a network this snapshot lacks by its short ID, as the docker CLI shows it."""
        network = self.network(network_id)
        return network.name if network else network_id[:12]

    def host_listeners_on(self, port: int, protocol: Protocol) -> list[Listener] | None:
        if self.host_listeners is None:
            return None
        return [
            listener
            for listener in self.host_listeners
            if listener.port == port and listener.protocol == protocol
        ]

    def is_host_address(self, address: str) -> bool:
        return self.host is not None and address in self.host.addresses

    def container_at(self, address: str) -> tuple[Container, Attachment] | None:
        """The container (running first) with ``address`` on one of its networks."""
        found = [
            (c, att)
            for c in self.containers
            for att in c.attachments
            if address in (att.ip, att.ipv6)
        ]
        found.sort(key=lambda pair: not pair[0].running)
        return found[0] if found else None

    @property
    def engine_major(self) -> int | None:
        """The running engine's major version (20, 28, 29), None when not known."""
        head = self.engine.version.split(".", 1)[0] if self.engine else ""
        return int(head) if head.isdigit() else None

    def route_to(self, address: str) -> HostRoute | None:
        """The host route an IPv4 packet to ``address`` takes (longest prefix wins)."""
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            return None
        matching = [r for r in self.routes or () if ip in r.destination]
        return max(matching, key=lambda r: r.destination.prefixlen, default=None)

    def interface_with(self, address: str) -> str | None:
        """The host interface that holds ``address``: where a client of that address arrives."""
        return next(
            (i.name for i in (self.interfaces or {}).values() if address in i.addresses), None
        )

    def bridges(self) -> dict[str, Network]:
        """Bridge interface name -> its Docker network."""
        return {n.bridge: n for n in self.networks if n.bridge}

    @property
    def forwarding_disabled(self) -> bool:
        """net.ipv4.ip_forward is read and 0: the kernel forwards nothing."""
        value = self.sysctls.get(IP_FORWARD)
        return value is not None and value.strip() == "0"

    # --- as containers see each other

    def stale_flows(
        self, container: Container, port: int, protocol: Protocol
    ) -> list[ConntrackEntry]:
        """Tracked flows to ``container``'s published ``port`` that bypass its DNAT now:
        addressed to one of its bindings but untranslated (they began before the port was
        published, or while the rule was away), or translated to a Docker address no
        container publishing the port has any more. Empty where docker-proxy listens on the
        port (what reaches the host itself still gets through) or the proxies were not read."""
        if self.conntrack is None or self.proxies is None:
            return []
        if any(p.host_port == port and p.protocol == protocol for p in self.proxies):
            return []
        bindings = [b for _, b in container.publishing(port, protocol)]
        targets = {
            address
            for c in self.containers
            if c.publishing(port, protocol)
            for address in c.addresses
        }

        def bypassed(e: ConntrackEntry) -> bool:
            if not e.translated:
                return True
            moved = e.reply.src not in targets
            return moved and any(n.contains(e.reply.src) for n in self.networks)

        return [
            e
            for e in self.conntrack
            if e.protocol == protocol
            and e.original.dport == port
            and any(b.accepts(e.original.dst) for b in bindings)
            and bypassed(e)
        ]

    def netns_owner(self, container: Container) -> Container:
        """The container whose network namespace (and resolver files) ``container`` uses:
        ``--network container:X`` joins X's namespace, X's addresses, names and resolvers."""
        mode = container.network_mode
        if mode.startswith("container:"):
            owner = self.container(mode.partition(":")[2])
            if owner is not None:
                return owner
        return container

    def uplink(self, container: Container) -> tuple[Attachment, Network] | None:
        """The network that holds ``container``'s default route: its first attachment with a
        gateway on a network that is not internal."""
        for att in container.attachments:
            network = self.network(att.network_id)
            if att.gateway and network is not None and not network.internal:
                return att, network
        return None

    def is_default_bridge(self, network_id: str) -> bool:
        """The default bridge (or a network not read): no embedded DNS there."""
        network = self.network(network_id)
        return network is None or network.is_default_bridge

    def uses_embedded_dns(self, source: Container) -> bool:
        if source.resolv_conf is not None:
            return source.resolv_conf.embedded
        # Unread: the engine gives every container on a user-defined network its embedded DNS.
        return any(not self.is_default_bridge(att.network_id) for att in source.attachments)

    def known_to_engine(self, key: str) -> bool:
        """Whether some container is called ``key`` (a name, alias, service name or id prefix), or
        a Swarm service is."""
        return (
            any(key in c.dns_names(att) for c in self.containers for att in c.attachments)
            or self.container(key) is not None
            or (self.swarm is not None and self.swarm.service_named(key) is not None)
        )

    def named_containers(self, key: str) -> list[Container]:
        """Containers the name means anywhere on this engine (name, alias, service, id prefix),
        running ones first."""
        found = [
            c for c in self.containers if any(key in c.dns_names(att) for att in c.attachments)
        ]
        by_ref = self.container(key)
        if by_ref is not None and by_ref not in found:
            found.insert(0, by_ref)
        found.sort(key=lambda c: not c.running)
        return found

    def shared_networks(self, a: Container, b: Container) -> list[Network]:
        ids = {att.network_id for att in a.attachments} & {att.network_id for att in b.attachments}
        return [n for n in self.networks if n.id in ids]

    def host_gateway(self) -> str | None:
        """The engine's host-gateway address: by default, the default bridge's gateway."""
        bridge = next((n for n in self.networks if n.is_default_bridge), None)
        return bridge.gateways[0] if bridge and bridge.gateways else None

    def egress_mtu(self, source: Container, address: str) -> tuple[Network, int, str, int] | None:
        """(network, its MTU, egress device, device MTU) when a network of ``source`` has a larger MTU
        than the device the host routes ``address`` out of."""
        route = self.route_to(address)
        if route is None or self.interfaces is None or route.device in self.bridges():
            return None
        device = self.interfaces.get(route.device)
        device_mtu = device.mtu if device else None
        for att in source.attachments:
            network = self.network(att.network_id)
            if network is None or network.bridge is None:
                continue
            mtu = network.mtu or DEFAULT_MTU
            if device_mtu and mtu > device_mtu:
                return network, mtu, route.device, device_mtu
        return None
