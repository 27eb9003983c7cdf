"""The Engine API: version, info, networks, and the containers a run can involve (all of them
for a checkup or a bundle; doctor.collect.scope says which)."""

from __future__ import annotations

import concurrent.futures
import struct
from typing import Any

import msgspec
from msgspec import to_builtins

from doctor.bounded import describe_error
from doctor.collect.engine_api import EngineClient, NotFound, connect
from doctor.collect.scope import involved
from doctor.facts.parse import multiplexed
from doctor.plugin import Probe, ProbeContext
from doctor.snapshot import artifacts as a

LOG_LINES = 20
PARALLEL_REQUESTS = 8
# A support bundle carries every container's recent log, bounded per container and in all.
BUNDLE_LOG_LINES = 200
BUNDLE_LOG_BYTES = 256 * 1024
BUNDLE_LOGS_TOTAL = 8 * 1024 * 1024


def collect_engine(ctx: ProbeContext) -> None:
    ctx.put(a.ENGINE_ENDPOINT, {"host": ctx.endpoint.host, "source": ctx.endpoint.source})
    client = connect(ctx.endpoint, timeout=ctx.remaining())
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
        # asked while the daemon builds the list: 0.13 s with a thousand containers
        version = pool.submit(client.get, "/version")
        info = pool.submit(client.get, "/info")
        networks = pool.submit(client.get, "/networks")
        listing = client.get("/containers/json", all=1)
        ctx.put(a.ENGINE_VERSION, version.result())
        summaries = msgspec.json.decode(listing)
        cluster = _swarm_calls(ctx, pool, info.result())
        scope = involved(None if ctx.thorough else ctx.question, summaries)
        ctx.put(a.SCOPE, to_builtins(scope))
        if not scope.complete:
            ctx.put(a.CONTAINER_LIST, listing)  # what was left out, for a replay to see
        summaries = [s for s in summaries if s["Id"] in scope.read]
        # Raw bodies, joined unparsed: decoding 100 inspect objects only to encode them
        # again costs more than all the requests.
        inspected = []
        for summary, body in zip(
            summaries, pool.map(lambda s: _inspect(client, s["Id"]), summaries), strict=True
        ):
            if body is None:
                ctx.could_not_check(summary, "removed between the list and its inspect")
            else:
                inspected.append(body)
        # Why a stopped container stopped is usually in its last lines; a bundle takes all.
        wanted = [s["Id"] for s in summaries if ctx.thorough or s.get("State") != "running"]
        lines = BUNDLE_LOG_LINES if ctx.thorough else LOG_LINES
        logs = pool.map(lambda cid: _log_tail(client, cid, lines), wanted)
        cut, left_out, total = [], [], 0
        for cid, log in zip(wanted, logs, strict=True):
            if ctx.thorough and total + len(log) > BUNDLE_LOGS_TOTAL:
                left_out.append(cid)
                continue
            if ctx.thorough and len(log) > BUNDLE_LOG_BYTES:
                log = _newest(log, BUNDLE_LOG_BYTES)
                cut.append(cid)
            total += len(log)
            ctx.put(a.container_log(cid), log)
        if ctx.thorough:
            ctx.put(
                a.LOG_BOUNDS,
                {
                    "lines": lines,
                    "bytes_per_container": BUNDLE_LOG_BYTES,
                    "bytes_in_all": BUNDLE_LOGS_TOTAL,
                    "cut": cut,
                    "left_out": left_out,
                },
            )
        ctx.put(a.ENGINE_INFO, info.result())
        ctx.put(a.NETWORKS, networks.result())
        if cluster is not None:
            ctx.put(a.SWARM, _swarm(*cluster))
    ctx.put(a.CONTAINERS, b"[" + b",\n".join(inspected) + b"]")


def _newest(log: bytes, limit: int) -> bytes:
    """The newest whole frames (or lines, for a TTY's plain stream) that fit in ``limit``."""
    if multiplexed(log):
        offset = 0
        while len(log) - offset > limit and offset + 8 <= len(log):
            offset += 8 + struct.unpack(">I", log[offset + 4 : offset + 8])[0]
        return log[offset:]
    tail = log[-limit:]
    return tail[tail.find(b"\n") + 1 :]


def _log_tail(client: EngineClient, container_id: str, lines: int) -> bytes:
    try:
        return client.get(f"/containers/{container_id}/logs", stdout=1, stderr=1, tail=lines)
    except (NotFound, RuntimeError):  # e.g. a logging driver that cannot be read back
        return b""


SWARM_TIMEOUT = 2.0  # seconds for each of the manager's cluster calls
#: What a snapshot keeps of each Swarm object (a service's spec also holds its environment)
SWARM_FIELDS = {
    "nodes": {"ID": 1, "Description": {"Hostname": 1}, "Spec": {"Role": 1, "Availability": 1},
              "Status": 1, "ManagerStatus": 1},
    "services": {"ID": 1, "Endpoint": {"VirtualIPs": 1},
                 "Spec": {"Name": 1, "Mode": 1, "EndpointSpec": {"Mode": 1}, "Networks": 1,
                          "TaskTemplate": {"Networks": 1}}},
    "tasks": {"ID": 1, "ServiceID": 1, "NodeID": 1, "Slot": 1, "DesiredState": 1,
              "Status": {"State": 1, "Message": 1, "Err": 1},
              "NetworksAttachments": {"Network": {"ID": 1}, "Addresses": 1}},
}  # fmt: skip


def _swarm_calls(
    ctx: ProbeContext, pool: concurrent.futures.ThreadPoolExecutor, info: bytes
) -> tuple[str, dict[str, concurrent.futures.Future[bytes]]] | None:
    """On a Swarm manager: this node's ID, and its nodes, services and tasks, asked at once (a
    worker's engine refuses these calls: only managers hold the cluster's state). Their own
    client has a short timeout: a manager that lost its leader answers them only after its own
    20 s, and the rest of the engine's facts must not wait for that."""
    swarm = msgspec.json.decode(info).get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        return None
    client = connect(ctx.endpoint, timeout=min(SWARM_TIMEOUT, ctx.remaining()))
    return str(swarm.get("NodeID") or ""), {
        kind: pool.submit(client.get, f"/{kind}") for kind in SWARM_FIELDS
    }


def _swarm(node_id: str, calls: dict[str, concurrent.futures.Future[bytes]]) -> dict[str, Any]:
    """What the snapshot keeps; a call the manager refused (no leader: quorum lost) is said."""
    kept: dict[str, Any] = {"node_id": node_id, "unread": {}}
    for kind, call in calls.items():
        try:
            items = msgspec.json.decode(call.result())
        except Exception as exc:  # the rest of the cluster's state still counts
            kept[kind], kept["unread"][kind] = [], describe_error(exc)
            continue
        kept[kind] = [_only(item, SWARM_FIELDS[kind]) for item in items]
    return kept


def _only(value: Any, fields: Any) -> Any:
    """``value`` with only ``fields`` (a nested dict of the keys kept; 1: all of it)."""
    if fields == 1:
        return value
    if isinstance(value, list):
        return [_only(item, fields) for item in value]
    if not isinstance(value, dict):
        return value
    return {key: _only(value[key], sub) for key, sub in fields.items() if key in value}


def _inspect(client: EngineClient, container_id: str) -> bytes | None:
    try:
        return client.get(f"/containers/{container_id}/json")
    except NotFound:  # removed since the listing
        return None


PROBES = [Probe("engine", collect_engine, timeout=5.0)]
