"""The rules of a container's own traffic out of the host, and of the replies back, on
hand-built facts: the path walks FORWARD out, nat POSTROUTING and FORWARD back."""

from __future__ import annotations

import ipaddress

from doctor.facts.model import DaemonSettings, HostRoute, Interface
from doctor.live.connect import Observation, Seen
from tests.support.builders import (
    HOST_ADDRESS,
    codes,
    container,
    context,
    docker_iptables,
    evidence,
    facts,
    findings,
    network,
)

SERVER = "203.0.113.10:80"  # TEST-NET-3: a server out on the internet
WEB = container("web", listeners=[])
ROUTES = (
    HostRoute(ipaddress.IPv4Network("0.0.0.0/0"), "eth0", "192.0.2.1"),
    HostRoute(ipaddress.IPv4Network("172.17.0.0/16"), "docker0", None),
)
INTERFACES = {
    "eth0": Interface("eth0", 1500, (HOST_ADDRESS,)),
    "docker0": Interface("docker0", 1500, ("172.17.0.1",)),
}


def egress(iptables: str | None = None, **more):
    """The facts of a host whose web container calls out through docker0 and eth0."""
    return facts(
        WEB,
        iptables=iptables if iptables is not None else docker_iptables(),
        routes=ROUTES,
        interfaces=more.pop("interfaces", INTERFACES),
        **more,
    )


def hops(ctx) -> dict[str, str]:
    return {h.hop: h.status for h in ctx.path.hops}


def test_the_healthy_way_out_is_walked_hop_by_hop():
    ctx = context(egress(), SERVER, source="web")
    assert hops(ctx) == {
        "source": "ok",
        "name-resolution": "ok",
        "bridge": "ok",
        "filter-forward": "ok",
        "nat-masquerade": "ok",
        "egress": "ok",
        "return-path": "ok",
    }
    for rule in ("firewall-drop", "egress-not-masqueraded", "bridge-address-missing"):
        assert codes(rule, ctx) == []


def test_no_masquerade_while_the_engines_chains_stand_means_the_rule_was_deleted():
    ctx = context(egress(docker_iptables(masquerade=False)), SERVER, source="web")
    (found,) = findings("egress-not-masqueraded", ctx)
    assert (found.code, found.hop) == ("EGRESS_NOT_MASQUERADED", "nat-masquerade")
    assert evidence(found)["nat DOCKER chain present"] is True
    assert found.fix.commands[0] == (
        "iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"
    )


def test_no_masquerade_and_no_engine_chains_means_the_nat_table_was_flushed():
    filter_table = docker_iptables().partition("*nat")[0]
    flushed = filter_table + "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"
    ctx = context(egress(flushed), SERVER, source="web")
    (found,) = findings("egress-not-masqueraded", ctx)
    assert evidence(found)["nat DOCKER chain present"] is False
    assert found.fix.commands[0] == "systemctl restart docker"


def test_no_masquerade_because_the_daemon_writes_no_rules():
    told = DaemonSettings({"iptables": False})
    f = egress(docker_iptables(masquerade=False), daemon=told)
    (found,) = findings("egress-not-masqueraded", context(f, SERVER, source="web"))
    assert evidence(found)["engine told iptables"] is False
    assert found.fix.commands[0] == '# /etc/docker/daemon.json: remove "iptables": false'
    flag = DaemonSettings(argv=("dockerd", "--iptables=false"))
    f = egress(docker_iptables(masquerade=False), daemon=flag)
    (found,) = findings("egress-not-masqueraded", context(f, SERVER, source="web"))
    assert found.evidence[-1].source == "dockerd --iptables=false"
    assert found.fix.commands[0] == "# dockerd's command line: drop --iptables=false"


def test_a_network_that_does_not_masquerade_by_its_options_is_not_blamed():
    options = {
        "com.docker.network.bridge.name": "br-plain",
        "com.docker.network.bridge.enable_ip_masquerade": "false",
    }
    plain = network("plain", "172.30.0.0/16", **options)
    web = container("web", on=((plain, "172.30.0.2"),), listeners=[])
    interfaces = {**INTERFACES, "br-plain": Interface("br-plain", 1500, ("172.30.0.1",))}
    f = facts(
        web,
        networks=[plain],
        iptables=docker_iptables(masquerade=False),
        routes=ROUTES,
        interfaces=interfaces,
    )
    ctx = context(f, SERVER, source="web")
    assert hops(ctx)["nat-masquerade"] == "skipped"
    assert codes("egress-not-masqueraded", ctx) == []


def test_a_docker_user_drop_on_the_uplink_kills_the_replies():
    drop = docker_iptables(user=["-i eth0 -j DROP"])
    ctx = context(egress(drop), SERVER, source="web")
    assert hops(ctx)["return-path"] == "broken" and hops(ctx)["filter-forward"] == "ok"
    (found,) = findings("firewall-drop", ctx)
    assert (found.code, found.hop) == ("FIREWALL_DROP", "return-path")
    assert evidence(found)["rule"] == "-t filter -A DOCKER-USER -i eth0 -j DROP"
    assert found.fix.commands[0] == (
        "iptables -t filter -I DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    )
    # Its healthy twin: the established accept comes first.
    twin = docker_iptables(
        user=["-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-i eth0 -j DROP"]
    )
    assert codes("firewall-drop", context(egress(twin), SERVER, source="web")) == []


def test_a_drop_on_the_way_out_names_the_rule():
    drop = docker_iptables(user=["-s 172.17.0.0/16 -d 203.0.113.0/24 -j DROP"])
    (found,) = findings("firewall-drop", context(egress(drop), SERVER, source="web"))
    assert (found.code, found.hop) == ("FIREWALL_DROP", "filter-forward")
    assert found.fix.commands[0] == "iptables -t filter -D DOCKER-USER 1"


def test_ip_forward_disabled_on_the_way_out():
    f = egress(sysctls={"net.ipv4.ip_forward": "0"})
    ctx = context(f, SERVER, source="web")
    assert hops(ctx)["filter-forward"] == "broken"
    (found,) = findings("ip-forward-disabled", ctx)
    assert found.code == "IP_FORWARD_DISABLED"


def test_a_bridge_without_its_address_has_no_gateway():
    bare = {**INTERFACES, "docker0": Interface("docker0", 1500, ())}
    ctx = context(egress(interfaces=bare), SERVER, source="web")
    assert hops(ctx)["bridge"] == "broken"
    (found,) = findings("bridge-address-missing", ctx)
    assert (found.code, found.hop) == ("BRIDGE_ADDRESS_MISSING", "bridge")
    assert evidence(found) == {"network bridge gateway": "172.17.0.1", "docker0 addresses": []}
    assert found.fix.commands[0] == "ip addr add 172.17.0.1/16 dev docker0"
    assert codes("bridge-address-missing", context(egress(interfaces=bare))) == [
        "BRIDGE_ADDRESS_MISSING"
    ]  # the host checkup says it too


def test_a_reply_with_ttl_1_dies_on_the_way_to_the_container():
    attempt = Observation("203.0.113.10", 80, "tcp", "timeout", 1000)
    answered = Observation("203.0.113.10", 80, "tcp", "open", 1, ttl=1)
    seen = Seen(connections=[attempt], host_reply=answered)
    (found,) = findings("hop-limit-too-low", context(egress(), SERVER, source="web", seen=seen))
    assert (found.code, found.hop) == ("HOP_LIMIT_TOO_LOW", "return-path")
    assert evidence(found)["web's attempt"] == [str(attempt)]
    healthy = Seen(
        connections=[attempt], host_reply=Observation("203.0.113.10", 80, "tcp", "open", 1, ttl=63)
    )
    assert codes("hop-limit-too-low", context(egress(), SERVER, source="web", seen=healthy)) == []


def test_an_mtu_black_hole_found_by_the_probe():
    from doctor.live.connect import PathMtu

    hole = PathMtu("203.0.113.10", 1500, 1392)
    assert hole.blackhole
    (found,) = findings(
        "mtu-blackhole", context(egress(), SERVER, source="web", seen=Seen(mtu=hole))
    )
    assert (found.code, found.hop) == ("MTU_BLACKHOLE", "egress")
    assert evidence(found)["largest packet through (DF set)"] == 1392
    assert found.fix.commands[0].startswith('/etc/docker/daemon.json: {"mtu": 1392}')  # bridge
    assert "--set-mss 1352" in found.fix.commands[1]
    for fine in (PathMtu("203.0.113.10", 1500, 1500), PathMtu("203.0.113.10", 1500, 1392, 1400)):
        seen = Seen(mtu=fine)  # all through, or PMTU discovery announced the limit
        assert codes("mtu-blackhole", context(egress(), SERVER, source="web", seen=seen)) == []


def test_the_daemon_mtu_does_not_reach_user_defined_networks():
    net = network("net", "172.30.0.0/16", **{"com.docker.network.bridge.name": "br-net"})
    api = container("api", on=((net, "172.30.0.2"),), listeners=[])
    told = DaemonSettings({"mtu": 1400})
    f = facts(api, networks=[net], iptables=docker_iptables(), routes=ROUTES, daemon=told)
    (found,) = findings("mtu-mismatch", context(f, SERVER, source="api"))
    assert evidence(found)["daemon mtu"] == 1400
    assert evidence(found)["network net MTU"] == 1500
    sized = network("net", "172.30.0.0/16", **{"com.docker.network.driver.mtu": "1400"})
    fitted = container("api", on=((sized, "172.30.0.2"),), listeners=[])
    g = facts(fitted, networks=[sized], iptables=docker_iptables(), routes=ROUTES, daemon=told)
    assert codes("mtu-mismatch", context(g, SERVER, source="api")) == []
