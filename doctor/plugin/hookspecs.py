"""Hook specifications: how a plugin adds probes and rules to docker-doctor.

A plugin is any importable module that implements one or more of the hooks below,
marked with :data:`hookimpl`, and announces itself in the ``docker_doctor``
entry-point group of its package::

    [project.entry-points.docker_doctor]
    my_checks = "my_package.checks"

docker-doctor's own probes and rules are registered exactly this way (see its
``pyproject.toml``), so a third-party plugin has the same powers as a built-in one.

The two kinds of contribution follow the architecture of a run:

* a **probe** reads raw artifacts from the host (Engine API JSON, command output,
  files under ``/proc``) into the snapshot.  Probes run concurrently, each under its
  own timeout; one that raises or overruns is reported as "could not check".
* a **rule** is a small pure function over the parsed facts and the path of the
  target.  It yields findings with a cause code, evidence and a fix, and never
  touches the system, so it gives the same answer on a live host and on a snapshot.

A hook that raises while docker-doctor collects the contributions costs only that
plugin: its failure is listed among the probes of the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from doctor.plugin.manager import Probe, Rule

PROJECT = "docker_doctor"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Mark a function of your plugin as the implementation of a hook below.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def docker_doctor_probes() -> Sequence[Probe]:
    """Return the probes this plugin contributes.

    Each :class:`~doctor.plugins.Probe` names the artifacts it writes through its
    context (``ctx.put(key, data)``).  Give artifact keys a prefix of your own
    (``"myplugin/..."``) so they cannot collide with another plugin's.

    Called once per run, before any probe starts.
    """


@hookspec
def docker_doctor_rules() -> Sequence[Rule]:
    """Return the rules this plugin contributes.

    Each :class:`~doctor.plugins.Rule` lists the cause codes it can report, so that
    ``docker-doctor explain CODE`` can say what detects a code.  A rule must not
    perform I/O: it reads ``ctx.facts`` and ``ctx.path`` only.

    Called once per run, after the snapshot is complete.
    """
