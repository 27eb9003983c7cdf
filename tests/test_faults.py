"""Faults at chosen moments of a run, on a real engine: the daemon breaking off, hanging or
answering garbage at the list call or between the list and an inspect; the daemon SIGKILLed or
SIGSTOPped at three moments, then restarted or continued; a container removed between the list
and its inspect; a container whose process exits before its namespace is read; the firewall
tools missing, hanging, failing or printing garbage; the xtables lock held; /proc hiding other
users' processes; a bundle onto a full or read-only disk; signals at any moment; twenty runs at
once. Each run ends within its --timeout with a report or one line and the documented exit
status, never a traceback."""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import glob
import json
import os
import platform
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from doctor.snapshot.store import Snapshot
from tests.support import host_state, staging
from tests.support.command import command, doctor, environment, moments, signalled, validator
from tests.support.faulty_engine import Fault, FaultyEngine

HTTPD = ["httpd", "-f", "-h", "/www", "-p"]
SOCKET = "/var/run/docker.sock"
TIMEOUT = 4.0


@pytest.fixture
def engine_with(tmp_path: Path, engine: None):
    proxies: list[FaultyEngine] = []

    def start(fault: Fault) -> FaultyEngine:
        directory = tmp_path / f"proxy-{len(proxies)}"  # a socket of its own
        directory.mkdir()
        proxy = FaultyEngine(directory, SOCKET, fault)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.close()


def _run(
    proxy: FaultyEngine, *args: str, host_changes: bool = False
) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    done = doctor(
        *args,
        "--timeout",
        str(TIMEOUT),
        env={"DOCKER_HOST": proxy.host},
        host_changes=host_changes,
    )
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return done, time.monotonic() - began


def _one_line(done: subprocess.CompletedProcess[str], status: int, says: str) -> None:
    assert done.returncode == status, done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert re.search(says, done.stderr), done.stderr


def _report(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    validator().validate(report)
    return report


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("die", "broke off its answer: the connection was closed before an answer"),
        ("garbage", "broke off its answer: not an HTTP answer"),
        ("stall", "did not answer within|no answer within"),
    ],
)
def test_the_daemon_failing_at_the_list_call(stage, engine_with, action, says) -> None:
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    proxy = engine_with(Fault(lambda path: path.startswith("/containers/json"), action))
    done, took = _run(proxy, f"localhost:{port}", "--json")
    assert proxy.fault.met.is_set()
    _one_line(done, 3, says)
    assert took < TIMEOUT + 3


def test_a_connection_the_daemon_drops_once_is_asked_again(stage, engine_with) -> None:
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    proxy = engine_with(Fault(lambda path: path.startswith("/containers/json"), "close"))
    done, _ = _run(proxy, f"localhost:{port}", "--json")
    assert proxy.fault.met.is_set() and proxy.requests.count("/containers/json?all=1") == 2
    assert _report(done)["verdict"] == "reachable"


def test_the_daemon_hanging_between_the_list_and_an_inspect(stage, engine_with) -> None:
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    inspect = re.compile(r"^/containers/[0-9a-f]{64}/json")
    proxy = engine_with(Fault(lambda path: bool(inspect.match(path)), "stall"))
    done, took = _run(proxy, f"localhost:{port}", "--json")
    assert proxy.fault.met.is_set() and "/containers/json?all=1" in proxy.requests
    _one_line(done, 3, "no answer within|did not answer within")
    assert took < TIMEOUT + 3


def _dockerd_pid() -> int:
    """The daemon behind the engine's socket (SO_PEERCRED), not any other dockerd of the host."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(SOCKET)
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[0]


def _signal_dockerd(pid: int, signum: int) -> None:
    """Send the daemon ``signum``: SIGKILL as the OOM killer or a crash does (and wait until it
    is gone), SIGSTOP as a debugger, a frozen cgroup or a swapped-out host does."""
    os.kill(pid, signum)
    deadline = time.monotonic() + 10
    while signum == signal.SIGKILL and Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "dockerd outlived SIGKILL"
        time.sleep(0.02)


NO_ANSWER = "no answer within|did not answer within"


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
@pytest.mark.parametrize(
    ("moment", "outcomes"),
    [
        ("at the list call", {signal.SIGKILL: "broke off its answer", signal.SIGSTOP: NO_ANSWER}),
        (
            "between the list and the inspects",
            {signal.SIGKILL: "broke off its answer", signal.SIGSTOP: NO_ANSWER},
        ),
        ("during the namespace reads", {}),  # the daemon's part was done: a report
    ],
)
def test_the_daemon_killed_or_stopped_mid_run(stage, engine_with, moment, outcomes, signum) -> None:
    port = stage.free_port()
    web = stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    daemon = _dockerd_pid()
    proxies: list[FaultyEngine] = []

    def hit() -> None:
        _signal_dockerd(daemon, signum)

    def once_the_rest_is_answered() -> None:  # /version, /info, /networks go alongside
        deadline = time.monotonic() + 5
        while not {"/version", "/info", "/networks"} <= set(proxies[0].answered):
            assert time.monotonic() < deadline, proxies[0].answered
            time.sleep(0.01)
        hit()

    fault = {
        "at the list call": Fault(lambda p: p.startswith("/containers/json"), before=hit),
        "between the list and the inspects": Fault(
            lambda p: p.startswith("/containers/json"), after=hit
        ),
        "during the namespace reads": Fault(
            _inspect_of(stage, web), after=once_the_rest_is_answered
        ),
    }[moment]
    try:
        proxies.append(proxy := engine_with(fault))
        done, took = _run(proxy, f"localhost:{port}", "--json", host_changes=True)
        assert proxy.fault.met.is_set() and not staging.engine_answers(timeout=1)
    finally:
        if signum == signal.SIGSTOP:
            os.kill(daemon, signal.SIGCONT)
        staging.ensure_engine()  # after SIGKILL, restarted: the rest of the suite has it back
    if outcome := outcomes.get(signum):
        _one_line(done, 3, outcome)
    else:
        assert web in json.dumps(_report(done)["path"])  # its container was read
    assert took < TIMEOUT + 3
    # Once the engine is back (a restarted one stopped its containers), all answers again.
    if stage.inspect(web, "{{.State.Running}}") != "true":
        stage.start(web, wait_port=80)
    again, _ = _run(engine_with(Fault(lambda p: False)), f"localhost:{port}", "--json")
    assert _report(again)["verdict"] == "reachable"


def _inspect_of(stage, name: str):
    cid = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True, check=True
    ).stdout.strip()
    return lambda path: path.startswith(f"/containers/{cid}/json")


def test_a_container_removed_between_the_list_and_its_inspect(stage, engine_with) -> None:
    port = stage.free_port()
    web = stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    victim = stage.run("victim", cmd=[*HTTPD, "80"], wait_port=80)

    def removed() -> None:
        subprocess.run(["docker", "rm", "-f", victim], capture_output=True, check=True)

    proxy = engine_with(Fault(_inspect_of(stage, victim), "pass", before=removed))
    # the host checkup reads every container
    done, took = _run(proxy, "--json", host_changes=True)
    report = _report(done)
    assert proxy.fault.met.is_set()
    runs = {p["name"]: p for p in report["probes"]}
    assert runs[f"container:{victim}"]["status"] == "skipped"
    assert "removed between the list and its inspect" in runs[f"container:{victim}"]["detail"]
    assert any(web in hop["detail"] for hop in report["path"])  # the rest was checked
    assert took < TIMEOUT + 3


@pytest.mark.parametrize("change", ["stop", "restart"])
def test_a_container_stopped_or_restarted_between_the_list_and_its_inspect(
    stage, engine_with, change
) -> None:
    """The list says running; the inspect that follows is what is true from then on: a stopped
    container is the cause, a restarted one (a new process) is read as it is now."""
    port = stage.free_port()
    victim = stage.run("victim", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    listed_pid = stage.inspect(victim, "{{.State.Pid}}")

    def changed() -> None:  # at once (-t 0): httpd as pid 1 ignores SIGTERM
        subprocess.run(["docker", change, "-t", "0", victim], capture_output=True, check=True)
        if change == "restart":  # until a real client gets through: the new docker-proxy
            stage.wait_listening(victim, 80)  # resets connections for a moment after it starts
            deadline = time.monotonic() + 10
            while staging.connect_here("127.0.0.1", port) != "connected":
                assert time.monotonic() < deadline, "the restarted container is not reachable"
                time.sleep(0.05)

    proxy = engine_with(Fault(_inspect_of(stage, victim), before=changed))
    done, took = _run(proxy, f"localhost:{port}", "--json", host_changes=True)
    report = _report(done)
    assert proxy.fault.met.is_set()
    if change == "stop":
        assert report["findings"][0]["code"] == "CONTAINER_NOT_RUNNING"
    else:
        assert stage.inspect(victim, "{{.State.Pid}}") != listed_pid
        assert report["verdict"] == "reachable", json.dumps(report["path"])
    assert f"container:{victim}" not in {p["name"] for p in report["probes"]}
    assert took < TIMEOUT + 3


def test_a_container_whose_process_exits_before_its_namespace_is_read(stage, engine_with) -> None:
    port = stage.free_port()
    victim = stage.run("victim", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)

    def killed() -> None:  # its inspect says running, with a pid that is gone once relayed
        subprocess.run(["docker", "kill", victim], capture_output=True, check=True)
        subprocess.run(["docker", "wait", victim], capture_output=True, check=True, timeout=30)

    proxy = engine_with(Fault(_inspect_of(stage, victim), "pass", after=killed))
    done, _ = _run(proxy, f"localhost:{port}", "--json", host_changes=True)
    report = _report(done)
    runs = {p["name"]: p for p in report["probes"]}
    why = runs[f"container:{victim}"]["detail"]
    assert "its process exited before its namespace was read" in why


#: what the firewall probes run: each is linked into a test's own PATH, or faked, or left out
FIREWALL_TOOLS = ("iptables-save", "ip6tables-save", "iptables-legacy-save", "nft", "conntrack")


def _tools(directory: Path, tool: str, script: str | None) -> str:
    """A PATH of the firewall tools, ``tool`` replaced by ``script`` (None: not installed)."""
    directory.mkdir()
    for name in FIREWALL_TOOLS:
        if name == tool:
            if script is not None:
                (directory / name).write_text(f"#!/bin/sh\nPATH=/usr/bin:/bin\n{script}\n")
                (directory / name).chmod(0o755)
        elif real := shutil.which(name):
            (directory / name).symlink_to(real)
    # sh for the fakes; iptables-save (nft backend) names its siblings through its own dir
    (directory / "sh").symlink_to(shutil.which("sh") or "/bin/sh")
    return str(directory)


@pytest.mark.parametrize("tool", ["iptables-save", "nft"])
@pytest.mark.parametrize(
    ("script", "status"),
    [
        ("exec sleep 60", "timeout"),
        (
            "echo '*filter'; echo ':INPUT ACC'; echo '-A'; echo '{\"nftables\": [{'; "
            "head -c 3000 /dev/urandom",
            "ok",
        ),
        (
            "echo 'cannot lock, or: netlink: Error: cache initialization failed' >&2; exit 4",
            "failed",
        ),
        (None, "skipped"),
    ],
    ids=["hangs", "garbage", "fails", "missing"],
)
def test_a_firewall_tool_hanging_printing_garbage_failing_or_missing(
    stage, tmp_path, tool, script, status
) -> None:
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    # a native nft table: the nftables probe then runs nft to list it
    table = f"ddfault{os.getpid()}"
    stage.change_host(
        ("nft", "add", "table", "inet", table), ("nft", "delete", "table", "inet", table)
    )
    probe = "iptables" if tool == "iptables-save" else "nftables"
    began = time.monotonic()
    done = doctor(
        f"localhost:{port}",
        "--json",
        "--timeout",
        str(TIMEOUT),
        env={"PATH": _tools(tmp_path / "bin", tool, script)},
    )
    took = time.monotonic() - began
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    report = _report(done)
    runs = {p["name"]: p for p in report["probes"]}
    assert runs[probe]["status"] == status, runs[probe]
    if script is None:
        assert f"{tool} is not installed" in runs[probe]["detail"]
    if tool == "nft" and status == "ok":  # what nft printed is no JSON: left out, and said
        assert runs["parse:firewall/nft-ruleset.json"]["status"] == "failed"
    assert report["verdict"] == "reachable"  # the live connect still answers
    assert took < TIMEOUT + 3


def test_the_xtables_lock_held_by_another_process(stage) -> None:
    """A firewall script or a second iptables holds the lock: the doctor's reads take none
    (iptables-save does not lock), so nothing waits; a command that took it would wait here."""
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    lock = os.environ.get("XTABLES_LOCKFILE", "/run/xtables.lock")
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as `flock` or iptables -w would, from this process
        if shutil.which("iptables-legacy"):  # the staging proven: a command that locks waits
            waits = subprocess.run(
                ["iptables-legacy", "-w", "1", "-S"], capture_output=True, text=True, timeout=30
            )
            assert waits.returncode == 4 and "holding the xtables lock" in waits.stderr
        began = time.monotonic()
        done = doctor(f"localhost:{port}", "--json", "--timeout", str(TIMEOUT))
        took = time.monotonic() - began
    report = _report(done)
    runs = {p["name"]: p for p in report["probes"]}
    assert runs["iptables"]["status"] == "ok" and report["verdict"] == "reachable"
    assert took < TIMEOUT + 3


def _leftovers() -> set[str]:
    """What a run could leave: its temporary files and directories, its namespaces."""
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    return {*glob.glob("/tmp/docker-doctor*"), *glob.glob("/tmp/.docker-doctor*"), *netns}


@contextlib.contextmanager
def _mounted(directory: Path, options: str):
    directory.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


@pytest.mark.parametrize(
    ("options", "says"), [("size=4k", "No space left on device"), ("ro", "Read-only file system")]
)
def test_a_bundle_onto_a_full_or_read_only_disk(stage, tmp_path, options, says) -> None:
    stage.run("web", cmd=[*HTTPD, "80"], wait_port=80)
    with _mounted(tmp_path / "disk", options) as disk:
        done = doctor("bundle", "-o", str(disk / "b.tar.gz"), timeout=120)
        _one_line(done, 3, f"cannot write the bundle to .*: {says} \\(nothing was written\\)")
        assert os.listdir(disk) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_bundle_stopped_at_any_moment_leaves_nothing(stage, tmp_path, signum) -> None:
    stage.run("web", cmd=[*HTTPD, "80"], wait_port=80)
    before = _leftovers()
    argv = [*command(), "bundle", "-o", str(tmp_path / "b.tar.gz")]
    when = moments(argv, 6)
    (tmp_path / "b.tar.gz").unlink()  # the bundle that timed the run
    stopped = 0
    for after in when:
        with host_state.unchanged():
            status, stderr = signalled(argv, after, signum)
        assert "Traceback" not in stderr, stderr
        if status == 0:
            (tmp_path / "b.tar.gz").unlink()  # it had finished: a whole bundle
            continue
        stopped += 1
        # 130 or 143 once the run has started; before that, the signal's own default action
        assert status in (128 + signum, -signum), (status, stderr)
        if (tmp_path / "b.tar.gz").exists():  # stopped after the rename: a whole bundle
            Snapshot.load(tmp_path / "b.tar.gz")
            (tmp_path / "b.tar.gz").unlink()
        assert os.listdir(tmp_path) == []  # no partial bundle
        assert _leftovers() == before
    assert stopped >= 2  # the signal met the run, not only its end


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_probe_external_stopped_at_any_moment_leaves_nothing(published, signum) -> None:
    _, client, port = published
    argv = [*command(), f"{client.host_address}:{port}", "--probe-external"]
    before = _leftovers()
    for after in moments(argv, 4):
        with host_state.unchanged():
            status, stderr = signalled(argv, after, signum)
        assert "Traceback" not in stderr, stderr
        assert status in (0, 128 + signum, -signum), (status, stderr)
        assert _leftovers() == before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("step", ["netns add", "link add"])
def test_a_signal_while_ip_makes_the_client_leaves_nothing(published, tmp_path, step, signum):
    """The signal comes while `ip` runs, after the kernel made the namespace (or the veth):
    what was made goes all the same. An `ip` that lingers after its work stages the moment."""
    _, client, port = published
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "ip").write_text(
        f'#!/bin/sh\n{shutil.which("ip")} "$@"; made=$?\n'
        f'case "$*" in "{step} "*) touch {tmp_path}/made; exec sleep 30;; esac\nexit $made\n'
    )
    (tools / "ip").chmod(0o755)
    before = _leftovers()
    with (
        host_state.unchanged(),
        subprocess.Popen(
            [*command(), f"{client.host_address}:{port}", "--probe-external"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(PATH=f"{tools}:{os.environ.get('PATH', '/usr/bin:/bin')}"),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        ) as run,
    ):
        deadline = time.monotonic() + 30
        while not (tmp_path / "made").exists():
            assert run.poll() is None and time.monotonic() < deadline, "ip never made it"
            time.sleep(0.02)
        run.send_signal(signum)
        _, stderr = run.communicate(timeout=30)
    assert run.returncode == 128 + signum and "Traceback" not in stderr, stderr
    assert _leftovers() == before


def test_twenty_runs_at_once(published, stage) -> None:
    _, client, port = published
    other = stage.free_port()
    stage.run("api", "-p", f"{other}:80", cmd=[*HTTPD, "80"], wait_port=80)
    runs = [
        [f"localhost:{port}", "--json"],
        [f"localhost:{other}", "--json"],
        ["--json"],
        [f"{client.host_address}:{port}", "--probe-external", "--json"],
    ]
    argvs = [runs[0], runs[3], runs[3]] + [runs[i % 3] for i in range(17)]
    before = _leftovers()
    with host_state.unchanged(), concurrent.futures.ThreadPoolExecutor(20) as pool:
        done = list(pool.map(lambda args: doctor(*args, host_changes=True, timeout=120), argvs))
    for args, run in zip(argvs, done, strict=True):
        assert run.returncode in (0, 1) and "Traceback" not in run.stderr, (args, run.stderr)
        report = json.loads(run.stdout)
        validator().validate(report)
        if args[0] != "--json":
            assert report["verdict"] == "reachable", (args, report["verdict"])
    assert _leftovers() == before


@pytest.mark.skipif(
    not (shutil.which("setpriv") and shutil.which("unshare")), reason="needs setpriv and unshare"
)
@pytest.mark.skipif(  # before 5.8 a /proc mount's options were the host's own /proc's too
    tuple(map(int, platform.release().split(".")[:2])) < (5, 8), reason="needs Linux 5.8"
)
def test_a_user_whose_proc_hides_other_users_processes(stage, engine_with) -> None:
    """/proc mounted with hidepid=2, and a user who may use the engine (its socket is theirs
    to open) but not see its processes: the namespace reads are skipped, and say why; no
    container is said to have exited."""
    user = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    can_run = subprocess.run(
        [*user, *command(), "--version"], capture_output=True, text=True, cwd="/", timeout=30
    )
    if can_run.returncode != 0:
        pytest.skip(f"the user nobody cannot run {command()[0]}: {can_run.stderr.strip()}")
    port = stage.free_port()
    web = stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "80"], wait_port=80)
    shared = Path(tempfile.mkdtemp(prefix="dd-hidepid-"))
    proxy = None
    try:
        shared.chmod(0o755)
        proxy = FaultyEngine(shared, SOCKET, Fault(lambda path: False))
        Path(proxy.path).chmod(0o666)
        # a private mount namespace whose /proc hides other users' processes, then the user
        hidden = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
        hidden += ['mount -t proc -o hidepid=2 proc /proc && exec "$@"', "sh", *user]
        with host_state.unchanged():
            done = subprocess.run(
                [*hidden, *command(), f"localhost:{port}", "--json"],
                capture_output=True,
                text=True,
                timeout=60,
                cwd="/",
                env=environment(DOCKER_HOST=proxy.host),
            )
    finally:
        if proxy is not None:
            proxy.close()
        shutil.rmtree(shared)
    report = _report(done)
    runs = {p["name"]: p for p in report["probes"]}
    assert runs["container-listeners"]["status"] == "skipped", runs["container-listeners"]
    assert "hidepid" in runs["container-listeners"]["detail"]
    assert f"container:{web}" not in runs
    assert report["verdict"] == "reachable"
