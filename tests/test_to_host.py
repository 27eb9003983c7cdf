"""Containers reaching this host (its gateway, host.docker.internal, the host's own address,
a port published by another container), staged for real: what the host's INPUT firewall does
to them. Each test proves the outcome with a real client inside the container first."""

from __future__ import annotations

import pytest

from tests.support.command import run_doctor
from tests.support.reports import evidence, first, hops, outcome


@pytest.fixture
def calling_home(stage):
    """A container on its own network, a service on the host, and the gateway it calls."""
    net = stage.network("net")
    web = stage.run("web", "--network", net, "--add-host", "host.docker.internal:host-gateway")
    port = stage.free_port()
    stage.hold_port(port)
    gateway = stage.inspect(net, "{{(index .IPAM.Config 0).Gateway}}")
    bridge = "br-" + stage.inspect(net, "{{.Id}}")[:12]
    assert stage.connect_from(web, gateway, port) == "connected"
    return web, port, gateway, bridge


def test_a_drop_in_input_for_the_bridge_names_the_rule(stage, calling_home):
    web, port, gateway, bridge = calling_home
    rule = ("-i", bridge, "-p", "tcp", "--dport", str(port), "-j", "DROP")
    stage.insert_rule("INPUT", *rule)
    assert stage.connect_from(web, gateway, port) == "timeout"
    status, report = run_doctor(f"{gateway}:{port}", "--from", web)
    found = first(report)
    assert outcome(status, report) == (
        "unreachable",
        "HOST_INPUT_BLOCKS_CONTAINERS",
        "filter-input",
        1,
    )
    assert evidence(found)["rule"] == (
        f"-t filter -A INPUT -i {bridge} -p tcp -m tcp --dport {port} -j DROP"
    )
    assert found["fix"]["commands"] == [
        f"iptables -I INPUT -i {bridge} -p tcp --dport {port} -j ACCEPT"
    ]


def test_ufws_default_deny_incoming_and_its_fix(stage, calling_home):
    web, port, gateway, bridge = calling_home
    found = _blocked_by_ufw(stage, web, f"host.docker.internal:{port}", gateway)
    assert "ufw drops it" in found["explanation"]
    fix = found["fix"]["commands"]
    assert fix == [f"ufw allow in on {bridge} to any port {port} proto tcp"]
    stage.ufw(fix[0].split()[1:])  # the fix, as the doctor gave it
    assert stage.connect_from(web, gateway, port) == "connected"
    status, report = run_doctor(f"host.docker.internal:{port}", "--from", web)
    assert (report["verdict"], report["findings"], status) == ("reachable", [], 0)
    assert hops(report)["filter-input"] == "ok"


def test_a_published_port_called_from_a_container_passes_input(stage):
    """With the userland proxy, a container calling a published port on the host's address is
    not DNAT'd: docker-proxy takes it, through INPUT, where ufw's default deny drops it."""
    port = stage.free_port()
    stage.run("api", "-p", f"{port}:80", wait_port=80)
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    gateway = stage.inspect(net, "{{(index .IPAM.Config 0).Gateway}}")
    assert stage.connect_from(web, gateway, port) == "connected"
    found = _blocked_by_ufw(stage, web, f"{gateway}:{port}", gateway)
    assert "delivered to docker-proxy through INPUT" in found["explanation"]


def _blocked_by_ufw(stage, web: str, target: str, gateway: str) -> dict:
    """Turn on ufw's defaults, prove web's connection to the host now times out, and return the
    doctor's first finding, which must blame INPUT."""
    stage.ufw()
    port = int(target.rpartition(":")[2])
    assert stage.connect_from(web, gateway, port) == "timeout"
    status, report = run_doctor(target, "--from", web)
    assert outcome(status, report) == (
        "unreachable",
        "HOST_INPUT_BLOCKS_CONTAINERS",
        "filter-input",
        1,
    )
    return first(report)
