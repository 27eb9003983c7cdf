"""Hook specifications: how a plugin adds probes, rules and cause codes to docker-doctor.

A plugin is any importable module (or object) that implements one or more of the hooks
below, each marked with :data:`hookimpl`, and announces itself in the ``docker_doctor``
entry-point group of its package::

    [project.entry-points.docker_doctor]
    my_checks = "my_package.checks"

docker-doctor's own probes and rules are registered exactly this way (see its
``pyproject.toml``), so a third-party plugin has the same powers as a built-in one.  Import
what a plugin needs from :mod:`doctor.plugin`, the one module of the plugin API.

The three kinds of contribution follow the architecture of a run:

* a **probe** reads raw artifacts from the host (Engine API JSON, command output, files
  under ``/proc``) into the snapshot.  Probes run concurrently, each under its own timeout;
  one that raises or overruns is reported as "could not check".
* a **rule** is a small pure function over the parsed facts and the path of the target.  It
  yields findings with a cause code, evidence and a fix, and never touches the system, so it
  gives the same answer on a live host and on a snapshot.
* a **code** is a cause code's registration: its title, meaning, proof and fix, which every
  finding of it, ``docker-doctor explain CODE``, SARIF output and the pre-flight waiver file
  use.  A rule may report only registered codes.

A hook that raises while docker-doctor collects the contributions, or an implementation
of a hook that is not specified here (a misspelt name), costs only that plugin: it is listed
among the probes of the report as "could not load".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from doctor.plugin.probe import Probe
    from doctor.plugin.rule import Code, Rule

PROJECT = "docker_doctor"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Mark a function of your plugin as the implementation of a hook below.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def docker_doctor_probes() -> Sequence[Probe]:
    """Return the probes this plugin contributes.

    Each :class:`~doctor.plugin.Probe` writes its artifacts through its context
    (``ctx.put(key, data)``).  Give artifact keys a prefix of your own (``"myplugin/..."``)
    so they cannot collide with another plugin's; a probe that reads another's artifacts
    names it in ``requires``. A container that changed under the probe (removed, stopped)
    is a race, not an error: ``ctx.could_not_check(container, why)`` names it in the report.

    :return: the probes, in any order.
    Called once per run, when the plugins are loaded, before any probe starts.
    """


@hookspec
def docker_doctor_rules() -> Sequence[Rule]:
    """Return the rules this plugin contributes.

    Each :class:`~doctor.plugin.Rule` lists the cause codes it can report, so that
    ``docker-doctor explain CODE`` can say what detects a code.  A rule must not perform I/O:
    it reads ``ctx.facts``, ``ctx.target``, ``ctx.path`` and ``ctx.seen`` only (a plugin's own
    probe's artifacts, raw, are in ``ctx.facts.artifacts``).  Its findings are built with
    :func:`~doctor.plugin.finding`.

    :return: the rules, in any order.
    Called once per run, when the plugins are loaded.
    """


@hookspec
def docker_doctor_codes() -> Mapping[str, Code]:
    """Return the cause codes this plugin's rules report: name -> :class:`~doctor.plugin.Code`.

    Names are UPPER_SNAKE_CASE and a contract (scripts match on them): add, never rename.
    A name another plugin registered already (the built-ins first) is not taken, and the
    conflict is reported.

    :return: the codes, by name.
    Called once per run, when the plugins are loaded, before the rules are asked.
    """
