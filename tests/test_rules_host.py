"""The rules of the kernel's path, the networks and the platforms, on hand-built facts."""

from __future__ import annotations

from doctor.facts.model import HostRoute, Interface, Mount
from doctor.facts.platform import Platform
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

EXTERNAL = f"{HOST_ADDRESS}:8080"
WEB = container("web", publish=["8080:80"])


def outside(**more):
    return facts(WEB, iptables=docker_iptables(), **more)


def test_ip_forward_disabled_on_the_way_in_and_in_a_checkup():
    f = facts(WEB, iptables=docker_iptables(), sysctls={"net.ipv4.ip_forward": "0"})
    (found,) = findings("ip-forward-disabled", context(f, EXTERNAL))
    assert (found.code, found.hop) == ("IP_FORWARD_DISABLED", "filter-forward")
    assert evidence(found) == {"net.ipv4.ip_forward": "0"}
    assert codes("ip-forward-disabled", context(f)) == ["IP_FORWARD_DISABLED"]  # the host checkup
    assert codes("ip-forward-disabled", context(outside(), EXTERNAL)) == []


def test_firewall_drop_names_the_rule_and_fixes_docker_user_by_the_original_port():
    f = facts(WEB, iptables=docker_iptables(user=["-p tcp -m tcp --dport 80 -j DROP"]))
    (found,) = findings("firewall-drop", context(f, EXTERNAL))
    assert (found.code, found.hop) == ("FIREWALL_DROP", "filter-forward")
    assert evidence(found)["rule"] == "-t filter -A DOCKER-USER -p tcp -m tcp --dport 80 -j DROP"
    assert any("--ctorigdstport 8080" in command for command in found.fix.commands)
    assert codes("firewall-drop", context(outside(), EXTERNAL)) == []


def test_docker_rules_missing_when_the_dnat_rule_is_gone():
    f = facts(WEB, iptables=docker_iptables(dnat=False))
    (found,) = findings("docker-rules-missing", context(f, EXTERNAL))
    assert (found.code, found.hop) == ("DOCKER_RULES_MISSING", "nat-dnat")
    assert evidence(found)["web publishes"] == "8080"
    assert codes("docker-rules-missing", context(outside(), EXTERNAL)) == []


def test_direct_routing_blocked_by_engine_28s_raw_rule():
    raw = ["-d 172.17.0.2/32 ! -i docker0 -j DROP"]
    f = facts(WEB, iptables=docker_iptables(raw=raw))
    (found,) = findings("direct-routing-blocked", context(f, "172.17.0.2:80", vantage="external"))
    assert (found.code, found.hop) == ("DIRECT_ROUTING_BLOCKED", "raw-prerouting")
    assert "raw PREROUTING rule" in evidence(found)
    assert (
        codes("firewall-drop", context(f, "172.17.0.2:80", vantage="external")) == []
    )  # said once


def test_iptables_backend_split_when_both_backends_hold_rules():
    from doctor.firewall.iptables import parse_iptables_save

    legacy = parse_iptables_save("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j DROP\nCOMMIT\n")
    (found,) = findings(
        "iptables-backend-split", context(outside(legacy_firewall=legacy), EXTERNAL)
    )
    assert found.code == "IPTABLES_BACKEND_SPLIT"
    assert evidence(found)["rules in iptables-legacy"] == 1
    assert codes("iptables-backend-split", context(outside(), EXTERNAL)) == []


def test_internal_network_has_nothing_published():
    back = network("back", "172.30.0.0/16", internal=True)
    db = container(
        "db",
        on=((back, "172.30.0.2"),),
        asked=["5432:5432"],
        publish=[],
        listeners=["tcp 0.0.0.0:5432"],
    )
    (found,) = findings("internal-network", context(facts(db, networks=[back]), "localhost:5432"))
    assert (found.code, found.hop) == ("INTERNAL_NETWORK", "bridge")
    assert evidence(found)["network back Internal"] is True


def test_subnet_overlap_with_a_host_route():
    import ipaddress

    routes = (
        HostRoute(ipaddress.IPv4Network("172.17.0.0/16"), "docker0", None),
        HostRoute(ipaddress.IPv4Network("172.17.5.0/24"), "tun0", None),
    )
    (found,) = findings("subnet-overlap", context(facts(WEB, routes=routes), "localhost:8080"))
    assert found.code == "SUBNET_OVERLAP" and "tun0" in found.explanation
    assert codes("subnet-overlap", context(facts(WEB, routes=routes[:1]), "localhost:8080")) == []


def test_mtu_mismatch_against_the_egress_device():
    import ipaddress

    routes = (HostRoute(ipaddress.IPv4Network("0.0.0.0/0"), "wg0", "10.8.0.1"),)
    interfaces = {
        "wg0": Interface("wg0", 1420, ("10.8.0.2",)),
        "docker0": Interface("docker0", 1500, ()),
    }
    (found,) = findings("mtu-mismatch", context(facts(WEB, routes=routes, interfaces=interfaces)))
    assert (found.code, found.severity) == ("MTU_MISMATCH", "warning")
    assert "1420" in found.explanation and "1500" in found.explanation


def test_macvlan_children_are_out_of_the_hosts_reach():
    lan = network("lan", "192.0.2.0/24", driver="macvlan")
    tv = container("tv", on=((lan, "192.0.2.77"),), listeners=["tcp 0.0.0.0:80"])
    (found,) = findings("macvlan-host-isolation", context(facts(tv, networks=[lan]), "tv:80"))
    assert found.code == "MACVLAN_HOST_ISOLATION"


def test_docker_desktop_container_addresses_are_in_the_vm():
    desktop = Platform("desktop", "Docker Desktop (Docker Desktop, kernel 6.6-linuxkit)")
    f = facts(WEB, platform=desktop)
    (found,) = findings("desktop-vm-network", context(f, "172.17.0.2:80"))
    assert found.code == "DESKTOP_VM_NETWORK" and "8080" in found.fix.summary
    assert codes("desktop-vm-network", context(facts(WEB), "172.17.0.2:80")) == []


def test_docker_desktop_bind_mounts_are_slow():
    desktop = Platform("desktop", "Docker Desktop")
    dev = container(
        "dev", mounts=[{"Type": "bind", "Source": "/Users/me/src", "Destination": "/src"}]
    )
    (found,) = findings("desktop-bind-mount-slow", context(facts(dev, platform=desktop)))
    assert found.code == "DESKTOP_BIND_MOUNT_SLOW" and found.severity in ("info", "warning")
    assert Mount("bind", "/Users/me/src", "/src") in dev.mounts


def test_wsl2_nat_is_out_of_the_lans_reach():
    wsl = Platform("wsl2", "WSL2 (nat networking)", "nat")
    (found,) = findings("wsl2-lan-access", context(facts(WEB, platform=wsl), EXTERNAL))
    assert found.code == "WSL2_LAN_ACCESS" and evidence(found) == {
        "platform": "WSL2 (nat networking)"
    }
    mirrored = Platform("wsl2", "WSL2 (mirrored networking)", "mirrored")
    assert codes("wsl2-lan-access", context(facts(WEB, platform=mirrored), EXTERNAL)) == []


def test_rootless_engines_cannot_publish_low_ports():
    rootless = Platform("rootless", "a rootless engine")
    web = container("web", status="created", asked=["80:80"], publish=[])
    f = facts(web, platform=rootless, sysctls={"net.ipv4.ip_unprivileged_port_start": "1024"})
    (found,) = findings("rootless-port-limits", context(f, "localhost:80"))
    assert found.code == "ROOTLESS_PORT_LIMITS" and "1024" in found.explanation
