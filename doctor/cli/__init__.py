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
        sys.unraisablehook = _unraisable
    try:
        # Before msgspec: its C module takes datetime's C API as it loads, with the unchecked
        # PyDateTime_IMPORT (capi-workgroup/problems#81). A Ctrl-C or SIGTERM that lands in
        # that import of datetime is swallowed and leaves msgspec without the API: its next
        # call crashes the run (SIGSEGV). Imported here, such a signal stops the run cleanly.
        import datetime  # noqa: F401

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
    except (KeyboardInterrupt, Terminated) as exc:
        return _stopped(exc)
    except BrokenPipeError:
        # Whatever is left in stdout's buffer cannot be written either: point it at
        # /dev/null, or the interpreter's own flush at exit complains.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.BROKEN_PIPE
    except Exception as exc:
        if (signalled := _signal_behind(exc)) is not None:
            return _stopped(signalled)
        if debug:
            raise
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {exc} (run with --debug for the "
            "traceback)",
            file=sys.stderr,
        )
        return ExitStatus.UNDIAGNOSABLE


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """A signal that landed where CPython cannot raise (a weakref callback of the import
    system's, a ``__del__``) is neither lost nor printed as a traceback: it is raised again at
    the next call or return of the main thread's code after this hook's."""
    if isinstance(unraisable.exc_value, (KeyboardInterrupt, Terminated)):
        stopped = unraisable.exc_value

        def raise_again(frame: object, event: str, arg: object) -> None:
            if getattr(frame, "f_code", None) is _unraisable.__code__:
                return  # this hook's own return: CPython would swallow it here again
            sys.setprofile(None)
            raise stopped

        sys.setprofile(raise_again)
    else:
        sys.__unraisablehook__(unraisable)


def _stopped(signalled: BaseException) -> int:
    from doctor.errors import ExitStatus

    if isinstance(signalled, Terminated):
        print(f"{PROG}: terminated", file=sys.stderr)
        return ExitStatus.TERMINATED
    print(f"{PROG}: interrupted", file=sys.stderr)
    return ExitStatus.INTERRUPTED


def _signal_behind(exc: BaseException) -> BaseException | None:
    """The Ctrl-C or SIGTERM that ``exc`` was raised from, if any: CPython wraps what a signal
    raises in some places (in ``__set_name__`` as the class is made: a RuntimeError), and the
    run was stopped all the same, not broken."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, (KeyboardInterrupt, Terminated)):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


class Terminated(BaseException):
    """SIGTERM arrived: like KeyboardInterrupt, not an Exception that code might swallow."""


def _terminated(signum: int, frame: object) -> None:
    import signal

    signal.signal(signum, signal.SIG_DFL)  # a second one ends the run at once
    raise Terminated


if __name__ == "__main__":
    raise SystemExit(main())
