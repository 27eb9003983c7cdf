"""A third-party plugin with its own probe, rule and code, installed as pip installs one (a
package beside its dist-info, found through the entry-point group): it works end to end, and a
misspelt hook or an unregistered code is said loudly."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.support.command import doctor, validator

HTTPD = ["httpd", "-f", "-h", "/www", "-p"]
PLUGIN = """
from doctor.plugin import Code, Evidence, Fix, Probe, Rule, finding, hookimpl

CODE = "ACME_MOTD_SET"


def read_motd(ctx):
    ctx.put("acme/motd.txt", "maintenance tonight")


def motd_set(ctx):
    motd = ctx.facts.artifacts.get("acme/motd.txt")
    if motd is not None:
        yield finding(CODE, severity="warning", confidence=0.5, hop="host",
                      evidence=[Evidence("acme motd", motd.decode(), "acme/motd.txt")],
                      fix=Fix("Read the message of the day", ["cat /etc/acme-motd"]))


def compose_motd(ctx):
    for service in ctx.compose.services:
        yield finding(CODE, severity="error", confidence=0.5, hop=f"service {service.name}",
                      evidence=[Evidence("service", service.name, "compose file")], fix=Fix("Ask ACME"))


def unregistered(ctx):
    yield finding("ACME_NOBODY_REGISTERED_THIS", severity="error", confidence=0.5, hop="host", evidence=[],
                  fix=Fix("none"))


@hookimpl
def docker_doctor_codes():
    title = "ACME's message of the day is set"
    return {CODE: Code(title, "ACME says something.", "acme/motd.txt", "Read it.")}


@hookimpl
def docker_doctor_probes():
    return [Probe("acme-motd", read_motd)]


@hookimpl
def docker_doctor_rules():
    return [Rule("acme-motd", (CODE,), motd_set, ("host",)),
            Rule("acme-compose-motd", (CODE,), compose_motd, ("compose",)),
            Rule("acme-unregistered", (), unregistered, ("host", "compose"))]
"""
TYPO = """
from doctor.plugin import hookimpl


@hookimpl
def docker_doctor_rule():  # misspelt: docker_doctor_rules
    return []
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A directory as pip leaves an installed plugin, and the environment that puts it on sys.path."""
    where = tmp_path_factory.mktemp("site")
    (where / "acme_doctor.py").write_text(PLUGIN)
    (where / "acme_typo.py").write_text(TYPO)
    info = where / "acme_doctor-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-doctor\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[docker_doctor]\nacme = acme_doctor\nacme_typo = acme_typo\n"
    )
    return {"PYTHONPATH": str(where)}


def probes(report: dict) -> dict[str, dict]:
    return {p["name"]: p for p in report["probes"]}


def test_explain_and_the_code_list_know_the_plugins_code(site):
    done = doctor("explain", "acme_motd_set", "--json", env=site)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["title"], data["detected_by"]) == (
        "ACME's message of the day is set",
        ["acme-motd", "acme-compose-motd"],
    )
    listed = json.loads(doctor("--list-codes", "--json", env=site).stdout)
    assert {
        "code": "ACME_MOTD_SET",
        "title": "ACME's message of the day is set",
        "detected_by": ["acme-motd", "acme-compose-motd"],
    } in listed


def test_a_misspelt_hook_and_an_unregistered_code_are_said_loudly(site, tmp_path):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx\n")
    done = doctor("preflight", str(compose), "--no-live", "--json", env=site, cwd=tmp_path)
    report = json.loads(done.stdout)
    typo = probes(report)["plugin:acme_typo"]
    assert typo["status"] == "failed" and "docker_doctor_rule" in typo["detail"]
    assert (
        probes(report)["rule:acme-unregistered"]["status"] == "failed"
    )  # it declares a code nobody registers


def test_sarif_and_waivers_take_the_plugins_code(site, tmp_path):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx\n  db:\n    image: postgres\n")
    sarif = json.loads(
        doctor(
            "preflight", str(compose), "--no-live", "--format", "sarif", env=site, cwd=tmp_path
        ).stdout
    )
    rules = {r["id"]: r for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["ACME_MOTD_SET"]["shortDescription"]["text"] == "ACME's message of the day is set"
    (tmp_path / ".docker-doctor.yaml").write_text(
        textwrap.dedent("""\
        ignore:
          - code: ACME_MOTD_SET
            service: web
            reason: web is ACME's own
        """)
    )
    done = doctor("preflight", str(compose), "--no-live", "--json", env=site, cwd=tmp_path)
    report = json.loads(done.stdout)
    assert [(f["code"], f["hop"]) for f in report["findings"] if f["code"] == "ACME_MOTD_SET"] == [
        ("ACME_MOTD_SET", "service db")
    ]
    assert {"code": "ACME_MOTD_SET", "hop": "service web"} in report["doctor"]["waived"]
    assert done.returncode == 1  # db's finding is an error


def test_the_plugins_probe_and_rule_speak_in_a_live_report(site, stage):
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    done = doctor(f"localhost:{port}", "--json", env=site)
    report = json.loads(done.stdout)
    validator().validate(report)
    assert probes(report)["acme-motd"]["status"] == "ok"
    acme = [f for f in report["findings"] if f["code"] == "ACME_MOTD_SET"]
    assert acme and acme[0]["title"] == "ACME's message of the day is set"
    assert acme[0]["explanation"] == "ACME says something."
    assert acme[0]["evidence"] == [
        {"fact": "acme motd", "value": "maintenance tonight", "source": "acme/motd.txt"}
    ]
    assert "ACME_NOBODY_REGISTERED_THIS" not in {f["code"] for f in report["findings"]}
    assert report["verdict"] == "reachable" and done.returncode == 1  # a warning is a problem
