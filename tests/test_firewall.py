"""What a client on another machine hits: the kernel's path, staged for real on each engine.

Each test first proves with a real outside client (a network namespace joined by a veth
pair) that the path fails (or works), then asserts the doctor's verdict, first code and
the rule it names. The host changes (rules, sysctls) are undone when the stage closes.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support.command import run_doctor
from tests.support.reports import outcome
from tests.support.staging import connect_here, engine_28

HTTPD = ["httpd", "-f", "-h", "/www", "-p"]


def first(report):
    return report["findings"][0] if report["findings"] else {}


def hop(report, name):
    return next(h for h in report["path"] if h["hop"] == name)


def test_healthy_port_is_reachable_from_outside_through_every_chain(published):
    _, client, port = published
    status, report = run_doctor(f"{client.host_address}:{port}")
    assert (report["vantage"], report["verdict"], report["findings"], status) == (
        "external",
        "reachable",
        [],
        0,
    )
    assert [hop(report, h)["status"] for h in ("raw-prerouting", "nat-dnat", "filter-forward")] == [
        "ok"
    ] * 3
    assert "DNAT --to-destination" in hop(report, "nat-dnat")["detail"]


def test_ip_forward_turned_off_after_the_engine_started(stage, published):
    _, client, port = published
    stage.change_host(
        ("sysctl", "-qw", "net.ipv4.ip_forward=0"), ("sysctl", "-qw", "net.ipv4.ip_forward=1")
    )
    assert client.connect(client.host_address, port) == "timeout"
    status, report = run_doctor(f"{client.host_address}:{port}")
    assert (report["verdict"], first(report)["code"], status) == (
        "unreachable",
        "IP_FORWARD_DISABLED",
        1,
    )
    assert hop(report, "filter-forward")["status"] == "broken"


def test_docker_user_drop_on_the_original_port(stage, published):
    _, client, port = published
    rule = ["-p", "tcp", "-m", "conntrack", "--ctorigdstport", str(port), "-j", "DROP"]
    stage.insert_rule("DOCKER-USER", *rule)
    assert client.connect(client.host_address, port) == "timeout"
    status, report = run_doctor(f"{client.host_address}:{port}")
    finding = first(report)
    assert (report["verdict"], finding["code"], status) == ("unreachable", "FIREWALL_DROP", 1)
    assert finding["hop"] == "filter-forward"
    assert (
        finding["evidence"][0]["value"]
        == f"filter DOCKER-USER rule 1: -p tcp -m conntrack --ctorigdstport {port} "
        "-j DROP"
    )
    assert any("--ctorigdstport" in c for c in finding["fix"]["commands"])


def test_reject_at_the_top_of_forward(stage, published):
    _, client, port = published
    stage.insert_rule("FORWARD", "-j", "REJECT")
    assert client.connect(client.host_address, port) == "refused"
    status, report = run_doctor(f"{client.host_address}:{port}")
    assert (report["verdict"], first(report)["code"], status) == ("unreachable", "FIREWALL_DROP", 1)
    assert first(report)["evidence"][0]["value"].startswith("filter FORWARD rule 1: -j REJECT")


def test_per_port_accept_deleted(stage, published):
    web, client, port = published
    address = stage.inspect(web, "{{.NetworkSettings.IPAddress}}")
    accept = next(
        line for line in stage.iptables_rules("filter", "DOCKER") if f"-d {address}/32" in line
    )
    spec = accept.split()[2:]  # "-A DOCKER ..." -> the rule
    # Engine 20.10 leaves FORWARD's policy as it found it; hosts where it enabled forwarding have DROP.
    stage.change_host(
        ("iptables", "-P", "FORWARD", "DROP"), ("iptables", "-P", "FORWARD", "ACCEPT")
    )
    stage.change_host(("iptables", "-D", "DOCKER", *spec), ("iptables", "-A", "DOCKER", *spec))
    assert client.connect(client.host_address, port) == "timeout"
    status, report = run_doctor(f"{client.host_address}:{port}")
    assert (report["verdict"], first(report)["code"], status) == (
        "unreachable",
        "DOCKER_RULES_MISSING",
        1,
    )
    assert "restart" in first(report)["fix"]["commands"][0]


@pytest.mark.skipif(
    not shutil.which("iptables-legacy"), reason="needs iptables-legacy (Debian's iptables has it)"
)
def test_both_iptables_backends_populated(stage, published):
    _, client, port = published
    rule = ["-p", "tcp", "--dport", "80", "-j", "DROP"]  # after DNAT: the container port
    stage.change_host(
        ("iptables-legacy", "-I", "FORWARD", *rule), ("iptables-legacy", "-D", "FORWARD", *rule)
    )
    assert client.connect(client.host_address, port) == "timeout"
    status, report = run_doctor(f"{client.host_address}:{port}")
    codes = [f["code"] for f in report["findings"]]
    assert (report["verdict"], codes[0], status) == ("unreachable", "FIREWALL_DROP", 1)
    assert "IPTABLES_BACKEND_SPLIT" in codes
    assert "(iptables-legacy)" in first(report)["evidence"][0]["value"]


def test_loopback_only_publish_reached_through_ipv6_localhost(stage):
    port = stage.free_port()
    stage.run("web", "-p", f"127.0.0.1:{port}:80", wait_port=80)
    status, report = run_doctor(f"127.0.0.1:{port}")
    assert (report["verdict"], status) == ("reachable", 0)
    status, report = run_doctor(f"[::1]:{port}")
    assert (report["verdict"], first(report)["code"], status) == (
        "unreachable",
        "IPV6_LOCALHOST_MISMATCH",
        1,
    )


def test_localhost_follows_the_client_that_tries_ipv6_first(stage):
    """With ::1 localhost in /etc/hosts (as Debian ships it) clients try ::1 first; a port
    published on 127.0.0.1 only fails them, whatever 127.0.0.1 does."""
    stage.host_file("/etc/hosts", "::1 localhost ip6-localhost\n127.0.0.1 localhost\n")
    port = stage.free_port()
    stage.run("web", "-p", f"127.0.0.1:{port}:80", wait_port=80)
    assert (connect_here("::1", port), connect_here("127.0.0.1", port)) == ("refused", "connected")
    status, report = run_doctor(f"localhost:{port}")
    assert outcome(status, report) == (
        "unreachable",
        "IPV6_LOCALHOST_MISMATCH",
        "host-listener",
        1,
    )
    listener = next(h for h in report["path"] if h["hop"] == "host-listener")
    assert "clients try ::1 first and fail" in listener["live"]
    assert "127.0.0.1" in listener["live"]
    wide = stage.free_port()  # the healthy twin: published for both families
    stage.run("both", "-p", f"127.0.0.1:{wide}:80", "-p", f"[::1]:{wide}:80", wait_port=80)
    status, report = run_doctor(f"localhost:{wide}")
    assert (report["verdict"], status) == ("reachable", 0)


def test_direct_routing_to_a_container_address(stage):
    web = stage.run("web", wait_port=80)  # nothing published
    address = stage.inspect(web, "{{.NetworkSettings.IPAddress}}")
    client = stage.outside_client()
    client.route("172.16.0.0/12")
    outcome = client.connect(address, 80)
    status, report = run_doctor(f"{address}:80", "--from", "external")
    if engine_28():
        assert outcome == "timeout"
        assert (report["verdict"], first(report)["code"], status) == (
            "unreachable",
            "DIRECT_ROUTING_BLOCKED",
            1,
        )
        assert first(report)["evidence"][0]["value"].startswith(
            "raw PREROUTING rule 1: -d " + address
        )
    else:  # Engine 20.10 routes to containers; its FORWARD policy decides
        assert outcome == "connected"
        assert (report["verdict"], status) == ("reachable", 0)


def netns_left() -> list[str]:
    return [
        line
        for line in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True
        ).stdout.split("\n")
        if line.startswith("ddx-")
    ]


@pytest.mark.standalone
def test_probe_external_sees_a_syn_ack_and_the_capture_sees_the_container_answer(published):
    _, client, port = published
    status, report = run_doctor(f"{client.host_address}:{port}", "--probe-external")
    assert (report["verdict"], report["findings"], status) == ("reachable", [], 0)
    outside = next(p for p in report["probes"] if p["name"] == "live:outside")
    assert "SYN-ACK: the service accepts" in outside["detail"]
    assert "the SYN reached" in outside["detail"] and "answered SYN-ACK" in outside["detail"]
    assert netns_left() == []


def test_probe_external_tells_silence_from_icmp(stage, published):
    _, client, port = published
    stage.insert_rule("DOCKER-USER", "-j", "DROP")
    status, report = run_doctor(f"{client.host_address}:{port}", "--probe-external")
    outside = next(p for p in report["probes"] if p["name"] == "live:outside")
    assert (report["verdict"], first(report)["code"]) == ("unreachable", "FIREWALL_DROP")
    assert "silence" in outside["detail"] and "never reached" in outside["detail"]
    stage.insert_rule("FORWARD", "-j", "REJECT")
    status, report = run_doctor(f"{client.host_address}:{port}", "--probe-external")
    outside = next(p for p in report["probes"] if p["name"] == "live:outside")
    assert "ICMP 3/3 (port unreachable)" in outside["detail"]
    assert netns_left() == []


def test_probe_external_sees_the_container_reset(stage):
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "3000"], wait_port=3000)
    client = stage.outside_client()
    assert client.connect(client.host_address, port) == "refused"
    status, report = run_doctor(f"{client.host_address}:{port}", "--probe-external")
    outside = next(p for p in report["probes"] if p["name"] == "live:outside")
    assert (report["verdict"], first(report)["code"]) == ("unreachable", "PUBLISHED_PORT_MISMATCH")
    assert "RST" in outside["detail"] and "answered RST" in outside["detail"]
    assert hop(report, "container-listener")["status"] == "broken"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a network namespace")
def test_the_outside_client_is_removed_even_on_ctrl_c():
    from doctor.live.outside import TemporaryClient as OutsideClient

    with pytest.raises(KeyboardInterrupt), OutsideClient(()) as client:
        assert (
            client.namespace
            in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        )
        raise KeyboardInterrupt
    assert netns_left() == []


def test_a_foreign_nftables_chain_with_drop_policy_on_forward(stage, published):
    _, client, port = published
    table = stage.prefix.replace("-", "_")
    stage.change_host(
        (
            "nft",
            f"add table inet {table}; add chain inet {table} forward "
            "{ type filter hook forward priority 0; policy drop; }",
        ),
        ("nft", "delete", "table", "inet", table),
    )
    assert client.connect(client.host_address, port) == "timeout"
    status, report = run_doctor(f"{client.host_address}:{port}")
    finding = first(report)
    assert (report["verdict"], finding["code"], status) == ("unreachable", "FIREWALL_DROP", 1)
    assert finding["evidence"][0]["value"] == f"nft inet {table} forward policy drop"
    assert any(
        c.startswith(f"nft insert rule inet {table} forward") for c in finding["fix"]["commands"]
    )


def test_input_chain_for_a_host_network_container(stage):
    port = stage.free_port()
    stage.run("agent", "--network", "host", cmd=[*HTTPD, str(port)])
    client = stage.outside_client()
    assert client.connect(client.host_address, port) == "connected"
    rule = ["-p", "tcp", "--dport", str(port), "-j", "DROP"]
    stage.insert_rule("INPUT", *rule)
    assert client.connect(client.host_address, port) == "timeout"
    status, report = run_doctor(f"{client.host_address}:{port}")
    assert (report["verdict"], first(report)["code"], status) == ("unreachable", "FIREWALL_DROP", 1)
    assert first(report)["hop"] == "filter-input"
    assert (
        first(report)["evidence"][0]["value"]
        == f"filter INPUT rule 1: -p tcp -m tcp --dport {port} -j DROP"
    )
