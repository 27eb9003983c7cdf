"""Each broken situation staged for real on a running Docker Engine; the doctor must name it.

Every test asserts the verdict, the first finding's code and the exit status, and
validates the JSON report against the shipped schema.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

import pytest

from tests.support.command import command, environment, run_doctor

HTTPD = ["httpd", "-f", "-h", "/www", "-p"]


def first_code(report):
    return report["findings"][0]["code"] if report["findings"] else None


def errors(report):
    return [f["code"] for f in report["findings"] if f["severity"] == "error"]


@pytest.mark.standalone
def test_healthy_published_port_is_reachable_in_every_target_form(stage):
    port = stage.free_port()
    web = stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    for target in (
        f"localhost:{port}",
        f"127.0.0.1:{port}",
        f":{port}",
        str(port),
        f"http://localhost:{port}/index.html",
        f"[::1]:{port}",
        web,
        f"{web}:80",
    ):
        status, report = run_doctor(target)
        assert (report["verdict"], errors(report), status) == ("reachable", [], 0), target
    status, report = run_doctor(f"localhost:{port}")
    assert report["target"] == {
        "input": f"localhost:{port}",
        "kind": "port",
        "host": "localhost",
        "port": port,
        "protocol": "tcp",
        "container": None,
    }
    assert report["doctor"]["verdicts"] == {"static": "reachable", "live": "reachable"}
    hops = {h["hop"]: h["status"] for h in report["path"]}
    assert hops["host-listener"] == hops["container-listener"] == "ok"


def test_nothing_on_port(stage):
    port = stage.free_port()
    status, report = run_doctor(f"localhost:{port}")
    assert (report["verdict"], first_code(report), status) == ("unreachable", "NOTHING_ON_PORT", 1)
    assert report["path"][1] == {**report["path"][1], "hop": "host-listener", "status": "broken"}


def test_port_not_published(stage):
    port = stage.free_port()
    web = stage.run("web", "--expose", str(port), cmd=[*HTTPD, str(port)], wait_port=port)
    status, report = run_doctor(f"localhost:{port}")
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "PORT_NOT_PUBLISHED",
        1,
    )
    fix = report["findings"][0]["fix"]
    assert f"-p {port}:{port}" in fix["summary"] and any(web in c for c in fix["commands"])


def test_published_port_mismatch(stage):
    port = stage.free_port()
    web = stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "3000"], wait_port=3000)
    status, report = run_doctor(f"localhost:{port}")
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "PUBLISHED_PORT_MISMATCH",
        1,
    )
    assert any(
        f"-p {port}:3000" in c and web in c for c in report["findings"][0]["fix"]["commands"]
    )


def test_app_bound_to_loopback(stage):
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "127.0.0.1:80"], wait_port=80)
    status, report = run_doctor(f"localhost:{port}")
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "APP_BOUND_TO_LOOPBACK",
        1,
    )
    evidence = report["findings"][0]["evidence"][0]
    assert evidence["value"] == ["tcp 127.0.0.1:80"]
    listener_hop = next(h for h in report["path"] if h["hop"] == "container-listener")
    assert listener_hop["status"] == "broken" and "refused" in listener_hop["live"]


def test_protocol_mismatch_udp_service_published_as_tcp(stage):
    port = stage.free_port()
    stage.run("dns", "-p", f"{port}:5353", cmd=["udp-listener", "5353"], wait_port="5353/udp")
    status, report = run_doctor(f"localhost:{port}")
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "PROTOCOL_MISMATCH",
        1,
    )
    assert any(f"{port}:5353/udp" in c for c in report["findings"][0]["fix"]["commands"])


def test_protocol_mismatch_udp_request_to_a_tcp_publish(stage):
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    status, report = run_doctor(f"{port}/udp")
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "PROTOCOL_MISMATCH",
        1,
    )


def test_udp_service_published_as_udp_is_reachable(stage):
    port = stage.free_port()
    stage.run("dns", "-p", f"{port}:5353/udp", cmd=["udp-listener", "5353"], wait_port="5353/udp")
    status, report = run_doctor(f"localhost:{port}/udp")
    assert (report["verdict"], errors(report), status) == ("reachable", [], 0)


def test_container_not_running(stage):
    port = stage.free_port()
    web = stage.run(
        "web", "-p", f"{port}:80", cmd=["sh", "-c", "echo boom: config missing; exit 3"]
    )
    subprocess.run(["docker", "wait", web], check=True, capture_output=True, timeout=30)
    status, report = run_doctor(f"localhost:{port}")
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "CONTAINER_NOT_RUNNING",
        1,
    )
    evidence = {e["fact"]: e["value"] for e in report["findings"][0]["evidence"]}
    assert evidence[f"{web} State"]["ExitCode"] == 3
    assert evidence[f"{web} last log lines"] == ["boom: config missing"]


def test_container_unhealthy(stage):
    _, port = stage.unhealthy_web("false")
    status, report = run_doctor(f"localhost:{port}")
    assert (report["verdict"], first_code(report), status) == (
        "reachable",
        "CONTAINER_UNHEALTHY",
        1,
    )
    assert report["findings"][0]["severity"] == "warning"


def test_a_healthcheck_command_the_image_does_not_have(stage):
    _, port = stage.unhealthy_web("curl -f http://127.0.0.1/")  # the test image has no curl
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # the service itself answers
    status, report = run_doctor(f"localhost:{port}")
    assert (report["verdict"], first_code(report), status) == (
        "reachable",
        "HEALTHCHECK_COMMAND_MISSING",
        1,
    )
    found = report["findings"][0]
    assert found["severity"] == "warning"
    assert found["evidence"][1]["value"] == 127
    assert "CONTAINER_UNHEALTHY" not in [f["code"] for f in report["findings"]]


def test_host_binding_restricted_seen_from_an_outside_client(stage):
    port, open_port = stage.free_port(), stage.free_port()
    stage.run("lo", "-p", f"127.0.0.1:{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    stage.run("all", "-p", f"{open_port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    client = stage.outside_client()
    # Ground truth first: the outside client really fails, and really succeeds on the open port.
    assert client.connect(client.host_address, port) in ("refused", "timeout")
    assert client.connect(client.host_address, open_port) == "connected"

    status, report = run_doctor(f"{client.host_address}:{port}")
    assert report["vantage"] == "external"
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "HOST_BINDING_RESTRICTED",
        1,
    )
    assert report["findings"][0]["affects"] == ["external"]
    status, report = run_doctor(f"{client.host_address}:{open_port}")
    assert (report["vantage"], report["verdict"], errors(report), status) == (
        "external",
        "reachable",
        [],
        0,
    )


def test_port_conflict_names_the_process_holding_the_port(stage):
    port = stage.free_port()
    holder = stage.hold_port(port)
    stage.create_container("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"])
    status, report = run_doctor(f"localhost:{port}")
    assert (report["verdict"], first_code(report), status) == ("unreachable", "PORT_CONFLICT", 1)
    sockets = next(
        e["value"]
        for e in report["findings"][0]["evidence"]
        if e["fact"].startswith("host sockets")
    )
    assert sockets[0]["pid"] == holder.pid
    assert "CONTAINER_NOT_RUNNING" in [f["code"] for f in report["findings"]]


def test_port_conflict_with_another_container(stage):
    port = stage.free_port()
    first = stage.run("first", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    second = stage.create_container("second", "-p", f"{port}:80", cmd=[*HTTPD, "80"])
    status, report = run_doctor(second)
    assert (first_code(report), status) == ("PORT_CONFLICT", 1)
    assert first in report["findings"][0]["explanation"]


def test_host_network_publish_ignored(stage):
    port, app_port = stage.free_port(), stage.free_port()
    stage.run(
        "web",
        "--network",
        "host",
        "-p",
        f"{port}:80",
        cmd=[*HTTPD, str(app_port)],
        wait_port=app_port,
    )
    status, report = run_doctor(f"localhost:{port}")
    assert (report["verdict"], first_code(report), status) == (
        "unreachable",
        "HOST_NETWORK_PUBLISH_IGNORED",
        1,
    )


def test_published_on_an_internal_network(stage):
    port = stage.free_port()
    net = stage.network("back", "--internal")
    stage.run("db", "--network", net, "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    status, report = run_doctor(f"localhost:{port}")
    assert (report["verdict"], first_code(report), status) == ("unreachable", "INTERNAL_NETWORK", 1)


def test_a_saved_snapshot_replays_to_the_same_findings(stage, tmp_path):
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "127.0.0.1:80"], wait_port=80)
    _, live = run_doctor(f"localhost:{port}", "--save-snapshot", str(tmp_path / "snap"))
    stage.close()  # the host changes; the snapshot does not
    status, replayed = run_doctor(f"localhost:{port}", "--snapshot", str(tmp_path / "snap"))
    strip = lambda r: [(f["code"], f["hop"], f["evidence"]) for f in r["findings"]]  # noqa: E731
    assert strip(replayed) == strip(live) and status == 1
    assert replayed["doctor"]["verdicts"] == {
        "static": live["doctor"]["verdicts"]["static"],
        "live": None,
    }
    assert {p["name"]: p["status"] for p in replayed["probes"]}["live"] == "skipped"


def test_a_diagnosis_reads_only_the_containers_its_question_involves(stage, tmp_path):
    network = stage.network("scope")
    ports = [stage.free_port() for _ in range(3)]
    web = stage.run("web", "--network", network, "-p", f"{ports[0]}:80", wait_port=80)
    other = stage.run("other", "--network", network, "-p", f"{ports[1]}:80", wait_port=80)
    alone = stage.run("alone", "-p", f"{ports[2]}:80", wait_port=80)
    stopped = stage.create_container("stopped", "-p", f"{stage.free_port()}:80", cmd=["false"])
    snap = tmp_path / "snap"
    status, live = run_doctor(f"localhost:{ports[0]}", "--save-snapshot", str(snap))
    assert (live["verdict"], status) == ("reachable", 0)
    read = {
        c["Name"].lstrip("/") for c in json.loads((snap / "engine/containers.json").read_text())
    }
    assert {web, stopped} <= read and not {other, alone} & read
    scope = json.loads((snap / "engine/scope.json").read_text())
    assert scope["complete"] is False and scope["listed"] >= 4
    probe = {p["name"]: p for p in live["probes"]}["scope"]
    assert probe["status"] == "ok" and f"read {len(read)} of {scope['listed']}" in probe["detail"]
    # Replayed, the same question gives the same answer; another one says what it lacks.
    _, replayed = run_doctor(f"localhost:{ports[0]}", "--snapshot", str(snap))
    assert replayed["findings"] == live["findings"]
    assert [(h["hop"], h["status"]) for h in replayed["path"]] == [
        (h["hop"], h.get("static", h["status"])) for h in live["path"]
    ]
    _, elsewhere = run_doctor(f"localhost:{ports[2]}", "--snapshot", str(snap))
    probe = {p["name"]: p for p in elsewhere["probes"]}["scope"]
    assert probe["status"] == "skipped" and "not in the snapshot" in probe["detail"]
    # A checkup reads them all.
    _, checkup = run_doctor("--no-live")
    assert "scope" not in {p["name"] for p in checkup["probes"]}
    assert {f"container {name}" for name in (web, other, alone)} <= {
        h["hop"] for h in checkup["path"]
    }


def test_without_root_the_root_only_checks_are_skipped_not_silent(stage, monkeypatch, capsys):
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "127.0.0.1:80"], wait_port=80)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    from doctor.cli import main

    status = main([f"localhost:{port}", "--json"])
    report = json.loads(capsys.readouterr().out)
    probes = {p["name"]: p for p in report["probes"]}
    assert probes["iptables"]["status"] == "skipped" and "root" in probes["iptables"]["detail"]
    assert first_code(report) == "APP_BOUND_TO_LOOPBACK" and status == 1


@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv to drop privileges")
@pytest.mark.standalone
def test_permission_denied_on_the_socket_exits_3_with_the_fix(engine):
    done = subprocess.run(
        [
            "setpriv",
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            *command(),
            "localhost:8080",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        env=environment(),
    )
    if "No module named" in done.stderr:
        pytest.skip(f"the user nobody cannot run {command()[0]}: {done.stderr.strip()}")
    assert done.returncode == 3, done.stderr
    assert "permission denied" in done.stderr and "docker group" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
