"""A rule: a small pure function from facts and the path to findings; and a cause code."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from msgspec import Struct
from msgspec.structs import replace

from doctor.report.document import Evidence, Finding, Fix, Location, Severity

if TYPE_CHECKING:
    from doctor.facts.model import Container, Facts
    from doctor.live.connect import Seen
    from doctor.path.hops import NetworkPath
    from doctor.path.target import Target
    from doctor.preflight.compose import Project

#: Who a rule reasons about: a client on this host, on another machine, in a container;
#: "compose": pre-flight checks of a compose file.
CLIENTS = ("host", "external", "container")
#: The source of evidence read from the Engine API (``docker inspect``, ``docker network inspect``).
ENGINE_API = "Engine API"


class RuleContext(Struct, frozen=True):
    """What a rule is given: the facts, the target and its path, what live probes saw."""

    facts: Facts
    target: Target
    path: NetworkPath
    seen: Seen | None = None  # what live probes saw; None when nothing was sent
    compose: Project | None = None  # preflight: the compose project being checked

    def broken(self, hop: str) -> bool:
        """Whether ``hop`` is on this path and broken there."""
        found = self.path.hop(hop)
        return found is not None and found.status == "broken"

    @property
    def sender(self) -> Container:
        """With --from: the container whose network namespace the packets leave (the source,
        or X for ``--network container:X``), whose addresses, resolvers and listeners count."""
        assert self.target.source is not None, "only for --from targets"
        return self.facts.netns_owner(self.target.source)

    @property
    def asked_name(self) -> str:
        """The name the client asks for: the target's host part as the source resolves it."""
        r = self.target.resolution
        return (r.name if r else self.target.spec.host) or "localhost"


class Rule(Struct, frozen=True):
    """A pure function from facts and the path to findings.

    ``codes`` are the cause codes it may report (each registered by some plugin, see
    ``docker_doctor_codes``).  ``clients`` says which clients the rule reasons about: a rule
    about published ports (``host``, ``external``) has nothing to say about
    container-to-container traffic (``container``: ``--from CONTAINER``), and the other way round.
    """

    name: str
    codes: tuple[str, ...]
    check: Callable[[RuleContext], Iterable[Finding]]
    clients: tuple[str, ...] = CLIENTS


class Code(Struct, frozen=True):
    """A cause code's registration: the words every finding of it carries, and ``explain``'s."""

    title: str
    meaning: str  # the default explanation of a finding
    proof: str  # the facts that prove it
    fix: str


def finding(
    code: str,
    *,
    severity: Severity,
    confidence: float,
    hop: str,
    evidence: Sequence[Evidence],
    fix: Fix,
    explanation: str | None = None,
    affects: tuple[str, ...] = ("host", "external"),
    location: Location | None = None,
) -> Finding:
    """A finding of ``code``.  Its title, and unless given its explanation, come from the
    code's registration when the rule's findings are collected (see :func:`completed`)."""
    return Finding(
        code,
        severity,
        confidence,
        "",
        explanation or "",
        hop,
        affects,
        tuple(evidence),
        fix,
        location,
    )


def completed(found: Finding, code: Code) -> Finding:
    """``found`` with the title and, when the rule gave none, the explanation of its code."""
    return replace(found, title=code.title, explanation=found.explanation or code.meaning)
