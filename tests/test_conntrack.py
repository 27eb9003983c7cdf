"""A tracked UDP flow that keeps the NAT decision of its first packet, staged for real on both
engines: a client in its own namespace keeps sending from one port while nothing is
published, then a container publishes the port (with the userland proxy off, as many
production engines run, nothing on the host takes those packets). A real UDP exchange proves
it first: the old flow gets no echo, a new flow does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.command import run_doctor
from tests.support.reports import evidence, first, hops, outcome
from tests.support.staging import Stage, engine_28, engine_started_with

# argv = source address, source port, address, port, tries: how many echoes came back.
_EXCHANGE = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], int(sys.argv[2])))
sock.settimeout(0.3)
echoed = 0
for _ in range(int(sys.argv[5])):
    sock.sendto(b"ping", (sys.argv[3], int(sys.argv[4])))
    try:
        echoed += bool(sock.recv(64))
    except OSError:
        pass
print(echoed)
"""


def exchange(client, source_port: int, port: int, tries: int = 3) -> int:
    """UDP datagrams from the client's ``source_port`` to this host's ``port``: echoes back."""
    done = subprocess.run(
        [
            *("ip", "netns", "exec", client.namespace, sys.executable, "-c", _EXCHANGE),
            *(client.client_address, str(source_port), client.host_address, str(port)),
            str(tries),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return int(done.stdout)


@pytest.fixture(scope="module")
def without_proxy(engine, image, tmp_path_factory):
    """The engine with the userland proxy off, for this module's tests."""
    config = tmp_path_factory.mktemp("engine") / "daemon.json"
    config.write_text(json.dumps({"userland-proxy": False}))
    with engine_started_with("--config-file", str(config)):
        yield image


@pytest.fixture
def udp(without_proxy):
    """A UDP echo service about to be published on a port, and an outside client."""
    with Stage(without_proxy) as stage:
        yield stage, stage.outside_client(), stage.free_port()


def publish(stage, port: int) -> str:
    return stage.run(
        "dns", "-p", f"{port}:5353/udp", cmd=["udp-listener", "5353"], wait_port="5353/udp"
    )


def assert_stale(client, port: int, old: int) -> None:
    """The doctor names the old flow's entry for this client, and its fix works."""
    target = f"{client.host_address}:{port}/udp"
    status, report = run_doctor(target, "--client", client.client_address)
    assert outcome(status, report) == ("unreachable", "STALE_CONNTRACK", "nat-dnat", 1)
    found = first(report)
    (entry,) = evidence(found)["tracked flows that bypass the DNAT"]
    assert f"sport={old} dport={port}" in entry
    clear = found["fix"]["commands"][0]
    assert clear == (
        f"conntrack -D -p udp --orig-src {client.client_address} --orig-dst "
        f"{client.host_address} --sport {old} --dport {port}"
    )
    subprocess.run(clear.split(), check=True, capture_output=True, timeout=10)  # the fix
    assert exchange(client, old, port) == 3
    status, report = run_doctor(target, "--client", client.client_address)
    assert (report["verdict"], status, hops(report)["nat-dnat"]) == ("reachable", 0, "ok")


def test_a_udp_flow_older_than_the_published_port(udp):
    stage, client, port = udp
    old, new = stage.free_port(), stage.free_port()
    assert exchange(client, old, port) == 0  # nothing published yet: the entry is made
    publish(stage, port)
    assert exchange(client, new, port) == 3  # a new flow meets the DNAT
    if engine_28():
        # Engine 24 and later clear the conntrack entries of a UDP port they publish (moby
        # b37d34307d): the old flow is healed, and the doctor must not say otherwise.
        assert exchange(client, old, port) == 3
        status, report = run_doctor(
            f"{client.host_address}:{port}/udp", "--client", client.client_address
        )
        assert (report["verdict"], report["findings"], status) == ("reachable", [], 0)
        return
    assert exchange(client, old, port) == 0  # the old flow still goes to the host itself
    assert_stale(client, port, old)


def test_a_flow_that_arrived_while_the_dnat_was_gone(udp):
    """A firewall reload takes Docker's nat rules away for a moment; a client that sends then
    keeps an untranslated entry after they are back (no engine clears it then)."""
    stage, client, port = udp
    publish(stage, port)
    old = stage.free_port()
    dnat = next(r for r in stage.iptables_rules("nat", "DOCKER") if f"--dport {port}" in r)
    rule = dnat.split()[2:]  # after "-A DOCKER"
    subprocess.run(["iptables", "-t", "nat", "-D", "DOCKER", *rule], check=True, timeout=10)
    try:
        assert exchange(client, old, port) == 0
    finally:
        subprocess.run(["iptables", "-t", "nat", "-A", "DOCKER", *rule], check=True, timeout=10)
    assert exchange(client, stage.free_port(), port) == 3  # the rule is back for new flows
    assert exchange(client, old, port) == 0  # but not for the old one
    assert_stale(client, port, old)
