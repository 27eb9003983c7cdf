"""Misbehaving third-party plugins, loaded through entry points by tests/test_plugins.py."""

import time

from doctor.plugin import Probe, Rule, hookimpl


class RaisesWhenAsked:
    @hookimpl
    def docker_doctor_probes(self):
        raise RuntimeError("plugin bug")


def _hang(ctx):
    time.sleep(30)


def _crash(ctx):
    raise ValueError("probe bug")


def _rule_hangs(ctx):
    time.sleep(30)
    return []


def _rule_crashes(ctx):
    raise KeyError("rule bug")


class BadProbesAndRules:
    @hookimpl
    def docker_doctor_probes(self):
        return [Probe("hangs", _hang, timeout=0.3), Probe("crashes", _crash)]

    @hookimpl
    def docker_doctor_rules(self):
        return [
            Rule("hangs", ("NOTHING_ON_PORT",), _rule_hangs),
            Rule("crashes", ("NOTHING_ON_PORT",), _rule_crashes),
        ]


raises_when_asked = RaisesWhenAsked()
bad_probes_and_rules = BadProbesAndRules()
