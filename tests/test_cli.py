"""The command line's contract: exit statuses, one-line errors, explain, --version."""

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support.command import command, doctor, environment

pytestmark = pytest.mark.standalone  # run again against the standalone executable

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "snapshots" / "app-bound-to-loopback"


def assert_one_line_error(done, status):
    assert done.returncode == status, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("docker-doctor: "), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "target", ["localhost:0", "localhost:70000", "not a target", "8080/sctp", "http://:80"]
)
def test_bad_targets_exit_2_with_one_line(target):
    assert_one_line_error(doctor(target), 2)


def test_unknown_option_exits_2():
    assert_one_line_error(doctor("--frobnicate", "8080"), 2)


def test_unreachable_daemon_exits_3_with_a_hint(tmp_path):
    done = doctor("localhost:8080", env={"DOCKER_HOST": f"unix://{tmp_path}/docker.sock"})
    assert_one_line_error(done, 3)
    assert "systemctl start docker" in done.stderr


def test_unknown_container_exits_2(tmp_path):
    done = doctor("no-such-container-xyz", "--snapshot", str(EXAMPLE))
    assert_one_line_error(done, 2)


def test_unknown_source_container_exits_2_with_close_names():
    name = json.loads((EXAMPLE / "engine" / "containers.json").read_text())[0]["Name"].lstrip(
        "/"
    )  # dd-xxxxxx-web
    typo = name.replace("-web", "-wbe")
    done = doctor("web:80", "--from", typo, "--snapshot", str(EXAMPLE))
    assert_one_line_error(done, 2)
    assert f"--from {typo}: no such container (did you mean {name}?)" in done.stderr


def test_from_needs_a_target():
    assert_one_line_error(doctor("--from", "web", "--snapshot", str(EXAMPLE)), 2)


def test_missing_or_broken_snapshot_exits_2(tmp_path):
    assert_one_line_error(doctor("8080", "--snapshot", str(tmp_path / "nope")), 2)
    (tmp_path / "manifest.json").write_text("{not json")
    assert_one_line_error(doctor("8080", "--snapshot", str(tmp_path)), 2)
    (tmp_path / "manifest.json").write_text(
        json.dumps({"schema": "docker-doctor/snapshot/v1", "artifacts": ["../../etc/passwd"]})
    )
    assert_one_line_error(doctor("8080", "--snapshot", str(tmp_path)), 2)


def test_explain_knows_every_code_and_what_detects_it():
    done = doctor("explain", "app-bound-to-loopback", "--json")
    assert done.returncode == 0
    data = json.loads(done.stdout)
    assert data["code"] == "APP_BOUND_TO_LOOPBACK" and data["detected_by"] == [
        "app-bound-to-loopback"
    ]
    from doctor.plugin.manager import load_plugins
    from doctor.report.catalogue import CODES

    detected = {code for rule in load_plugins().rules for code in rule.codes}
    for code in sorted(set(CODES) - detected)[
        :1
    ]:  # the pre-flight codes, until a rule detects them
        assert json.loads(doctor("explain", code, "--json").stdout)["detected_by"] == []


def test_explain_unknown_code_suggests_close_ones():
    done = doctor("explain", "NOTHING_ON_PROT")
    assert_one_line_error(done, 2)
    assert "NOTHING_ON_PORT" in done.stderr


def test_version():
    from doctor import __version__

    done = doctor("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"docker-doctor {__version__}"


def test_a_reader_that_goes_away_is_no_error():
    done = subprocess.run(
        f"{shlex.quote(command()[0])} explain NOTHING_ON_PORT --json | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        timeout=30,
        env=environment(),
    )
    assert done.stdout == '{\n  "code"' and done.stderr == ""
