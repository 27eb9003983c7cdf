"""`docker-doctor bundle`: everything that matters about this host in one file, for someone else.

A bundle is a snapshot (every probe's raw artifacts, as `--snapshot` reads them), taken
thoroughly (every container's recent log, bounded), redacted in memory before anything
touches the disk, plus the report of a full host checkup made from that same snapshot
and the redaction report.  It is written to a temporary file beside the output and
renamed into place: a bundle is complete or absent.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from msgspec import Struct, field

from doctor import __version__
from doctor.bundle.obfuscate import obfuscate_snapshot
from doctor.bundle.redact import redact_snapshot
from doctor.bundle.redact import report as redaction_report
from doctor.collect.collector import collect, stop_if_engine_unreachable
from doctor.collect.engine_api import Endpoint, resolve_endpoint
from doctor.diagnosis.diagnose import Options, diagnose
from doctor.errors import DoctorError
from doctor.plugin.manager import load_plugins
from doctor.snapshot import artifacts as a
from doctor.snapshot.store import MANIFEST

REPORT = "report.json"
REDACTIONS = "redactions.json"


class Summary(Struct):
    path: Path
    size: int
    artifacts: int
    redacted: dict[str, int]  # rule -> count
    left_out: list[str] = field(default_factory=list)  # what could not be read, and why
    redact: bool = True
    obfuscated_ips: int | None = None  # how many addresses got pseudonyms (None: not asked)


def default_name(now: float | None = None, host: str | None = None) -> Path:
    """docker-doctor-bundle-HOST-TIME.tar.gz, of this host unless ``host`` names another."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path(f"docker-doctor-bundle-{host or socket.gethostname()}-{stamp}.tar.gz")


def write_bundle(
    output: Path,
    timeout: float,
    redact: bool,
    progress: Callable[[str], None],
    obfuscate_ips: bool = False,
    endpoint: Endpoint | None = None,
) -> Summary:
    plugins = load_plugins()
    progress("reading the engine and the host")
    snapshot, outcomes = collect(
        plugins.probes, time.monotonic() + timeout, endpoint or resolve_endpoint(), thorough=True
    )
    stop_if_engine_unreachable(outcomes)
    redactions = []
    if redact:
        progress("redacting secrets")
        redactions = redact_snapshot(snapshot)
    obfuscated = 0
    if obfuscate_ips:
        progress("giving IP addresses pseudonyms")
        obfuscated = obfuscate_snapshot(snapshot)
    snapshot.meta.update(
        {
            "obfuscated_ips": obfuscated if obfuscate_ips else None,
            "command": sys.argv[1:] if sys.argv else [],
            "doctor": __version__,
            "redacted": redact,
            "created": time.time(),
            "hostname": socket.gethostname(),
        }
    )
    progress("checking up the host from the snapshot")
    report = diagnose(None, Options(live=False, timeout=timeout), snapshot, plugins)
    snapshot.meta["engine"] = report.doctor.get("engine")
    snapshot.meta["platform"] = report.doctor.get("platform")
    progress(f"writing {output}")
    members = snapshot.files()  # in memory: no temporary directory to leave behind
    members[REPORT] = json.dumps(report.to_dict(), indent=1, default=str).encode()
    members[REDACTIONS] = json.dumps(redaction_report(redactions), indent=1).encode()
    _write_tar(output, members)
    counts: dict[str, int] = {}
    for r in redactions:
        counts[r.rule] = counts.get(r.rule, 0) + 1
    left_out = [f"{p.name}: {p.detail}" for p in snapshot.probes if p.status != "ok"]
    bounds = snapshot.json(a.LOG_BOUNDS) or {}
    if bounds.get("cut"):
        left_out.append(
            f"logs of {len(bounds['cut'])} container(s) cut to their newest "
            f"{bounds['bytes_per_container'] // 1024} KiB"
        )
    if bounds.get("left_out"):
        left_out.append(
            f"logs of {len(bounds['left_out'])} container(s) left out: "
            f"{bounds['bytes_in_all'] // (1024 * 1024)} MiB of logs in all"
        )
    return Summary(
        output,
        output.stat().st_size,
        len(snapshot.artifacts),
        counts,
        left_out,
        redact,
        obfuscated if obfuscate_ips else None,
    )


def _write_tar(output: Path, members: dict[str, bytes]) -> None:
    """Write the archive beside ``output`` and rename it into place; a disk that fills or a
    directory that refuses is one line of error, and no partial file is left."""
    top = output.name.removesuffix(".tar.gz").removesuffix(".tgz")
    try:
        _write_partial_then_rename(output, top, members)
    except OSError as exc:
        raise DoctorError(
            f"cannot write the bundle to {output}: {exc.strerror or exc} (nothing was written)"
        ) from None


def _write_partial_then_rename(output: Path, top: str, members: dict[str, bytes]) -> None:
    # Named before it is made, and made inside the try: a signal at any moment after it exists
    # finds it to remove (mkstemp's file exists a few bytecodes before its name is returned).
    partial = output.with_name(f".{output.name}.{secrets.token_hex(8)}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name in sorted(members, key=lambda n: (n != MANIFEST, n)):
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size, info.mtime, info.mode = len(members[name]), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(members[name]))
        os.replace(partial, output)  # made 0600: a bundle describes a host, for its owner
    except FileExistsError:
        raise  # another's file of that name (never seen): not ours to remove
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


class Progress:
    """A spinner on stderr saying what the bundle is doing, when a person is watching."""

    def __init__(self) -> None:
        from rich.console import Console

        console = Console(stderr=True)
        self._status = console.status("") if console.is_terminal else None
        if self._status:
            self._status.start()

    def __call__(self, step: str) -> None:
        if self._status:
            self._status.update(f"{step} ...")

    def close(self) -> None:
        if self._status:
            self._status.stop()
