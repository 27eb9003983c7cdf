"""The Swarm rules, on a cluster built by hand as a manager's API gives it (doctor.facts.swarm
parses it, as a diagnosis would)."""

from __future__ import annotations

from typing import Any

from doctor.facts.swarm import parse_swarm
from tests.support.builders import (
    codes,
    container,
    context,
    docker_iptables,
    evidence,
    facts,
    findings,
    network,
)

OVERLAY = network("ov", "10.0.1.0/24", driver="overlay", attachable=True)
OTHER = network("other", "10.0.2.0/24", driver="overlay")
MANAGER, WORKER = "m" * 25, "w" * 25


def node(node_id: str, role: str, state: str = "ready", availability: str = "active") -> dict:
    return {
        "ID": node_id,
        "Description": {"Hostname": "vm"},
        "Spec": {"Role": role, "Availability": availability},
        "Status": {"State": state, "Addr": "198.18.0.2"},
    }


def service(name: str, net: Any = OVERLAY, replicas: int = 1) -> dict:
    return {
        "ID": f"{name}-id",
        "Spec": {
            "Name": name,
            "Mode": {"Replicated": {"Replicas": replicas}},
            "EndpointSpec": {"Mode": "dnsrr"},
            "TaskTemplate": {"Networks": [{"Target": net.id}]},
        },
    }


def task(name: str, state: str, desired: str = "running", on: str = WORKER, err: str = "") -> dict:
    return {
        "ID": f"{name}-{state}",
        "ServiceID": f"{name}-id",
        "NodeID": on,
        "Slot": 1,
        "DesiredState": desired,
        "Status": {"State": state, "Err": err},
    }


def cluster(*tasks: dict, worker: str = "ready", availability: str = "active") -> Any:
    client = container("cli", on=((OVERLAY, "10.0.1.4"),))
    swarm = parse_swarm(
        {
            "node_id": MANAGER,
            "nodes": [node(MANAGER, "manager"), node(WORKER, "worker", worker, availability)],
            "services": [service("web"), service("lone", OTHER)],
            "tasks": list(tasks),
        }
    )
    return facts(client, networks=[OVERLAY, OTHER], swarm=swarm)


def test_a_service_with_a_running_task_is_left_to_the_other_node():
    f = cluster(task("web", "running"), task("lone", "running"))
    ctx = context(f, "web:80", source="cli")
    assert ctx.path.hop("name-resolution").status == "unknown"
    assert codes("swarm-service-by-name", ctx) == []
    assert codes("swarm-cluster", context(f)) == []


def test_a_service_on_no_network_of_the_client():
    f = cluster(task("web", "running"), task("lone", "running"))
    (found,) = findings("swarm-service-by-name", context(f, "lone:80", source="cli"))
    assert (found.code, found.hop) == ("SWARM_SERVICE_NOT_ON_NETWORK", "name-resolution")
    assert evidence(found) == {"lone networks": ["other"], "cli networks": ["ov"]}
    # the service onto the client's overlay; the client cannot join "other" (not attachable)
    assert found.fix.commands == ("docker service update --network-add ov lone",)


def test_a_drained_node_leaves_a_pinned_service_nothing():
    f = cluster(
        task("web", "running", desired="shutdown"),  # on its way off the drained node
        task(
            "web", "pending", desired="ready", on="", err="no suitable node (1 node not available)"
        ),
        availability="drain",
    )
    ctx = context(f, "web:80", source="cli")
    assert ctx.path.hop("name-resolution").status == "broken"
    found = findings("swarm-service-by-name", ctx)
    assert [x.code for x in found] == ["SWARM_SERVICE_NO_RUNNING_TASK", "SWARM_NODE_DRAINED"]
    (tasks,) = found[0].evidence
    assert [t["state"] for t in tasks.value] == ["running", "pending"]
    assert "no suitable node" in found[0].explanation
    assert found[1].fix.commands == (f"docker node update --availability active {WORKER[:12]}",)
    # the checkup says the same of the cluster, and nothing of a service that runs
    checkup = codes("swarm-cluster", context(f))
    assert checkup == ["SWARM_SERVICE_NO_RUNNING_TASK"] * 2 + ["SWARM_NODE_DRAINED"]


def test_a_task_on_a_node_that_is_down_runs_nowhere():
    f = cluster(task("web", "running"), task("lone", "running"), worker="down")
    found = findings("swarm-cluster", context(f))
    assert [x.code for x in found] == ["SWARM_SERVICE_NO_RUNNING_TASK"] * 2 + ["SWARM_NODE_DOWN"]
    assert evidence(found[2])[f"vm ({WORKER[:12]}) Status"]["state"] == "down"


def test_a_service_scaled_to_zero_wants_nothing():
    idle = {
        "node_id": MANAGER,
        "nodes": [node(MANAGER, "manager")],
        "services": [service("idle", replicas=0)],
    }
    f = facts(swarm=parse_swarm(idle))
    assert codes("swarm-cluster", context(f)) == []


def test_without_the_tasks_no_service_is_said_to_run_nothing():
    unread = parse_swarm(
        {
            "node_id": MANAGER,
            "nodes": [node(MANAGER, "manager")],
            "services": [service("web")],
            "unread": {"tasks": "timed out"},
        }
    )
    client = container("cli", on=((OVERLAY, "10.0.1.4"),))
    f = facts(client, networks=[OVERLAY, OTHER], swarm=unread)
    assert codes("swarm-cluster", context(f)) == []
    ctx = context(f, "web:80", source="cli")
    assert ctx.path.hop("name-resolution").status == "unknown"
    assert codes("swarm-service-by-name", ctx) == []


def test_one_malformed_task_is_said_and_the_rest_of_the_cluster_kept():
    swarm = parse_swarm(
        {
            "node_id": MANAGER,
            "nodes": [node(MANAGER, "manager")],
            "services": [service("web")],
            "tasks": [task("web", "running"), {"Status": {}}],  # no ID
        }
    )
    assert [s.name for s in swarm.services] == ["web"] and len(swarm.tasks) == 1
    assert "KeyError" in swarm.unread["tasks"] and not swarm.tasks_read


def test_a_swarm_port_this_nodes_firewall_drops():
    rules = docker_iptables(host_input=["-A INPUT -p udp -m udp --dport 4789 -j DROP"])
    two = {"node_id": MANAGER, "nodes": [node(MANAGER, "manager"), node(WORKER, "worker")]}
    two["nodes"][0]["Status"]["Addr"] = "198.18.0.1"
    f = facts(swarm=parse_swarm(two), iptables=rules)
    (found,) = findings("swarm-ports-blocked", context(f))
    assert (found.code, found.hop) == ("SWARM_PORT_BLOCKED", "host")
    assert "4789/udp" in found.explanation and "VXLAN" in found.explanation
    assert evidence(found)["rule"] == "-t filter -A INPUT -p udp -m udp --dport 4789 -j DROP"
    assert found.fix.commands == ("iptables -I INPUT -s 198.18.0.2 -p udp --dport 4789 -j ACCEPT",)
    # the same rule, but for another port: nothing Swarm needs
    other = docker_iptables(host_input=["-A INPUT -p udp -m udp --dport 4790 -j DROP"])
    assert (
        codes("swarm-ports-blocked", context(facts(swarm=parse_swarm(two), iptables=other))) == []
    )
