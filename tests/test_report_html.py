"""`report BUNDLE --html`: one self-contained page, everything from the bundle escaped, and
what a browser really shows of it (headless Chromium, when scripts/test installed it)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from doctor.diagnosis.overview import Member, NetworkMembers, Overview, PortReport
from doctor.report import html
from doctor.report.document import Evidence, Finding, Fix, Hop, ProbeRun, Report, TargetSummary
from tests.support.command import doctor
from tests.support.page import Page

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "snapshots" / "published-port-mismatch-28.5"
BROWSER_ENV = "DOCKER_DOCTOR_BROWSER"  # scripts/test names the Chromium it installed
ARTIFACTS = ROOT / "test-artifacts"  # kept after the run: the browser's screenshot
HOSTILE = '<img src=x onerror="alert(1)">\x1b[2J\u202e</td></table><script>x()</script>'
TAGS = {  # every element the page may hold: nothing that loads, runs or submits
    *("html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "a", "section"),
    *("table", "tr", "th", "td", "code", "pre", "ol", "li", "span", "div", "strong", "em"),
}


def bundled(directory: Path, tmp_path: Path) -> Path:
    """``directory`` archived as `bundle` lays a bundle out: one top folder."""
    path = tmp_path / f"{directory.name}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(directory, arcname=directory.name)
    return path


@pytest.mark.standalone
def test_a_bundle_becomes_one_page_with_each_port_its_path_and_its_cause(tmp_path):
    out = tmp_path / "report.html"
    done = doctor("report", str(bundled(FIXTURE, tmp_path)), "--html", "-o", str(out))
    assert (done.returncode, done.stdout) == (0, f"{out}: 2 published ports, 2 not reachable\n")
    page = Page(out.read_text(encoding="utf-8"))
    assert set(page.tags) <= TAGS and "script" not in page.tags
    assert all(link.startswith("#port-") for link in page.links)  # nothing fetched when opened
    assert page.classes["broken"].count("✗") >= 2  # each port's path marks where it breaks
    broken = [text for text in page.classes["broken"] if "broken here" in text]
    assert len(broken) == 2 and all("container-listener" in text for text in broken)
    assert [row[2:] for row in page.rows if row[0] in ("127.0.0.1:8080", "[::1]:8080")] == [
        ["✗ unreachable", "PUBLISHED_PORT_MISMATCH"]
    ] * 2
    words = "".join(page.text)
    assert "-p 8080:3000" in words  # the fix
    assert "dd-b7479f-web (172.17.0.2)" in words  # the networks and their containers


@pytest.mark.parametrize(
    "args",
    [
        ["report", str(FIXTURE)],  # no format
        ["report", "/nonexistent", "--html"],
        ["report", str(FIXTURE), "--html", "-o", "/nonexistent/report.html"],
        ["report", str(FIXTURE), "--html", "-o", "/tmp"],
    ],
    ids=["no --html", "no bundle", "no directory", "a directory"],
)
@pytest.mark.standalone
def test_bad_input_is_one_line_and_exit_2(args):
    done = doctor(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("docker-doctor: ")


@pytest.mark.standalone
def test_a_page_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path):
    done = doctor("report", str(FIXTURE), "--html", "-o", "/proc/report.html")
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr.startswith("docker-doctor: cannot write /proc/report.html: ")
    assert len(done.stderr.splitlines()) == 1


def hostile_overview() -> Overview:
    """A report whose every field holds markup, an escape sequence and a bidi override."""
    target = TargetSummary(HOSTILE, "port", "localhost", 8080, "tcp", None)
    finding = Finding(
        "PUBLISHED_PORT_MISMATCH",
        "error",
        0.9,
        HOSTILE,
        HOSTILE,
        HOSTILE,
        (HOSTILE,),
        (Evidence(HOSTILE, {"k": HOSTILE}, HOSTILE),),
        Fix(HOSTILE, (HOSTILE,)),
    )
    # A bundle's manifest is not checked against the report's literals: statuses too are text.
    hops = [Hop(HOSTILE, "broken", HOSTILE, "ok", HOSTILE), Hop(HOSTILE, HOSTILE, HOSTILE)]
    probes = [ProbeRun(HOSTILE, "failed", HOSTILE, 0), ProbeRun(HOSTILE, HOSTILE, HOSTILE, 0)]
    report = Report(target, HOSTILE, "unreachable", [finding], hops, probes, {"version": HOSTILE})
    return Overview(
        report,
        [PortReport(report, HOSTILE)],
        [NetworkMembers(HOSTILE, HOSTILE, (HOSTILE,), (Member(HOSTILE, HOSTILE, False),))],
    )


def test_every_value_from_the_bundle_is_text_never_markup():
    out = io.StringIO()
    html.render(hostile_overview(), HOSTILE, out)
    page = Page(out.getvalue())
    assert set(page.tags) <= TAGS and "img" not in page.tags and "script" not in page.tags
    assert page.links == ["#port-1"]
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()
    shown = '<img src=x onerror="alert(1)">\\x1b[2J\\u202e</td></table><script>x()</script>'
    assert "".join(page.text).count(shown) >= 15  # every field, as the text it was


def browser() -> str | None:
    named = os.environ.get(BROWSER_ENV)
    if named and not Path(named).is_file():
        pytest.fail(f"${BROWSER_ENV} names {named}, which is not there")
    return named or shutil.which("chromium")


def test_a_real_browser_shows_each_port_and_cause(tmp_path):
    chromium = browser()
    if chromium is None:
        pytest.skip("no Chromium here (scripts/test installs Debian's)")
    out = tmp_path / "report.html"
    assert doctor("report", str(FIXTURE), "--html", "-o", str(out)).returncode == 0
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    flags = [  # as root, offline: no sandbox, nothing fetched in the background
        *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
        *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = out.as_uri()
    subprocess.run(
        [chromium, *flags, "--window-size=1280,2400", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    page = Page(dom)  # as the browser built it
    words = "".join(page.text)
    assert "PUBLISHED_PORT_MISMATCH" in words and "unreachable" in words
    assert sum("broken here" in text for text in page.classes["broken"]) == 2
