"""SARIF 2.1.0, for code-scanning views: one result per finding, at its file and line."""

from __future__ import annotations

import json
from typing import Any, TextIO

from doctor import __version__
from doctor.report.codes import CODES
from doctor.report.document import Report

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def to_sarif(report: Report) -> dict[str, Any]:
    codes = sorted({f.code for f in report.findings})
    rules = [{"id": code, "name": "".join(w.title() for w in code.split("_")),
              "shortDescription": {"text": CODES[code].title}, "fullDescription": {"text": CODES[code].meaning},
              "help": {"text": CODES[code].fix}} for code in codes]
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.code, "ruleIndex": codes.index(f.code), "level": LEVELS[f.severity],
            "message": {"text": f"{f.explanation} Fix: {f.fix.summary}"},
        }
        if f.location:
            result["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": f.location.file},
                                                         "region": {"startLine": f.location.line}}}]
        results.append(result)
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "docker-doctor", "version": __version__, "semanticVersion": __version__,
                            "rules": rules}},
        "results": results,
    }]}


def render(report: Report, out: TextIO) -> None:
    json.dump(to_sarif(report), out, indent=2)
    out.write("\n")
