"""A probe: what a plugin reads from the host into the snapshot, and what it is given to do it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from msgspec import Struct, field

from doctor.bounded import Skip
from doctor.collect import early
from doctor.collect.engine_api import Endpoint
from doctor.collect.platforms import skip_reason
from doctor.collect.scope import Question
from doctor.facts.platform import Kind
from doctor.snapshot import artifacts
from doctor.snapshot.store import Snapshot


class ProbeContext(Struct):
    """What a probe gets: somewhere to put artifacts, and what earlier probes read."""

    snapshot: Snapshot  # artifacts of the probes this one ``requires``, once they ended
    deadline: float  # time.monotonic() by which this probe must be done
    #: the engine to ask: doctor.collect.engine_api.connect(ctx.endpoint, timeout)
    endpoint: Endpoint
    #: a support bundle's: gather more (all containers' logs) than a diagnosis
    thorough: bool = False
    #: where the engine runs, as known before anything is read (local_guess)
    platform: Kind = "linux"
    is_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    #: what the diagnosis asks, to read only the containers it can involve; None: read all
    question: Question | None = None
    artifacts: dict[str, bytes] = field(default_factory=dict)
    probe: str = ""  # the name of the probe this context is for
    unchecked: list[dict[str, str]] = field(default_factory=list)  # see could_not_check

    def put(self, key: str, data: bytes | str | Any) -> None:
        if isinstance(data, str):
            data = data.encode()
        elif not isinstance(data, bytes):
            data = json.dumps(data, sort_keys=True).encode()
        self.artifacts[key] = data

    def could_not_check(self, container: Mapping[str, Any], why: str) -> None:
        """Record that ``container`` (an inspect object or a list summary) changed under this
        probe, ``why``: the report names it; the rest of the run goes on."""
        name = container.get("Name") or (container.get("Names") or [""])[0]
        self.unchecked.append(
            {"container": str(name).lstrip("/") or container["Id"][:12], "why": why}
        )
        self.put(artifacts.unchecked(self.probe), self.unchecked)

    def remaining(self) -> float:
        return max(0.05, self.deadline - time.monotonic())

    def running_containers(self) -> list[tuple[dict[str, Any], int]]:
        """The running containers the engine probe read, with their pids (for a probe that
        ``requires`` "engine"): those the question can involve (doctor.collect.scope); Skip
        when the engine probe did not answer."""
        containers = self.snapshot.json(artifacts.CONTAINERS)
        if containers is None:
            raise Skip("no container list (the engine probe did not answer)")
        return [
            (c, c["State"]["Pid"])
            for c in containers
            if (c.get("State") or {}).get("Running") and (c.get("State") or {}).get("Pid")
        ]

    def need_linux_host(self, what: str, rootless: bool = False) -> None:
        """Skip, saying why, when this host's ``what`` cannot show the engine's containers
        (``rootless``: a rootless engine's are visible)."""
        reason = skip_reason(self.platform, what, rootless)
        if reason:
            raise Skip(reason)

    def need_root(self, what: str) -> None:
        if not self.is_root:
            raise Skip(f"needs root to {what}")

    def run(self, argv: Sequence[str]) -> str:
        """Run a command within this probe's time; its stdout, or an error with stderr."""
        ran = early.take(tuple(argv), self.remaining())  # started at the beginning of the run
        if ran is None:
            try:
                done = subprocess.run(
                    argv, capture_output=True, text=True, errors="replace", timeout=self.remaining()
                )
            except FileNotFoundError:
                raise Skip(f"{argv[0]} is not installed") from None
            ran = (done.returncode, done.stdout, done.stderr)
        status, stdout, stderr = ran
        if status != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {status}: {stderr.strip()[:200]}")
        return stdout


class Probe(Struct, frozen=True):
    """Reads raw artifacts from the host into the snapshot."""

    name: str
    collect: Callable[[ProbeContext], None]
    timeout: float = 3.0
    requires: tuple[str, ...] = ()  # probes whose artifacts this one reads
