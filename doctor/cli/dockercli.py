"""docker-doctor as the docker CLI sees it: a CLI plugin (``docker doctor …``) that takes the CLI's
global options.

The contract (docker/cli's ``cli-plugins``): the CLI finds an executable named ``docker-doctor`` in
a ``cli-plugins`` directory, asks it ``docker-doctor docker-cli-plugin-metadata`` for a JSON object,
and runs ``docker doctor ARGS`` as ``docker-doctor [GLOBAL OPTIONS] doctor ARGS`` with
``DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND`` set.  The same global options (``--context``, ``-H``,
``--config``, TLS) work on ``docker-doctor`` itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from doctor import __version__
from doctor.collect.engine_api import ClientFlags
from doctor.errors import DoctorError

NAME = "doctor"  # the word after `docker`
EXECUTABLE = f"docker-{NAME}"
METADATA_COMMAND = "docker-cli-plugin-metadata"
REEXEC_ENV = "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND"  # set by the docker CLI when it runs a plugin
SYSTEM_PLUGIN_DIR = Path(
    "/usr/local/lib/docker/cli-plugins"
)  # the CLI's place for what an admin installs
SHORT_DESCRIPTION = (
    "Diagnose Docker networking: why a port or container is unreachable, and the fix"
)


def metadata() -> dict[str, str]:
    return {
        "SchemaVersion": "0.1.0",
        "Vendor": "docker-doctor",
        "Version": __version__,
        "ShortDescription": SHORT_DESCRIPTION,
    }


def plugin_dir(flags: ClientFlags, system: bool, env: Mapping[str, str] = os.environ) -> Path:
    """Where the docker CLI looks for this user's plugins (``--config``, ``$DOCKER_CONFIG``,
    ``~/.docker``), or the system-wide directory."""
    if system:
        return SYSTEM_PLUGIN_DIR
    return Path(flags.config or env.get("DOCKER_CONFIG") or Path.home() / ".docker") / "cli-plugins"


def own_executable() -> Path:
    """The docker-doctor executable running now, links resolved: the standalone binary, or the
    console script (``argv[0]`` may be the plugin link itself, when the docker CLI ran it)."""
    if getattr(sys, "frozen", False):  # staticx runs a copy unpacked in a temporary directory
        return Path(os.environ.get("STATICX_PROG_PATH") or sys.executable).resolve()
    launched = Path(sys.argv[0]).resolve()
    if launched.name == EXECUTABLE and os.access(launched, os.X_OK):
        return launched
    beside = Path(sys.executable).parent / EXECUTABLE  # `python -m doctor` in a virtual environment
    if os.access(beside, os.X_OK):
        return beside.resolve()
    raise DoctorError(
        f"cannot find the {EXECUTABLE} command to link (install docker-doctor with pipx or pip)"
    )


def install(directory: Path, executable: Path) -> str:
    link = directory / EXECUTABLE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            if Path(os.readlink(link)) == executable:
                return f"already installed: {link} -> {executable}"
            _refuse_unless_ours(link, "replacing")
            link.unlink()  # an earlier install's link
        elif link.exists():
            raise DoctorError(
                f"{link} exists and is not a link made by `docker-doctor plugin install`; "
                "remove it first"
            )
        link.symlink_to(executable)
    except PermissionError as exc:
        raise DoctorError(
            f"cannot write {exc.filename or directory}: permission denied"
            + (" (--system needs root)" if directory == SYSTEM_PLUGIN_DIR else "")
        ) from None
    except OSError as exc:
        raise DoctorError(f"cannot link {link}: {exc.strerror or exc}") from None
    return f"installed: {link} -> {executable}; try: docker {NAME} --help"


def uninstall(directory: Path) -> str:
    link = directory / EXECUTABLE
    if not link.is_symlink():
        if link.exists():
            raise DoctorError(
                f"{link} is not a link made by `docker-doctor plugin install`; not removing it"
            )
        return f"not installed: no {link}"
    _refuse_unless_ours(link, "removing")
    try:
        link.unlink()
    except OSError as exc:
        raise DoctorError(f"cannot remove {link}: {exc.strerror or exc}") from None
    return f"removed: {link}"


def _refuse_unless_ours(link: Path, doing: str) -> None:
    """A link is docker-doctor's when what it points to says so (its plugin metadata), or, when
    it points nowhere any more, when the file it named was a docker-doctor."""
    target = link.parent / os.readlink(link)
    if target.exists():
        try:
            answer = subprocess.run(
                [str(target), METADATA_COMMAND],
                capture_output=True,
                text=True,
                timeout=20,
                stdin=subprocess.DEVNULL,
            )
            ours = json.loads(answer.stdout).get("Vendor") == metadata()["Vendor"]
        except (OSError, ValueError, AttributeError, subprocess.TimeoutExpired):
            ours = False
    else:
        ours = target.name == EXECUTABLE or target.name.startswith(f"{EXECUTABLE}-linux-")
    if not ours:
        raise DoctorError(f"{link} points to {target}, which is not docker-doctor; not {doing} it")
