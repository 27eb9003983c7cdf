"""What a plugin contributes (probes, rules) and how docker-doctor finds them."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from doctor.collect.engine_api import Endpoint
from doctor.plugin import hookspecs
from doctor.plugin.runner import Skip, describe_error
from doctor.report.document import Finding, ProbeRun
from doctor.snapshot.store import Snapshot

if TYPE_CHECKING:
    from doctor.facts import Facts
    from doctor.live.connect import Seen
    from doctor.path.host import Path
    from doctor.path.target import Target
    from doctor.preflight.compose import Project

__all__ = ["Probe", "ProbeContext", "Rule", "RuleContext", "Skip", "Plugins", "load_plugins"]


@dataclass
class ProbeContext:
    """What a probe gets: somewhere to put artifacts, and what earlier probes read."""

    snapshot: Snapshot  # artifacts of the probes this one ``requires``, once they ended
    deadline: float  # time.monotonic() by which this probe must be done
    endpoint: Endpoint  # the Docker Engine to ask (doctor.dockerapi.connect(ctx.endpoint, ...))
    thorough: bool = False  # for a support bundle: gather more (all containers' logs), not only what a diagnosis needs
    platform: str = "linux"  # doctor.platforms.local_guess: where the engine runs, before anything is read
    is_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    artifacts: dict[str, bytes] = field(default_factory=dict)

    def put(self, key: str, data: bytes | str | Any) -> None:
        if isinstance(data, str):
            data = data.encode()
        elif not isinstance(data, bytes):
            data = json.dumps(data, sort_keys=True).encode()
        self.artifacts[key] = data

    def remaining(self) -> float:
        return max(0.05, self.deadline - time.monotonic())

    def running_containers(self) -> list[tuple[dict[str, Any], int]]:
        """The running containers the engine probe listed, with their pids (for a probe that
        ``requires`` "engine"); Skip when the engine probe did not answer."""
        from doctor.snapshot import artifacts

        containers = self.snapshot.json(artifacts.CONTAINERS)
        if containers is None:
            raise Skip("no container list (the engine probe did not answer)")
        return [(c, c["State"]["Pid"]) for c in containers
                if (c.get("State") or {}).get("Running") and (c.get("State") or {}).get("Pid")]

    def need_linux_host(self, what: str, rootless: bool = False) -> None:
        """Skip, saying why, when this host's ``what`` cannot show the engine's containers
        (``rootless``: a rootless engine's are visible)."""
        from doctor.collect.platforms import skip_reason

        reason = skip_reason(self.platform, what, rootless)  # type: ignore[arg-type]
        if reason:
            raise Skip(reason)

    def need_root(self, what: str) -> None:
        if not self.is_root:
            raise Skip(f"needs root to {what}")

    def run(self, argv: Sequence[str]) -> str:
        """Run a command within this probe's time; its stdout, or an error with stderr."""
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.remaining())
        except FileNotFoundError:
            raise Skip(f"{argv[0]} is not installed") from None
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[:200]}")
        return done.stdout


@dataclass(frozen=True)
class Probe:
    """Reads raw artifacts from the host into the snapshot."""

    name: str
    collect: Callable[[ProbeContext], None]
    timeout: float = 3.0
    requires: tuple[str, ...] = ()  # probes whose artifacts this one reads


@dataclass(frozen=True)
class RuleContext:
    facts: Facts
    target: Target
    path: Path
    seen: Seen | None = None  # what live probes saw; None when nothing was sent
    compose: Project | None = None  # preflight: the compose project being checked


CLIENTS = ("host", "external", "container")  # "compose": pre-flight checks of a compose file


@dataclass(frozen=True)
class Rule:
    """A pure function from facts and the path to findings.

    ``clients`` says which clients the rule reasons about: a rule about published
    ports (``host``, ``external``) has nothing to say about container-to-container
    traffic (``container``: ``--from CONTAINER``), and the other way round.
    """

    name: str
    codes: tuple[str, ...]
    check: Callable[[RuleContext], Iterable[Finding]]
    clients: tuple[str, ...] = CLIENTS


@dataclass
class Plugins:
    probes: list[Probe]
    rules: list[Rule]
    failures: list[ProbeRun]  # plugins that could not be loaded or asked


def _plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins() -> Plugins:
    """Every plugin in the ``docker_doctor`` entry-point group, built-ins included."""
    pm = _plugin_manager()
    failures = []
    for ep in entry_points(group=hookspecs.PROJECT):
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:
            failures.append(ProbeRun(f"plugin:{ep.name}", "failed", f"cannot load: {describe_error(exc)}", 0))
    probes: list[Probe] = _ask(pm, "docker_doctor_probes", failures)
    rules: list[Rule] = _ask(pm, "docker_doctor_rules", failures)
    return Plugins(probes, rules, failures)


def _ask(pm: pluggy.PluginManager, hook: str, failures: list[ProbeRun]) -> list[Any]:
    # Each implementation is called on its own so that one plugin's exception costs
    # only that plugin's contribution (a plain hook call would abort on the first).
    answers: list[Any] = []
    for impl in getattr(pm.hook, hook).get_hookimpls():
        try:
            answers.extend(impl.function() or ())
        except Exception as exc:
            failures.append(ProbeRun(f"plugin:{impl.plugin_name}", "failed", f"{hook}: {describe_error(exc)}", 0))
    return answers
