"""Facts, targets and paths built by hand, for rule tests that read like the rules.

Containers and networks go through the real parsers (``docker inspect`` shaped dicts in,
typed facts out), and paths through the real path builders, so a rule test sees exactly
what a diagnosis would hand the rule; only the reading of a host is left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from doctor.rules import docker_doctor_rules

from doctor.facts.model import Engine, Facts, Host, Listener, ProxyProcess, ResolvConf
from doctor.facts.parse import parse_container, parse_network
from doctor.facts.platform import Platform
from doctor.firewall.iptables import parse_iptables_save
from doctor.live.connect import Seen
from doctor.path.build import path_for
from doctor.path.target import parse_target, resolve_target
from doctor.plugin import Finding, Rule, RuleContext
from doctor.plugin.rule import completed
from doctor.preflight.compose import Project
from doctor.report.catalogue import CODES

HOST_ADDRESS = "192.0.2.10"  # this host's address on its LAN (TEST-NET-1)
EMBEDDED = ResolvConf(("127.0.0.11",), (), ("ndots:0",))
_PUBLISH = re.compile(
    r"^(?:(?P<ip>[\d.:]+|\[[\da-f:]+\]):)?(?P<host>\d+):(?P<port>\d+)(?:/(?P<proto>tcp|udp))?$"
)
_LISTENER = re.compile(r"^(?P<proto>tcp|udp) (?P<address>\[[\da-f:]+\]|[\d.]+):(?P<port>\d+)$")


def network(
    name: str,
    subnet: str = "172.30.0.0/16",
    driver: str = "bridge",
    internal: bool = False,
    attachable: bool = False,
    **options: str,
) -> Any:
    gateway = subnet.rsplit(".", 1)[0] + ".1" if "." in subnet else None
    return parse_network(
        {
            "Id": f"{name}-id" + "0" * 20,
            "Name": name,
            "Driver": driver,
            "Internal": internal,
            "Attachable": attachable,
            "Options": options,
            "Scope": "swarm" if driver == "overlay" else "local",
            "IPAM": {"Config": [{"Subnet": subnet, **({"Gateway": gateway} if gateway else {})}]},
        }
    )


BRIDGE = network(
    "bridge",
    "172.17.0.0/16",
    **{
        "com.docker.network.bridge.default_bridge": "true",
        "com.docker.network.bridge.name": "docker0",
    },
)


def listener(text: str, pid: int | None = None, process: str | None = None) -> Listener:
    """``tcp 0.0.0.0:80``, ``udp [::]:53``."""
    m = _LISTENER.match(text)
    assert m, text
    return Listener(m["proto"], m["address"].strip("[]"), int(m["port"]), pid, process)  # type: ignore[arg-type]


def _ports(specs: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """``8080:80``, ``127.0.0.1:8080:80``, ``5353:53/udp`` as NetworkSettings.Ports."""
    ports: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        m = _PUBLISH.match(spec)
        assert m, spec
        key = f"{m['port']}/{m['proto'] or 'tcp'}"
        ports.setdefault(key, []).append(
            {"HostIp": (m["ip"] or "").strip("[]"), "HostPort": m["host"]}
        )
    return ports


def container(
    name: str,
    *,
    on: Sequence[tuple[Any, str]] = ((BRIDGE, "172.17.0.2"),),
    publish: Sequence[str] = (),
    asked: Sequence[str] | None = None,
    listeners: Sequence[str] | None = ("tcp 0.0.0.0:80",),
    exposed: Sequence[str] = (),
    status: str = "running",
    exit_code: int = 0,
    error: str = "",
    health: str | None = None,
    health_output: str = "check failed",
    health_exit: int = 1,
    labels: Mapping[str, str] | None = None,
    mode: str | None = None,
    resolv: ResolvConf | None = None,
    hosts: dict[str, tuple[str, ...]] | None = None,
    aliases: Sequence[str] = (),
    extra_hosts: Sequence[str] = (),
    links: Sequence[str] = (),
    hostname: str = "",
    privileged: bool = False,
    mounts: Sequence[Mapping[str, str]] = (),
) -> Any:
    """A container as ``docker inspect`` shows it, parsed. ``publish``: the live bindings;
    ``asked``: what HostConfig asked for (default: the same)."""
    running = status == "running"
    networks = {
        net.name: {
            "NetworkID": net.id,
            "IPAddress": ip if running else "",
            "Aliases": list(aliases),
            "Gateway": (net.gateways[0] if net.gateways else "") if running else "",
        }
        for net, ip in on
    }
    inspect = {
        "Id": f"{name}{'0' * 12}{'f' * 52}"[:64],
        "Name": f"/{name}",
        "State": {
            "Status": status,
            "Running": running,
            "Pid": 4242 if running else 0,
            "ExitCode": exit_code if not running else 0,
            "Error": error,
            **(
                {
                    "Health": {
                        "Status": health,
                        "Log": [{"Output": health_output, "ExitCode": health_exit}],
                    }
                }
                if health
                else {}
            ),
        },
        "Config": {
            "Image": "busybox",
            "Hostname": hostname,
            "Cmd": ["httpd"],
            "Labels": dict(labels or {}),
            "ExposedPorts": {(e if "/" in e else f"{e}/tcp"): {} for e in exposed},
        },
        "HostConfig": {
            "NetworkMode": mode or (on[0][0].name if on else "none"),
            "PortBindings": _ports(publish if asked is None else asked),
            "ExtraHosts": list(extra_hosts),
            "Links": list(links),
            "Privileged": privileged,
        },
        "NetworkSettings": {"Networks": networks, "Ports": _ports(publish) if running else {}},
        "Mounts": list(mounts),
    }
    embedded = any(not net.is_default_bridge for net, _ in on)
    return parse_container(
        inspect,
        listeners=None
        if listeners is None
        else [listener(text) for text in listeners]
        if running
        else (),
        resolv_conf=resolv
        if resolv is not None
        else (EMBEDDED if embedded else ResolvConf(("192.0.2.53",))),
        hosts=hosts if hosts is not None else {},
    )


def facts(
    *containers: Any,
    networks: Sequence[Any] = (),
    host_listeners: Sequence[Listener] = (),
    proxies: Sequence[ProxyProcess] | None = (),
    sysctls: Mapping[str, str] | None = None,
    iptables: str | None = None,
    addresses: Sequence[str] = ("127.0.0.1", "::1", HOST_ADDRESS),
    platform: Platform | None = None,
    unreadable: Mapping[str, str] | None = None,
    engine: str | None = None,
    **more: Any,
) -> Facts:
    """The facts of a host with ``containers`` on it, and ``networks`` (the default bridge, and
    any other network the containers are on); ``engine``: the running engine's version."""
    return Facts(
        engine=Engine(engine, "1.41", "Debian", "6.1", (), "unix:///run/docker.sock")
        if engine
        else None,
        containers=tuple(containers),
        networks=(BRIDGE, *(networks or ())),
        host=Host("box", "6.1", 0, tuple(addresses)),
        host_listeners=tuple(host_listeners),
        proxies=None if proxies is None else tuple(proxies),
        sysctls={"net.ipv4.ip_forward": "1", **(sysctls or {})},
        firewall=parse_iptables_save(iptables) if iptables is not None else None,
        hosts_file={"localhost": ("127.0.0.1", "::1")},
        platform=platform or Platform("linux", "Linux"),
        unreadable=dict(unreadable or {}),
        **more,
    )


def context(
    f: Facts,
    target: str | None = None,
    *,
    source: str | None = None,
    vantage: str | None = None,
    client: str | None = None,
    seen: Seen | None = None,
    compose: Project | None = None,
) -> RuleContext:
    """What a rule is given for ``target`` (None: the host as a whole), as a diagnosis builds it;
    ``client``: the outside client's address (--client)."""
    from doctor.path.target import host_target

    resolved = (
        host_target(f)
        if target is None
        else resolve_target(parse_target(target), f, source or vantage, client)
    )
    return RuleContext(f, resolved, path_for(f, resolved), seen, compose)


RULES: dict[str, Rule] = {rule.name: rule for rule in docker_doctor_rules()}


def findings(rule: str, ctx: RuleContext) -> list[Finding]:
    """What the built-in rule called ``rule`` finds, titled as a report would show it."""
    return [completed(f, CODES[f.code]) for f in RULES[rule].check(ctx)]


def codes(rule: str, ctx: RuleContext) -> list[str]:
    return [f.code for f in findings(rule, ctx)]


def evidence(found: Finding) -> dict[str, Any]:
    """A finding's evidence, fact -> value."""
    return {e.fact: e.value for e in found.evidence}


def docker_iptables(
    port: int = 8080,
    address: str = "172.17.0.2",
    container_port: int = 80,
    *,
    user: Sequence[str] = (),
    raw: Sequence[str] = (),
    host_input: Sequence[str] = (),
    dnat: bool = True,
    masquerade: bool = True,
    forward_policy: str = "DROP",
    protocol: str = "tcp",
) -> str:
    """iptables-save as Engine 20.10 leaves it for one port published on docker0; ``user``:
    DOCKER-USER rules before its RETURN, ``raw``: raw PREROUTING rules, ``host_input``: the host's
    own filter INPUT rules (lines of iptables-save, chains declared), ``dnat``: whether
    the port's DNAT rule is there, ``masquerade``: whether docker0's subnet is masqueraded."""
    return "\n".join(
        [
            "*raw",
            ":PREROUTING ACCEPT [0:0]",
            *(f"-A PREROUTING {r}" for r in raw),
            "COMMIT",
            "*filter",
            ":INPUT ACCEPT [0:0]",
            f":FORWARD {forward_policy} [0:0]",
            ":DOCKER - [0:0]",
            ":DOCKER-USER - [0:0]",
            *host_input,
            "-A FORWARD -j DOCKER-USER",
            "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A FORWARD -o docker0 -j DOCKER",
            "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
            f"-A DOCKER -d {address}/32 ! -i docker0 -o docker0 -p {protocol} -m {protocol}"
            f" --dport {container_port} -j ACCEPT",
            *(f"-A DOCKER-USER {r}" for r in user),
            "-A DOCKER-USER -j RETURN",
            "COMMIT",
            "*nat",
            ":PREROUTING ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]",
            ":DOCKER - [0:0]",
            "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
            "-A DOCKER -i docker0 -j RETURN",
            *(["-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"] if masquerade else []),
            *(
                [
                    f"-A DOCKER ! -i docker0 -p {protocol} -m {protocol} --dport {port} -j DNAT"
                    f" --to-destination {address}:{container_port}"
                ]
                if dnat
                else []
            ),
            "COMMIT",
            "",
        ]
    )


def compose(tmp_path: Any, text: str) -> Project:
    """A compose project read from ``text``, as preflight reads compose.yaml."""
    from doctor.preflight.compose import load

    path = tmp_path / "compose.yaml"
    path.write_text(text)
    return load([path], environ={})
