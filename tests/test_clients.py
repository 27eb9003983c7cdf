"""Clients the doctor is told about (--client ADDRESS), staged for real: an outside client
whose address a Docker network took, and a flow this host forwards for a virtual machine.
Each test first proves the outcome with a real client in its own network namespace."""

from __future__ import annotations

from tests.support.command import run_doctor
from tests.support.reports import evidence, first, outcome

OFFICE = "172.29.0.0/16"  # the range a VPN routes to this host's clients
NETWORK = "172.29.48.0/20"  # a Docker network inside it


def test_a_client_inside_a_docker_subnet_never_gets_its_replies(stage):
    net = stage.network("office", "--subnet", NETWORK)
    port = stage.free_port()
    stage.run("web", "--network", net, "-p", f"{port}:80", wait_port=80)
    client = stage.outside_client()
    inside, outside = "172.29.48.134", "172.29.100.7"  # in the network's /20, and beside it
    for address in (inside, outside):
        client.add_address(address)

    # The healthy twin first: a client beside the network, routed here by its own route.
    stage.change_host(
        ("ip", "route", "add", f"{outside}/32", "via", client.client_address),
        ("ip", "route", "del", f"{outside}/32", "via", client.client_address),
    )
    assert client.connect(client.host_address, port, source=outside) == "connected"
    status, report = run_doctor(f"{client.host_address}:{port}", "--client", outside)
    assert (report["verdict"], report["findings"], status) == ("reachable", [], 0)
    assert report["path"][-1] == {
        "hop": "return-path",
        "status": "ok",
        "detail": f"replies to {outside} leave by {outside}/32 via {client.client_address} dev "
        f"{client.host_veth}",
    }

    # The VPN routes its whole range here, and the Docker network sits inside it.
    stage.change_host(
        ("ip", "route", "add", OFFICE, "via", client.client_address),
        ("ip", "route", "del", OFFICE, "via", client.client_address),
    )
    assert client.connect(client.host_address, port, source=inside) == "timeout"
    status, report = run_doctor(f"{client.host_address}:{port}", "--client", inside)
    found = first(report)
    assert outcome(status, report) == ("unreachable", "CLIENT_IN_DOCKER_SUBNET", "return-path", 1)
    assert report["target"]["client"] == inside
    assert evidence(found)[f"network {net} subnet"] == NETWORK


def test_a_virtual_machines_traffic_forwarded_by_this_host_meets_the_policy_drop(stage):
    vm, server = stage.outside_client(), stage.outside_client()
    port = stage.free_port()
    stage.hold_port(port, server.client_address, client=server)
    policy = stage.iptables_policy("FORWARD")
    # Engine 28 sets the policy when it turns forwarding on; 20.10 only if it found it off.
    stage.change_host(("iptables", "-P", "FORWARD", "DROP"), ("iptables", "-P", "FORWARD", policy))
    assert vm.connect(server.client_address, port) == "timeout"

    target = f"{server.client_address}:{port}"
    status, report = run_doctor(target, "--client", vm.client_address)
    found = first(report)
    assert (report["target"]["kind"], report["verdict"], found["code"], status) == (
        "forward",
        "unreachable",
        "NON_DOCKER_FORWARD_BLOCKED",
        1,
    )
    fix = found["fix"]["commands"]
    assert fix[0] == f"iptables -I DOCKER-USER -i {vm.host_veth} -o {server.host_veth} -j ACCEPT"
    for command in fix:  # the fix, as the doctor gave it
        rule = command.split()[2:]
        stage.insert_rule(*rule)
    assert vm.connect(server.client_address, port) == "connected"
    status, report = run_doctor(target, "--client", vm.client_address)
    assert (report["verdict"], report["findings"], status) == ("reachable", [], 0)
