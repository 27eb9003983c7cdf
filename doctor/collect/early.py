"""Slow commands started at the very beginning of a run, while the rest of the program is
still being imported (~0.2 s): `iptables-save` alone takes 0.1 s on a host with 10,000
rules. A probe that runs one of them takes its output (:func:`take`) instead of starting
it again; whatever no probe took is stopped when the program exits.

Only the firewall dumps are started early: they change nothing, every diagnosis, checkup
and bundle of a Linux host run as root reads them, and they take long enough to matter.
Besides iptables-save, that is the nft listing of each table iptables-nft does not own (found
by netlink in a millisecond; a bundle's whole ruleset): `nft -j` prints 10,000 rules in
0.17 s. Everything here is the standard library's (and netlink's, which is only that): this
module is imported before anything else.
"""

from __future__ import annotations

import atexit
import os
import sys
import time

#: the commands started early, as the probes run them
COMMANDS = (("iptables-save",), ("ip6tables-save",), ("iptables-legacy-save",))
#: the first words of command lines that read nothing of the host's firewall
READS_NO_FIREWALL = ("preflight", "explain", "completion", "plugin", "__inside", "__complete")


class Started:
    """A command started early: its pid, and the memory files its output goes to."""

    def __init__(self, argv: tuple[str, ...]):
        self.argv = argv
        self.stdout = self.stderr = -1
        self.status: int | None = None
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            self.stdout = os.memfd_create("docker-doctor-stdout")
            self.stderr = os.memfd_create("docker-doctor-stderr")
            self.pid = os.posix_spawnp(
                argv[0],
                argv,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, null, 0),
                    (os.POSIX_SPAWN_DUP2, self.stdout, 1),
                    (os.POSIX_SPAWN_DUP2, self.stderr, 2),
                ],
            )
        except BaseException:
            self.close()
            raise
        finally:
            os.close(null)

    def wait(self, timeout: float) -> int | None:
        """The exit status, waiting at most ``timeout`` seconds; None if still running."""
        end = time.monotonic() + timeout
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
            elif time.monotonic() >= end:
                return None
            else:
                time.sleep(0.002)
        return self.status

    def output(self) -> tuple[str, str]:
        return _read(self.stdout), _read(self.stderr)

    def stop(self) -> None:
        """Kill it if it still runs, reap it, and free its output."""
        if self.status is None:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.status = -9
        self.close()

    def close(self) -> None:
        """Free the output files, once: a number closed twice may by then be another's."""
        for fd in (self.stdout, self.stderr):
            if fd >= 0:
                os.close(fd)
        self.stdout = self.stderr = -1


_started: dict[tuple[str, ...], Started] = {}


def start(args: list[str]) -> None:
    """Start :data:`COMMANDS` for the command line ``args``, when it will read this host's
    firewall: as root on Linux, not a replay of a snapshot, not a command that reads none."""
    stop_all()  # what an earlier run in this process left untaken is stale by now
    if (
        sys.platform != "linux"
        or os.geteuid() != 0
        or not hasattr(os, "memfd_create")
        or (args[:1] and args[0] in READS_NO_FIREWALL)
        or any(a in ("-h", "--help", "--version") or a.startswith("--snapshot") for a in args)
        or _elsewhere(args)
    ):
        return
    for argv in (*COMMANDS, *_nft_listings(bundle=args[:1] == ["bundle"])):
        try:
            _started[argv] = Started(argv)
        except OSError:
            continue  # not installed: the probe says so when it runs it
    if _started:
        atexit.unregister(stop_all)  # once, however often a process starts a run
        atexit.register(stop_all)


def _elsewhere(args: list[str]) -> bool:
    """The run is of a host over SSH (-H or DOCKER_HOST; a context's endpoint is not read
    here): its firewall is read there."""
    return any(a.startswith(("ssh://", "--host=ssh://")) for a in args) or (
        os.environ.get("DOCKER_HOST", "").startswith("ssh://")
    )


def _nft_listings(bundle: bool) -> list[tuple[str, ...]]:
    """What the nftables probe will list: a bundle's whole ruleset, else each native table."""
    from doctor.firewall import tables

    if bundle:
        return [tables.WHOLE_RULESET]
    from doctor.collect import netlink

    try:
        found = netlink.nft_tables(timeout=1.0)
    except OSError:  # no nfnetlink: the probe asks nft itself
        return []
    return [tables.listing(*t) for t in found if not tables.owned_by_iptables(*t)]


def take(argv: tuple[str, ...], timeout: float) -> tuple[int, str, str] | None:
    """The exit status, stdout and stderr of ``argv`` if it was started early and ends
    within ``timeout`` (else it is stopped); None if it was not started early."""
    started = _started.pop(argv, None)
    if started is None:
        return None
    try:
        status = started.wait(timeout)
        if status is None:
            raise TimeoutError(f"{' '.join(argv)} did not end within {timeout:.1f} s")
        return (status, *started.output())
    finally:
        started.stop()


def stop_all() -> None:
    """Stop what no probe took (a replay, a failed run, a probe that was skipped)."""
    while _started:
        _started.popitem()[1].stop()


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
