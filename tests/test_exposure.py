"""What the firewall really exposes, staged for real on each engine: INPUT rules that published
ports bypass, DOCKER-USER rules that never match, publish addresses the host lacks, and rules
another engine generation left. A real outside client proves each situation first."""

from __future__ import annotations

from tests.support.command import run_doctor
from tests.support.reports import evidence, first, outcome
from tests.support.staging import engine_28


def test_ufw_deny_does_not_close_a_published_port(stage, published):
    _, client, port = published
    stage.ufw(("deny", f"{port}/tcp"))
    assert client.connect(client.host_address, port) == "connected"  # open anyway
    status, report = run_doctor(f"{client.host_address}:{port}")
    found = first(report)
    assert (report["verdict"], found["code"], found["severity"], status) == (
        "reachable",
        "PUBLISHED_PORT_BYPASSES_INPUT_FIREWALL",
        "warning",
        1,
    )
    assert "ufw-user-input" in evidence(found)["the INPUT rule relied on"]
    protect = found["fix"]["commands"][0].split("  #")[0].split()[2:]
    stage.insert_rule(*protect)
    assert client.connect(client.host_address, port) == "timeout"  # the doctor's fix closes it
    status, report = run_doctor(f"{client.host_address}:{port}")
    assert (report["verdict"], first(report)["code"], status) == (
        "unreachable",
        "FIREWALL_DROP",
        1,
    )


def test_a_docker_user_rule_on_the_published_port_never_matches(stage, published):
    _, client, port = published
    rule = ("-p", "tcp", "-m", "tcp", "--dport", str(port), "-j", "DROP")
    stage.insert_rule("DOCKER-USER", *rule)
    assert client.connect(client.host_address, port) == "connected"  # it never matches
    status, report = run_doctor(f"{client.host_address}:{port}")
    found = first(report)
    assert (report["verdict"], found["code"], status) == (
        "reachable",
        "DOCKER_USER_MATCHES_HOST_PORT",
        1,
    )
    (corrected,) = found["fix"]["commands"]
    assert corrected == (
        f"iptables -R DOCKER-USER 1 -p tcp -m conntrack --ctorigdstport {port} --ctdir "
        "ORIGINAL -j DROP"
    )
    stage.change_host(corrected.split(), ("iptables", "-R", "DOCKER-USER", "1", *rule))
    assert client.connect(client.host_address, port) == "timeout"  # the corrected one does
    status, report = run_doctor(f"{client.host_address}:{port}")
    assert (report["verdict"], first(report)["code"], status) == (
        "unreachable",
        "FIREWALL_DROP",
        1,
    )


def test_a_port_published_on_an_address_the_host_lacks(stage):
    port = stage.free_port()
    address = "198.18.255.77"  # on no interface of this host
    web = stage.create_container("web", "-p", f"{address}:{port}:80")
    assert "cannot assign requested address" in stage.inspect(web, "{{.State.Error}}")
    status, report = run_doctor(f"{address}:{port}")  # not bad input: the container names it
    found = first(report)
    assert outcome(status, report) == (
        "unreachable",
        "BIND_ADDRESS_NOT_ON_HOST",
        "host-listener",
        1,
    )
    assert evidence(found)[f"{web} HostConfig.PortBindings"] == f"{address}:{port}"
    live = next(p for p in report["probes"] if p["name"] == "live")
    assert live["status"] == "skipped"  # nothing is sent to an address not this host's
    status, report = run_doctor()  # the host checkup names it too
    assert "BIND_ADDRESS_NOT_ON_HOST" in [f["code"] for f in report["findings"]]


def test_engine_28_rules_left_under_an_older_engine_are_stale(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net, wait_port=80)  # nothing published
    address = stage.inspect(web, f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}')
    bridge = "br-" + stage.inspect(net, "{{.Id}}")[:12]
    client = stage.outside_client()
    client.route("172.16.0.0/12")
    if engine_28():
        # Engine 28 writes the raw drop itself (DIRECT_ROUTING_BLOCKED, tested beside); what a
        # newer engine (29) leaves under it is its DOCKER-INTERNAL chain, harmless but stale.
        stage.change_host(
            ("iptables", "-N", "DOCKER-INTERNAL"), ("iptables", "-X", "DOCKER-INTERNAL")
        )
        assert client.connect(address, 80) == "timeout"  # as Engine 28 means it
        status, report = run_doctor()
        stale = next(f for f in report["findings"] if f["code"] == "STALE_ENGINE_RULES")
        assert (stale["severity"], stale["hop"]) == ("warning", "host")
        assert evidence(stale)["rules of another generation"] == ["filter DOCKER-INTERNAL"]
        return
    assert client.connect(address, 80) == "connected"  # Engine 20.10 routes to containers
    drop = ("-d", f"{address}/32", "!", "-i", bridge, "-j", "DROP")  # as Engine 28 wrote it
    stage.change_host(
        ("iptables", "-t", "raw", "-A", "PREROUTING", *drop),
        ("iptables", "-t", "raw", "-D", "PREROUTING", *drop),
    )
    stage.change_host(("iptables", "-N", "DOCKER-FORWARD"), ("iptables", "-X", "DOCKER-FORWARD"))
    assert client.connect(address, 80) == "timeout"
    status, report = run_doctor(f"{address}:80", "--from", "external")
    found = first(report)
    assert outcome(status, report) == ("unreachable", "STALE_ENGINE_RULES", "raw-prerouting", 1)
    assert evidence(found)["rules of another generation"] == [
        "filter DOCKER-FORWARD",
        f"raw PREROUTING: -d {address}/32 ! -i {bridge} -j DROP",
    ]
    assert "DIRECT_ROUTING_BLOCKED" not in [f["code"] for f in report["findings"]]
