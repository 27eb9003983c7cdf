"""Run docker-doctor as a user does, and hold every JSON report to the shipped schema.

The command is the installed one, never the checkout: the ``docker-doctor`` console
script beside the interpreter running the tests (a wheel installed in that virtual
environment), or whatever ``$DOCKER_DOCTOR_COMMAND`` names (the standalone executable).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema

from tests.support import host_state

COMMAND_ENV = "DOCKER_DOCTOR_COMMAND"


CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def command() -> list[str]:
    """The argv prefix that runs docker-doctor."""
    given = os.environ.get(COMMAND_ENV)
    return shlex.split(given) if given else [str(Path(sys.executable).parent / "docker-doctor")]


def environment(**extra: str) -> dict[str, str]:
    """The environment to run docker-doctor in: the standalone executable gets a clean PATH and
    nothing of a Python installation, as on a host without one."""
    env = dict(os.environ)
    if os.environ.get(COMMAND_ENV):
        env = {k: v for k, v in env.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
        env["PATH"] = CLEAN_PATH
    return {**env, **extra}


def doctor(
    *args: str,
    cwd: Path | str = "/",
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    host_changes: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``docker-doctor ARGS``, finished, its output as text (cwd: / unless a test needs its own).
    The run must leave the host as it found it (tests.support.host_state), unless the test
    itself changes it meanwhile (``host_changes``: a container removed during the run)."""
    with contextlib.nullcontext() if host_changes else host_state.unchanged():
        return subprocess.run(
            [*command(), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            env=environment(**(env or {})),
        )


def signalled(argv: list[str], after: float, signum: int) -> tuple[int, str]:
    """Run ``argv`` and send ``signum`` ``after`` seconds in (unless it ended first): its exit
    status and stderr."""
    with subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
        env=environment(),
        # as a shell starts a foreground command: SIGINT at its default even when this suite
        # runs in the background, where it is ignored and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as process:
        try:
            process.wait(after)
        except subprocess.TimeoutExpired:
            process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def moments(argv: list[str], count: int) -> list[float]:
    """``count`` moments, evenly from when the program runs to when ``argv`` ends (timed once
    here), at which to signal a run of ``argv`` so that the signal meets it on a machine of any
    speed. The interpreter's own start-up (twice the quickest of three ``--version``) is left
    out: a signal there is the interpreter's to answer, before any of the program runs."""
    started = 2 * min(_took([*command(), "--version"]) for _ in range(3))
    ends = max(_took(argv), started)
    return [started + (ends - started) * step / count for step in range(count)]


def _took(argv: list[str]) -> float:
    began = time.monotonic()
    subprocess.run(argv, capture_output=True, timeout=120, cwd="/", env=environment())
    return time.monotonic() - began


@cache
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((files("doctor.report") / "schema" / "report-v1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def run_doctor(*args: str, timeout: float = 60) -> tuple[int, dict[str, Any]]:
    """``docker-doctor ARGS --json``: its exit status and its schema-checked report."""
    done = doctor(*args, "--json", timeout=timeout)
    assert done.returncode in (0, 1), f"exit {done.returncode}: {done.stderr}"
    report = json.loads(done.stdout)
    validator().validate(report)
    return done.returncode, report
