"""Fixtures for tests against a real Docker Engine (see tests/staging.py).

A test that uses `engine`, `image` or `stage` is marked `engine`, and a test
marked `engine` gets the `engine` fixture, so `-m "not engine"` selects the
tests that need no engine. Without root and without an answering engine those
tests are skipped, loudly: the reason is repeated in the terminal summary.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.support.staging import (
    OutsideClient,
    Stage,
    engine_answers,
    ensure_engine,
    ensure_image,
    remove_leftovers,
    running_engine_version,
    wanted_engine,
)

NEEDS_ROOT = "needs root to start a Docker Engine (run as root or via .ci/run)"


def pytest_report_header() -> str:
    return (
        f"Docker Engine wanted: {wanted_engine()} ($DOCKER_DOCTOR_ENGINE); answering now: "
        f"{running_engine_version(timeout=5) or 'none'}"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engine: needs a real Docker Engine")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(autouse=True)
def _engine_for_marked_tests(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("engine"):
        request.getfixturevalue("engine")


@pytest.fixture(scope="session")
def engine() -> None:
    """A Docker Engine that answers, started here if need be (as root)."""
    if os.geteuid() != 0 and not engine_answers():
        if os.environ.get("CI"):  # a CI run that skips every engine test proves nothing
            pytest.fail(NEEDS_ROOT, pytrace=False)
        pytest.skip(NEEDS_ROOT)
    ensure_engine()
    remove_leftovers()


@pytest.fixture(scope="session")
def image(engine: None) -> str:
    """Reference of the busybox test image (httpd by default, /bin/udp-listener)."""
    return ensure_image()


@pytest.fixture
def stage(engine: None, image: str) -> Iterator[Stage]:
    """A Stage for this test; all it created is removed afterwards, also on failure."""
    with Stage(image) as test_stage:
        yield test_stage


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        if re.search(r"\b(root|engine)\b", reason, re.IGNORECASE):
            reasons[reason] += 1
    if reasons:
        terminalreporter.write_sep(
            "!", "tests needing a Docker Engine were SKIPPED", red=True, bold=True
        )
        for reason, count in reasons.items():
            terminalreporter.write_line(f"{count} skipped: {reason}", red=True, bold=True)


@pytest.fixture
def published(stage: Stage) -> tuple[str, OutsideClient, int]:
    """A healthy published port (PORT:80), the outside client that reaches it, and the port."""
    port = stage.free_port()
    web = stage.run("web", "-p", f"{port}:80", wait_port=80)
    client = stage.outside_client()
    assert client.connect(client.host_address, port) == "connected"
    return web, client, port
