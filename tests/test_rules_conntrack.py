"""The rules of tracked flows that keep an old NAT decision, on hand-built facts."""

from __future__ import annotations

from doctor.facts.model import ProxyProcess
from doctor.facts.parse import parse_conntrack
from tests.support.builders import (
    HOST_ADDRESS,
    codes,
    container,
    context,
    docker_iptables,
    evidence,
    facts,
    findings,
)

CLIENT = "198.18.0.2"
BEFORE = (
    f"ipv4     2 udp      17 29 src={CLIENT} dst={HOST_ADDRESS} sport=40000 dport=5353 "
    f"[UNREPLIED] src={HOST_ADDRESS} dst={CLIENT} sport=5353 dport=40000 mark=0 zone=0 use=2"
)
NEW = (
    f"ipv4     2 udp      17 29 src={CLIENT} dst={HOST_ADDRESS} sport=40001 dport=5353 "
    f"src=172.17.0.2 dst={CLIENT} sport=53 dport=40001 mark=0 zone=0 use=2"
)
OLD_ADDRESS = NEW.replace("sport=40001", "sport=40002").replace("dport=40001", "dport=40002")
OLD_ADDRESS = OLD_ADDRESS.replace("src=172.17.0.2", "src=172.17.0.9")


def published(*lines: str, publish: str = "5353:53/udp", dnat: bool = True, **more):
    dns = container("dns", publish=[publish], listeners=["udp 0.0.0.0:53"])
    rules = docker_iptables(5353, container_port=53, protocol="udp", dnat=dnat)
    return facts(dns, iptables=rules, conntrack=parse_conntrack("\n".join(lines)), **more)


def test_a_flow_from_before_the_port_was_published():
    entries = parse_conntrack(f"{BEFORE}\n{NEW}\nnot a conntrack line\n")
    assert [e.translated for e in entries] == [False, True]
    assert entries[0].unreplied and entries[0].original.sport == 40000
    (found,) = findings(
        "stale-conntrack", context(published(BEFORE, NEW), f"{HOST_ADDRESS}:5353/udp")
    )
    assert (found.code, found.hop, found.severity) == ("STALE_CONNTRACK", "nat-dnat", "warning")
    assert evidence(found)["tracked flows that bypass the DNAT"] == [BEFORE]
    assert found.fix.commands == (
        f"conntrack -D -p udp --orig-src {CLIENT} --orig-dst {HOST_ADDRESS} --sport 40000 "
        "--dport 5353",
    )
    ctx = context(published(BEFORE), f"{HOST_ADDRESS}:5353/udp", client=CLIENT)
    assert findings("stale-conntrack", ctx)[0].severity == "error"  # that client's flow


def test_a_flow_translated_to_an_address_the_container_left():
    (found,) = findings(
        "stale-conntrack", context(published(OLD_ADDRESS), f"{HOST_ADDRESS}:5353/udp")
    )
    assert "172.17.0.9, an address dns no longer has" in found.explanation
    assert codes("stale-conntrack", context(published(NEW), f"{HOST_ADDRESS}:5353/udp")) == []


def test_flows_that_are_fine_are_left_alone():
    target = f"{HOST_ADDRESS}:5353/udp"
    quiet = {
        "no DNAT to bypass": published(BEFORE, dnat=False),
        "docker-proxy takes them": published(
            BEFORE, proxies=(ProxyProcess(77, "udp", "0.0.0.0", 5353, "172.17.0.2", 53),)
        ),
        "proxies unread": published(BEFORE, proxies=None),
        "not an address the port is published on": published(
            BEFORE, publish="127.0.0.1:5353:53/udp"
        ),
    }
    for why, f in quiet.items():
        assert codes("stale-conntrack", context(f, target)) == [], why
