"""A signal at any moment of a run stops it with its own exit status and one line: never a
crash, never a traceback, never an internal error."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.command import command, environment, moments, signalled

EXAMPLE = (
    Path(__file__).resolve().parent.parent / "fixtures" / "snapshots" / "app-bound-to-loopback"
)
REPLAY = ["localhost:8080", "--snapshot", str(EXAMPLE), "--json"]

# The CLI as installed, with Ctrl-C arriving just as datetime starts to be imported (whoever
# imports it), at the first import event or one of the next seven: each crashed the run before.
SIGNAL_IN_DATETIME_IMPORT = """
import os, signal, sys
after, events = int(os.environ["AFTER"]), [None]
def hook(event, args):
    if events[0] is None:
        if event == "import" and args[0] == "datetime":
            events[0] = 0
    else:
        events[0] += 1
    if events[0] == after:
        signal.raise_signal(signal.SIGINT)
sys.addaudithook(hook)
from doctor.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("after", range(8))
def test_a_signal_while_datetime_is_imported_stops_the_run(after):
    """msgspec's C module imports datetime for its C API as it loads and does not check that
    it got it: a signal inside that import was swallowed, and msgspec's next call ended the
    run with SIGSEGV. The CLI imports datetime first, where the signal stops the run."""
    done = _installed(SIGNAL_IN_DATETIME_IMPORT, AFTER=str(after))
    assert (done.returncode, done.stderr) == (130, "docker-doctor: interrupted\n")


# The CLI as installed, with a signal that lands in a __del__ as the run imports its commands:
# CPython cannot raise there; it printed "Exception ignored ... Traceback" and ran on.
SIGNAL_IN_A_FINALIZER = """
import os, signal, sys
class Dropped:
    def __del__(self):
        signal.raise_signal(int(os.environ["SIGNUM"]))
        sum(range(1000))  # bytecode, where the signal's handler runs (and raises)
def hook(event, args):
    if event == "import" and args[0] == "doctor.cli.commands":
        Dropped()
sys.addaudithook(hook)
from doctor.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    ("signum", "said"),
    [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_in_a_finalizer_stops_the_run(signum, said):
    done = _installed(SIGNAL_IN_A_FINALIZER, SIGNUM=str(int(signum)))
    assert (done.returncode, done.stderr) == (128 + signum, f"docker-doctor: {said}\n")


# Not against the standalone executable: PyInstaller's own bootstrap takes most of its start
# (0.25 s of a 0.3 s replay here) and answers a signal there with a traceback of its own.
def test_a_signal_at_any_moment_of_start_up_stops_the_run_cleanly():
    """Ctrl-C or SIGTERM at sixty moments from start-up to the end of a replay: the run ends with
    its report, or 130 or 143 and one line, or (before it handles signals) by the signal itself;
    never a crash, a traceback or an internal error."""
    argv = [*command(), *REPLAY]
    said = {130: "docker-doctor: interrupted\n", 143: "docker-doctor: terminated\n"}
    outcomes = set()
    for step, after in enumerate(moments(argv, 60)):
        signum = (signal.SIGINT, signal.SIGTERM)[step % 2]
        status, stderr = signalled(argv, after, signum)
        if status in said:
            assert stderr == said[status], stderr
        else:
            assert status in (1, -signum) and "Traceback" not in stderr, (status, stderr)
        outcomes.add(status)
    assert outcomes & {130, 143}, outcomes  # the signals met the run, not only its end


def test_a_signal_that_cpython_wraps_is_still_the_signal():
    """Python 3.11 wraps what ``__set_name__`` raises in a RuntimeError: a Ctrl-C that lands
    there, as a class is made during start-up, stops the run; it is no internal error."""
    from doctor.cli import _signal_behind

    class Interrupting:
        def __set_name__(self, owner, name):
            raise KeyboardInterrupt

    try:
        type("Made", (), {"field": Interrupting()})
    except BaseException as raised:  # what CPython made of it is the point
        caught = raised
    assert isinstance(_signal_behind(caught), KeyboardInterrupt)
    assert _signal_behind(RuntimeError("no signal behind this")) is None


def _installed(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A replay by the CLI as installed, run by ``script`` (which stages the signal)."""
    return subprocess.run(
        [sys.executable, "-c", script, *REPLAY],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env=environment(**env),
        # as a shell starts a foreground command (a suite in the background ignores SIGINT)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
