"""`docker-doctor` with no target (the host) and `docker-doctor CONTAINER` (its whole picture)."""

from __future__ import annotations

from tests.support.command import run_doctor

HTTPD = ["httpd", "-f", "-h", "/www", "-p"]


def lines(report):
    return {h["hop"]: h for h in report["path"]}


def codes(report):
    return [f["code"] for f in report["findings"]]


def test_host_checkup_finds_every_problem_and_lists_problems_first(stage):
    good, bound, stopped = stage.free_port(), stage.free_port(), stage.free_port()
    web = stage.run("web", "-p", f"{good}:80", wait_port=80)
    lo = stage.run("lo", "-p", f"{bound}:80", cmd=[*HTTPD, "127.0.0.1:80"], wait_port=80)
    dead = stage.create_container("dead", "-p", f"{stopped}:80", cmd=["false"])
    resolver = stage.run("resolver", "--dns", "127.0.0.53")
    status, report = run_doctor()
    assert report["target"]["kind"] == "host" and report["target"]["port"] is None
    assert (report["verdict"], status) == ("unreachable", 1)
    found = codes(report)
    assert {"APP_BOUND_TO_LOOPBACK", "CONTAINER_NOT_RUNNING", "DNS_RESOLVER_UNREACHABLE"} <= set(
        found
    )
    by_name = lines(report)
    assert by_name[f"port 127.0.0.1:{good}"]["status"] == "ok"
    assert by_name[f"port 127.0.0.1:{bound}"]["status"] == "broken"
    assert by_name[f"port 127.0.0.1:{stopped}"]["status"] == "broken"
    assert by_name[f"container {dead}"]["status"] == "broken"
    assert by_name[f"dns {resolver}"]["status"] == "broken"
    assert by_name[f"container {web}"]["status"] == by_name[f"container {lo}"]["status"] == "ok"
    assert by_name["engine"]["status"] == "ok"
    statuses = [h["status"] for h in report["path"]]
    assert statuses == sorted(statuses, key=["broken", "unknown", "ok", "skipped"].index)
    # The same port diagnosed alone gives the same first cause.
    _, alone = run_doctor(f"127.0.0.1:{bound}")
    assert alone["findings"][0]["code"] == "APP_BOUND_TO_LOOPBACK"


def test_container_picture_shows_networks_peers_ports_listeners_and_dns(stage):
    net = stage.network("net")
    port = stage.free_port()
    web = stage.run("web", "--network", net, "-p", f"{port}:80", wait_port=80)
    db = stage.run("db", "--network", net, cmd=[*HTTPD, "5432"], wait_port=5432)
    status, report = run_doctor(web)
    assert (report["verdict"], codes(report), status) == ("reachable", [], 0)
    by_name = lines(report)
    assert f"peers: {db}" in by_name[f"network {net}"]["detail"]
    assert by_name[f"port 127.0.0.1:{port}"]["status"] == "ok"
    assert "tcp [::]:80" in by_name[f"listeners {web}"]["detail"].split(", ")
    assert "embedded DNS" in by_name[f"dns {web}"]["detail"]


def test_container_picture_of_a_broken_container(stage):
    port = stage.free_port()
    web = stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "3000"], wait_port=3000)
    status, report = run_doctor(web)
    assert (report["verdict"], codes(report)[0], status) == (
        "unreachable",
        "PUBLISHED_PORT_MISMATCH",
        1,
    )
    assert lines(report)[f"port 127.0.0.1:{port}"]["status"] == "broken"
