"""The rules of a container reaching this host (its gateway, host.docker.internal, the host's
own address), on hand-built facts: the path walks filter INPUT from the container's bridge."""

from __future__ import annotations

from doctor.facts.model import ProxyProcess
from tests.support.builders import (
    HOST_ADDRESS,
    codes,
    container,
    context,
    docker_iptables,
    evidence,
    facts,
    findings,
    listener,
)

WEB = container("web", listeners=[])
GATEWAY = "172.17.0.1:8000"
SERVICE = [listener("tcp 0.0.0.0:8000", 77, "python3")]
#: What `ufw default deny incoming` leaves in filter INPUT (the chains that matter here).
UFW = [
    ":ufw-before-input - [0:0]",
    ":ufw-user-input - [0:0]",
    ":ufw-reject-input - [0:0]",
    "-A INPUT -j ufw-before-input",
    "-A INPUT -j ufw-user-input",
    "-A INPUT -j ufw-reject-input",
    "-A ufw-before-input -i lo -j ACCEPT",
    "-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT",
]


def to_host(host_input, policy="ACCEPT", **more):
    iptables = docker_iptables(host_input=host_input).replace(":INPUT ACCEPT", f":INPUT {policy}")
    return facts(WEB, iptables=iptables, host_listeners=more.pop("listeners", SERVICE), **more)


def test_a_drop_in_input_stops_the_container_and_names_the_rule():
    ctx = context(to_host(["-A INPUT -i docker0 -j DROP"]), GATEWAY, source="web")
    assert {h.hop: h.status for h in ctx.path.hops}["filter-input"] == "broken"
    (found,) = findings("host-input-blocks-containers", ctx)
    assert (found.code, found.hop) == ("HOST_INPUT_BLOCKS_CONTAINERS", "filter-input")
    assert evidence(found)["rule"] == "-t filter -A INPUT -i docker0 -j DROP"
    assert found.fix.commands == ("iptables -I INPUT -i docker0 -p tcp --dport 8000 -j ACCEPT",)
    assert codes("firewall-drop", ctx) == []  # said once, by the rule that says it better
    assert codes("host-input-blocks-containers", context(to_host([]), GATEWAY, source="web")) == []


def test_ufws_default_deny_incoming_is_named_with_ufws_fix():
    ctx = context(to_host(UFW, "DROP"), f"{HOST_ADDRESS}:8000", source="web")
    (found,) = findings("host-input-blocks-containers", ctx)
    assert found.explanation.startswith(f"web → {HOST_ADDRESS}:8000 arrives from docker0")
    assert "ufw drops it: filter INPUT policy DROP" in found.explanation
    assert found.fix.commands == ("ufw allow in on docker0 to any port 8000 proto tcp",)
    reject = [*UFW, "-A ufw-reject-input -j DROP"]
    (found,) = findings(
        "host-input-blocks-containers", context(to_host(reject), GATEWAY, source="web")
    )
    assert found.fix.commands == ("ufw allow in on docker0 to any port 8000 proto tcp",)
    allowed = [*UFW, "-A ufw-user-input -i docker0 -p tcp -m tcp --dport 8000 -j ACCEPT"]
    assert (
        codes(
            "host-input-blocks-containers", context(to_host(allowed, "DROP"), GATEWAY, source="web")
        )
        == []
    )


def test_a_published_port_taken_by_the_userland_proxy_goes_through_input():
    proxy = ProxyProcess(88, "tcp", "0.0.0.0", 8000, "172.17.0.3", 80)
    f = to_host(["-A INPUT -i docker0 -j DROP"], proxies=[proxy])
    (found,) = findings("host-input-blocks-containers", context(f, GATEWAY, source="web"))
    assert "delivered to docker-proxy through INPUT" in found.explanation


def test_a_host_service_on_loopback_only_refuses_containers():
    loopback = [listener("tcp 127.0.0.1:8000", 77, "python3")]
    ctx = context(to_host([], listeners=loopback), GATEWAY, source="web")
    (found,) = findings("host-service-bound-to-loopback", ctx)
    assert (found.code, found.hop) == ("HOST_SERVICE_BOUND_TO_LOOPBACK", "host-listener")
    assert evidence(found) == {
        "host listeners on 8000": ["tcp 127.0.0.1:8000"],
        "web dials": "172.17.0.1:8000",
    }
    assert codes("host-gateway-missing", ctx) == []  # that code means the missing name only
    assert (
        codes("host-service-bound-to-loopback", context(to_host([]), GATEWAY, source="web")) == []
    )
