"""Reading a JSON report in tests: its first finding, its hops, a finding's evidence."""

from __future__ import annotations

from typing import Any

Report = dict[str, Any]


def first(report: Report) -> dict[str, Any]:
    """The first (most likely) finding, or {} when there is none."""
    return report["findings"][0] if report["findings"] else {}


def hops(report: Report) -> dict[str, str]:
    """Hop name -> status."""
    return {h["hop"]: h["status"] for h in report["path"]}


def evidence(finding: dict[str, Any]) -> dict[str, Any]:
    """A finding's evidence, fact -> value."""
    return {e["fact"]: e["value"] for e in finding["evidence"]}


def outcome(status: int, report: Report) -> tuple[str, str | None, str | None, int]:
    """(verdict, first finding's code, its hop, exit status): what a staged case asserts first."""
    found = first(report)
    return report["verdict"], found.get("code"), found.get("hop"), status
