"""A real two-node Swarm: this host's engine is the manager; the worker is another host's engine
(a network and mount namespace with its own containerd and dockerd: tests.support.remote),
joined over the veth between them. Overlay networks, the embedded DNS and the data path across
the nodes are real (VXLAN); this kernel has no IPVS, so services use endpoint mode dnsrr.

The doctor runs on the manager and reads the cluster's state from it: each cause is staged on the
cluster and proven with a real client before the doctor's codes are asserted."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.command import doctor
from tests.support.remote import RemoteHost

pytestmark = pytest.mark.engine
HTTPD = ["httpd", "-f", "-h", "/www", "-p", "80"]
SECRET = secrets.token_hex(8)  # in each service's environment, which no snapshot may carry
REQUEST = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {} 80'


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=60, check=check
    )


def until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"staging: {what} within {timeout} s"
        time.sleep(0.5)


class Cluster:
    """The cluster's names, and a real client on the manager (a container on the overlay)."""

    def __init__(self, worker: RemoteHost, prefix: str) -> None:
        self.worker = worker
        self.overlay = f"{prefix}-ov"
        self.other = f"{prefix}-other"  # an overlay the client is not on
        self.web = f"{prefix}-web"  # on the overlay, pinned to the worker
        self.lone = f"{prefix}-lone"  # on the other overlay only
        self.client = f"{prefix}-cli"
        self.worker_id = ""

    def request(self, name: str) -> str:
        """What a real HTTP client in the client container gets from NAME:80."""
        done = docker("exec", self.client, "sh", "-c", REQUEST.format(name), check=False)
        return done.stdout + done.stderr

    def running_tasks(self, service: str) -> int:
        listed = docker(
            "service", "ps", service, "--filter", "desired-state=running",
            "--format", "{{.CurrentState}}",
        ).stdout.split("\n")  # fmt: skip
        return sum(line.startswith("Running") for line in listed)

    def errors(self, service: str) -> str:
        return docker("service", "ps", service, "--no-trunc", "--format", "{{.Error}}").stdout

    def node_state(self) -> str:
        return docker("node", "inspect", self.worker_id, "--format", "{{.Status.State}}").stdout


@pytest.fixture(scope="module")
def cluster(
    engine: None, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    worker = RemoteHost(tmp_path_factory.mktemp("worker"), f"dds{secrets.token_hex(3)}", True)
    c = Cluster(worker, f"dd-{secrets.token_hex(3)}")
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    if state != "inactive":  # an engine in a swarm of its own is not the tests' to change
        pytest.skip(f"this engine is already in a swarm ({state})")
    try:
        worker.start()
        assert worker.link is not None
        docker("swarm", "init", "--advertise-addr", worker.link.host_address)
        token = docker("swarm", "join-token", "-q", "worker").stdout.strip()
        worker.docker("swarm", "join", "--token", token, f"{worker.link.host_address}:2377")
        c.worker_id = worker.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
        for network in (c.overlay, c.other):
            docker("network", "create", "--driver", "overlay", "--attachable", network)
        for name, network in ((c.web, c.overlay), (c.lone, c.other)):
            docker(
                "service", "create", "--detach", "--no-resolve-image", "--name", name,
                "--env", f"DD_PASSWORD={SECRET}",
                "--endpoint-mode", "dnsrr", "--network", network,
                "--constraint", f"node.id=={c.worker_id}", image, *HTTPD,
            )  # fmt: skip
        docker("run", "-d", "--name", c.client, "--network", c.overlay, image, "sleep", "3600")
        for service in (c.web, c.lone):
            until(lambda s=service: c.running_tasks(s) == 1, 60, f"{service} running on the worker")
        until(lambda: "HTTP/1.1 200" in c.request(c.web), 30, "a real client reaching the worker")
        yield c
    finally:
        docker("rm", "-f", c.client, check=False)
        docker("service", "rm", c.web, c.lone, check=False)
        with contextlib.suppress(subprocess.SubprocessError):
            worker.docker("swarm", "leave", "--force")
        docker("swarm", "leave", "--force", check=False)
        docker("network", "rm", "docker_gwbridge", check=False)  # made by the swarm, left by it
        worker.close()


def report(*args: str) -> tuple[int, dict]:
    done = doctor(*args, "--json", timeout=90)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def codes(found: dict) -> list[str]:
    return [f["code"] for f in found["findings"]]


def line(found: dict, hop: str) -> dict:
    return next(h for h in found["path"] if h["hop"] == hop)


# The worker is stopped by the last test: the order matters.


def test_a_healthy_cluster_has_its_nodes_and_services_ok(cluster: Cluster) -> None:
    assert "HTTP/1.1 200" in cluster.request(cluster.web)
    print(doctor().stdout)  # the text report, for a reader of the test's output
    _, checkup = report()
    node = line(
        checkup, next(h["hop"] for h in checkup["path"] if cluster.worker_id[:12] in h["hop"])
    )
    assert node["status"] == "ok" and "worker, ready, active" in node["detail"]
    web = line(checkup, f"service {cluster.web}")
    assert web["status"] == "ok" and "1/1 running, dnsrr" in web["detail"]
    assert not [c for c in codes(checkup) if c.startswith("SWARM_")]
    # the name from the cluster's state, then a live query and connect from inside the client
    # (across the VXLAN to the worker's task): reachable
    status, by_name = report("--from", cluster.client, f"{cluster.web}:80")
    names = line(by_name, "name-resolution")
    assert (status, by_name["verdict"]) == (0, "reachable")
    assert "swarm service" in names["detail"] and "connected" in names["live"]
    assert not [c for c in codes(by_name) if c.startswith("SWARM_")]


def test_a_service_on_another_overlay(cluster: Cluster) -> None:
    assert "bad address" in cluster.request(cluster.lone)  # the embedded DNS does not answer
    status, found = report("--from", cluster.client, f"{cluster.lone}:80")
    assert (status, found["verdict"]) == (1, "unreachable")
    assert codes(found)[0] == "SWARM_SERVICE_NOT_ON_NETWORK"
    evidence = {e["fact"]: e["value"] for e in found["findings"][0]["evidence"]}
    assert evidence[f"{cluster.lone} networks"] == [cluster.other]
    assert found["findings"][0]["fix"]["commands"] == [
        f"docker service update --network-add {cluster.overlay} {cluster.lone}",
        f"docker network connect {cluster.other} {cluster.client}",
    ]


def test_a_drained_node_leaves_the_service_without_a_task(cluster: Cluster, tmp_path) -> None:
    docker("node", "update", "--availability", "drain", cluster.worker_id)
    try:
        until(lambda: cluster.running_tasks(cluster.web) == 0, 30, "the task moved off")
        until(lambda: "bad address" in cluster.request(cluster.web), 30, "the name gone")
        until(lambda: "no suitable node" in cluster.errors(cluster.web), 30, "the scheduler's word")
        saved = tmp_path / "snapshot"
        status, found = report(
            "--from", cluster.client, f"{cluster.web}:80", "--save-snapshot", str(saved)
        )
        assert (status, found["verdict"]) == (1, "unreachable")
        assert codes(found)[:2] == ["SWARM_SERVICE_NO_RUNNING_TASK", "SWARM_NODE_DRAINED"]
        # what was read replays to the same findings, the cluster's state included
        _, replayed = report(
            "--from", cluster.client, f"{cluster.web}:80", "--snapshot", str(saved)
        )
        assert codes(replayed) == codes(found)
        kept = (saved / "engine" / "swarm.json").read_text()
        assert cluster.web in kept and SECRET not in kept and "Env" not in kept
        (tasks,) = found["findings"][0]["evidence"]
        assert any("no suitable node" in t["error"] for t in tasks["value"])
        _, checkup = report()
        assert {"SWARM_SERVICE_NO_RUNNING_TASK", "SWARM_NODE_DRAINED"} <= set(codes(checkup))
        assert line(checkup, f"service {cluster.web}")["status"] == "broken"
    finally:
        docker("node", "update", "--availability", "active", cluster.worker_id)
    until(lambda: "HTTP/1.1 200" in cluster.request(cluster.web), 60, "the service back")


def test_vxlan_dropped_by_this_nodes_firewall(cluster: Cluster) -> None:
    rule = ["INPUT", "-p", "udp", "-m", "udp", "--dport", "4789", "-j", "DROP"]
    subprocess.run(["iptables", "-I", *rule], check=True, timeout=30)
    try:
        # the worker's replies come back in VXLAN: the name resolves, the request goes unanswered
        until(lambda: "HTTP/1.1 200" not in cluster.request(cluster.web), 20, "the overlay cut")
        status, checkup = report()
        (blocked,) = [f for f in checkup["findings"] if f["code"] == "SWARM_PORT_BLOCKED"]
        assert status == 1 and "4789/udp" in blocked["explanation"]
        evidence = {e["fact"]: e["value"] for e in blocked["evidence"]}
        assert evidence["rule"] == "-t filter -A INPUT " + " ".join(rule[1:])
        address = cluster.worker.address
        assert f"-s {address} -p udp --dport 4789 -j ACCEPT" in blocked["fix"]["commands"][0]
    finally:
        subprocess.run(["iptables", "-D", *rule], check=True, timeout=30)
    until(lambda: "HTTP/1.1 200" in cluster.request(cluster.web), 30, "the overlay back")
    _, checkup = report()
    assert "SWARM_PORT_BLOCKED" not in codes(checkup)


def test_a_node_whose_engine_stopped_is_down(cluster: Cluster) -> None:
    dockerd = cluster.worker.daemons[1]  # containerd, dockerd, sshd
    os.killpg(dockerd.pid, signal.SIGTERM)
    dockerd.wait(30)
    started = time.monotonic()
    until(lambda: cluster.node_state().strip() == "down", 90, "the manager to see it down")
    print(f"the manager saw the worker down after {time.monotonic() - started:.1f} s")
    status, checkup = report()
    assert status == 1 and codes(checkup)[0] in ("SWARM_NODE_DOWN", "SWARM_SERVICE_NO_RUNNING_TASK")
    assert {"SWARM_NODE_DOWN", "SWARM_SERVICE_NO_RUNNING_TASK"} <= set(codes(checkup))
    node = next(h for h in checkup["path"] if cluster.worker_id[:12] in h["hop"])
    assert node["status"] == "broken" and "down" in node["detail"]
