"""Time docker-doctor against gathering the same facts by hand.

Run as root with the interpreter of an installation (scripts/test installs the wheel in
.venv-test, scripts/try in .venv):

    .venv-test/bin/python -m bench.benchmark [--sizes 5,100] [--repetitions 5]
        [--doctor editable=.venv/bin/docker-doctor --doctor standalone=dist/docker-doctor-linux-x86_64]

For each size N it stages N httpd containers on one user-defined network, each
publishing its own port, then reports medians of: `docker-doctor localhost:PORT
--json`; the manual fact-gathering command below; container to container
(`--from web0 web1:80`, live probes from inside web0's namespace); the host
checkup with no target (every published port diagnosed); `docker-doctor bundle` (time
and size); and, once,
`docker-doctor --version` against a bare start of the same interpreter. Each
`--doctor NAME=PATH` is another installation timed on the same diagnosis and on
`--version`, as a ratio to the first (the one beside the interpreter). The
containers are removed at the end.
"""

from __future__ import annotations

import argparse
import compileall
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support import staging

ROOT = Path(__file__).resolve().parent.parent

# The same facts gathered by hand; their outputs go to /dev/null.
MANUAL = (
    "docker ps -a; docker inspect $(docker ps -aq); docker network inspect $(docker network ls -q);"
    " iptables-save; ss -ltnp"
)
TARGETS = {
    "diagnosis / manual, N=5": 3.0,
    "diagnosis / manual, N=100": 1.5,
    "--version / bare interpreter": 2.0,
}


def docker_doctor() -> str:
    beside = Path(sys.executable).parent / "docker-doctor"
    found = str(beside) if beside.exists() else shutil.which("docker-doctor")
    if found is None:
        sys.exit(f"docker-doctor is neither beside {sys.executable} nor on PATH (pip install .)")
    return found


def other_installs(given: list[str]) -> dict[str, str]:
    installs = {}
    for item in given:
        name, _, path = item.partition("=")
        if not (name and Path(path).is_file()):
            sys.exit(f"--doctor {item}: want NAME=PATH of a docker-doctor executable")
        installs[name] = str(Path(path).absolute())
    return installs


def median_seconds(cmd: Sequence[str], repetitions: int, *, check_json: bool = False) -> float:
    """Median wall time of cmd; with check_json, its stdout must be JSON (a real diagnosis)."""
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        result = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
        )
        times.append(time.perf_counter() - start)
        try:
            if check_json:
                json.loads(result.stdout)
            elif result.returncode != 0:
                raise ValueError
        except ValueError:
            raise RuntimeError(
                f"{' '.join(cmd)} exited {result.returncode}:\n{result.stderr}"
            ) from None
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="5,100", help="numbers of containers, comma-separated")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument(
        "--doctor",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another installation to compare with the one beside this interpreter",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    others = other_installs(args.doctor)

    # As pip leaves an installed package: compiled to bytecode. An editable install
    # compiles on first import instead, and not at all under PYTHONDONTWRITEBYTECODE,
    # which would time the compiler (~50 ms a run) rather than docker-doctor.
    for folder in ("doctor", "probes", "rules"):
        compileall.compile_dir(str(ROOT / folder), quiet=1)
    staging.ensure_engine()
    image = staging.ensure_image()
    medians: dict[str, float] = {}
    ratios: dict[str, float] = {}
    sizes_kib: dict[str, float] = {}
    for size in sizes:
        with staging.Stage(image) as stage:
            ports = [stage.free_port() for _ in range(size)]
            network = stage.network("bench")
            with ThreadPoolExecutor(max_workers=8) as pool:  # docker run is mostly waiting
                runs = [
                    pool.submit(
                        stage.run, f"web{i}", "--network", network, "-p", f"{port}:80", wait_port=80
                    )
                    for i, port in enumerate(ports)
                ]
                for run in runs:
                    run.result()
            manual = median_seconds(
                ["bash", "-c", f"{{ {MANUAL}; }} >/dev/null 2>&1"], args.repetitions
            )
            medians[f"manual, N={size}"] = manual
            print(f"N={size}: manual {manual:.3f} s", file=sys.stderr)
            diagnosis = median_seconds(
                [docker_doctor(), f"localhost:{ports[0]}", "--json"],
                args.repetitions,
                check_json=True,
            )
            medians[f"diagnosis, N={size}"] = diagnosis
            ratios[f"diagnosis / manual, N={size}"] = diagnosis / manual
            for name, path in others.items():
                seconds = median_seconds(
                    [path, f"localhost:{ports[0]}", "--json"], args.repetitions, check_json=True
                )
                medians[f"diagnosis ({name}), N={size}"] = seconds
                ratios[f"diagnosis, {name} / installed, N={size}"] = seconds / diagnosis
            medians[f"--from web0 web1:80, N={size}"] = median_seconds(
                [
                    docker_doctor(),
                    f"{stage.prefix}-web1:80",
                    "--from",
                    f"{stage.prefix}-web0",
                    "--json",
                ],
                args.repetitions,
                check_json=True,
            )
            medians[f"host checkup, N={size}"] = median_seconds(
                [docker_doctor(), "--json"], args.repetitions, check_json=True
            )
            with tempfile.TemporaryDirectory() as tmp:
                bundle = Path(tmp, "bundle.tar.gz")
                medians[f"bundle, N={size}"] = median_seconds(
                    [docker_doctor(), "bundle", "-o", str(bundle), "--json"],
                    args.repetitions,
                    check_json=True,
                )
                sizes_kib[f"bundle size, N={size}"] = bundle.stat().st_size / 1024
    version = median_seconds([docker_doctor(), "--version"], args.repetitions)
    bare = median_seconds([sys.executable, "-c", "pass"], args.repetitions)
    medians |= {"docker-doctor --version": version, "bare interpreter": bare}
    ratios["--version / bare interpreter"] = version / bare
    for name, path in others.items():
        medians[f"--version ({name})"] = seconds = median_seconds(
            [path, "--version"], args.repetitions
        )
        ratios[f"--version, {name} / bare interpreter"] = seconds / bare

    width = max(map(len, [*medians, *ratios])) + 2
    print(f"\n{'median of ' + str(args.repetitions):<{width}}{'seconds':>10}")
    for label, seconds in medians.items():
        print(f"{label:<{width}}{seconds:>10.3f}")
    for label, kib in sizes_kib.items():
        print(f"{label:<{width}}{kib:>9.0f} KiB")
    print(f"\n{'ratio':<{width}}{'value':>10}{'target':>10}")
    for label, ratio in ratios.items():
        target = TARGETS.get(label)
        verdict = (
            ""
            if target is None
            else f"{f'<={target:g}x':>10}  {'ok' if ratio <= target else 'MISSED'}"
        )
        print(f"{label:<{width}}{ratio:>9.2f}x{verdict}")


if __name__ == "__main__":
    main()
