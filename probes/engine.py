"""The Engine API: version, info, every container (stopped ones too) and network."""

from __future__ import annotations

import concurrent.futures

from doctor import artifacts as a
from doctor.dockerapi import EngineClient, NotFound, connect, get_json, resolve_endpoint
from doctor.plugins import Probe, ProbeContext

LOG_LINES = 20
PARALLEL_REQUESTS = 8


def collect_engine(ctx: ProbeContext) -> None:
    endpoint = resolve_endpoint()
    ctx.put(a.ENGINE_ENDPOINT, {"host": endpoint.host, "source": endpoint.source})
    client = connect(endpoint, timeout=ctx.remaining())
    ctx.put(a.ENGINE_VERSION, client.get("/version"))
    summaries = get_json(client, "/containers/json", all=1)
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
        info = pool.submit(client.get, "/info")
        networks = pool.submit(client.get, "/networks")
        # Raw bodies, joined unparsed: decoding 100 inspect objects only to encode them
        # again costs more than all the requests.
        inspected = [body for body in pool.map(lambda s: _inspect(client, s["Id"]), summaries) if body]
        # Why a stopped container stopped is usually in its last lines.
        stopped = [s["Id"] for s in summaries if s.get("State") != "running"]
        logs = pool.map(lambda cid: _log_tail(client, cid), stopped)
        for cid, log in zip(stopped, logs):
            ctx.put(a.container_log(cid), log)
        ctx.put(a.ENGINE_INFO, info.result())
        ctx.put(a.NETWORKS, networks.result())
    ctx.put(a.CONTAINERS, b"[" + b",\n".join(inspected) + b"]")


def _log_tail(client: EngineClient, container_id: str) -> bytes:
    try:
        return client.get(f"/containers/{container_id}/logs", stdout=1, stderr=1, tail=LOG_LINES)
    except (NotFound, RuntimeError):  # e.g. a logging driver that cannot be read back
        return b""


def _inspect(client: EngineClient, container_id: str) -> bytes | None:
    try:
        return client.get(f"/containers/{container_id}/json")
    except NotFound:  # removed since the listing
        return None


PROBES = [Probe("engine", collect_engine, timeout=5.0)]
