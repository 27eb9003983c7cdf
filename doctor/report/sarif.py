"""SARIF 2.1.0, for code-scanning views: one result per finding, at its file and line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

from doctor import __version__
from doctor.plugin.rule import Code
from doctor.report.document import Report

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def to_sarif(report: Report, registered: Mapping[str, Code]) -> dict[str, Any]:
    """``report`` as SARIF; each code's rule entry from its registration (``registered``)."""
    codes = sorted({f.code for f in report.findings})
    rules = [
        {
            "id": code,
            "name": "".join(w.title() for w in code.split("_")),
            "shortDescription": {"text": registered[code].title},
            "fullDescription": {"text": registered[code].meaning},
            "help": {"text": registered[code].fix},
        }
        for code in codes
    ]
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": codes.index(f.code),
            "level": LEVELS[f.severity],
            "message": {"text": f"{f.explanation} Fix: {f.fix.summary}"},
        }
        if f.location:
            result["locations"] = [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.location.file},
                        "region": {"startLine": f.location.line},
                    }
                }
            ]
        results.append(result)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "docker-doctor",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


def render(report: Report, out: TextIO, registered: Mapping[str, Code]) -> None:
    json.dump(to_sarif(report, registered), out, indent=2)
    out.write("\n")
