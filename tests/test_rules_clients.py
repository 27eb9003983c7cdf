"""The rules of a client the doctor is told about (--client ADDRESS), on hand-built facts."""

from __future__ import annotations

import ipaddress

import pytest

from doctor.errors import UsageError
from doctor.facts.model import HostRoute
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

OFFICE = network("office", "172.29.48.0/20", **{"com.docker.network.bridge.name": "br-office"})
WEB = container("web", on=((OFFICE, "172.29.48.2"),), publish=["8080:80"])


def route(destination: str, device: str, gateway: str | None = None) -> HostRoute:
    return HostRoute(ipaddress.IPv4Network(destination), device, gateway)


ROUTES = (
    route("0.0.0.0/0", "eth0", "192.0.2.1"),
    route("192.0.2.0/24", "eth0"),
    route("172.29.0.0/16", "tun0", "10.8.0.1"),  # the VPN's office range
    route("172.29.48.0/20", "br-office"),
    route("10.77.0.0/24", "lxdbr0"),
)


def hosted(iptables: str | None = None):
    return facts(WEB, networks=[OFFICE], iptables=iptables or docker_iptables(), routes=ROUTES)


def test_a_client_inside_a_docker_subnet_gets_its_replies_sent_into_the_bridge():
    ctx = context(hosted(), f"{HOST_ADDRESS}:8080", client="172.29.48.134")
    assert ctx.target.vantage == "external" and ctx.path.hops[-1].hop == "return-path"
    (found,) = findings("client-in-docker-subnet", ctx)
    assert (found.code, found.hop) == ("CLIENT_IN_DOCKER_SUBNET", "return-path")
    assert evidence(found) == {
        "network office subnet": "172.29.48.0/20",
        "route to 172.29.48.134": "172.29.48.0/20 dev br-office",
        "containers on office": ["web"],
    }
    # The same office, outside the network's /20: the VPN route takes the replies home.
    healthy = context(hosted(), f"{HOST_ADDRESS}:8080", client="172.29.100.7")
    assert healthy.path.hop("return-path").status == "ok"
    assert codes("client-in-docker-subnet", healthy) == []


def test_a_forwarded_flow_that_is_not_dockers_meets_the_policy_drop():
    ctx = context(hosted(), "192.0.2.99:443", client="10.77.0.2")
    assert ctx.target.kind == "forward"
    (found,) = findings("non-docker-forward-blocked", ctx)
    assert (found.code, found.hop) == ("NON_DOCKER_FORWARD_BLOCKED", "filter-forward")
    assert evidence(found)["filter-forward interfaces"] == "lxdbr0 → eth0"
    assert found.fix.commands[0] == "iptables -I DOCKER-USER -i lxdbr0 -o eth0 -j ACCEPT"
    assert codes("firewall-drop", ctx) == []  # said once
    accepted = docker_iptables(
        user=[
            "-i eth0 -o lxdbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-i lxdbr0 -o eth0 -j ACCEPT",
        ]
    )
    healthy = context(hosted(accepted), "192.0.2.99:443", client="10.77.0.2")
    assert [h.status for h in healthy.path.hops] == ["ok", "ok"]
    assert codes("non-docker-forward-blocked", healthy) == []


def test_client_and_target_are_checked_as_input():
    from doctor.path.target import parse_client

    assert parse_client(" 10.77.0.2 ") == "10.77.0.2"
    for bad in ("lxd-vm", "127.0.0.1", "0.0.0.0"):
        with pytest.raises(UsageError):
            parse_client(bad)
    with pytest.raises(UsageError, match="not --from web"):
        context(hosted(), f"{HOST_ADDRESS}:8080", vantage="web", client="10.77.0.2")
    for loopback in ("localhost:8080", "127.0.0.2:8080"):
        with pytest.raises(UsageError, match="loopback"):
            context(hosted(), loopback, client="10.77.0.2")
