"""Commands started at the beginning of a run: a probe gets the same status and output as if
it ran them itself, a hung one is stopped at the probe's timeout, and nothing outlives the
run."""

from __future__ import annotations

import os
import sys
import time

import pytest

from doctor.collect import early, netlink

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0, reason="started early only as root on Linux"
)

SAYS = ("sh", "-c", "echo out; echo err >&2; exit 3")
HANGS = ("sleep", "30")


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch):
    def use(*argvs: tuple[str, ...]) -> None:
        monkeypatch.setattr(early, "COMMANDS", argvs)
        monkeypatch.setattr(early, "_nft_listings", lambda bundle: [])

    yield use
    early.stop_all()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_probe_takes_the_status_and_both_outputs(commands) -> None:
    commands(SAYS)
    early.start(["localhost:8080", "--json"])
    assert early.take(SAYS, timeout=5) == (3, "out\n", "err\n")
    assert early.take(SAYS, timeout=5) is None  # taken once; a second run is the probe's own


def test_one_still_running_at_the_timeout_is_killed_and_reaped(commands) -> None:
    commands(HANGS)
    early.start([])
    pid = early._started[HANGS].pid
    began = time.monotonic()
    with pytest.raises(TimeoutError, match=r"did not end within 0\.2 s"):
        early.take(HANGS, timeout=0.2)
    assert time.monotonic() - began < 2
    assert _gone(pid)


def test_what_no_probe_took_is_stopped_at_exit(commands) -> None:
    commands(HANGS, SAYS)
    early.start(["bundle"])
    pids = [s.pid for s in early._started.values()]
    early.stop_all()
    assert all(_gone(pid) for pid in pids)
    assert early._started == {}


@pytest.mark.parametrize(
    "args",
    [["--snapshot", "s", "localhost:80"], ["--snapshot=s"], ["preflight", "c.yml"], ["--help"]],
)
def test_nothing_starts_for_a_replay_or_a_command_that_reads_no_firewall(commands, args) -> None:
    commands(SAYS)
    early.start(args)
    assert early._started == {}


def test_nothing_starts_without_root(commands, monkeypatch: pytest.MonkeyPatch) -> None:
    commands(SAYS)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    early.start(["localhost:80"])
    assert early._started == {}


def test_a_command_not_installed_is_left_to_the_probe(commands) -> None:
    commands(("docker-doctor-no-such-command",), SAYS)
    early.start([])
    assert list(early._started) == [SAYS]


def test_a_second_run_in_the_same_process_stops_what_the_first_left(commands) -> None:
    commands(HANGS)
    early.start([])
    first = early._started[HANGS].pid
    early.start([])  # a second run: the first one's dump is stale
    assert _gone(first) and early._started[HANGS].pid != first


def test_each_native_nft_table_is_listed_early_and_a_bundle_lists_the_whole_ruleset(
    commands, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the nftables probe will list them: the tables iptables-nft owns are iptables-save's."""
    commands()
    monkeypatch.undo()  # the real _nft_listings, with this host's tables as netlink gives them
    monkeypatch.setattr(early, "COMMANDS", ())
    monkeypatch.setattr(
        netlink, "nft_tables", lambda timeout: [("ip", "filter"), ("inet", "firewalld")]
    )
    early.start(["localhost:8080"])
    assert set(early._started) == {("nft", "-j", "list", "table", "inet", "firewalld")}
    early.start(["bundle"])
    assert set(early._started) == {("nft", "-j", "list", "ruleset")}
    early.start(["-H", "ssh://me@far", "localhost:8080"])  # read there, not here
    assert early._started == {}
