"""docker-doctor's entry point, at the edge: every error becomes an exit status here, once.

Only what ``--version`` needs is imported at the top; the grammar (:mod:`doctor.cli.commands`)
and everything behind it load once there is work to do.
"""

from __future__ import annotations

import os
import sys

from doctor import PROG, __version__


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        print(f"{PROG} {__version__}")
        return 0  # ExitStatus.OK, without importing enum (a third of a bare start)
    from doctor.errors import DoctorError, ExitStatus

    debug = any(arg in ("-D", "--debug") or arg.startswith("--debug=t") for arg in args)
    # SIGTERM (a service manager, a CI timeout, `kill`) unwinds the main thread like Ctrl-C,
    # so that its `finally` blocks run: the temporary client namespace and veth, the partial
    # bundle and the temporary directory are removed, not left. (Probe threads are daemons:
    # they end with the process, and what they start is bounded by its own timeout.)
    import contextlib
    import signal  # here, not above: --version stays a bare start

    with contextlib.suppress(ValueError):  # not the main thread (an embedding program's)
        signal.signal(signal.SIGTERM, _terminated)
    try:
        from doctor.collect import early

        early.start(args)  # the firewall dumps, while the rest is imported
        if args[:1] == ["__inside"]:  # the child that probes from a container's namespace
            from doctor.live import inside

            return inside.child_main(args[1:])
        if args[:1] == ["__complete"]:  # a shell asking for completions: no diagnosis stack
            from doctor.cli import completion

            return completion.answer(args[1:])
        from doctor.cli import commands

        status = commands.run(args)
        sys.stdout.flush()  # here, so that a reader gone away is a BrokenPipeError below
        return status
    except DoctorError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except Terminated:
        print(f"{PROG}: terminated", file=sys.stderr)
        return ExitStatus.TERMINATED
    except BrokenPipeError:
        # Whatever is left in stdout's buffer cannot be written either: point it at
        # /dev/null, or the interpreter's own flush at exit complains.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.BROKEN_PIPE
    except Exception as exc:
        if debug:
            raise
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {exc} (run with --debug for the "
            "traceback)",
            file=sys.stderr,
        )
        return ExitStatus.UNDIAGNOSABLE


class Terminated(BaseException):
    """SIGTERM arrived: like KeyboardInterrupt, not an Exception that code might swallow."""


def _terminated(signum: int, frame: object) -> None:
    import signal

    signal.signal(signum, signal.SIG_DFL)  # a second one ends the run at once
    raise Terminated


if __name__ == "__main__":
    raise SystemExit(main())
