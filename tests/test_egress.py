"""A container's own traffic out of the host, and the replies back, staged for real.

The far end is a server on another machine: a network namespace behind a veth pair that
knows only its own link, as a server on the internet knows no route to this host's private
subnets, so only a masqueraded connection gets its answers. Each test first proves the
outcome with a real client inside the container's network namespace, then asserts the
doctor's verdict, first code and what it names.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest

from tests.support.command import run_doctor
from tests.support.reports import evidence, first, hops, outcome
from tests.support.staging import Stage, engine_started_with

NOT_MASQUERADED = ("unreachable", "EGRESS_NOT_MASQUERADED", "nat-masquerade", 1)


@pytest.fixture
def calling_out(stage):
    """A container on its own network, a server out there, and the target the container calls."""
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    port = stage.free_port()
    server = stage.remote_server(port)
    return web, server, port, f"{server.client_address}:{port}"


def masquerade_rule(stage, container):
    """The nat POSTROUTING rule (-A ... as iptables -S prints it) that masquerades the
    subnet of ``container``'s network."""
    subnet = stage.inspect(container, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    prefix = subnet.rsplit(".", 2)[0]
    return next(
        r.split()
        for r in stage.iptables_rules("nat", "POSTROUTING")
        if "MASQUERADE" in r and f"-s {prefix}." in r
    )


def test_the_way_out_is_walked_hop_by_hop(stage, calling_out):
    web, server, port, target = calling_out
    assert stage.connect_from(web, server.client_address, port) == "connected"
    status, report = run_doctor(target, "--from", web)
    assert (report["verdict"], [f["code"] for f in report["findings"]], status) == (
        "reachable",
        [],
        0,
    )
    assert {h: hops(report)[h] for h in ("bridge", "filter-forward", "nat-masquerade")} == {
        "bridge": "ok",
        "filter-forward": "ok",
        "nat-masquerade": "ok",
    }
    assert hops(report)["egress"] == hops(report)["return-path"] == "ok"


def test_the_masquerade_rule_deleted(stage, calling_out):
    web, server, port, target = calling_out
    rule = masquerade_rule(stage, web)
    stage.change_host(("iptables", "-t", "nat", "-D", *rule[1:]), ("iptables", "-t", "nat", *rule))
    assert stage.connect_from(web, server.client_address, port) == "timeout"
    status, report = run_doctor(target, "--from", web)
    found = first(report)
    assert outcome(status, report) == NOT_MASQUERADED
    assert evidence(found)["nat DOCKER chain present"]
    assert found["fix"]["commands"][0] == f"iptables -t nat -A {' '.join(rule[1:])}"


def test_the_nat_table_flushed_by_a_firewall_reload(stage, calling_out, tmp_path):
    web, server, port, target = calling_out
    saved = tmp_path / "nat.rules"
    saved.write_text(
        subprocess.run(
            ("iptables-save", "-t", "nat"), capture_output=True, text=True, check=True
        ).stdout
    )
    stage.change_host(
        ("sh", "-c", "iptables -t nat -F && iptables -t nat -X"),
        ("sh", "-c", f"iptables-restore -T nat < {saved}"),
    )
    assert stage.connect_from(web, server.client_address, port) == "timeout"
    status, report = run_doctor(target, "--from", web)
    found = first(report)
    assert outcome(status, report) == NOT_MASQUERADED
    assert evidence(found)["nat DOCKER chain present"] is False
    assert found["fix"]["commands"][0] == "systemctl restart docker"


def test_an_engine_told_to_write_no_firewall_rules(engine, image, tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"iptables": False}))
    with engine_started_with("--config-file", str(config)), Stage(image) as stage:
        net = stage.network("net")
        web = stage.run("web", "--network", net)
        port = stage.free_port()
        server = stage.remote_server(port)
        assert stage.connect_from(web, server.client_address, port) == "timeout"
        status, report = run_doctor(f"{server.client_address}:{port}", "--from", web)
    found = first(report)
    assert outcome(status, report) == NOT_MASQUERADED
    told = next(e for e in found["evidence"] if e["fact"] == "engine told iptables")
    assert (told["value"], told["source"]) == (False, str(config))


def test_a_docker_user_drop_on_the_uplink_kills_the_replies(stage, calling_out):
    web, server, port, target = calling_out
    rule = ("-i", server.host_veth, "-j", "DROP")
    stage.insert_rule("DOCKER-USER", *rule)
    assert stage.connect_from(web, server.client_address, port) == "timeout"
    status, report = run_doctor(target, "--from", web)
    found = first(report)
    assert outcome(status, report) == ("unreachable", "FIREWALL_DROP", "return-path", 1)
    assert evidence(found)["rule"] == f"-t filter -A DOCKER-USER -i {server.host_veth} -j DROP"
    assert found["fix"]["commands"][0] == (
        "iptables -t filter -I DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    )
    # The firewall's own evidence: the rule counted the replies it dropped during the probe.
    during = evidence(found)["during the probe"]
    assert re.fullmatch(r"filter DOCKER-USER rule 1: \+\d+ packets during the probe", during)
    assert not during.startswith("filter DOCKER-USER rule 1: +0 ")


def test_a_docker_user_drop_after_the_established_accept_lets_replies_through(stage, calling_out):
    web, server, port, target = calling_out
    accept = ("-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    drop = ("-i", server.host_veth, "-j", "DROP")
    for rule in (drop, accept):  # each inserted at the top: the accept ends up first
        stage.insert_rule("DOCKER-USER", *rule)
    assert stage.connect_from(web, server.client_address, port) == "connected"
    status, report = run_doctor(target, "--from", web)
    assert (report["verdict"], report["findings"], status) == ("reachable", [], 0)
    assert hops(report)["return-path"] == "ok"


def test_a_drop_on_the_way_out_names_the_rule(stage, calling_out):
    web, server, port, target = calling_out
    rule = ("-d", f"{server.client_address}/32", "-p", "tcp", "-j", "DROP")
    stage.insert_rule("DOCKER-USER", *rule)
    assert stage.connect_from(web, server.client_address, port) == "timeout"
    status, report = run_doctor(target, "--from", web)
    found = first(report)
    assert outcome(status, report) == ("unreachable", "FIREWALL_DROP", "filter-forward", 1)
    assert evidence(found)["rule"] == (
        f"-t filter -A DOCKER-USER -d {server.client_address}/32 -p tcp -j DROP"
    )


def test_ip_forward_off_stops_the_way_out(stage, calling_out):
    web, server, port, target = calling_out
    stage.change_host(
        ("sysctl", "-qw", "net.ipv4.ip_forward=0"), ("sysctl", "-qw", "net.ipv4.ip_forward=1")
    )
    assert stage.connect_from(web, server.client_address, port) in ("timeout", "unreachable")
    status, report = run_doctor(target, "--from", web)
    assert (report["verdict"], first(report)["code"], status) == (
        "unreachable",
        "IP_FORWARD_DISABLED",
        1,
    )
    assert hops(report)["filter-forward"] == "broken"


def test_a_bridge_that_lost_its_address(stage, calling_out):
    web, server, port, target = calling_out
    net = stage.inspect(web, "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}}{{end}}")
    network_id = stage.inspect(net, "{{.Id}}")
    bridge, gateway = (
        f"br-{network_id[:12]}",
        stage.inspect(net, "{{(index .IPAM.Config 0).Gateway}}"),
    )
    prefix = stage.inspect(net, "{{(index .IPAM.Config 0).Subnet}}").partition("/")[2]
    stage.change_host(
        ("ip", "addr", "del", f"{gateway}/{prefix}", "dev", bridge),
        ("ip", "addr", "add", f"{gateway}/{prefix}", "dev", bridge),
    )
    assert stage.connect_from(web, server.client_address, port) in ("timeout", "unreachable")
    status, report = run_doctor(target, "--from", web)
    found = first(report)
    assert outcome(status, report) == ("unreachable", "BRIDGE_ADDRESS_MISSING", "bridge", 1)
    assert evidence(found)[f"network {net} gateway"] == gateway
    assert found["fix"]["commands"][0] == f"ip addr add {gateway}/{prefix} dev {bridge}"
    status, report = run_doctor()  # the host checkup names it too
    assert "BRIDGE_ADDRESS_MISSING" in [f["code"] for f in report["findings"]]


def test_replies_with_a_hop_limit_of_1_never_reach_the_container(stage, calling_out):
    web, server, port, target = calling_out
    server.sysctl("net.ipv4.ip_default_ttl", "1")  # as a metadata service with hop limit 1
    with socket.create_connection((server.client_address, port), timeout=2):
        pass  # this host itself gets its answers
    assert stage.connect_from(web, server.client_address, port) == "timeout"
    status, report = run_doctor(target, "--from", web)
    found = first(report)
    assert outcome(status, report) == ("unreachable", "HOP_LIMIT_TOO_LOW", "return-path", 1)
    assert "ttl 1" in evidence(found)["the answer to this host"].lower()
