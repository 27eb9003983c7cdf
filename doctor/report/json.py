"""The report as JSON (docker-doctor/report/v1; schema in doctor/report/schema/report-v1.json)."""

from __future__ import annotations

import json
from typing import TextIO

from doctor.report.document import Report


def render(report: Report, out: TextIO) -> None:
    json.dump(report.to_dict(), out, indent=2, ensure_ascii=False)
    out.write("\n")
