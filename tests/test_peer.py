"""Name resolution and paths as a source container sees them, from hand-made engine data.

The real-engine tests stage these situations; these cover what one node cannot stage
(overlay networks) and pin the resolution order on small, readable inputs.
"""

from __future__ import annotations

import pytest

from doctor.errors import UsageError
from doctor.facts.model import Facts, Host, ResolvConf
from doctor.facts.parse import (
    parse_container,
    parse_network,
    parse_resolv_conf,
    parse_routes,
)
from doctor.path.container import build_peer_path
from doctor.path.names import resolve_as
from doctor.path.target import find_container, parse_target, resolve_target

EMBEDDED = ResolvConf(("127.0.0.11",), (), ("ndots:0",))


def network(name, driver="bridge", subnet="172.30.0.0/16", **options):
    return parse_network(
        {
            "Id": f"{name}-id",
            "Name": name,
            "Driver": driver,
            "Options": options,
            "Scope": "swarm" if driver == "overlay" else "local",
            "IPAM": {"Config": [{"Subnet": subnet, "Gateway": subnet.replace("0/16", "1")}]},
        }
    )


def container(
    name, *attachments, labels=None, resolv=EMBEDDED, hosts=None, mode=None, listeners=()
):
    """attachments: (network, ip, aliases) triples."""
    networks = {
        net.name: {
            "NetworkID": net.id,
            "IPAddress": ip,
            "Aliases": list(aliases),
            "Gateway": net.gateways[0] if net.gateways else "",
        }
        for net, ip, aliases in attachments
    }
    inspect = {
        "Id": f"{name}0123456789abcdef",
        "Name": f"/{name}",
        "State": {"Status": "running", "Running": True, "Pid": 4242},
        "Config": {"Image": "busybox", "Labels": labels or {}},
        "HostConfig": {"NetworkMode": mode or (attachments[0][0].name if attachments else "none")},
        "NetworkSettings": {"Networks": networks},
    }
    return parse_container(inspect, listeners=listeners, resolv_conf=resolv, hosts=hosts or {})


def facts(containers, networks):
    return Facts(
        engine=None,
        containers=tuple(containers),
        networks=tuple(networks),
        host=Host("box", "6.1", 0, ("127.0.0.1", "192.0.2.10")),
        host_listeners=(),
        proxies=(),
        sysctls={},
        firewall=None,
        hosts_file={},
    )


BRIDGE = network(
    "bridge", subnet="172.17.0.0/16", **{"com.docker.network.bridge.default_bridge": "true"}
)
BACK = network("back", subnet="172.30.0.0/16")
FRONT = network("front", subnet="172.31.0.0/16")


def test_resolv_conf_and_routes_parse():
    conf = parse_resolv_conf(
        "# generated\nnameserver 127.0.0.11\nsearch a.example b.example\n"
        "domain c.example\noptions ndots:0 timeout:1\nnameserver 10.0.0.2 ; x\n"
    )
    assert conf == ResolvConf(("127.0.0.11", "10.0.0.2"), ("c.example",), ("ndots:0", "timeout:1"))
    routes = parse_routes(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "down0\t0000000A\t00000000\t0000\t0\t0\t0\t000000FF\t0\t0\t0\n"
    )
    assert [str(r) for r in routes] == [
        "default via 192.0.2.1 dev eth0",
        "172.17.0.0/16 dev docker0",
    ]


def test_embedded_dns_answers_names_aliases_and_services_on_shared_networks_only():
    web = container("web", (BACK, "172.30.0.2", ()))
    db = container(
        "db",
        (BACK, "172.30.0.3", ("database",)),
        labels={"com.docker.compose.project": "shop", "com.docker.compose.service": "postgres"},
    )
    other = container("other", (FRONT, "172.31.0.5", ()))
    f = facts([web, db, other], [BACK, FRONT])
    for name in ("db", "database", "postgres", "DB"):
        r = resolve_as(web, name, f)
        assert (r.status, r.via, r.addresses) == ("ok", "embedded-dns", ("172.30.0.3",)), name
    r = resolve_as(web, "other", f)
    assert (r.status, r.addresses) == ("broken", ())  # a container, but not on a shared network


def test_hosts_entries_come_first_and_dotted_names_are_up_to_dns():
    web = container("web", (BACK, "172.30.0.2", ()), hosts={"db": ("10.9.9.9",)})
    db = container("db", (BACK, "172.30.0.3", ()))
    f = facts([web, db], [BACK])
    assert resolve_as(web, "db", f).addresses == ("10.9.9.9",)
    assert (resolve_as(web, "api.example.com", f).status, resolve_as(web, "dbb", f).status) == (
        "unknown",
        "broken",
    )


def test_default_bridge_has_no_names_and_a_loopback_resolver_is_no_resolver():
    plain = ResolvConf(("10.0.0.2",))
    web = container("web", (BRIDGE, "172.17.0.2", ()), resolv=plain)
    db = container("db", (BRIDGE, "172.17.0.3", ()), resolv=plain)
    stuck = container("stuck", (BRIDGE, "172.17.0.4", ()), resolv=ResolvConf(("127.0.0.53",)))
    f = facts([web, db, stuck], [BRIDGE])
    assert resolve_as(web, "db", f).status == "broken"
    assert resolve_as(web, "example.com", f).status == "unknown"
    assert resolve_as(stuck, "example.com", f).status == "broken"


def test_overlay_peers_on_other_nodes_are_unknown_not_missing():
    overlay = network("mesh", driver="overlay", subnet="10.0.9.0/24")
    web = container("web", (overlay, "10.0.9.2", ()))
    api = container("api", (overlay, "10.0.9.3", ()))
    f = facts([web, api], [overlay])
    remote = resolve_as(web, "billing", f)
    assert remote.status == "unknown" and "another node" in remote.detail
    path = build_peer_path(f, resolve_target(parse_target("api:80"), f, "web"))
    assert [h.hop for h in path.hops] == [
        "source",
        "name-resolution",
        "network",
        "bridge",
        "container",
        "container-listener",
    ]
    assert "only this node's side is checked" in path.hop("bridge").detail


def test_a_container_sharing_anothers_namespace_resolves_as_that_one():
    web = container("web", (BACK, "172.30.0.2", ()))
    sidecar = container("sidecar", mode=f"container:{web.id}")
    db = container("db", (BACK, "172.30.0.3", ()))
    f = facts([web, sidecar, db], [BACK])
    target = resolve_target(parse_target("db:5432"), f, "sidecar")
    assert (target.vantage, target.container, target.addresses) == (
        "container:sidecar",
        db,
        ("172.30.0.3",),
    )


def test_from_takes_a_compose_service_of_the_current_project(monkeypatch):
    labels = {"com.docker.compose.service": "web"}
    mine = container(
        "shop-web-1",
        (BACK, "172.30.0.2", ()),
        labels={**labels, "com.docker.compose.project": "shop"},
    )
    theirs = container(
        "blog-web-1",
        (BACK, "172.30.0.3", ()),
        labels={**labels, "com.docker.compose.project": "blog"},
    )
    f = facts([mine, theirs], [BACK])
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "shop")
    assert find_container("web", f, "--from") is mine
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "elsewhere")
    with pytest.raises(UsageError, match="several compose projects"):
        find_container("web", f, "--from")
    with pytest.raises(UsageError, match="did you mean shop-web-1"):
        find_container("shop-wbe-1", f, "--from")
