"""Content an untrusted image controls, on a real engine: a healthcheck's output, a stopped
container's log lines and a compose label holding terminal escapes (clear the screen, retitle
the window, write the clipboard), a bidirectional override, rich markup, invalid UTF-8 and a
100,000-character line. The text report shows them inert and bounded; the JSON report carries
them as they were. And sheer size: a container holding 100,000 sockets, one with a 1 GiB log:
a diagnosis and a bundle stay bounded in time, memory and size."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import pytest

from doctor.report.inert import LIMIT
from doctor.snapshot import artifacts as a
from doctor.snapshot.store import Snapshot
from tests.support import host_state
from tests.support.command import command, doctor, environment, run_doctor, validator

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
    # a network named by the user: a checkup lists it as a hop of its own
    networks = json.loads(snapshot.artifacts[a.NETWORKS])
    networks.append({**networks[-1], "Name": raw, "Id": "f" * 64, "Containers": {}})
    # and one whose name ends in a backslash, the longest: shown as it is, not doubled
    networks.append({**networks[-1], "Name": "C:\\" + "w" * 90 + "\\", "Id": "e" * 64})
    snapshot.artifacts[a.NETWORKS] = json.dumps(networks).encode()
    snapshot.write(tmp_path / "s")
    done = doctor("localhost:8080", "--snapshot", str(tmp_path / "s"), env={"NO_COLOR": "1"})
    assert done.returncode == 1, done.stderr
    _check_inert(done.stdout)
    checkup = doctor("--snapshot", str(tmp_path / "s"), env={"NO_COLOR": "1"})
    assert checkup.returncode == 1, checkup.stderr
    _check_inert(checkup.stdout)
    assert "network C:\\" + "w" * 90 + "\\  " in checkup.stdout
    status, report = run_doctor("localhost:8080", "--snapshot", str(tmp_path / "s"))
    lines = {e["fact"]: e["value"] for e in report["findings"][0]["evidence"]}
    log = next(v for k, v in lines.items() if k.endswith("last log lines"))
    assert log[0].startswith(raw) and log[1] == "x" * 100_000


#: how a run with a huge container must stay: the report's own bounds (BRIEF: memory, bundle)
MAX_SECONDS, MAX_RSS_MIB, MAX_BUNDLE_MB = 10.0, 200, 20


def _measured(*args: str) -> tuple[int, str, float, float]:
    """``docker-doctor ARGS``: its exit status, stdout, seconds and peak memory (MiB).
    The peak is GNU time's, of a child it forked: a child forked by this process would count
    this process's own memory too (the kernel keeps the peak across exec)."""
    with host_state.unchanged(), tempfile.NamedTemporaryFile("r") as peak:
        began = time.monotonic()  # the run alone, not the guard's reads around it
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", peak.name, *command(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd="/",
            env=environment(),
            text=True,
            timeout=120,
        )
        took = time.monotonic() - began
        kib = int(peak.read().split()[-1])
    return done.returncode, done.stdout, took, kib / 1024


# Inside the container's network namespace: TCP listeners and bound UDP sockets, one of each on
# every port from argv[1] on, argv[2] of them in all; argv[3] "connected": one UDP socket with a
# peer too (not a listener). A process may hold only so many: its limit is raised to the hard one.
HOLD_SOCKETS = """
import resource, socket, sys
first, count = int(sys.argv[1]), int(sys.argv[2])
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
for port in range(first, first + count // 2):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.2", port))
    tcp.listen(1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.2", port))
    held += [tcp, udp]
if sys.argv[3:] == ["connected"]:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.3", 9999))
    udp.connect(("127.0.0.1", 9))
    held.append(udp)
print("ready", flush=True)
sys.stdin.read()
"""
SOCKETS = 100_000
# what one holder keeps open: below the hard limit on open files, with room for the interpreter
PER_PROCESS = min(10_000, (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 100) // 2 * 2)
CONNECTED = b"0300007F:270F"  # 127.0.0.3:9999 in /proc/net/udp's notation


NEEDS_TIME = pytest.mark.skipif(
    not os.path.exists("/usr/bin/time"), reason="needs GNU time (scripts/test installs it)"
)


@NEEDS_TIME
def test_a_container_holding_100000_sockets_stays_bounded(stage, tmp_path):
    port = stage.free_port()
    web = stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    pid = stage.inspect(web, "{{.State.Pid}}")
    enter = ["nsenter", f"--net=/proc/{pid}/ns/net"]
    holders = [
        subprocess.Popen(
            [
                *enter,
                sys.executable,
                "-c",
                HOLD_SOCKETS,
                str(10_000 + first // 2),
                str(PER_PROCESS),
                *(["connected"] if first == 0 else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for first in range(0, SOCKETS, PER_PROCESS)
    ]
    try:
        assert all(h.stdout and h.stdout.readline() == "ready\n" for h in holders)
        for table in ("tcp", "udp"):  # what the kernel shows of the container's sockets
            with open(f"/proc/{pid}/net/{table}") as f:
                assert sum(1 for _ in f) > SOCKETS // 2
        status, stdout, took, rss = _measured(f"localhost:{port}", "--json")
        assert (status, json.loads(stdout)["verdict"]) == (0, "reachable")
        assert took < MAX_SECONDS and rss < MAX_RSS_MIB, (took, rss)
        bundle = tmp_path / "b.tar.gz"
        status, _, took, rss = _measured("bundle", "-o", str(bundle))
        assert status == 0 and took < 3 * MAX_SECONDS and rss < MAX_RSS_MIB, (took, rss)
        assert bundle.stat().st_size < MAX_BUNDLE_MB * 1_000_000
        udp = Snapshot.load(bundle).artifacts[a.netns_file(stage.inspect(web, "{{.Id}}"), "udp")]
        assert udp.count(b"\n") > SOCKETS // 2  # the sockets were read, not skipped
        assert CONNECTED not in udp  # a UDP socket with a peer listens for no one else
    finally:
        for holder in holders:
            holder.kill()
            holder.communicate()


@NEEDS_TIME
def test_a_container_with_a_1_gib_log_stays_bounded(stage, tmp_path):
    port = stage.free_port()
    gib = 1 << 30
    web = stage.run(
        "web",
        "-p",
        f"{port}:80",
        cmd=["sh", "-c", f"head -c {gib} /dev/zero | tr '\\0' x | fold -w 1023; exit 3"],
    )
    subprocess.run(["docker", "wait", web], check=True, capture_output=True, timeout=300)
    log = Path(stage.inspect(web, "{{.LogPath}}"))
    assert log.stat().st_size > gib  # the engine kept it all
    status, stdout, took, rss = _measured(f"localhost:{port}", "--json")
    report = json.loads(stdout)
    assert (status, report["findings"][0]["code"]) == (1, "CONTAINER_NOT_RUNNING")
    assert took < MAX_SECONDS and rss < MAX_RSS_MIB, (took, rss)
    bundle = tmp_path / "b.tar.gz"
    status, _, took, rss = _measured("bundle", "-o", str(bundle))
    assert status == 0 and took < 3 * MAX_SECONDS and rss < MAX_RSS_MIB, (took, rss)
    assert bundle.stat().st_size < MAX_BUNDLE_MB * 1_000_000
