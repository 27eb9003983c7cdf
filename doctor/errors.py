"""Exit statuses and the errors that map to them; handled once, in the CLI."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0  # reachable, nothing wrong
    PROBLEMS = 1  # unreachable, or problems found
    USAGE = 2  # bad command line, target or input file
    UNDIAGNOSABLE = 3  # daemon unreachable, permission denied, ...
    INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
    TERMINATED = 143  # SIGTERM, as a shell reports it
    BROKEN_PIPE = 141  # the reader of the output went away (`| head`), as a shell reports SIGPIPE


class DoctorError(Exception):
    """An error the user can act on: one line on stderr, no traceback."""

    status = ExitStatus.UNDIAGNOSABLE


class UsageError(DoctorError):
    status = ExitStatus.USAGE


class CannotDiagnose(DoctorError):
    status = ExitStatus.UNDIAGNOSABLE
