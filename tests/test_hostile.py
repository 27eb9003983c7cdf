"""Content an untrusted image controls, on a real engine: a healthcheck's output and a stopped
container's log lines holding terminal escapes (clear the screen, retitle the window, write the
clipboard), a bidirectional override, rich markup, invalid UTF-8 and a 100,000-character line.
The text report shows them inert and bounded; the JSON report carries them as they were."""

from __future__ import annotations

import json
import subprocess
import unicodedata
from pathlib import Path

import pytest

from doctor.report.inert import LIMIT
from doctor.snapshot import artifacts as a
from doctor.snapshot.store import Snapshot
from tests.support.command import doctor, run_doctor, validator

HTTPD = ["httpd", "-f", "-h", "/www", "-p"]
# printf escapes for busybox sh: ESC [2J, an OSC title, OSC 52 (clipboard), C1 CSI, U+202E,
# rich markup, and two bytes that are no UTF-8
HOSTILE = (
    r"\033[2J\033]0;pwned\007\033]52;c;ZXZpbA==\007\302\233"
    r"31m [bold red]fake[/] "
    r"\342\200\256gnp.exe \377\376"
)


def _acted_on(text: str) -> list[str]:
    """The characters of ``text`` that a terminal would act on (beyond the line breaks)."""
    return sorted({c for c in text if unicodedata.category(c) in ("Cc", "Cf") and c != "\n"})


def _check_inert(stdout: str) -> None:
    assert _acted_on(stdout) == [], "a control character reached the terminal"
    # shown, as escapes: \x1b by itself, \u001b within a JSON value (a list of log lines)
    assert "\\x1b]0;pwned" in stdout or "\\u001b]0;pwned" in stdout
    assert "\\u202e" in stdout
    assert "[bold red]fake[/]" in stdout  # markup printed as text, not applied
    assert max(len(line) for line in stdout.splitlines()) < LIMIT + 500


def test_a_healthcheck_output_is_shown_inert_and_carried_as_is_in_json(stage):
    web, port = stage.unhealthy_web(f"printf '{HOSTILE}'; false")
    done = doctor(f"localhost:{port}", env={"NO_COLOR": "1"})
    assert done.returncode == 1, done.stderr
    _check_inert(done.stdout)
    status, report = run_doctor(f"localhost:{port}")
    evidence = {e["fact"]: e["value"] for e in report["findings"][0]["evidence"]}
    output = evidence[f"{web} last healthcheck output"]
    assert "\x1b]0;pwned\x07" in output and "\u202e" in output and status == 1


def test_log_lines_are_shown_inert_and_bounded(stage):
    port = stage.free_port()
    web = stage.run(
        "web",
        "-p",
        f"{port}:80",
        cmd=[
            "sh",
            "-c",
            f"printf '{HOSTILE}\\n'; head -c 100000 /dev/zero | tr '\\0' x; echo; exit 3",
        ],
    )
    subprocess.run(["docker", "wait", web], check=True, capture_output=True, timeout=30)
    done = doctor(f"localhost:{port}", env={"NO_COLOR": "1"})
    assert done.returncode == 1, done.stderr
    _check_inert(done.stdout)
    assert "more characters)" in done.stdout  # the long line was cut, and says so
    json_run = doctor(f"localhost:{port}", "--json")
    report = json.loads(json_run.stdout)
    validator().validate(report)
    assert report["findings"][0]["code"] == "CONTAINER_NOT_RUNNING"
    lines = {e["fact"]: e["value"] for e in report["findings"][0]["evidence"]}[
        f"{web} last log lines"
    ]
    assert "\x1b[2J" in lines[0] and "\ufffd" in lines[0]  # invalid UTF-8, replaced
    assert lines[1] == "x" * 100_000


@pytest.mark.standalone
def test_a_replayed_snapshot_with_hostile_log_lines_and_state_error_shows_them_inert(tmp_path):
    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "snapshots"
    snapshot = Snapshot.read(fixtures / "container-not-running")
    key = snapshot.keys_under("engine/logs/")[0]
    raw = "\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\u009b31m [bold red]fake[/] \u202egnp.exe"
    # a plain stream (a container with a TTY): one hostile line, invalid UTF-8, a long line
    snapshot.artifacts[key] = raw.encode() + b" \xff\xfe\n" + b"x" * 100_000 + b"\n"
    containers = json.loads(snapshot.artifacts[a.CONTAINERS])
    containers[0]["State"]["Error"] = raw
    snapshot.artifacts[a.CONTAINERS] = json.dumps(containers).encode()
    snapshot.write(tmp_path / "s")
    done = doctor("localhost:8080", "--snapshot", str(tmp_path / "s"), env={"NO_COLOR": "1"})
    assert done.returncode == 1, done.stderr
    _check_inert(done.stdout)
    status, report = run_doctor("localhost:8080", "--snapshot", str(tmp_path / "s"))
    lines = {e["fact"]: e["value"] for e in report["findings"][0]["evidence"]}
    log = next(v for k, v in lines.items() if k.endswith("last log lines"))
    assert log[0].startswith(raw) and log[1] == "x" * 100_000
