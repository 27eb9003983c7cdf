"""Time docker-doctor against gathering the same facts by hand, at growing sizes.

Run as root with the interpreter of an installation (scripts/test installs the wheel in
.venv-test, scripts/try in .venv):

    .venv-test/bin/python -m bench.benchmark [--sizes 5,100,300,1000] [--published 100]
        [--rules 10000] [--repetitions 5]
        [--doctor before=/path/to/docker-doctor --doctor standalone=dist/docker-doctor-linux-x86_64]

For each size N it stages N httpd containers, 250 to a user-defined network; the first
``--published`` of them publish a port each (a big host runs many containers that publish
nothing). Then, interleaved (one run of each command in turn, ``--repetitions`` times),
it times:

- the manual ladder below, which gathers by hand what a diagnosis reads;
- ``docker-doctor localhost:PORT --json``, one published port;
- ``--from web0 web1:80``, container to container (live probes from web0's namespace);
- the host checkup with no target (every published port diagnosed);
- ``docker-doctor bundle`` (time, size, peak memory).

Then, at the smallest size, a host whose packets pass ``--rules`` extra rules: iptables
rules in DOCKER-USER and INPUT (as fail2ban or CrowdSec leave them), and a native nft table
of the same size in the forward and input hooks; the ladder there also prints the nft
ruleset. Every ``--doctor NAME=PATH`` is another installation timed on the same commands
(say ``before=`` an install of the previous release). It prints medians and the peak
memory (RSS, largest process) of each command, the ratios against the ladder measured
in the same run, the targets, and a table of time per size. Everything staged is removed
at the end.
"""

from __future__ import annotations

import argparse
import compileall
import ipaddress
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import staging

ROOT = Path(__file__).resolve().parent.parent

# The same facts gathered by hand; their outputs go to /dev/null.
MANUAL = (
    "docker ps -a; docker inspect $(docker ps -aq); docker network inspect $(docker network ls -q);"
    " iptables-save; ss -ltnp"
)
MANUAL_NFT = MANUAL + "; nft list ruleset"
PER_NETWORK = 250  # a Linux bridge takes at most 1,024 ports
# Source addresses of the extra rules: the shared address space (RFC 6598), never a client here.
EXTRA_SOURCES = ipaddress.ip_network("100.64.0.0/10")
EXTRA_CHAIN = "DD-BENCH-BLOCKLIST"
NFT_TABLE = "dd_bench"


@dataclass(frozen=True)
class Target:
    """A ratio to meet: ``label``'s median over the ladder's, at most ``limit``."""

    label: str
    limit: float


TARGETS = (
    Target("diagnosis / manual, N=100", 1.0),
    Target("diagnosis / manual, N=1000", 0.5),
    Target("diagnosis N=1000 / diagnosis N=5", 1.5),
    Target("diagnosis / manual, +rules", 1.2),
    Target("diagnosis / manual, +nft rules", 1.2),
    Target("host checkup / manual, N=100", 2.5),
    Target("bundle / manual, N=1000", 20.0),
    Target("--version / bare interpreter", 1.5),
)
LIMITS_MIB = {"peak memory, N=1000": 200.0}
BUNDLE_LIMIT_MIB = 20.0


@dataclass
class Measured:
    seconds: list[float] = field(default_factory=list)
    peak_kib: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def docker_doctor() -> str:
    beside = Path(sys.executable).parent / "docker-doctor"
    found = str(beside) if beside.exists() else shutil.which("docker-doctor")
    if found is None:
        sys.exit(f"docker-doctor is neither beside {sys.executable} nor on PATH (pip install .)")
    return found


def installs(given: list[str]) -> dict[str, str]:
    """The installation beside this interpreter first ("installed"), then each --doctor."""
    found = {"installed": docker_doctor()}
    for item in given:
        name, _, path = item.partition("=")
        if not (name and Path(path).is_file()):
            sys.exit(f"--doctor {item}: want NAME=PATH of a docker-doctor executable")
        found[name] = str(Path(path).absolute())
    return found


def run_once(cmd: Sequence[str], check_json: bool) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB, the largest process) of one run of ``cmd``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        try:
            if check_json:
                json.loads(out.read())
            elif process.returncode != 0:
                raise ValueError
        except ValueError:
            raise RuntimeError(
                f"{' '.join(cmd)} exited {process.returncode}:\n{err.read().decode()[-2000:]}"
            ) from None
    return seconds, usage.ru_maxrss


def interleaved(
    commands: dict[str, tuple[Sequence[str], bool]], repetitions: int
) -> dict[str, Measured]:
    """Each command once in turn, ``repetitions`` times: a drifting machine moves all alike."""
    measured = {label: Measured() for label in commands}
    for _ in range(repetitions):
        for label, (cmd, check_json) in commands.items():
            seconds, peak = run_once(cmd, check_json)
            measured[label].seconds.append(seconds)
            measured[label].peak_kib = max(measured[label].peak_kib, peak)
    return measured


def shell(script: str) -> tuple[Sequence[str], bool]:
    return ["bash", "-c", f"{{ {script}; }} >/dev/null 2>&1"], False


def stage_containers(stage: staging.Stage, size: int, published: int) -> list[int]:
    """``size`` httpd containers, the first ``published`` publishing a port each; their ports."""
    networks = [stage.network(f"bench{i}") for i in range(-(-size // PER_NETWORK))]
    ports = [stage.free_port() for _ in range(min(size, published))]
    with ThreadPoolExecutor(max_workers=8) as pool:  # docker run is mostly waiting
        runs = [
            pool.submit(
                stage.run,
                f"web{i}",
                "--network",
                networks[i // PER_NETWORK],
                *(["-p", f"{ports[i]}:80"] if i < len(ports) else []),
                wait_port=80,
            )
            for i in range(size)
        ]
        for run in runs:
            run.result()
    return ports


def doctor_commands(
    doctors: dict[str, str], stage: staging.Stage, port: int, bundle_dir: str
) -> dict[str, tuple[Sequence[str], bool]]:
    commands: dict[str, tuple[Sequence[str], bool]] = {}
    web0, web1 = f"{stage.prefix}-web0", f"{stage.prefix}-web1"
    for name, path in doctors.items():
        suffix = "" if name == "installed" else f" ({name})"
        bundle = str(Path(bundle_dir, f"{name}.tar.gz"))
        commands |= {
            f"diagnosis{suffix}": ([path, f"localhost:{port}", "--json"], True),
            f"--from{suffix}": ([path, f"{web1}:80", "--from", web0, "--json"], True),
            f"host checkup{suffix}": ([path, "--json"], True),
            f"bundle{suffix}": ([path, "bundle", "-o", bundle, "--json"], True),
        }
    return commands


@contextmanager
def extra_iptables_rules(count: int) -> Iterator[None]:
    """``count`` source DROP rules in a chain jumped to from DOCKER-USER and INPUT."""
    sources = [str(EXTRA_SOURCES[i + 1]) for i in range(count)]
    text = "\n".join(
        ["*filter", f":{EXTRA_CHAIN} - [0:0]"]
        + [f"-A {EXTRA_CHAIN} -s {source}/32 -j DROP" for source in sources]
        + ["COMMIT", ""]
    )
    subprocess.run(["iptables-restore", "--noflush"], input=text, text=True, check=True)
    try:
        for chain in ("DOCKER-USER", "INPUT"):
            subprocess.run(["iptables", "-I", chain, "-j", EXTRA_CHAIN], check=True)
        yield
    finally:
        for chain in ("DOCKER-USER", "INPUT"):
            subprocess.run(["iptables", "-D", chain, "-j", EXTRA_CHAIN], capture_output=True)
        subprocess.run(["iptables", "-F", EXTRA_CHAIN], check=True)
        subprocess.run(["iptables", "-X", EXTRA_CHAIN], check=True)


@contextmanager
def extra_nft_rules(count: int) -> Iterator[None]:
    """A native nft table whose forward and input chains hold ``count`` rules between them."""
    half = count // 2
    rules = [f"ip saddr {EXTRA_SOURCES[i + 1]} drop" for i in range(count)]
    text = "\n".join(
        [
            f"table inet {NFT_TABLE} {{",
            "  chain forward { type filter hook forward priority -5; policy accept;",
            *(f"    {rule}" for rule in rules[:half]),
            "  }",
            "  chain input { type filter hook input priority -5; policy accept;",
            *(f"    {rule}" for rule in rules[half:]),
            "  }",
            "}",
            "",
        ]
    )
    subprocess.run(["nft", "-f", "-"], input=text, text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="5,100", help="numbers of containers, comma-separated")
    parser.add_argument("--published", type=int, default=100, help="containers that publish a port")
    parser.add_argument("--rules", type=int, default=10000, help="extra firewall rules (0: none)")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument(
        "--doctor",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another installation to time beside the one of this interpreter",
    )
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    doctors = installs(args.doctor)

    # As pip leaves an installed package: compiled to bytecode. An editable install
    # compiles on first import instead, and not at all under PYTHONDONTWRITEBYTECODE,
    # which would time the compiler (~50 ms a run) rather than docker-doctor.
    for folder in ("doctor", "probes", "rules"):
        compileall.compile_dir(str(ROOT / folder), quiet=1)
    staging.ensure_engine()
    image = staging.ensure_image()
    results: dict[str, dict[str, Measured]] = {}  # column (N=5, +rules) -> label -> measured
    bundle_kib: dict[str, float] = {}
    version: dict[str, Measured] = {}
    try:
        for size in sizes:
            column = f"N={size}"
            with staging.Stage(image) as stage, tempfile.TemporaryDirectory() as tmp:
                started = time.monotonic()
                ports = stage_containers(stage, size, args.published)
                print(f"{column}: staged in {time.monotonic() - started:.0f} s", file=sys.stderr)
                commands = {
                    "manual": shell(MANUAL),
                    **doctor_commands(doctors, stage, ports[0], tmp),
                }
                results[column] = interleaved(commands, args.repetitions)
                for name in doctors:
                    bundle_kib[f"{column} {name}"] = (
                        Path(tmp, f"{name}.tar.gz").stat().st_size / 1024
                    )
                if size == sizes[0] and args.rules:
                    for extra_column, ladder, extra in (
                        ("+rules", MANUAL, extra_iptables_rules(args.rules)),
                        ("+nft rules", MANUAL_NFT, extra_nft_rules(args.rules)),
                    ):
                        with extra:
                            commands = {"manual": shell(ladder)}
                            commands |= {
                                label: command
                                for label, command in doctor_commands(
                                    doctors, stage, ports[0], tmp
                                ).items()
                                if label.startswith(("diagnosis", "host checkup"))
                            }
                            results[extra_column] = interleaved(commands, args.repetitions)
                print(f"{column}: measured", file=sys.stderr)
        version = interleaved(
            {
                "bare interpreter": ([sys.executable, "-c", "pass"], False),
                **{
                    f"--version ({name})": ([path, "--version"], False)
                    for name, path in doctors.items()
                },
            },
            max(args.repetitions, 20),
        )
    finally:  # what was measured is shown, even when removing the containers fails
        report(results, version, bundle_kib, sizes, args.repetitions)


def report(
    results: dict[str, dict[str, Measured]],
    version: dict[str, Measured],
    bundle_kib: dict[str, float],
    sizes: list[int],
    repetitions: int,
) -> None:
    ratios: dict[str, float] = {}
    for column, measured in results.items():
        manual = measured["manual"].median
        for label, m in measured.items():
            if label != "manual":
                ratios[f"{label} / manual, {column}"] = m.median / manual
    first, last = f"N={sizes[0]}", f"N={sizes[-1]}"
    if first != last and {first, last} <= set(results):
        ratios[f"diagnosis {last} / diagnosis {first}"] = (
            results[last]["diagnosis"].median / results[first]["diagnosis"].median
        )
    bare = version.pop("bare interpreter", None)
    for label, m in version.items() if bare else ():
        ratios[f"{label} / bare interpreter".replace(" (installed)", "")] = m.median / bare.median

    labels = list(dict.fromkeys(label for measured in results.values() for label in measured))
    columns = list(results)
    width = max(map(len, [*labels, "peak memory, +nft rules"])) + 2
    print(f"\nmedian seconds of {repetitions} interleaved runs (peak RSS in MiB)")
    print(f"{'':<{width}}" + "".join(f"{c:>18}" for c in columns))
    for label in labels:
        cells = [
            f"{m.median:>8.3f} ({m.peak_kib / 1024:>5.1f})" if (m := results[c].get(label)) else ""
            for c in columns
        ]
        print(f"{label:<{width}}" + "".join(f"{cell:>18}" for cell in cells))
    print("\nbundle size")
    for label, kib in bundle_kib.items():
        print(f"  {label:<{width}}{kib:>9.0f} KiB" + _limit(kib / 1024, BUNDLE_LIMIT_MIB, "MiB"))
    print("\npeak memory of the diagnosis and the bundle")
    for column in columns:
        peak = max(m.peak_kib / 1024 for label, m in results[column].items() if label != "manual")
        key = f"peak memory, {column}"
        print(f"  {key:<{width}}{peak:>9.1f} MiB" + _limit(peak, LIMITS_MIB.get(key), "MiB"))
    limits = {t.label: t.limit for t in TARGETS}
    print(f"\n{'ratio':<{width + 20}}{'value':>9}{'target':>10}")
    for label, ratio in ratios.items():
        print(f"{label:<{width + 20}}{ratio:>8.2f}x" + _limit(ratio, limits.get(label), "x"))


def _limit(value: float, limit: float | None, unit: str) -> str:
    if limit is None:
        return ""
    return f"{f'<={limit:g}{unit}':>10}  {'ok' if value <= limit else 'MISSED'}"


if __name__ == "__main__":
    main()
