"""Run code concurrently, each call under a timeout, none able to sink the run: probes, rules,
live probes, name lookups.

Daemon threads rather than an executor: a hung probe must not keep the interpreter
alive at exit, and Python cannot kill a thread, only stop waiting for it.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from msgspec import Struct

Status = Literal["ok", "failed", "skipped", "timeout"]


class Skip(Exception):
    """Raised by a probe that cannot run here, with the reason (e.g. needs root)."""


class Job(Struct):
    name: str
    call: Callable[[], Any]
    timeout: float
    requires: tuple[str, ...] = ()


class JobResult(Struct):
    name: str
    status: Status
    detail: str = ""
    value: Any = None
    ms: int = 0
    error: BaseException | None = None


def run_jobs(jobs: list[Job], deadline: float) -> dict[str, JobResult]:
    """Run ``jobs``, each once its ``requires`` have ended (however they ended).

    Returns an outcome for every job by ``deadline`` (a ``time.monotonic()`` value).
    """
    names = {job.name for job in jobs}
    waiting = {job.name: job for job in jobs}
    running: dict[str, tuple[Job, float]] = {}
    outcomes: dict[str, JobResult] = {}
    done: queue.Queue[JobResult] = queue.Queue()

    def work(job: Job, started: float, gate: threading.Event) -> None:
        gate.wait()
        done.put(_outcome(job, started))

    def start_ready() -> None:
        # Thread.start() waits until the new thread has held the GIL once: while its elder
        # siblings compute, a switch interval (5 ms) each. So the threads of all ready jobs
        # start, park at a gate, and are let go together.
        gate, started = threading.Event(), time.monotonic()
        try:
            for name, job in list(waiting.items()):
                if all(r in outcomes or r not in names for r in job.requires):
                    del waiting[name]
                    running[name] = (job, started)
                    threading.Thread(
                        target=work, args=(job, started, gate), name=f"doctor:{name}", daemon=True
                    ).start()
        finally:
            gate.set()  # also when a start fails or the run is interrupted: none stays parked

    start_ready()
    while running:
        now = time.monotonic()
        next_expiry = min(min(s + j.timeout for j, s in running.values()), deadline)
        try:
            outcome = done.get(timeout=max(0.0, next_expiry - now))
        except queue.Empty:
            now = time.monotonic()
            for name, (job, started) in list(running.items()):
                if now >= min(started + job.timeout, deadline):
                    del running[name]
                    limit = min(job.timeout, deadline - started)
                    outcomes[name] = JobResult(
                        name,
                        "timeout",
                        f"no answer within {limit:.1f} s",
                        ms=round((now - started) * 1000),
                    )
        else:
            if outcome.name in running:  # not already written off as timed out
                del running[outcome.name]
                outcomes[outcome.name] = outcome
        start_ready()
    for name in waiting:  # unreachable unless requirements form a cycle
        outcomes[name] = JobResult(name, "skipped", "its required probes never finished")
    return outcomes


def run_in_turn(jobs: list[Job], deadline: float) -> dict[str, JobResult]:
    """``jobs`` one after another in one worker thread, each within its timeout and all by
    ``deadline``: for calls that only compute (rules), which a thread each would not speed up
    under the GIL, and which a checkup of a hundred ports runs thousands of. The caller wakes
    only when the batch is done or the running job's time is up; a job that overruns is
    written off, and a fresh worker takes the jobs after it."""
    outcomes: dict[str, JobResult] = {}
    pending = list(jobs)
    while pending:
        batch, pending = pending, []
        turn = _Turn()
        threading.Thread(
            target=turn.work, args=(batch,), name="doctor:in-turn", daemon=True
        ).start()
        while not turn.finished.is_set():
            at, since = turn.running
            limit = min(since + batch[at].timeout, deadline)
            if turn.finished.wait(max(0.0, limit - time.monotonic())):
                break
            if turn.running != (at, since) or len(turn.results) > at:
                continue  # it moved on meanwhile: watch the next one
            late = round((time.monotonic() - since) * 1000)
            outcomes[batch[at].name] = JobResult(
                batch[at].name, "timeout", f"no answer within {limit - since:.1f} s", ms=late
            )
            turn.abandoned = True  # should the job ever return, its worker stops there
            if time.monotonic() >= deadline:
                for rest in batch[at + 1 :]:
                    outcomes[rest.name] = JobResult(rest.name, "timeout", "no time left")
            else:
                pending = batch[at + 1 :]
            break
        outcomes.update((r.name, r) for r in turn.results if r.name not in outcomes)
    return outcomes


class _Turn:
    """A worker's progress through its batch, read by the thread that waits for it."""

    def __init__(self) -> None:
        self.running = (0, time.monotonic())  # the job being run, and since when (one tuple)
        self.results: list[JobResult] = []
        self.finished = threading.Event()
        self.abandoned = False

    def work(self, batch: list[Job]) -> None:
        for n, job in enumerate(batch):
            if self.abandoned:
                return
            self.running = (n, time.monotonic())
            self.results.append(_outcome(job, self.running[1]))
        self.finished.set()


def _outcome(job: Job, started: float) -> JobResult:
    try:
        outcome = JobResult(job.name, "ok", value=job.call())
    except Skip as exc:
        outcome = JobResult(job.name, "skipped", str(exc))
    except (TimeoutError, subprocess.TimeoutExpired) as exc:  # its own time ran out first
        outcome = JobResult(job.name, "timeout", str(exc))
    except Exception as exc:  # a plugin's failure is a finding about the run, not a crash
        outcome = JobResult(job.name, "failed", describe_error(exc), error=exc)
    outcome.ms = round((time.monotonic() - started) * 1000)
    return outcome


def call_bounded(call: Callable[[], Any], timeout: float) -> Any:
    """``call()``'s result, or TimeoutError if it has not returned within ``timeout``."""
    outcome = run_jobs([Job("call", call, timeout)], time.monotonic() + timeout)["call"]
    if outcome.error is not None:
        raise outcome.error
    if outcome.status != "ok":
        raise TimeoutError(outcome.detail)
    return outcome.value


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
