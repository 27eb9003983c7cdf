"""JUnit XML, for CI test views: a test case per service (and per file), failed by its findings."""

from __future__ import annotations

from typing import TextIO
from xml.etree import ElementTree as ET

from doctor.report.document import Report
from doctor.report.inert import inert  # XML 1.0 has no place for control characters


def to_junit(report: Report, fail_on: str = "error") -> ET.Element:
    failing = ("error", "warning") if fail_on == "warning" else ("error",)
    suites = ET.Element("testsuites", name="docker-doctor preflight")
    suite = ET.SubElement(suites, "testsuite", name=report.target.input or "compose")
    failures = 0
    names = [line.hop for line in report.path]
    # Findings about no listed line (a network, the host) go to one "project" case.
    rest = [
        f for f in report.findings if f.hop not in names and not (f.hop == "file" and names[:1])
    ]
    cases = [
        (
            name,
            [f for f in report.findings if f.hop == name or (f.hop == "file" and name == names[0])],
        )
        for name in names
    ] + ([("project", rest)] if rest else [])
    for name, own in cases:
        case = ET.SubElement(
            suite, "testcase", classname="docker-doctor.preflight.check", name=name
        )
        for f in own:
            where = f" ({f.location.file}:{f.location.line})" if f.location else ""
            if f.severity in failing:
                failures += 1
                failure = ET.SubElement(
                    case, "failure", message=inert(f"{f.code}{where}: {f.title}"), type=f.code
                )
                lines = [f.explanation, f"Fix: {f.fix.summary}", *f.fix.commands]
                failure.text = "\n".join(map(inert, lines)) + "\n"
            else:
                out = ET.SubElement(case, "system-out")
                out.text = inert(f"{f.code} ({f.severity}){where}: {f.explanation}")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    return suites


def render(report: Report, out: TextIO, fail_on: str = "error") -> None:
    out.write(
        ET.tostring(to_junit(report, fail_on), encoding="unicode", xml_declaration=True) + "\n"
    )
