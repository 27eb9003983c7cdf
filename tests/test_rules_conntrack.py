"""The rules of tracked flows that keep an old NAT decision, on hand-built facts."""

from __future__ import annotations

from doctor.facts.parse import parse_conntrack
from tests.support.builders import (
    HOST_ADDRESS,
    codes,
    container,
    context,
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


def published(*lines: str):
    dns = container("dns", publish=["5353:53/udp"], listeners=["udp 0.0.0.0:53"])
    return facts(dns, conntrack=parse_conntrack("\n".join(lines)))


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
