"""A Swarm cluster as its manager sees it: nodes, services and their tasks.

The probe (doctor.probes.engine_api) keeps only the fields below of `GET /nodes`, `/services`
and `/tasks`: a service's spec also carries its environment and secrets' names, which no
snapshot needs.  Only a manager answers those calls; a worker's snapshot has no cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from msgspec import Struct

T = TypeVar("T")
RUNNING = "running"  # a task's state, and the state a current task is desired in


class SwarmNode(Struct, frozen=True):
    id: str
    hostname: str
    role: str  # manager or worker
    availability: str  # active, pause or drain
    state: str  # ready, down, disconnected or unknown
    address: str
    message: str = ""

    @property
    def label(self) -> str:
        """Hostnames repeat (cloned machines); the ID's prefix tells nodes apart, as `docker
        node ls` does."""
        return f"{self.hostname} ({self.id[:12]})"


class SwarmTask(Struct, frozen=True):
    id: str
    service_id: str
    node_id: str  # empty while the scheduler finds no node
    slot: int | None
    state: str  # new, pending, assigned, …, running, complete, failed, rejected, shutdown
    desired_state: str
    message: str
    error: str
    #: network ID -> the task's addresses on it (CIDR form, as the API gives them)
    addresses: dict[str, tuple[str, ...]]


class SwarmService(Struct, frozen=True):
    id: str
    name: str
    mode: str  # replicated, global, replicated-job or global-job
    replicas: int | None  # replicated services only
    endpoint_mode: str  # vip or dnsrr
    network_ids: tuple[str, ...]
    #: network ID -> the service's virtual IP there (vip mode)
    virtual_ips: dict[str, str]


class Swarm(Struct, frozen=True):
    node_id: str  # the node this snapshot was taken on (a manager)
    nodes: tuple[SwarmNode, ...]
    services: tuple[SwarmService, ...]
    tasks: tuple[SwarmTask, ...]
    #: "nodes", "services" or "tasks" -> why the manager did not answer (no leader: quorum lost)
    unread: dict[str, str]

    def node(self, node_id: str) -> SwarmNode | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def service_named(self, name: str) -> SwarmService | None:
        """The service a DNS name means: its name, or ``tasks.NAME`` (every task's address)."""
        key = name.lower().removeprefix("tasks.")
        return next((s for s in self.services if s.name.lower() == key), None)

    def tasks_of(self, service: SwarmService) -> list[SwarmTask]:
        """The service's current tasks: meant to run (desired running, or ready while the
        scheduler finds no node), or running still."""
        return [
            t
            for t in self.tasks
            if t.service_id == service.id
            and (t.state == RUNNING or t.desired_state in (RUNNING, "ready"))
        ]

    def running(self, service: SwarmService) -> list[SwarmTask]:
        """Its tasks that run and are meant to: the embedded DNS drops a task once it is to shut
        down (a drained node's, still running), and a task on a node that is down runs nowhere,
        whatever the manager last heard from it."""
        return [
            t
            for t in self.tasks_of(service)
            if t.state == t.desired_state == RUNNING
            and ((n := self.node(t.node_id)) is None or n.state == "ready")
        ]

    def wants_tasks(self, service: SwarmService) -> bool:
        """A service that should run something now: not one scaled to zero, not a job, not a
        global service that no node's constraints admit (it has no task at all)."""
        if service.mode == "replicated":
            return bool(service.replicas)
        return service.mode == "global" and bool(self.tasks_of(service))

    @property
    def tasks_read(self) -> bool:
        """Whether the manager gave its services and tasks: without them no service can be
        said to run nothing."""
        return not {"services", "tasks"} & set(self.unread)

    def nodes_of(self, service: SwarmService) -> set[str]:
        """The nodes any task of the service was given, its history included."""
        return {t.node_id for t in self.tasks if t.service_id == service.id and t.node_id}


def parse_swarm(raw: Mapping[str, Any]) -> Swarm:
    """The cluster; an object that is not what the API gives is left out, and said (under
    ``unread``), not the whole cluster with it."""
    unread = {str(k): str(v) for k, v in (raw.get("unread") or {}).items()}

    def each(kind: str, parse: Callable[[Any], T]) -> tuple[T, ...]:
        found = []
        for item in raw.get(kind) or ():
            try:
                found.append(parse(item))
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                unread.setdefault(kind, f"an object it could not read: {type(exc).__name__}: {exc}")
        return tuple(found)

    return Swarm(
        node_id=str(raw.get("node_id") or ""),
        nodes=each("nodes", _node),
        services=each("services", _service),
        tasks=each("tasks", _task),
        unread=unread,
    )


def _node(n: Mapping[str, Any]) -> SwarmNode:
    spec, status = n.get("Spec") or {}, n.get("Status") or {}
    manager = n.get("ManagerStatus") or {}
    # a manager may report 0.0.0.0 as its own status address; its raft address is the real one
    address = str(status.get("Addr") or "")
    if address in ("", "0.0.0.0") and manager.get("Addr"):
        address = str(manager["Addr"]).rsplit(":", 1)[0]
    return SwarmNode(
        id=str(n["ID"]),
        hostname=str((n.get("Description") or {}).get("Hostname") or ""),
        role=str(spec.get("Role") or ""),
        availability=str(spec.get("Availability") or ""),
        state=str(status.get("State") or "unknown"),
        address=address,
        message=str(status.get("Message") or ""),
    )


def _service(s: Mapping[str, Any]) -> SwarmService:
    spec = s["Spec"]
    mode = spec.get("Mode") or {}
    kind = next(iter(mode), "replicated")
    template = spec.get("TaskTemplate") or {}
    # TaskTemplate.Networks since API 1.25; Spec.Networks before (and still accepted)
    networks = template.get("Networks") or spec.get("Networks") or ()
    endpoint = s.get("Endpoint") or {}
    return SwarmService(
        id=str(s["ID"]),
        name=str(spec["Name"]),
        mode={"ReplicatedJob": "replicated-job", "GlobalJob": "global-job"}.get(kind, kind.lower()),
        replicas=(mode.get("Replicated") or {}).get("Replicas") if kind == "Replicated" else None,
        endpoint_mode=str((spec.get("EndpointSpec") or {}).get("Mode") or "vip"),
        network_ids=tuple(str(n["Target"]) for n in networks),
        virtual_ips={
            str(v["NetworkID"]): str(v.get("Addr") or "").split("/")[0]
            for v in endpoint.get("VirtualIPs") or ()
        },
    )


def _task(t: Mapping[str, Any]) -> SwarmTask:
    status = t.get("Status") or {}
    slot = t.get("Slot")
    return SwarmTask(
        id=str(t["ID"]),
        service_id=str(t.get("ServiceID") or ""),
        node_id=str(t.get("NodeID") or ""),
        slot=slot if isinstance(slot, int) else None,
        state=str(status.get("State") or ""),
        desired_state=str(t.get("DesiredState") or ""),
        message=str(status.get("Message") or ""),
        error=str(status.get("Err") or ""),
        addresses={
            str(a["Network"]["ID"]): tuple(str(x) for x in a.get("Addresses") or ())
            for a in t.get("NetworksAttachments") or ()
        },
    )
