"""Run code concurrently, each call under a timeout, none able to sink the run: probes, rules,
live probes, name lookups.

Daemon threads rather than an executor: a hung probe must not keep the interpreter
alive at exit, and Python cannot kill a thread, only stop waiting for it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "failed", "skipped", "timeout"]


class Skip(Exception):
    """Raised by a probe that cannot run here, with the reason (e.g. needs root)."""


@dataclass
class Job:
    name: str
    call: Callable[[], Any]
    timeout: float
    requires: tuple[str, ...] = ()


@dataclass
class JobResult:
    name: str
    status: Status
    detail: str = ""
    value: Any = None
    ms: int = 0
    error: BaseException | None = field(default=None, repr=False)


def run_jobs(jobs: list[Job], deadline: float) -> dict[str, JobResult]:
    """Run ``jobs``, each once its ``requires`` have ended (however they ended).

    Returns an outcome for every job by ``deadline`` (a ``time.monotonic()`` value).
    """
    names = {job.name for job in jobs}
    waiting = {job.name: job for job in jobs}
    running: dict[str, tuple[Job, float]] = {}
    outcomes: dict[str, JobResult] = {}
    done: queue.Queue[JobResult] = queue.Queue()

    def work(job: Job, started: float) -> None:
        try:
            value = job.call()
            outcome = JobResult(job.name, "ok", value=value)
        except Skip as exc:
            outcome = JobResult(job.name, "skipped", str(exc))
        except Exception as exc:  # a plugin's failure is a finding about the run, not a crash
            outcome = JobResult(job.name, "failed", describe_error(exc), error=exc)
        outcome.ms = round((time.monotonic() - started) * 1000)
        done.put(outcome)

    def start_ready() -> None:
        for name, job in list(waiting.items()):
            if all(r in outcomes or r not in names for r in job.requires):
                del waiting[name]
                started = time.monotonic()
                running[name] = (job, started)
                threading.Thread(
                    target=work, args=(job, started), name=f"doctor:{name}", daemon=True
                ).start()

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
