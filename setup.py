"""Package discovery and the command; pyproject.toml holds everything else.

probes/ and rules/ stay at the top of the repository (the design card's layout) but
install as doctor.probes and doctor.rules: PyPI already has popular packages that
import as ``probes`` and ``rules``, and ours must not shadow them.  pyproject.toml
alone can only list mapped packages by hand, and a hand-kept list drifts (a release
once shipped without doctor.facts), so every package is discovered here instead.
"""

from setuptools import find_namespace_packages, setup

MAPPED = {"doctor.probes": "probes", "doctor.rules": "rules"}


def discovered() -> list[str]:
    """Every folder, code or data (doctor/schema, doctor/shell), as setuptools wants data folders
    listed as packages too."""

    def find(where: str = ".", include: tuple[str, ...] = ("*",)) -> list[str]:
        return find_namespace_packages(where, include=include, exclude=["*__pycache__*"])

    packages = find(include=("doctor", "doctor.*"))
    for name, folder in MAPPED.items():
        packages += [name, *(f"{name}.{sub}" for sub in find(folder))]
    return packages


# The command is a script of ours, not a console_scripts entry point: scripts/docker-doctor says why.
setup(packages=discovered(), package_dir=MAPPED, scripts=["scripts/docker-doctor"])
