"""Run plugin code concurrently, each call under a timeout, none able to sink the run.

Daemon threads rather than an executor: a hung probe must not keep the interpreter
alive at exit, and Python cannot kill a thread, only stop waiting for it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from doctor.plugin.rule import Code, Rule, RuleContext, completed
from doctor.report.document import Finding, ProbeRun

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
class Outcome:
    name: str
    status: Status
    detail: str = ""
    value: Any = None
    ms: int = 0
    error: BaseException | None = field(default=None, repr=False)


def run_jobs(jobs: list[Job], deadline: float) -> dict[str, Outcome]:
    """Run ``jobs``, each once its ``requires`` have ended (however they ended).

    Returns an outcome for every job by ``deadline`` (a ``time.monotonic()`` value).
    """
    names = {job.name for job in jobs}
    waiting = {job.name: job for job in jobs}
    running: dict[str, tuple[Job, float]] = {}
    outcomes: dict[str, Outcome] = {}
    done: queue.Queue[Outcome] = queue.Queue()

    def work(job: Job, started: float) -> None:
        try:
            value = job.call()
            outcome = Outcome(job.name, "ok", value=value)
        except Skip as exc:
            outcome = Outcome(job.name, "skipped", str(exc))
        except Exception as exc:  # a plugin's failure is a finding about the run, not a crash
            outcome = Outcome(job.name, "failed", describe_error(exc), error=exc)
        outcome.ms = round((time.monotonic() - started) * 1000)
        done.put(outcome)

    def start_ready() -> None:
        for name, job in list(waiting.items()):
            if all(r in outcomes or r not in names for r in job.requires):
                del waiting[name]
                started = time.monotonic()
                running[name] = (job, started)
                threading.Thread(target=work, args=(job, started), name=f"doctor:{name}", daemon=True).start()

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
                    outcomes[name] = Outcome(name, "timeout", f"no answer within {limit:.1f} s",
                                             ms=round((now - started) * 1000))
        else:
            if outcome.name in running:  # not already written off as timed out
                del running[outcome.name]
                outcomes[outcome.name] = outcome
        start_ready()
    for name in waiting:  # unreachable unless requirements form a cycle
        outcomes[name] = Outcome(name, "skipped", "its required probes never finished")
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


RULE_TIMEOUT = 2.0  # seconds a rule may take


def run_rules(rules: Sequence[Rule], codes: Mapping[str, Code], ctx: RuleContext, deadline: float,
              ) -> tuple[list[Finding], list[ProbeRun]]:
    """Every rule of ``rules`` for ``ctx``, concurrently, each within RULE_TIMEOUT: the findings,
    titled from their codes' registrations, and a run for each rule that could not check."""
    jobs = [Job(f"rule:{rule.name}", lambda rule=rule: list(rule.check(ctx)), RULE_TIMEOUT) for rule in rules]
    outcomes = run_jobs(jobs, max(deadline, time.monotonic() + 0.5))
    findings: list[Finding] = []
    runs: list[ProbeRun] = []
    for name, outcome in outcomes.items():
        if outcome.status != "ok":
            runs.append(ProbeRun(name, outcome.status, f"could not check: {outcome.detail}", outcome.ms))
            continue
        unregistered = sorted({f.code for f in outcome.value if f.code not in codes})
        if unregistered:
            runs.append(ProbeRun(name, "failed", f"reported code(s) no plugin registers: {', '.join(unregistered)}",
                                 outcome.ms))
        findings += [completed(f, codes[f.code]) for f in outcome.value if f.code in codes]
    return findings, runs
