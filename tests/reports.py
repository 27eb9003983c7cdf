"""Run the doctor as a user would, and hold every JSON report to the shipped schema."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "doctor" / "schema" / "report-v1.json"


@cache
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def run_doctor(*args: str, timeout: float = 60) -> tuple[int, dict[str, Any]]:
    """``docker-doctor ARGS --json``: its exit status and its schema-checked report."""
    done = subprocess.run([sys.executable, "-m", "doctor", *args, "--json"], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert done.returncode in (0, 1), f"exit {done.returncode}: {done.stderr}"
    report = json.loads(done.stdout)
    validator().validate(report)
    return done.returncode, report
