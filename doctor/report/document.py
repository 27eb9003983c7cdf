"""The report: what a diagnosis says, in the shape of the JSON report (schema v1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from msgspec import Struct, field, to_builtins
from msgspec.structs import force_setattr

SCHEMA_ID = "docker-doctor/report/v1"

Severity = Literal["error", "warning", "info"]
HopStatus = Literal["ok", "broken", "unknown", "skipped"]
ProbeStatus = Literal["ok", "failed", "skipped", "timeout"]
Verdict = Literal["reachable", "unreachable", "ambiguous", "undetermined"]

SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


class Evidence(Struct, frozen=True):
    """One fact a finding rests on, and where it was read."""

    fact: str
    value: Any
    source: str


class Fix(Struct, frozen=True):
    summary: str
    commands: Sequence[str] = ()

    def __post_init__(self) -> None:
        force_setattr(self, "commands", tuple(self.commands))  # frozen all the way down


class Location(Struct, frozen=True):
    """Where in a file a finding points (compose pre-flight checks)."""

    file: str
    line: int


class Finding(Struct, frozen=True):
    code: str
    severity: Severity
    confidence: float
    title: str
    explanation: str
    hop: str
    affects: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    fix: Fix
    location: Location | None = None


class Hop(Struct, frozen=True):
    """One step of the path a packet takes, judged from facts and, if allowed, live."""

    hop: str
    status: HopStatus
    detail: str
    static: HopStatus | None = None  # what the facts alone said, when a live probe spoke too
    live: str | None = None  # the live probe's observation at this hop


class ProbeRun(Struct, frozen=True):
    name: str
    status: ProbeStatus
    detail: str
    ms: int


def unread_runs(unparsable: Mapping[str, str], unchecked: Mapping[str, str]) -> list[ProbeRun]:
    """An entry for each artifact that was read but could not be parsed (its facts left out),
    named ``parse:ARTIFACT``, and for each container that changed while the run read it,
    named ``container:NAME``."""
    return [
        *(
            ProbeRun(f"parse:{key}", "failed", f"unreadable, left out: {why}", 0)
            for key, why in unparsable.items()
        ),
        *(
            ProbeRun(f"container:{name}", "skipped", f"not checked: {why}", 0)
            for name, why in unchecked.items()
        ),
    ]


class TargetSummary(Struct, frozen=True):
    """The target as the report states it (its "target" object)."""

    input: str
    kind: Literal["port", "container", "host", "compose", "forward"]
    host: str | None
    port: int | None
    protocol: str
    container: str | None
    client: str | None = None  # --client ADDRESS: an outside client's own address


class Report(Struct):
    target: TargetSummary
    vantage: str
    verdict: Verdict
    findings: list[Finding]
    path: list[Hop]
    probes: list[ProbeRun]
    doctor: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = to_builtins(self)
        if data["target"]["client"] is None:
            del data["target"]["client"]
        for hop in data["path"]:
            for optional in ("static", "live"):
                if hop[optional] is None:
                    del hop[optional]
        return {"schema": SCHEMA_ID, **data}
