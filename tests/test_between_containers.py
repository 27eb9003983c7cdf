"""Container-to-container (and container-to-host, container-to-world) traffic, staged for real.

Each test stages the situation on a running engine, runs ``docker-doctor --from SOURCE
TARGET`` with live probes (a DNS query and a connection from inside the source's network
namespace), and asserts the verdict, the first cause and the exit status.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.support.command import run_doctor
from tests.support.reports import evidence, outcome

IP = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
HTTPD = ["httpd", "-f", "-h", "/www", "-p"]


def first_code(report):
    return report["findings"][0]["code"] if report["findings"] else None


def errors(report):
    return [f["code"] for f in report["findings"] if f["severity"] == "error"]


def hop(report, name):
    return next(h for h in report["path"] if h["hop"] == name)


def inside(report):
    return next(p for p in report["probes"] if p["name"] == "live:inside")


def test_the_guides_tiernet_is_reachable_from_every_tier(stage):
    """The guide's 3-tier scenario as written: db, app and fe on tiernet, fe published on the host."""
    tiernet = stage.network("tiernet")
    port = stage.free_port()
    db = stage.run("db", "--network", tiernet, cmd=[*HTTPD, "5432"], wait_port=5432)
    app = stage.run(
        "app", "--network", tiernet, "-e", f"DB_HOST={db}", cmd=[*HTTPD, "8080"], wait_port=8080
    )
    fe = stage.run("fe", "--network", tiernet, "-p", f"{port}:80", wait_port=80)
    for args in (
        (f"{app}:8080", "--from", fe),
        (f"{db}:5432", "--from", app),
        (f"localhost:{port}",),
    ):
        status, report = run_doctor(*args)
        assert (report["verdict"], errors(report), status) == ("reachable", [], 0), args
    status, report = run_doctor()  # the host checkup sees nothing wrong either
    broken = [h for h in report["path"] if h["status"] != "ok" and h["status"] != "skipped"]
    assert (report["verdict"], errors(report), broken) == ("reachable", [], [])


@pytest.mark.standalone
def test_frontend_backend_networks_are_reachable_by_name_alias_and_service(stage):
    """The frontend/backend pattern: fe → app on front, app → db on back, fe never sees db."""
    front, back = stage.network("front"), stage.network("back")
    db = stage.run(
        "db", "--network", back, "--network-alias", "database", cmd=[*HTTPD, "5432"], wait_port=5432
    )
    app = stage.run(
        "app",
        "--network",
        back,
        "--label",
        "com.docker.compose.project=tiernet",
        "--label",
        "com.docker.compose.service=api",
        "--network-alias",
        "api",
        cmd=[*HTTPD, "8000"],
        wait_port=8000,
    )
    stage.connect(front, app)
    fe = stage.run("fe", "--network", front, wait_port=80)
    for source, target in (
        (fe, f"{app}:8000"),
        (fe, "api:8000"),
        (app, f"{db}:5432"),
        (app, "database:5432"),
    ):
        status, report = run_doctor(target, "--from", source)
        assert (report["verdict"], errors(report), status) == ("reachable", [], 0), (source, target)
        assert report["vantage"] == f"container:{source}"
        assert hop(report, "name-resolution")["status"] == "ok"
        assert "connected" in hop(report, "container-listener")["live"]
    # --from takes a compose service name, and a bare container name takes its first port.
    status, report = run_doctor(db, "--from", "api")
    assert (report["vantage"], report["target"]["port"], report["verdict"]) == (
        f"container:{app}",
        None,
        "reachable",
    )


def test_no_shared_network(stage):
    one, two = stage.network("one"), stage.network("two")
    web = stage.run("web", "--network", one)
    db = stage.run("db", "--network", two, cmd=[*HTTPD, "5432"], wait_port=5432)
    status, report = run_doctor(f"{db}:5432", "--from", web)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "NO_SHARED_NETWORK",
        1,
    )
    assert f"docker network connect {two} {web}" in report["findings"][0]["fix"]["commands"]
    assert "NXDOMAIN" in hop(report, "name-resolution")["live"]


def test_no_shared_network_by_address_times_out(stage):
    one, two = stage.network("one"), stage.network("two")
    web = stage.run("web", "--network", one)
    db = stage.run("db", "--network", two, cmd=[*HTTPD, "5432"], wait_port=5432)
    address = stage.inspect(db, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    status, report = run_doctor(f"{address}:5432", "--from", web)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "NO_SHARED_NETWORK",
        1,
    )
    assert report["target"]["container"] == db


def test_default_bridge_has_no_names(stage):
    web = stage.run("web")
    db = stage.run("db", cmd=[*HTTPD, "5432"], wait_port=5432)
    status, report = run_doctor(f"{db}:5432", "--from", web)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "DEFAULT_BRIDGE_NO_DNS",
        1,
    )
    # The same peer by address works: the default bridge only lacks names.
    address = stage.inspect(db, "{{.NetworkSettings.IPAddress}}")
    status, report = run_doctor(f"{address}:5432", "--from", web)
    assert (report["verdict"], errors(report), status) == ("reachable", [], 0)


def test_a_compose_v1_container_name_gets_the_service_name(stage):
    net = stage.network("net")
    project = f"{stage.prefix}-shop"
    labels = ["--label", f"com.docker.compose.project={project}"]
    labels += ["--label", "com.docker.compose.service=db"]
    # As Compose v2 runs a service: PROJECT-SERVICE-N, with the service name as an alias.
    db = stage.run(
        "shop-db-1", "--network", net, "--network-alias", "db", *labels, cmd=[*HTTPD, "5432"]
    )
    web = stage.run("web", "--network", net)
    assert stage.nslookup(web, f"{project}_db_1") == []
    assert stage.nslookup(web, "db") == [stage.inspect(db, IP)]
    status, report = run_doctor(f"{project}_db_1:5432", "--from", web)
    assert outcome(status, report) == ("unreachable", "NAME_NOT_FOUND", "name-resolution", 1)
    found = report["findings"][0]
    assert "Compose v1's name for the db service" in found["explanation"]
    assert found["fix"]["commands"] == [
        f"# in {web}'s configuration: db:5432 instead of {project}_db_1:5432"
    ]


def test_a_hostname_given_at_run_is_also_an_alias(stage):
    """Both engines answer --hostname from the embedded DNS, so the doctor must not call it
    missing, with live probes or without."""
    net = stage.network("net")
    db = stage.run("db", "--network", net, "--hostname", "dbhost", cmd=[*HTTPD, "5432"])
    web = stage.run("web", "--network", net)
    assert stage.nslookup(web, "dbhost") == [stage.inspect(db, IP)]
    status, report = run_doctor("dbhost:5432", "--from", web)
    assert (report["verdict"], status) == ("reachable", 0)
    status, report = run_doctor("dbhost:5432", "--from", web, "--no-live")
    assert "NAME_NOT_FOUND" not in [f["code"] for f in report["findings"]]


def test_a_legacy_link_names_one_direction_only(stage):
    db = stage.run("db", cmd=[*HTTPD, "5432"], wait_port=5432)
    web = stage.run("web", "--link", f"{db}:database")
    hosts = _docker_exec(web, "cat", "/etc/hosts")
    assert re.search(r"^\S+\s+database\b", hosts, re.MULTILINE)  # web has the name...
    assert web not in _docker_exec(db, "cat", "/etc/hosts")  # ...db has none for web
    status, report = run_doctor("database:5432", "--from", web)
    assert (report["verdict"], status) == ("reachable", 0)
    status, report = run_doctor(f"{web}:80", "--from", db)
    assert outcome(status, report) == (
        "unreachable",
        "DEFAULT_BRIDGE_NO_DNS",
        "name-resolution",
        1,
    )
    assert f"{web} reaches {db} as database through --link" in report["findings"][0]["explanation"]


def test_typo_in_an_alias_suggests_the_closest(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    stage.run(
        "db", "--network", net, "--network-alias", "database", cmd=[*HTTPD, "5432"], wait_port=5432
    )
    status, report = run_doctor("databse:5432", "--from", web)
    assert (report["verdict"], first_code(report), status) == ("unreachable", "NAME_NOT_FOUND", 1)
    assert report["findings"][0]["fix"]["commands"] == [
        f"# in {web}'s configuration: database:5432 instead of databse:5432"
    ]


def test_typo_with_the_full_container_name(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    db = stage.run("db", "--network", net, cmd=[*HTTPD, "5432"], wait_port=5432)
    typo = db[:-1] + "x" + db[-1]
    status, report = run_doctor(f"{typo}:5432", "--from", web)
    assert (report["verdict"], first_code(report), status) == ("unreachable", "NAME_NOT_FOUND", 1)
    assert db in report["findings"][0]["fix"]["summary"]
    assert "NXDOMAIN" in inside(report)["detail"]


@pytest.mark.parametrize("how", ["localhost", "name"])
def test_published_host_port_used_from_inside(stage, how):
    net = stage.network("net")
    port = stage.free_port()
    web = stage.run("web", "--network", net)
    db = stage.run(
        "db", "--network", net, "-p", f"{port}:5432", cmd=[*HTTPD, "5432"], wait_port=5432
    )
    target = f"localhost:{port}" if how == "localhost" else f"{db}:{port}"
    status, report = run_doctor(target, "--from", web)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "HOST_PORT_USED_INSIDE",
        1,
    )
    assert report["findings"][0]["fix"]["summary"] == f"Connect to {db}:5432 instead of {target}"


def test_icc_disabled(stage):
    net = stage.network("net", "-o", "com.docker.network.bridge.enable_icc=false")
    web = stage.run("web", "--network", net)
    db = stage.run("db", "--network", net, cmd=[*HTTPD, "5432"], wait_port=5432)
    status, report = run_doctor(f"{db}:5432", "--from", web)
    assert (report["verdict"], first_code(report), status) == ("unreachable", "ICC_DISABLED", 1)
    assert hop(report, "bridge")["status"] == "broken"
    assert "no answer" in inside(report)["detail"]  # dropped, not refused


def test_internal_network_has_no_way_out(stage):
    net = stage.network("net", "--internal")
    web = stage.run("web", "--network", net)
    client = stage.outside_client()
    port = stage.free_port()
    stage.hold_port(port, client=client)
    status, report = run_doctor(f"{client.client_address}:{port}", "--from", web)
    assert (report["verdict"], first_code(report), status) == ("unreachable", "INTERNAL_NETWORK", 1)
    assert hop(report, "egress")["status"] == "broken"


def test_host_docker_internal_without_host_gateway(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    port = stage.free_port()
    stage.hold_port(port)
    status, report = run_doctor(f"host.docker.internal:{port}", "--from", web)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "HOST_GATEWAY_MISSING",
        1,
    )
    assert any(
        "host.docker.internal:host-gateway" in c for c in report["findings"][0]["fix"]["commands"]
    )


def test_host_docker_internal_with_host_gateway(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net, "--add-host", "host.docker.internal:host-gateway")
    port = stage.free_port()
    stage.hold_port(port)
    status, report = run_doctor(f"host.docker.internal:{port}", "--from", web)
    assert (report["verdict"], errors(report), status) == ("reachable", [], 0)
    assert hop(report, "host-listener")["status"] == "ok"


def test_host_service_bound_to_loopback_is_out_of_a_containers_reach(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net, "--add-host", "host.docker.internal:host-gateway")
    port = stage.free_port()
    stage.hold_port(port, addr="127.0.0.1")
    gateway = stage.inspect(net, "{{(index .IPAM.Config 0).Gateway}}")
    assert stage.connect_from(web, gateway, port) == "refused"
    status, report = run_doctor(f"host.docker.internal:{port}", "--from", web)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "HOST_SERVICE_BOUND_TO_LOOPBACK",
        1,
    )
    assert report["findings"][0]["hop"] == "host-listener"


def test_default_bridge_container_with_a_loopback_resolver(stage):
    """A resolver copied from a host running systemd-resolved (127.0.0.53) is the container's own loopback."""
    web = stage.run("web", "--dns", "127.0.0.53")
    status, report = run_doctor("example.com:80", "--from", web)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "DNS_RESOLVER_UNREACHABLE",
        1,
    )
    evidence = {e["fact"]: e["value"] for e in report["findings"][0]["evidence"]}
    assert evidence[f"{web} resolv.conf nameservers"] == ["127.0.0.53"]
    assert "127.0.0.53 for example.com: nothing listens on port 53" in inside(report)["detail"]


def test_macvlan_children_are_out_of_the_hosts_reach(stage):
    parent = stage.spare_link()
    net = stage.network(
        "mvl", "-d", "macvlan", "-o", f"parent={parent}", "--subnet", "10.241.7.0/24"
    )
    web = stage.run("web", "--network", net, wait_port=80)
    status, report = run_doctor(f"{web}:80")
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "MACVLAN_HOST_ISOLATION",
        1,
    )
    assert hop(report, "bridge")["status"] == "broken"


def test_bridge_mtu_above_the_egress_path(stage):
    net = stage.network("net")  # the engine's default MTU, 1500
    web = stage.run("web", "--network", net)
    client = stage.outside_client(mtu=1280)
    port = stage.free_port()
    stage.hold_port(port, client=client)
    status, report = run_doctor(f"{client.client_address}:{port}", "--from", web)
    # A SYN is small: the connection works, and the MTU is what will break large transfers.
    assert (report["verdict"], first_code(report), status) == ("reachable", "MTU_MISMATCH", 1)
    assert report["findings"][0]["evidence"][1]["value"] == 1280


def test_network_overlapping_a_host_route(stage):
    net = stage.network("net", "--subnet", "10.213.0.0/24")
    web = stage.run("web", "--network", net)
    stage.spare_link("10.213.0.0/16")  # e.g. a VPN route to an office network
    status, report = run_doctor("10.213.0.77:443", "--from", web)
    assert (report["verdict"], first_code(report), status) == ("unreachable", "SUBNET_OVERLAP", 1)
    assert "10.213.0.0/16" in str(report["findings"][0]["evidence"])


def test_a_stopped_destination_is_named(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    db = stage.run("db", "--network", net, cmd=[*HTTPD, "5432"], wait_port=5432)
    stage.stop(db)
    status, report = run_doctor(f"{db}:5432", "--from", web)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "CONTAINER_NOT_RUNNING",
        1,
    )


def test_localhost_from_a_container_is_the_container_itself(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    db = stage.run("db", "--network", net, cmd=[*HTTPD, "5432"], wait_port=5432)
    assert stage.connect_from(web, "127.0.0.1", 5432) == "refused"
    status, report = run_doctor("localhost:5432", "--from", web)
    assert outcome(status, report) == (
        "unreachable",
        "LOCALHOST_IN_CONTAINER",
        "container-listener",
        1,
    )
    assert evidence(report["findings"][0])["listening on tcp 5432"] == [db]
    address = stage.inspect(db, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    assert stage.connect_from(web, address, 5432) == "connected"
    status, report = run_doctor(f"{db}:5432", "--from", web)  # the name the doctor gives
    assert (report["verdict"], status) == ("reachable", 0)


def test_destination_app_bound_to_loopback(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    db = stage.run("db", "--network", net, cmd=[*HTTPD, "127.0.0.1:5432"], wait_port=5432)
    status, report = run_doctor(f"{db}:5432", "--from", web)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "APP_BOUND_TO_LOOPBACK",
        1,
    )
    assert "refused" in hop(report, "container-listener")["live"]


def test_a_container_without_network(stage):
    net = stage.network("net")
    loner = stage.run("loner", "--network", "none")
    db = stage.run("db", "--network", net, cmd=[*HTTPD, "5432"], wait_port=5432)
    status, report = run_doctor(f"{db}:5432", "--from", loner)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "NO_SHARED_NETWORK",
        1,
    )
    assert hop(report, "source")["status"] == "broken"
    assert f"docker network connect {net} {loner}" in report["findings"][0]["fix"]["commands"]


def test_a_host_network_container_has_no_container_names(stage):
    port = stage.free_port()
    agent = stage.run("agent", "--network", "host", cmd=["sleep", "600"])
    db = stage.run("db", "-p", f"{port}:5432", cmd=[*HTTPD, "5432"], wait_port=5432)
    status, report = run_doctor(f"{db}:5432", "--from", agent)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "DEFAULT_BRIDGE_NO_DNS",
        1,
    )
    assert f"localhost:{port}" in report["findings"][0]["fix"]["summary"]
    status, report = run_doctor(f"localhost:{port}", "--from", agent)  # its loopback is the host's
    assert (report["verdict"], errors(report), status) == ("reachable", [], 0)


def test_the_gateway_address_is_the_host(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    gateway = stage.inspect(web, "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}")
    port = stage.free_port()
    stage.hold_port(port)
    status, report = run_doctor(f"{gateway}:{port}", "--from", web)
    assert (report["verdict"], errors(report), status) == ("reachable", [], 0)
    assert {h["hop"]: h["status"] for h in report["path"]} == {
        "source": "ok",
        "name-resolution": "ok",
        "gateway": "ok",
        "filter-input": "ok",
        "host-listener": "ok",
    }


def test_static_diagnosis_sends_nothing(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    stage.run(
        "db", "--network", net, "--network-alias", "database", cmd=[*HTTPD, "5432"], wait_port=5432
    )
    status, report = run_doctor("databse:5432", "--from", web, "--no-live")
    assert (report["verdict"], first_code(report), status) == ("unreachable", "NAME_NOT_FOUND", 1)
    assert report["doctor"]["verdicts"]["live"] is None
    assert not any(p["name"] == "live:inside" for p in report["probes"])


def test_a_container_to_container_diagnosis_replays_offline(stage, tmp_path):
    one, two = stage.network("one"), stage.network("two")
    web = stage.run("web", "--network", one)
    db = stage.run("db", "--network", two, cmd=[*HTTPD, "5432"], wait_port=5432)
    _, live = run_doctor(f"{db}:5432", "--from", web, "--save-snapshot", str(tmp_path / "snap"))
    stage.close()  # the host changes; the snapshot does not
    status, replayed = run_doctor(f"{db}:5432", "--from", web, "--snapshot", str(tmp_path / "snap"))
    assert (first_code(replayed), status) == (first_code(live), 1) == ("NO_SHARED_NETWORK", 1)
    assert next(p for p in replayed["probes"] if p["name"] == "live")["status"] == "skipped"


def test_without_root_nothing_is_sent_and_the_facts_still_speak(stage, monkeypatch, capsys):
    one, two = stage.network("one"), stage.network("two")
    web = stage.run("web", "--network", one)
    db = stage.run("db", "--network", two, cmd=[*HTTPD, "5432"], wait_port=5432)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    from doctor.cli import main

    status = main([f"{db}:5432", "--from", web, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert (first_code(report), status) == ("NO_SHARED_NETWORK", 1)
    assert inside(report)["status"] == "skipped" and "needs root" in inside(report)["detail"]


def test_a_stopped_source_sends_nothing(stage):
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    db = stage.run("db", "--network", net, cmd=[*HTTPD, "5432"], wait_port=5432)
    stage.stop(web)
    status, report = run_doctor(f"{db}:5432", "--from", web)
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "CONTAINER_NOT_RUNNING",
        1,
    )
    assert report["findings"][0]["hop"] == "source" and inside(report)["status"] == "skipped"


def test_a_reject_inside_one_bridge_is_named_when_br_netfilter_shows_it(stage):
    """firewalld zones and hand-written rules REJECT in FORWARD; with br_netfilter that catches
    traffic between two containers on the same bridge too."""
    net = stage.network("net")
    web = stage.run("web", "--network", net)
    db = stage.run("db", "--network", net, cmd=[*HTTPD, "5432"], wait_port=5432)
    address = stage.inspect(db, f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}')
    bridge = "br-" + stage.inspect(net, "{{.Id}}")[:12]
    calls = "net.bridge.bridge-nf-call-iptables"
    before = subprocess.run(["sysctl", "-n", calls], capture_output=True, text=True).stdout
    stage.change_host(
        ("sysctl", "-qw", f"{calls}=1"), ("sysctl", "-qw", f"{calls}={before.strip()}")
    )
    rule = ("-i", bridge, "-o", bridge, "-p", "tcp", "--dport", "5432", "-j", "REJECT")
    stage.insert_rule("DOCKER-USER", *rule)
    assert stage.connect_from(web, address, 5432) == "refused"
    status, report = run_doctor(f"{db}:5432", "--from", web)
    assert outcome(status, report) == ("unreachable", "FIREWALL_DROP", "filter-forward", 1)
    assert "NO_SHARED_NETWORK" not in [f["code"] for f in report["findings"]]
    assert evidence(report["findings"][0])["rule"] == (
        f"-t filter -A DOCKER-USER -i {bridge} -o {bridge} -p tcp -m tcp --dport 5432 "
        "-j REJECT --reject-with icmp-port-unreachable"
    )


def _docker_exec(container: str, *argv: str) -> str:
    return subprocess.run(
        ["docker", "exec", container, *argv], capture_output=True, text=True, check=True, timeout=30
    ).stdout
