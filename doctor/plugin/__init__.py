"""The plugin API: everything a plugin author imports, from this one module.

    from doctor.plugin import Code, Evidence, Fix, Rule, RuleContext, finding, hookimpl

    @hookimpl
    def docker_doctor_codes():
        return {"MY_PROXY_DOWN": Code("The corporate proxy does not answer", "...", "...", "...")}

    @hookimpl
    def docker_doctor_rules():
        return [Rule("my-proxy-down", ("MY_PROXY_DOWN",), my_proxy_down)]

The hooks are specified, one by one, in :mod:`doctor.plugin.hookspecs`; the facts a rule
reads are typed in :mod:`doctor.facts.model`; what else a rule is given (the path and its hop
names, what live probes saw) is named here too.  Each name loads its module when first used,
so that importing a code catalogue does not import the probes' machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doctor.bounded import Skip
    from doctor.facts.dns import FALLBACK_RESOLVERS, Provenance, provenance, stale_resolvers
    from doctor.firewall.iptables import IptablesRuleset
    from doctor.firewall.model import Decision, FirewallRule, Packet
    from doctor.firewall.walk import walk
    from doctor.live.connect import DnsAnswer, Observation, Seen
    from doctor.path.hops import FILTERING_HOPS, HopName, NetworkPath
    from doctor.path.names import Place
    from doctor.plugin.hookspecs import hookimpl
    from doctor.plugin.probe import Probe, ProbeContext
    from doctor.plugin.rule import CLIENTS, ENGINE_API, Code, Rule, RuleContext, finding
    from doctor.preflight.compose import Port, Project, Service, Where
    from doctor.report.document import Evidence, Finding, Fix, Location, Severity

_WHERE = {
    "FALLBACK_RESOLVERS": "doctor.facts.dns",
    "Provenance": "doctor.facts.dns",
    "provenance": "doctor.facts.dns",
    "stale_resolvers": "doctor.facts.dns",
    "IptablesRuleset": "doctor.firewall.iptables",
    "Decision": "doctor.firewall.model",
    "FirewallRule": "doctor.firewall.model",
    "Packet": "doctor.firewall.model",
    "walk": "doctor.firewall.walk",
    "DnsAnswer": "doctor.live.connect",
    "Observation": "doctor.live.connect",
    "Seen": "doctor.live.connect",
    "FILTERING_HOPS": "doctor.path.hops",
    "HopName": "doctor.path.hops",
    "NetworkPath": "doctor.path.hops",
    "Place": "doctor.path.names",
    "hookimpl": "doctor.plugin.hookspecs",
    "Probe": "doctor.plugin.probe",
    "ProbeContext": "doctor.plugin.probe",
    "CLIENTS": "doctor.plugin.rule",
    "ENGINE_API": "doctor.plugin.rule",
    "Code": "doctor.plugin.rule",
    "Rule": "doctor.plugin.rule",
    "RuleContext": "doctor.plugin.rule",
    "finding": "doctor.plugin.rule",
    "Skip": "doctor.bounded",
    "Port": "doctor.preflight.compose",
    "Project": "doctor.preflight.compose",
    "Service": "doctor.preflight.compose",
    "Where": "doctor.preflight.compose",
    "Evidence": "doctor.report.document",
    "Finding": "doctor.report.document",
    "Fix": "doctor.report.document",
    "Location": "doctor.report.document",
    "Severity": "doctor.report.document",
}
__all__ = [
    "CLIENTS",
    "ENGINE_API",
    "FALLBACK_RESOLVERS",
    "FILTERING_HOPS",
    "Code",
    "Decision",
    "DnsAnswer",
    "Evidence",
    "Finding",
    "FirewallRule",
    "Fix",
    "HopName",
    "IptablesRuleset",
    "Location",
    "NetworkPath",
    "Observation",
    "Packet",
    "Place",
    "Port",
    "Probe",
    "ProbeContext",
    "Project",
    "Provenance",
    "Rule",
    "RuleContext",
    "Seen",
    "Service",
    "Severity",
    "Skip",
    "Where",
    "finding",
    "hookimpl",
    "provenance",
    "stale_resolvers",
    "walk",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'doctor.plugin' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
