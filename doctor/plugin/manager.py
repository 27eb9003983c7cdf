"""How docker-doctor finds its plugins and collects what they contribute: probes, rules, codes.

Every plugin, built-ins included, is found through the ``docker_doctor`` entry-point group.
A plugin that cannot be loaded, implements a hook that does not exist (a misspelt name),
raises while asked, or registers a code another plugin has, costs only its own
contribution and is listed among the probes of every report as "could not load".
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

import pluggy
from msgspec import Struct

from doctor.bounded import describe_error
from doctor.plugin import hookspecs
from doctor.plugin.probe import Probe
from doctor.plugin.rule import Code, Rule
from doctor.report.document import ProbeRun


class Plugins(Struct):
    probes: list[Probe]
    rules: list[Rule]
    codes: dict[str, Code]  # every registered cause code
    failures: list[ProbeRun]  # plugins that could not be loaded or asked

    def detectors(self, code: str) -> list[str]:
        """The rules that may report ``code``."""
        return [rule.name for rule in self.rules if code in rule.codes]


def load_plugins() -> Plugins:
    """Every plugin in the ``docker_doctor`` entry-point group, built-ins included."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    failures: list[ProbeRun] = []
    for ep in entry_points(group=hookspecs.PROJECT):
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:
            failures.append(_failure(ep.name, f"cannot load: {describe_error(exc)}"))
    _drop_unknown_hooks(pm, failures)
    codes = _codes(pm, failures)
    probes: list[Probe] = _ask(pm, "docker_doctor_probes", failures)
    rules: list[Rule] = _ask(pm, "docker_doctor_rules", failures)
    for rule in rules:
        unregistered = [code for code in rule.codes if code not in codes]
        if unregistered:
            failures.append(
                _failure(
                    rule.name,
                    f"rule {rule.name} declares code(s) no plugin registers: "
                    f"{', '.join(unregistered)}",
                    kind="rule",
                )
            )
    return Plugins(probes, rules, codes, failures)


def _failure(name: str, detail: str, kind: str = "plugin") -> ProbeRun:
    return ProbeRun(f"{kind}:{name}", "failed", detail, 0)


def _drop_unknown_hooks(pm: pluggy.PluginManager, failures: list[ProbeRun]) -> None:
    """pluggy's check_pending, one plugin at a time: a hook implementation with no such hook
    (``docker_doctor_rule`` for ``docker_doctor_rules``) would otherwise be silently ignored."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or str(exc.plugin)
            pm.unregister(exc.plugin)
            failures.append(_failure(name, f"could not load: {exc}"))


def _codes(pm: pluggy.PluginManager, failures: list[ProbeRun]) -> dict[str, Code]:
    codes: dict[str, Code] = {}
    owners: dict[str, str] = {}
    for impl in sorted(
        pm.hook.docker_doctor_codes.get_hookimpls(), key=_not_builtin
    ):  # built-ins first
        answer: Mapping[str, Code] = _call(impl, "docker_doctor_codes", failures) or {}
        for name, code in answer.items():
            if name in codes:  # codes are a contract: nobody redefines another's
                failures.append(
                    _failure(
                        impl.plugin_name, f"code {name} is registered by {owners[name]} already"
                    )
                )
                continue
            codes[name], owners[name] = code, impl.plugin_name
    return codes


def _not_builtin(impl: pluggy.HookImpl) -> bool:
    return not getattr(impl.plugin, "__name__", "").startswith("doctor.")


def _ask(pm: pluggy.PluginManager, hook: str, failures: list[ProbeRun]) -> list[Any]:
    answers: list[Any] = []
    for impl in getattr(pm.hook, hook).get_hookimpls():
        answers.extend(_call(impl, hook, failures) or ())
    return answers


def _call(impl: pluggy.HookImpl, hook: str, failures: list[ProbeRun]) -> Any:
    # Each implementation is called on its own so that one plugin's exception costs only
    # that plugin's contribution (a plain hook call would abort on the first).
    try:
        return impl.function()
    except Exception as exc:
        failures.append(_failure(impl.plugin_name, f"{hook}: {describe_error(exc)}"))
        return None
