"""Running the probes: every one concurrently, each under its own timeout, into a fresh snapshot."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

from doctor.bounded import Job, JobResult, run_jobs
from doctor.collect.engine_api import Endpoint
from doctor.collect.platforms import local_guess
from doctor.errors import CannotDiagnose
from doctor.plugin.probe import Probe, ProbeContext
from doctor.report.document import ProbeRun
from doctor.snapshot.store import Snapshot


def collect(
    probes: list[Probe],
    deadline: float,
    endpoint: Endpoint,
    extra: Sequence[Job] = (),
    thorough: bool = False,
) -> tuple[Snapshot, dict[str, JobResult]]:
    """Run every probe (and ``extra`` jobs alongside) into a fresh snapshot of ``endpoint``'s engine."""
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
            )
            p.collect(ctx)
            snapshot.artifacts.update(ctx.artifacts)

        return Job(p.name, call, p.timeout, p.requires)

    outcomes = run_jobs([job(p) for p in probes] + list(extra), deadline)
    for p in probes:
        o = outcomes[p.name]
        snapshot.probes.append(ProbeRun(p.name, o.status, o.detail, o.ms))
    return snapshot, outcomes


def stop_if_engine_unreachable(outcomes: dict[str, JobResult]) -> None:
    error = outcomes["engine"].error if "engine" in outcomes else None
    if isinstance(error, CannotDiagnose):
        raise error
