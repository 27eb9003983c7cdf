"""`docker-doctor preflight` on real compose files: every check, file:line, formats, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests.support.command import doctor

pytestmark = pytest.mark.standalone  # run again against the standalone executable

COMPOSE = Path(__file__).resolve().parent / "compose"


def preflight(
    *args: str, cwd: Path = COMPOSE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return doctor("preflight", *args, cwd=cwd, env=env)


def report(*args: str, **kwargs) -> tuple[int, dict]:
    done = preflight(*args, "--json", **kwargs)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def found(data: dict) -> set[tuple[str, int]]:
    return {(f["code"], f["location"]["line"]) for f in data["findings"] if f["location"]}


def test_the_guides_basic_example(tmp_path):
    status, data = report("guide-basic.yaml", "--no-live")
    assert data["target"]["kind"] == "compose"
    assert ("OBSOLETE_VERSION_KEY", 2) in found(data) and (
        "DEPENDS_ON_WITHOUT_HEALTHCHECK",
        13,
    ) in found(data)
    assert status == 0  # warnings pass by default...
    assert (
        preflight("guide-basic.yaml", "--no-live", "--fail-on", "warning").returncode == 1
    )  # ...not on demand


def test_the_guides_healthcheck_example_waits_properly():
    _, data = report("guide-healthcheck.yaml", "--no-live")
    assert not [f for f in data["findings"] if f["code"] == "DEPENDS_ON_WITHOUT_HEALTHCHECK"]


def test_every_static_mistake_is_found_at_its_line():
    status, data = report("mistakes.yaml", "--no-live")
    assert status == 1
    assert {
        ("SENSITIVE_PORT_EXPOSED", 6),  # db 5432 on every interface (cache's 6379 is on 127.0.0.1)
        ("INTERNAL_NETWORK", 6),  # db publishes from the internal network only
        ("NO_SHARED_NETWORK", 19),  # api depends on db: front vs back
        ("DEPENDS_ON_WITHOUT_HEALTHCHECK", 19),
        ("DUPLICATE_HOST_PORT", 24),  # admin 8080 after api's ${API_PORT:-8080}
        ("HOST_NETWORK_PUBLISH_IGNORED", 30),
        ("PRIVILEGED_OR_BROAD_CAPS", 31),  # privileged: true
        ("PRIVILEGED_OR_BROAD_CAPS", 39),  # cap_add: [NET_ADMIN]
    } <= found(data)
    assert ("SENSITIVE_PORT_EXPOSED", 11) not in found(data)
    assert not [f for f in data["findings"] if f["code"] == "OBSOLETE_VERSION_KEY"]


def test_interpolation_from_the_environment_and_dot_env(tmp_path):
    _, data = report("mistakes.yaml", "--no-live", env={"API_PORT": "9090"})
    assert not [f for f in data["findings"] if f["code"] == "DUPLICATE_HOST_PORT"]
    shutil.copy(COMPOSE / "mistakes.yaml", tmp_path / "compose.yaml")
    (tmp_path / ".env").write_text("API_PORT=9191\n")
    _, data = report("--no-live", cwd=tmp_path)  # the default file name, and its .env
    assert not [f for f in data["findings"] if f["code"] == "DUPLICATE_HOST_PORT"]


def test_a_required_variable_and_a_malformed_file_are_bad_input():
    for args, where in (
        (["clean.yaml"], "clean.yaml:13: ${WEB_PORT} is required"),
        (["malformed.yaml"], "malformed.yaml:"),
    ):
        done = preflight(*args, "--no-live")
        assert done.returncode == 2 and done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and where in done.stderr, done.stderr


def test_a_clean_file_passes():
    status, data = report("clean.yaml", "--no-live", env={"WEB_PORT": "8000"})
    assert (status, data["findings"]) == (0, [])


def test_several_files_merge_in_order(tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text('services:\n  admin:\n    ports:\n      - "8081:80"\n')
    _, data = report(str(COMPOSE / "mistakes.yaml"), "-f", str(override), "--no-live")
    duplicate = [f for f in data["findings"] if f["code"] == "DUPLICATE_HOST_PORT"]
    assert duplicate  # lists are appended: admin now publishes 8080 and 8081


def test_ignore_file_waives_with_a_reason_and_refuses_unknown_codes(tmp_path):
    shutil.copy(COMPOSE / "mistakes.yaml", tmp_path / "compose.yaml")
    (tmp_path / ".docker-doctor.yaml").write_text(
        "ignore:\n  - code: SENSITIVE_PORT_EXPOSED\n    service: db\n    reason: a local "
        "development database\n"
    )
    _, data = report("--no-live", cwd=tmp_path)
    assert not [f for f in data["findings"] if f["code"] == "SENSITIVE_PORT_EXPOSED"]
    assert {"code": "SENSITIVE_PORT_EXPOSED", "hop": "service db"} in data["doctor"]["waived"]
    (tmp_path / ".docker-doctor.yaml").write_text(
        "ignore:\n  - code: SENSITIVE_PORT_EXPOSD\n    reason: typo\n"
    )
    done = preflight("--no-live", cwd=tmp_path)
    assert done.returncode == 2 and "unknown code 'SENSITIVE_PORT_EXPOSD'" in done.stderr
    (tmp_path / ".docker-doctor.yaml").write_text("ignore:\n  - code: SENSITIVE_PORT_EXPOSED\n")
    assert "needs a reason" in preflight("--no-live", cwd=tmp_path).stderr


#: What code-scanning views require of SARIF 2.1.0 (no package here ships the OASIS schema).
SARIF_REQUIRED = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "rules"],
                                "properties": {
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id", "shortDescription"],
                                        },
                                    }
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["ruleId", "message", "level", "locations"],
                            "properties": {
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": {"type": "object", "required": ["text"]},
                                "locations": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["physicalLocation"],
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation", "region"],
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "required": ["uri"],
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "required": ["startLine"],
                                                        "properties": {
                                                            "startLine": {
                                                                "type": "integer",
                                                                "minimum": 1,
                                                            }
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_sarif_for_code_scanning():
    done = preflight("mistakes.yaml", "--no-live", "--format", "sarif")
    sarif = json.loads(done.stdout)
    jsonschema.validate(sarif, SARIF_REQUIRED)
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    located = {
        (r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
        for r in run["results"]
    }
    assert ("SENSITIVE_PORT_EXPOSED", 6) in located and done.returncode == 1


def test_junit_parses_back():
    from junitparser import Failure, JUnitXml

    done = preflight("mistakes.yaml", "--no-live", "--format", "junit")
    xml = JUnitXml.fromstring(done.stdout)
    cases = [case for suite in xml for case in suite]
    failed = {case.name: [r.type for r in case.result if isinstance(r, Failure)] for case in cases}
    assert "SENSITIVE_PORT_EXPOSED" in failed["service db"]
    assert "HOST_NETWORK_PUBLISH_IGNORED" in failed["service agent"]
    assert failed["service cache"] == ["INTERNAL_NETWORK"]
    _, data = report("mistakes.yaml", "--no-live")
    assert sum(len(v) for v in failed.values()) == len(
        [f for f in data["findings"] if f["severity"] == "error"]
    )


# --- against this host ---------------------------------------------------------


def test_a_host_port_held_by_a_process_and_a_foreign_container_but_not_our_own(stage, tmp_path):
    held, ours, theirs = stage.free_port(), stage.free_port(), stage.free_port()
    process = stage.hold_port(held)
    stage.run(
        "mine",
        "-p",
        f"{ours}:80",
        "--label",
        "com.docker.compose.project=preflighttest",
        wait_port=80,
    )
    foreign = stage.run(
        "other",
        "-p",
        f"{theirs}:80",
        "--label",
        "com.docker.compose.project=elsewhere",
        wait_port=80,
    )
    (tmp_path / "compose.yaml").write_text(
        "name: preflighttest\nservices:\n  web:\n    image: x\n    ports:\n"
        f'      - "{held}:80"\n      - "{ours}:81"\n      - "{theirs}:82"\n'
    )
    status, data = report(cwd=tmp_path)
    in_use = {f["location"]["line"]: f for f in data["findings"] if f["code"] == "HOST_PORT_IN_USE"}
    assert (
        set(in_use) == {6, 8} and status == 1
    )  # not line 7: the project's own container is replaced
    assert f"(pid {process.pid})" in in_use[6]["explanation"]
    assert f"container {foreign}" in in_use[8]["explanation"]
    assert any(line["hop"] == "engine" and line["status"] == "ok" for line in data["path"])


def test_anchors_merge_keys_unquoted_ports_and_reset(tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "x-base: &base\n  image: shop/db:1\n  networks: [back]\nservices:\n  db:\n    <<: *base\n"
        "    ports:\n      - 22:22\n      - 5432:5432\nnetworks:\n  back:\n"
    )
    (tmp_path / "compose.override.yaml").write_text("services:\n  db:\n    ports: !reset []\n")
    _, merged = report("--no-live", cwd=tmp_path)
    assert not [
        f for f in merged["findings"] if f["code"] == "SENSITIVE_PORT_EXPOSED"
    ]  # !reset dropped them
    _, alone = report("compose.yaml", "--no-live", cwd=tmp_path)
    assert ("SENSITIVE_PORT_EXPOSED", 9) in found(alone)  # 5432:5432, read as a port, not base 60


def test_forwarding_subnets_and_tuning_of_this_host(stage, tmp_path):
    taken = stage.network("taken", "--subnet", "10.98.7.0/24")
    somaxconn = Path("/proc/sys/net/core/somaxconn").read_text().strip()
    stage.change_host(
        ("sysctl", "-qw", "net.ipv4.ip_forward=0"), ("sysctl", "-qw", "net.ipv4.ip_forward=1")
    )
    stage.change_host(
        ("sysctl", "-qw", "net.core.somaxconn=128"),
        ("sysctl", "-qw", f"net.core.somaxconn={somaxconn}"),
    )
    (tmp_path / "compose.yaml").write_text(
        'services:\n  web:\n    image: x\n    ports:\n      - "127.0.0.1:18099:80"\n    networks: '
        "[app]\n"
        "networks:\n  app:\n    ipam:\n      config:\n        - subnet: 10.98.0.0/16\n"
    )
    status, data = report(cwd=tmp_path)
    codes = {f["code"]: f for f in data["findings"]}
    assert status == 1 and {"IP_FORWARD_DISABLED", "SUBNET_OVERLAP", "SYSCTL_TUNING"} <= set(codes)
    assert (
        codes["SUBNET_OVERLAP"]["location"]["line"] == 9
        and taken in codes["SUBNET_OVERLAP"]["explanation"]
    )
    assert codes["SYSCTL_TUNING"]["severity"] == "info"
    assert {"fact": "net.core.somaxconn", "value": "128", "source": "/proc/sys"} in codes[
        "SYSCTL_TUNING"
    ]["evidence"]
    _, static = report("--no-live", cwd=tmp_path)  # the file alone says none of it
    assert not {"IP_FORWARD_DISABLED", "SUBNET_OVERLAP", "SYSCTL_TUNING"} & {
        f["code"] for f in static["findings"]
    }
