"""A plugin that raises or hangs becomes a "could not check" entry, never a crash."""

import time
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from doctor.bounded import Job, Skip, run_in_turn, run_jobs
from doctor.collect.collector import collect
from doctor.collect.engine_api import resolve_endpoint
from doctor.diagnosis.diagnose import Options, diagnose
from doctor.path.target import parse_target
from doctor.plugin import manager as plugins
from doctor.snapshot.store import Snapshot

GROUP = "docker_doctor"


def test_builtins_are_found_through_the_entry_point_group():
    loaded = plugins.load_plugins()
    assert {p.name for p in loaded.probes} >= {
        "engine",
        "host-sockets",
        "container-listeners",
        "iptables",
    }
    assert "APP_BOUND_TO_LOOPBACK" in {code for r in loaded.rules for code in r.codes}
    assert loaded.failures == []


@pytest.fixture
def with_bad_plugins(monkeypatch):
    real = plugins.entry_points(group=GROUP)
    fakes = [
        EntryPoint("raises", "tests.support.fake_plugins:raises_when_asked", GROUP),
        EntryPoint("bad", "tests.support.fake_plugins:bad_probes_and_rules", GROUP),
        EntryPoint("missing", "tests.no_such_module", GROUP),
    ]
    monkeypatch.setattr(plugins, "entry_points", lambda group: [*real, *fakes])


def test_plugins_that_fail_to_load_or_answer_are_listed(with_bad_plugins):
    loaded = plugins.load_plugins()
    failed = {f.name: f.detail for f in loaded.failures}
    assert set(failed) == {"plugin:raises", "plugin:missing"}
    assert "plugin bug" in failed["plugin:raises"]
    assert "engine" in {p.name for p in loaded.probes}  # the built-ins still run


def test_hanging_and_crashing_probes_become_could_not_check(with_bad_plugins):
    loaded = plugins.load_plugins()
    started = time.monotonic()
    snapshot, _ = collect(
        [p for p in loaded.probes if p.name in ("hangs", "crashes", "sysctl")],
        time.monotonic() + 5,
        resolve_endpoint(),
    )
    assert time.monotonic() - started < 2
    status = {p.name: (p.status, p.detail) for p in snapshot.probes}
    assert status["hangs"][0] == "timeout"
    assert status["crashes"] == ("failed", "ValueError: probe bug")
    assert status["sysctl"][0] == "ok"


def test_hanging_and_crashing_rules_become_could_not_check(with_bad_plugins, tmp_path):
    snapshot = Snapshot.read(_example_snapshot())
    started = time.monotonic()
    report = diagnose(
        parse_target("localhost:8080"), Options(live=False), snapshot, plugins.load_plugins()
    )
    assert time.monotonic() - started < 5
    runs = {p.name: p.status for p in report.probes}
    assert runs["rule:hangs"] == "timeout" and runs["rule:crashes"] == "failed"
    assert report.findings  # the built-in rules still spoke


def _example_snapshot():
    return Path(__file__).parent.parent / "fixtures" / "snapshots" / "app-bound-to-loopback"


def test_jobs_wait_for_what_they_require_and_respect_the_deadline():
    order = []
    jobs = [
        Job("b", lambda: order.append("b"), 1, requires=("a",)),
        Job("a", lambda: (time.sleep(0.05), order.append("a")), 1),
        Job("skip", lambda: (_ for _ in ()).throw(Skip("needs root to x")), 1),
        Job("slow", lambda: time.sleep(5), 10),
    ]
    started = time.monotonic()
    outcomes = run_jobs(jobs, time.monotonic() + 0.4)
    assert time.monotonic() - started < 1
    assert order == ["a", "b"]
    assert outcomes["skip"].status == "skipped" and outcomes["skip"].detail == "needs root to x"
    assert outcomes["slow"].status == "timeout"


def test_jobs_in_turn_go_on_past_a_hung_one_and_stop_at_the_deadline():
    ran = []
    jobs = [
        Job("first", lambda: ran.append("first"), 1),
        Job("hangs", lambda: time.sleep(5), 0.2),
        Job("after", lambda: ran.append("after") or "value", 1),
        Job("fails", lambda: 1 / 0, 1),
    ]
    started = time.monotonic()
    outcomes = run_in_turn(jobs, started + 3)
    assert time.monotonic() - started < 1.5
    assert {n: o.status for n, o in outcomes.items()} == {
        "first": "ok",
        "hangs": "timeout",
        "after": "ok",
        "fails": "failed",
    }
    assert ran == ["first", "after"] and outcomes["after"].value == "value"
    late = run_in_turn(
        [Job("hangs", lambda: time.sleep(5), 10), Job("never", lambda: 0, 1)],
        time.monotonic() + 0.2,
    )
    assert (late["hangs"].status, late["never"].detail) == ("timeout", "no time left")
