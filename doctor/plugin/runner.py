"""One bounded runner for every rule: a diagnosis's, a checkup's and preflight's."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import partial

from doctor.bounded import Job, run_in_turn
from doctor.plugin.rule import Code, Rule, RuleContext, completed
from doctor.report.document import Finding, ProbeRun

RULE_TIMEOUT = 2.0  # seconds a rule may take


def run_rules(
    rules: Sequence[Rule],
    codes: Mapping[str, Code],
    ctx: RuleContext,
    deadline: float,
) -> tuple[list[Finding], list[ProbeRun]]:
    """Every rule of ``rules`` for ``ctx``, in turn, each within RULE_TIMEOUT: the findings,
    titled from their codes' registrations, and a run for each rule that could not check."""
    jobs = [Job(f"rule:{rule.name}", partial(_findings, rule, ctx), RULE_TIMEOUT) for rule in rules]
    outcomes = run_in_turn(jobs, max(deadline, time.monotonic() + 0.5))
    findings: list[Finding] = []
    runs: list[ProbeRun] = []
    for name, outcome in outcomes.items():
        if outcome.status != "ok":
            runs.append(
                ProbeRun(name, outcome.status, f"could not check: {outcome.detail}", outcome.ms)
            )
            continue
        unregistered = sorted({f.code for f in outcome.value if f.code not in codes})
        if unregistered:
            runs.append(
                ProbeRun(
                    name,
                    "failed",
                    f"reported code(s) no plugin registers: {', '.join(unregistered)}",
                    outcome.ms,
                )
            )
        findings += [completed(f, codes[f.code]) for f in outcome.value if f.code in codes]
    return findings, runs


def _findings(rule: Rule, ctx: RuleContext) -> list[Finding]:
    return list(rule.check(ctx))
