"""Running the probes: every one concurrently, each under its own timeout, into a fresh snapshot."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

from doctor.bounded import Job, JobResult, run_jobs
from doctor.collect.engine_api import Endpoint
from doctor.collect.platforms import local_guess
from doctor.collect.scope import Question
from doctor.errors import CannotDiagnose
from doctor.plugin.probe import Probe, ProbeContext
from doctor.report.document import ProbeRun
from doctor.snapshot import artifacts as a
from doctor.snapshot.store import Snapshot

ENGINE = "engine"  # the probe that lists and inspects containers


def collect(
    probes: list[Probe],
    deadline: float,
    endpoint: Endpoint,
    extra: Sequence[Job] = (),
    thorough: bool = False,
    question: Question | None = None,
    snapshot: Snapshot | None = None,
) -> tuple[Snapshot, dict[str, JobResult]]:
    """Run ``probes`` (and ``extra`` jobs alongside) into a fresh snapshot of ``endpoint``'s
    engine, or into ``snapshot`` (their earlier runs there replaced). ``question``: read only
    the containers it can involve (doctor.collect.scope); None: every one."""
    if snapshot is None:
        snapshot = Snapshot(meta={"created": time.time(), "hostname": socket.gethostname()})
    contexts: dict[str, ProbeContext] = {}
    where = local_guess(endpoint.host, endpoint.source)

    def job(p: Probe) -> Job:
        def call() -> None:
            # Requirements have ended by now: their artifacts are in the snapshot.
            ctx = contexts[p.name] = ProbeContext(
                snapshot,
                deadline=min(deadline, time.monotonic() + p.timeout),
                endpoint=endpoint,
                thorough=thorough,
                platform=where,
                question=question,
                probe=p.name,
            )
            p.collect(ctx)
            snapshot.artifacts.update(ctx.artifacts)

        return Job(p.name, call, p.timeout, p.requires)

    outcomes = run_jobs([job(p) for p in probes] + list(extra), deadline)
    rerun = {p.name for p in probes}
    snapshot.probes[:] = [r for r in snapshot.probes if r.name not in rerun]
    for p in probes:
        o = outcomes[p.name]
        snapshot.probes.append(ProbeRun(p.name, o.status, o.detail, o.ms))
    return snapshot, outcomes


def widen(
    snapshot: Snapshot, probes: list[Probe], deadline: float, endpoint: Endpoint, why: str
) -> dict[str, JobResult]:
    """Read every container into ``snapshot``, which read only some, because ``why``: the
    engine probe and the probes that read containers run again."""
    again = [p for p in probes if p.name == ENGINE or ENGINE in p.requires]
    question = Question("", None, None, widened=why)
    outcomes = collect(again, deadline, endpoint, snapshot=snapshot, question=question)[1]
    if outcomes[ENGINE].status == "ok":  # every container read: no list of the rest to keep
        snapshot.artifacts.pop(a.CONTAINER_LIST, None)
    return outcomes


def stop_if_engine_unreachable(outcomes: dict[str, JobResult]) -> None:
    error = outcomes[ENGINE].error if ENGINE in outcomes else None
    if isinstance(error, CannotDiagnose):
        raise error
