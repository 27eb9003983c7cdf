"""Recorded snapshots (fixtures/snapshots, made by scripts/record-fixtures on a real engine).

Replaying one must give what the doctor concluded when it was recorded; the parsers
must read the real artifacts in it.
"""

import json
from pathlib import Path

import pytest

from doctor.facts.build import build_facts
from doctor.facts.parse import (
    parse_hosts,
    parse_proc_net,
    parse_proxy_cmdline,
)
from doctor.firewall.iptables import parse_iptables_save
from doctor.snapshot import artifacts as a
from doctor.snapshot.store import Snapshot
from tests.support.command import run_doctor

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "snapshots"
RECORDED = sorted(p for p in FIXTURES.iterdir() if (p / "expected.json").exists())


@pytest.mark.parametrize("fixture", RECORDED, ids=lambda p: p.name)
@pytest.mark.standalone
def test_replaying_a_recorded_snapshot_gives_the_recorded_diagnosis(fixture):
    expected = json.loads((fixture / "expected.json").read_text())
    target = [expected["target"]] if expected["target"] else []  # none: a host checkup
    status, report = run_doctor(*target, *expected.get("args", ()), "--snapshot", str(fixture))
    assert [f["code"] for f in report["findings"]] == expected["codes"]
    assert (report["verdict"], status) == (expected["verdict"], expected["exit"])
    assert {p["name"]: p["status"] for p in report["probes"]}["live"] == "skipped"


def test_snapshot_round_trips_through_a_directory(tmp_path):
    original = Snapshot.read(FIXTURES / "healthy")
    original.write(tmp_path / "copy")
    copy = Snapshot.read(tmp_path / "copy")
    assert copy.artifacts == original.artifacts and copy.probes == original.probes


def _artifact(fixture: str, key: str) -> str:
    return (FIXTURES / fixture / key).read_text()


def _web(fixture: str):
    return next(
        c
        for c in build_facts(Snapshot.read(FIXTURES / fixture)).containers
        if c.name.endswith("-web")
    )


def test_container_listeners_from_proc_net():
    web = _web("app-bound-to-loopback")
    tcp = parse_proc_net(_artifact("app-bound-to-loopback", a.netns_file(web.id, "tcp")), "tcp")
    assert [(listener.address, listener.port) for listener in tcp] == [("127.0.0.1", 80)]
    tcp6 = parse_proc_net(_artifact("healthy", a.netns_file(_web("healthy").id, "tcp6")), "tcp")
    assert [(listener.address, listener.port) for listener in tcp6] == [("::", 80)]


def test_iptables_save_of_engine_20_10():
    firewall = parse_iptables_save(_artifact("healthy", a.IPTABLES))
    web = _web("healthy")
    ip = web.attachments[0].ip
    dnat = [r for r in firewall.rules("nat", "DOCKER") if r.target == "DNAT"]
    assert any("--dport 8080" in r.text and f"--to-destination {ip}:80" in r.text for r in dnat)
    assert firewall.chain("filter", "FORWARD").policy in ("ACCEPT", "DROP")
    assert any(r.target == "DOCKER-USER" for r in firewall.rules("filter", "FORWARD"))
    accept = [r for r in firewall.rules("filter", "DOCKER") if r.target == "ACCEPT"]
    assert any(f"-d {ip}/32" in r.text and "--dport 80" in r.text for r in accept)


def test_container_inspect_and_docker_proxy():
    web = _web("healthy")
    assert web.running and web.published[0].container_port == 80
    assert {b.host_ip for b in web.published[0].bindings} == {"0.0.0.0", "::"}
    proxies = json.loads(_artifact("healthy", a.PROXIES))
    parsed = [parse_proxy_cmdline(p["pid"], p["argv"]) for p in proxies]
    assert {(p.host_ip, p.host_port, p.container_ip, p.container_port) for p in parsed} == {
        ("0.0.0.0", 8080, web.attachments[0].ip, 80),
        ("::", 8080, web.attachments[0].ip, 80),
    }


def test_stopped_container_state_and_log():
    web = _web("container-not-running")
    assert (web.status, web.exit_code, web.log_tail) == ("exited", 3, ("fatal: config missing",))


def test_hosts_file():
    hosts = parse_hosts(
        "127.0.0.1 localhost\n::1 localhost ip6-localhost # comment\n# 10.0.0.1 x\n"
    )
    assert hosts["localhost"] == ("127.0.0.1", "::1") and "x" not in hosts


def test_proc_net_decodes_addresses_and_skips_non_listeners():
    text = (
        "  sl  local_address rem_address   st\n"
        "   0: 0100007F:0050 00000000:0000 0A 0\n"
        "   1: 00000000:1F90 00000000:0000 0A 0\n"
        "   2: 0200A8C0:0050 0100A8C0:D431 01 0\n"
    )
    assert [(listener.address, listener.port) for listener in parse_proc_net(text, "tcp")] == [
        ("127.0.0.1", 80),
        ("0.0.0.0", 8080),
    ]
    udp = (
        "  sl  local_address rem_address   st\n   0: 00000000000000000000000000000000:14E9 "
        "00000000000000000000000000000000:0000 07 0\n"
    )
    assert [
        (listener.address, listener.port, listener.protocol)
        for listener in parse_proc_net(udp, "udp")
    ] == [("::", 5353, "udp")]


def test_malformed_artifacts_are_named_and_left_out_and_the_rest_still_diagnoses(tmp_path):
    copy = tmp_path / "snapshot"
    Snapshot.read(FIXTURES / "docker-user-drop").write(copy)
    (copy / "engine" / "info.json").write_text("[1, 2]")  # a list where an object belongs
    (copy / "host" / "sockets.json").write_text('{"not": "json"')  # cut short
    containers = json.loads((copy / "engine" / "containers.json").read_text())
    (copy / "engine" / "containers.json").write_text(json.dumps([*containers, {"Id": 7}]))
    status, report = run_doctor("192.0.2.2:8080", "--snapshot", str(copy))
    assert ([f["code"] for f in report["findings"]], report["verdict"], status) == (
        ["FIREWALL_DROP"],
        "unreachable",
        1,
    )
    parsed = {p["name"]: p for p in report["probes"] if p["name"].startswith("parse:")}
    assert sorted(parsed) == [
        "parse:engine/containers.json",
        "parse:engine/info.json",
        "parse:host/sockets.json",
    ]
    assert all(p["status"] == "failed" for p in parsed.values())
    assert "1 left out" in parsed["parse:engine/containers.json"]["detail"]
