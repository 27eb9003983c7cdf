"""The plugin API: everything a plugin author imports, from this one module.

    from doctor.plugin import Code, Evidence, Fix, Rule, RuleContext, finding, hookimpl

    @hookimpl
    def docker_doctor_codes():
        return {"MY_PROXY_DOWN": Code("The corporate proxy does not answer", "...", "...", "...")}

    @hookimpl
    def docker_doctor_rules():
        return [Rule("my-proxy-down", ("MY_PROXY_DOWN",), my_proxy_down)]

The hooks are specified, one by one, in :mod:`doctor.plugin.hookspecs`; the facts a rule
reads are typed in :mod:`doctor.facts.model`.  Each name loads its module when first used,
so that importing a code catalogue does not import the probes' machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doctor.plugin.hookspecs import hookimpl
    from doctor.plugin.probe import Probe, ProbeContext
    from doctor.plugin.rule import CLIENTS, Code, Rule, RuleContext, finding
    from doctor.plugin.runner import Skip
    from doctor.report.document import Evidence, Finding, Fix, Location

_WHERE = {
    "hookimpl": "doctor.plugin.hookspecs",
    "Probe": "doctor.plugin.probe", "ProbeContext": "doctor.plugin.probe",
    "CLIENTS": "doctor.plugin.rule", "Code": "doctor.plugin.rule", "Rule": "doctor.plugin.rule",
    "RuleContext": "doctor.plugin.rule", "finding": "doctor.plugin.rule",
    "Skip": "doctor.plugin.runner",
    "Evidence": "doctor.report.document", "Finding": "doctor.report.document", "Fix": "doctor.report.document",
    "Location": "doctor.report.document",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'doctor.plugin' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
