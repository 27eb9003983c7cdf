"""The command line's grammar: the parsers of every subcommand, and what each one runs.

Imported by :mod:`doctor.cli` only once it knows it has real work to do, so that
``--version`` imports none of it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from doctor import PROG, __version__
from doctor.cli import dockercli
from doctor.collect.engine_api import ClientFlags
from doctor.errors import DoctorError, ExitStatus, UsageError

if TYPE_CHECKING:
    from doctor.collect.engine_api import Endpoint
    from doctor.plugin.manager import Plugins
    from doctor.report.document import Report

USAGE = f"""\
{PROG} TARGET [--from host|external|CONTAINER] [--json] [--no-live] [--timeout S] [-v]
       {PROG} TARGET --client ADDRESS      for a client on another machine, by its address
       {PROG}                              check up the whole host: ports, networks, DNS, sysctls
       {PROG} TARGET --snapshot DIR        diagnose from a saved snapshot
       {PROG} TARGET --save-snapshot DIR   also keep what was read, to replay it later
       {PROG} bundle [-o FILE]             write a support bundle (secrets redacted)
       {PROG} report BUNDLE --html -o FILE a bundle as one page for the browser
       {PROG} preflight [FILE ...]         check a compose file before a deploy
       {PROG} explain CODE                 what a cause code means and how it is fixed
       {PROG} completion bash|zsh|fish     a shell completion script
       {PROG} plugin install|uninstall     make it `docker doctor`, a docker CLI plugin

Global options, as the docker CLI's: --context NAME, -H/--host URL, --config DIR, --tls,
--tlsverify, --tlscacert FILE, --tlscert FILE, --tlskey FILE, -D (--debug)"""

TARGET_HELP = (
    "localhost:8080, 127.0.0.1:8080, [::1]:8080, :8080, 8080, 8080/udp, http://host:8080/path, "
    "an address or name of this host, CONTAINER or CONTAINER:PORT"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def diagnose_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage=USAGE,
        description="Why can't I reach my container? "
        "The verdict, the hop where traffic dies, the cause and the fix.",
    )
    parser.add_argument("target", nargs="?", help=f"{TARGET_HELP}; none: check up the whole host")
    parser.add_argument(
        "--from",
        dest="vantage",
        metavar="SOURCE",
        help="where the client is: host, external (another machine), or a container "
        "(name, id or compose service); default: host for loopback targets, external otherwise",
    )
    parser.add_argument(
        "--client",
        metavar="ADDRESS",
        help="the IP address of the client on another machine: firewall rules match on it and "
        "replies are routed by it; with a TARGET that is not this host, a flow this host forwards",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the JSON report, nothing else, on stdout"
    )
    parser.add_argument(
        "--no-live", action="store_true", help="static analysis only: send no packets"
    )
    parser.add_argument(
        "--probe-external",
        action="store_true",
        help="send a real SYN from a temporary client namespace (root; removed afterwards) "
        "and capture on the container's bridge",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="bound the whole run"
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        metavar="PATH",
        help="diagnose from a bundle (.tar.gz) or a snapshot directory instead of this host",
    )
    parser.add_argument(
        "--save-snapshot", type=Path, metavar="DIR", help="write what the probes read to DIR"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="list every probe, skipped ones too"
    )
    parser.add_argument(
        "--list-codes", action="store_true", help="list every cause code of the installed plugins"
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


class Invocation(Struct, frozen=True):
    flags: ClientFlags  # the docker CLI's global options
    debug: bool
    args: list[str]  # the rest: docker-doctor's own command line


def global_options() -> argparse.ArgumentParser:
    """The docker CLI's global options (`docker --help`), all but -v (docker's --version)."""
    parser = _Parser(add_help=False, allow_abbrev=False)
    parser.add_argument("--config", metavar="DIR")
    parser.add_argument("-c", "--context", metavar="NAME")
    parser.add_argument("-D", "--debug", action="store_true")  # show tracebacks
    parser.add_argument("-H", "--host", action="append", default=[], metavar="URL")
    parser.add_argument("-l", "--log-level", metavar="LEVEL")  # taken; docker-doctor writes no log
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--tlsverify", action="store_true")
    parser.add_argument("--tlscacert", metavar="FILE")
    parser.add_argument("--tlscert", metavar="FILE")
    parser.add_argument("--tlskey", metavar="FILE")
    return parser


def parse_invocation(args: Sequence[str], env: Mapping[str, str] = os.environ) -> Invocation:
    """Take the docker CLI's global options out of ``args`` (wherever they stand), and the word
    ``doctor`` when the docker CLI runs this as ``docker doctor``."""
    given = [switch for arg in args if (switch := _switch(arg)) is not None]
    known, rest = global_options().parse_known_args(given)
    if len(known.host) > 1:
        raise UsageError("specify only one -H")
    if env.get(dockercli.REEXEC_ENV) and rest[:1] == [dockercli.NAME]:
        rest = rest[1:]
    flags = ClientFlags(
        known.config,
        known.context,
        known.host[0] if known.host else None,
        known.tls,
        known.tlsverify,
        known.tlscacert,
        known.tlscert,
        known.tlskey,
    )
    return Invocation(flags, known.debug, rest)


SWITCHES = ("-D", "--debug", "--tls", "--tlsverify")  # the boolean global options


def _switch(arg: str) -> str | None:
    """``--tls=true`` is ``--tls``, ``--tls=false`` is none, as the docker CLI's flags take them."""
    name, equals, value = arg.partition("=")
    if not equals or name not in SWITCHES:
        return arg
    if value.lower() in ("true", "t", "1"):
        return name
    if value.lower() in ("false", "f", "0"):
        return None
    raise UsageError(f"invalid argument {value!r} for {name}: want true or false")


def run(args: list[str]) -> int:
    """Run the command line ``args`` (without the program's name); its exit status."""
    if args == [dockercli.METADATA_COMMAND]:
        print(json.dumps(dockercli.metadata()))
        return ExitStatus.OK
    invocation = parse_invocation(args)
    command = SUBCOMMANDS.get(invocation.args[0]) if invocation.args else None
    if command:
        return command.run(command.parser().parse_args(invocation.args[1:]), invocation.flags)
    return _diagnose(
        diagnose_parser().parse_args(invocation.args), invocation.flags, invocation.args
    )


def _endpoint(flags: ClientFlags) -> Endpoint:
    from doctor.collect.engine_api import resolve_endpoint

    return resolve_endpoint(flags=flags)


def _diagnose(args: argparse.Namespace, flags: ClientFlags, argv: list[str]) -> int:
    """``argv``, parsed as ``args``: a diagnosis (or checkup) here, or on a host over SSH."""
    from doctor.diagnosis.diagnose import (  # deferred: keeps --version and errors fast
        Options,
        diagnose,
    )
    from doctor.path.target import parse_client, parse_target
    from doctor.snapshot.store import Snapshot

    if args.list_codes:
        from doctor.plugin.manager import load_plugins

        return _list_codes(load_plugins(), args.json)
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    spec = (
        parse_target(args.target) if args.target else None
    )  # bad targets fail before anything is read
    if spec is None and (args.vantage or args.client):
        option = "--from" if args.vantage else "--client"
        raise UsageError(
            f"{option} needs a TARGET (a checkup of the whole host has no single client)"
        )
    client = parse_client(args.client) if args.client else None
    if args.snapshot and args.save_snapshot:
        raise UsageError("--snapshot and --save-snapshot do not go together")
    snapshot = Snapshot.load(args.snapshot) if args.snapshot else None
    if args.probe_external and args.no_live:
        raise UsageError("--probe-external sends packets; --no-live sends none")
    endpoint = None if snapshot else _endpoint(flags)
    if endpoint and endpoint.host.startswith("ssh://"):
        if args.save_snapshot:
            raise UsageError(
                "--save-snapshot writes here what is read there: over SSH, `bundle` does that"
            )
        from doctor.remote import ssh

        return ssh.diagnose(endpoint.host, argv, args.timeout)
    options = Options(
        live=not args.no_live,
        timeout=args.timeout,
        vantage=args.vantage,
        client=client,
        save_snapshot=args.save_snapshot,
        probe_external=args.probe_external,
        endpoint=endpoint,
    )
    report = diagnose(spec, options, snapshot)

    if args.json:
        from doctor.report import json as reporter

        reporter.render(report, sys.stdout)
    else:
        from doctor.report import text

        text.render(report, sys.stdout, verbose=args.verbose)
    return exit_status(report)


def exit_status(report: Report) -> ExitStatus:
    if report.verdict == "undetermined":
        return ExitStatus.UNDIAGNOSABLE
    problems = any(f.severity in ("error", "warning") for f in report.findings)
    return ExitStatus.OK if report.verdict == "reachable" and not problems else ExitStatus.PROBLEMS


def bundle_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} bundle",
        description="Write a support bundle: every probe's raw artifacts, "
        "a host checkup, container logs; secrets redacted before anything is written.",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="where to write it (default: docker-doctor-bundle-HOST-TIME.tar.gz here)",
    )
    parser.add_argument(
        "--no-redact", action="store_true", help="keep secrets in (a warning says so)"
    )
    parser.add_argument(
        "--obfuscate-ips",
        action="store_true",
        help="replace IPv4 addresses by consistent pseudonyms that keep subnets (and stay "
        "out of Docker's own ranges)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="bound the reading"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _check_directory_of(output: Path) -> None:
    """-o FILE: its directory must be there (nothing is created to write it)."""
    if not (output.parent if str(output.parent) else Path(".")).is_dir():
        raise UsageError(f"-o {output}: no such directory {output.parent}")


def _bundle(opts: argparse.Namespace, flags: ClientFlags) -> int:
    from doctor.bundle.write import Progress, default_name, write_bundle

    endpoint = _endpoint(flags)
    remote = endpoint.host if endpoint.host.startswith("ssh://") else None
    if remote:
        from doctor.remote import ssh

        named = default_name(host=ssh.parse_url(remote).host)
    else:
        named = default_name()
    # -o DIR: the default name, in DIR
    output = opts.output / named if opts.output and opts.output.is_dir() else opts.output or named
    _check_directory_of(output)
    if remote:  # written there (which warns of --no-redact itself), fetched here
        options = [
            *(["--no-redact"] if opts.no_redact else []),
            *(["--obfuscate-ips"] if opts.obfuscate_ips else []),
            *("--timeout", str(opts.timeout)),
        ]
        status, fetched = ssh.bundle(remote, options, output, opts.timeout)
        if fetched is not None:
            _show_bundle(fetched, not opts.no_redact, opts.json)
        return status
    if opts.no_redact:
        print(
            f"{PROG}: warning: --no-redact: the bundle keeps passwords, tokens and keys found in "
            "environments, commands, labels and logs; share it with care",
            file=sys.stderr,
        )
    progress = Progress()
    try:
        summary = write_bundle(
            output, opts.timeout, not opts.no_redact, progress, opts.obfuscate_ips, endpoint
        )
    finally:
        progress.close()
    shown = {
        "path": str(summary.path),
        "bytes": summary.size,
        "artifacts": summary.artifacts,
        "redacted": summary.redacted,
        "obfuscated_ips": summary.obfuscated_ips,
        "left_out": summary.left_out,
    }
    _show_bundle(shown, summary.redact, opts.json)
    return ExitStatus.OK


def _show_bundle(summary: Mapping[str, Any], redact: bool, as_json: bool) -> None:
    """A bundle's summary (the JSON that ``--json`` prints), as JSON or as lines."""
    from doctor.report.inert import inert

    if as_json:
        print(json.dumps(summary, indent=2))
        return
    redacted = (
        ", ".join(f"{n} {rule}" for rule, n in sorted(summary["redacted"].items()))
        or "nothing found"
    )
    print(
        f"bundle: {summary['path']} ({summary['bytes'] / 1024:.0f} KiB, "
        f"{summary['artifacts']} artifacts)"
    )
    print(f"redacted: {inert(redacted)}" if redact else "redacted: nothing (--no-redact)")
    if redact:
        print(
            "  (which file, which field, which rule: redactions.json in the bundle; the values are "
            "not kept)"
        )
    if summary["obfuscated_ips"] is not None:
        print(f"IP addresses: {summary['obfuscated_ips']} replaced by consistent pseudonyms")
    for line in summary["left_out"]:
        print(f"left out: {inert(line)}")


def preflight_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} preflight",
        description="Check a compose file before deploying it: the "
        "networking mistakes, statically and against this host.",
    )
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="compose files, merged in order (default: compose.yaml & co. here)",
    )
    parser.add_argument(
        "-f",
        "--file",
        dest="more",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="another compose file (as docker compose -f)",
    )
    parser.add_argument("--format", choices=("text", "json", "sarif", "junit"), default="text")
    parser.add_argument("--json", action="store_true", help="same as --format json")
    parser.add_argument("--no-live", action="store_true", help="check the file only, not this host")
    parser.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        default="error",
        help="exit 1 on errors (default), or on warnings too",
    )
    parser.add_argument(
        "--ignore-file",
        type=Path,
        metavar="PATH",
        help="codes and services to ignore, each with a reason (default: "
        f"./{'.docker-doctor.yaml'})",
    )
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    return parser


def _preflight(opts: argparse.Namespace, flags: ClientFlags) -> int:
    from doctor.plugin.manager import load_plugins
    from doctor.preflight import compose
    from doctor.preflight.check import IGNORE_FILE, check, read_waivers

    files = compose.find_files([*opts.files, *opts.more], Path.cwd())
    project = compose.load(files)
    plugins = load_plugins()
    ignore = opts.ignore_file or (Path.cwd() / IGNORE_FILE)
    waivers = read_waivers(ignore, plugins.codes) if opts.ignore_file or ignore.is_file() else []
    report = check(
        project,
        plugins,
        not opts.no_live,
        opts.timeout,
        waivers,
        None if opts.no_live else _endpoint(flags),
    )
    form = "json" if opts.json else opts.format
    if form == "json":
        from doctor.report import json as reporter

        reporter.render(report, sys.stdout)
    elif form == "sarif":
        from doctor.report import sarif

        sarif.render(report, sys.stdout, plugins.codes)
    elif form == "junit":
        from doctor.report import junit

        junit.render(report, sys.stdout, opts.fail_on)
    else:
        from doctor.report import text

        text.render(report, sys.stdout)
    failing = ("error", "warning") if opts.fail_on == "warning" else ("error",)
    return (
        ExitStatus.PROBLEMS
        if any(f.severity in failing for f in report.findings)
        else ExitStatus.OK
    )


def explain_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} explain",
        description="What a cause code means, how it is detected and fixed; "
        "without CODE, every code of every installed plugin.",
    )
    parser.add_argument("code", nargs="?")
    parser.add_argument("--json", action="store_true")
    return parser


def _explain(opts: argparse.Namespace, flags: ClientFlags) -> int:
    from doctor.plugin.manager import load_plugins

    plugins = load_plugins()
    if opts.code is None:
        return _list_codes(plugins, opts.json)
    code = opts.code.upper().replace("-", "_")
    if code not in plugins.codes:
        import difflib  # only when a name is wrong

        close = difflib.get_close_matches(code, plugins.codes, n=3)
        raise UsageError(
            f"unknown cause code {opts.code!r}"
            + (f" (did you mean {', '.join(close)}?)" if close else "")
        )
    entry = plugins.codes[code]
    rules = plugins.detectors(code)
    if opts.json:
        print(
            json.dumps(
                {
                    "code": code,
                    "title": entry.title,
                    "meaning": entry.meaning,
                    "proof": entry.proof,
                    "fix": entry.fix,
                    "detected_by": rules,
                },
                indent=2,
            )
        )
        return ExitStatus.OK
    detected = ", ".join(rules) if rules else "no installed rule detects this yet"
    print(
        f"{code}: {entry.title}\n\n{entry.meaning}\n\nProved by: {entry.proof}\nFix: {entry.fix}\n"
        f"Detected by: {detected}"
    )
    return ExitStatus.OK


def _list_codes(plugins: Plugins, as_json: bool) -> int:
    if as_json:
        print(
            json.dumps(
                [
                    {"code": name, "title": code.title, "detected_by": plugins.detectors(name)}
                    for name, code in sorted(plugins.codes.items())
                ],
                indent=2,
            )
        )
        return ExitStatus.OK
    width = max(map(len, plugins.codes), default=0)
    for name, code in sorted(plugins.codes.items()):
        print(f"{name:<{width}}  {code.title}")
    return ExitStatus.OK


def completion_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} completion",
        description="Print a shell completion script: subcommands, "
        "flags, containers and cause codes. bash: source <(docker-doctor completion bash); "
        "zsh: source <(docker-doctor completion zsh); fish: docker-doctor completion fish | source",
    )
    parser.add_argument("shell", choices=SHELLS)
    return parser


SHELLS = ("bash", "zsh", "fish")


def _completion(opts: argparse.Namespace, flags: ClientFlags) -> int:
    from importlib.resources import files

    sys.stdout.write((files("doctor.cli") / "shell" / f"completion.{opts.shell}").read_text())
    return ExitStatus.OK


def plugin_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} plugin",
        description="Make docker-doctor a docker CLI plugin, `docker doctor`: "
        "link it into the CLI's plugin directory (~/.docker/cli-plugins, or $DOCKER_CONFIG's), "
        "or remove that link.",
    )
    parser.add_argument("action", choices=("install", "uninstall"))
    parser.add_argument(
        "--system",
        action="store_true",
        help=f"for every user: {dockercli.SYSTEM_PLUGIN_DIR} (root)",
    )
    return parser


def _plugin(opts: argparse.Namespace, flags: ClientFlags) -> int:
    directory = dockercli.plugin_dir(flags, opts.system)
    if opts.action == "install":
        print(dockercli.install(directory, dockercli.own_executable()))
    else:
        print(dockercli.uninstall(directory))
    return ExitStatus.OK


def report_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} report",
        description="Draw a bundle (or snapshot directory) as one self-contained HTML page: the "
        "verdict of each published port, its path hop by hop, the causes with evidence and "
        "fixes, the networks and their containers, and what could not be checked.",
    )
    parser.add_argument("bundle", type=Path, help="a bundle (.tar.gz) or a snapshot directory")
    parser.add_argument("--html", action="store_true", required=True, help="write HTML")
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="where to write it (default: stdout)"
    )
    return parser


def _report(opts: argparse.Namespace, flags: ClientFlags) -> int:
    import io

    from doctor.diagnosis.overview import overview
    from doctor.report import html
    from doctor.snapshot.store import Snapshot

    output: Path | None = opts.output
    if output:
        _check_directory_of(output)
        if output.is_dir():
            raise UsageError(f"-o {output}: is a directory")
    view = overview(Snapshot.load(opts.bundle))
    page = io.StringIO()
    html.render(view, opts.bundle.name, page)
    if output is None:
        sys.stdout.write(page.getvalue())
        return ExitStatus.OK
    partial = output.with_name(f".{output.name}.partial")
    try:  # complete or absent: a full disk leaves no half page
        partial.write_text(page.getvalue(), encoding="utf-8")
        os.replace(partial, output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DoctorError(f"cannot write {output}: {exc.strerror or exc}") from None
    broken = sum(p.report.verdict != "reachable" for p in view.ports)
    print(f"{output}: {len(view.ports)} published ports, {broken} not reachable")
    return ExitStatus.OK


class Subcommand(Struct, frozen=True):
    parser: Callable[[], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace, ClientFlags], int]


# Every first word that is not a target. (A container of one of these names: `CONTAINER:PORT`.)
SUBCOMMANDS = {
    "bundle": Subcommand(bundle_parser, _bundle),
    "report": Subcommand(report_parser, _report),
    "preflight": Subcommand(preflight_parser, _preflight),
    "explain": Subcommand(explain_parser, _explain),
    "completion": Subcommand(completion_parser, _completion),
    "plugin": Subcommand(plugin_parser, _plugin),
}
