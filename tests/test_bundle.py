"""Support bundles: secrets never written, the same diagnosis offline, hostile archives refused."""

from __future__ import annotations

import io
import ipaddress
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.command import doctor, run_doctor
from tests.support.page import Page

ROOT = Path(__file__).resolve().parent.parent
HTTPD = ["httpd", "-f", "-h", "/www", "-p"]
SECRETS = {
    "env": "hunter2-env-secret",
    "token": "tok-3f9a7c-env",
    "url": "pw-in-url-9931",
    "argument": "argsecret66",
    "label": "labelsecret33",
    "log": "logpass55",
}


def bundle(*args: str) -> subprocess.CompletedProcess[str]:
    return doctor("bundle", *args, timeout=120)


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


@pytest.mark.standalone
def test_a_bundle_holds_no_planted_secret_and_says_where_each_was(stage, tmp_path):
    script = f"echo https://bob:{SECRETS['log']}@example.com/x; exec sleep 600"
    web = stage.run(
        "web",
        "-e",
        f"DB_PASSWORD={SECRETS['env']}",
        "-e",
        f"API_TOKEN={SECRETS['token']}",
        "-e",
        f"DATABASE_URL=postgres://app:{SECRETS['url']}@db:5432/shop",
        "--label",
        f"com.example.secret={SECRETS['label']}",
        cmd=["sh", "-c", script, f"--password={SECRETS['argument']}"],
    )
    output = tmp_path / "out.tar.gz"
    done = bundle("-o", str(output))
    assert done.returncode == 0, done.stderr
    assert f"bundle: {output}" in done.stdout
    contents = members(output)
    everything = b"\n".join(contents.values())
    for what, secret in SECRETS.items():
        assert secret.encode() not in everything, f"the {what} secret is in the bundle"
    top = output.name.removesuffix(".tar.gz")
    redactions = json.loads(contents[f"{top}/redactions.json"])
    fields = {(r["field"], r["rule"]) for r in redactions}
    assert {
        (f"{web}.Config.Env[DB_PASSWORD]", "secret-name"),
        (f"{web}.Config.Env[API_TOKEN]", "secret-name"),
        (f"{web}.Config.Env[DATABASE_URL]", "url-credentials"),
        (f"{web}.Config.Labels[com.example.secret]", "secret-name"),
        (f"{web}.Config.Cmd[3]", "secret-argument"),
    } <= fields
    assert any(
        r["rule"] == "url-credentials" and r["file"].startswith("engine/logs/") for r in redactions
    )
    assert not any(secret in json.dumps(redactions) for secret in SECRETS.values())
    assert oct(output.stat().st_mode & 0o777) == "0o600"
    report = json.loads(contents[f"{top}/report.json"])
    assert report["target"]["kind"] == "host"


def test_the_same_first_code_offline_after_every_container_is_gone(stage, tmp_path):
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "3000"], wait_port=3000)
    _, live = run_doctor(f"localhost:{port}")
    output = tmp_path / "broken.tar.gz"
    assert bundle("-o", str(output)).returncode == 0
    stage.close()
    status, offline = run_doctor(f"localhost:{port}", "--snapshot", str(output))
    assert (
        (offline["findings"][0]["code"], status)
        == (live["findings"][0]["code"], 1)
        == ("PUBLISHED_PORT_MISMATCH", 1)
    )
    assert next(p for p in offline["probes"] if p["name"] == "live")["status"] == "skipped"


def test_the_html_report_of_a_real_bundle_marks_the_broken_port(stage, tmp_path):
    port = stage.free_port()
    stage.run("web", "-p", f"127.0.0.1:{port}:80", cmd=[*HTTPD, "3000"], wait_port=3000)
    curl = ["curl", "-sS", "-o", "/dev/null", "--max-time", "5", f"http://127.0.0.1:{port}/"]
    tried = subprocess.run(curl, capture_output=True, text=True, timeout=10)
    assert tried.returncode in (52, 56), tried.stderr  # the staging, as a client sees it
    output = tmp_path / "broken.tar.gz"
    assert bundle("-o", str(output)).returncode == 0
    page = tmp_path / "report.html"
    done = doctor("report", str(output), "--html", "-o", str(page))
    assert done.returncode == 0, done.stderr
    shown = Page(page.read_text(encoding="utf-8"))
    row = next(r for r in shown.rows if r[0] == f"127.0.0.1:{port}")
    assert row[2:] == ["✗ unreachable", "PUBLISHED_PORT_MISMATCH"]
    assert any("container-listener" in li for li in shown.classes["broken"])


def test_no_redact_warns(stage, tmp_path):
    done = bundle("-o", str(tmp_path / "raw.tar.gz"), "--no-redact")
    assert done.returncode == 0 and "warning: --no-redact" in done.stderr


def test_an_output_directory_gets_the_default_name(stage, tmp_path):
    done = bundle("-o", str(tmp_path), "--json")
    written = Path(json.loads(done.stdout)["path"])
    assert written.parent == tmp_path and written.name.startswith("docker-doctor-bundle-")
    assert [p.name for p in tmp_path.iterdir()] == [written.name]


# --- hostile or broken input: exit 2, one line, nothing written ------------------

MANIFEST = json.dumps(
    {"schema": "docker-doctor/snapshot/v1", "artifacts": [], "probes": []}
).encode()


def tarball(path: Path, *entries: tarfile.TarInfo | tuple[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def link(name: str, kind: bytes, target: str = "/etc/passwd") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


HOSTILE = {
    "path traversal": lambda p: tarball(p, ("b/manifest.json", MANIFEST), ("../../evil", b"x")),
    "absolute path": lambda p: tarball(p, ("b/manifest.json", MANIFEST), ("/tmp/evil", b"x")),
    "symlink": lambda p: tarball(
        p, ("b/manifest.json", MANIFEST), link("b/engine/version.json", tarfile.SYMTYPE)
    ),
    "hard link": lambda p: tarball(p, ("b/manifest.json", MANIFEST), link("b/x", tarfile.LNKTYPE)),
    "device": lambda p: tarball(
        p, ("b/manifest.json", MANIFEST), link("b/dev", tarfile.CHRTYPE, "")
    ),
    "fifo": lambda p: tarball(
        p, ("b/manifest.json", MANIFEST), link("b/fifo", tarfile.FIFOTYPE, "")
    ),
    "not a tarball": lambda p: (p.write_bytes(os.urandom(4096)), p)[1],
    "empty file": lambda p: (p.write_bytes(b""), p)[1],
    "no manifest": lambda p: tarball(p, ("b/engine/version.json", b"{}")),
    "newer schema": lambda p: tarball(
        p,
        (
            "b/manifest.json",
            json.dumps({"schema": "docker-doctor/snapshot/v9", "artifacts": []}).encode(),
        ),
    ),
    "artifact missing": lambda p: tarball(
        p,
        (
            "b/manifest.json",
            json.dumps(
                {"schema": "docker-doctor/snapshot/v1", "artifacts": ["engine/version.json"]}
            ).encode(),
        ),
    ),
    "artifact outside": lambda p: tarball(
        p,
        (
            "b/manifest.json",
            json.dumps(
                {"schema": "docker-doctor/snapshot/v1", "artifacts": ["../../etc/passwd"]}
            ).encode(),
        ),
    ),
    "manifest not json": lambda p: tarball(p, ("b/manifest.json", b"{not json")),
    "artifacts not a list": lambda p: tarball(
        p,
        (
            "b/manifest.json",
            json.dumps({"schema": "docker-doctor/snapshot/v1", "artifacts": [1]}).encode(),
        ),
    ),
    "deeply nested manifest": lambda p: tarball(
        p, ("b/manifest.json", b"[" * 100000 + b"]" * 100000)
    ),
}


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.standalone
def test_hostile_or_broken_bundles_are_refused_with_one_line(kind, tmp_path):
    archive = HOSTILE[kind](tmp_path / "bundle.tar.gz")
    before = set(Path(tmp_path).rglob("*"))
    done = doctor("localhost:8080", "--snapshot", str(archive), cwd=tmp_path, timeout=30)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("docker-doctor: ")
        and "Traceback" not in done.stderr
    )
    assert set(Path(tmp_path).rglob("*")) == before  # nothing unpacked, nothing written
    assert not Path("/tmp/evil").exists()


def test_a_huge_member_is_refused(tmp_path, monkeypatch):
    from doctor.errors import UsageError
    from doctor.snapshot import store as snapshot

    monkeypatch.setattr(snapshot, "MAX_MEMBER", 1024)
    archive = tarball(
        tmp_path / "big.tar.gz", ("b/manifest.json", MANIFEST), ("b/engine/logs/x.log", b"x" * 4096)
    )
    with pytest.raises(UsageError, match="too large"):
        snapshot.Snapshot.load(archive)


FIXTURES = ROOT / "fixtures" / "snapshots"


@pytest.mark.parametrize(
    "fixture",
    sorted(p for p in FIXTURES.iterdir() if (p / "expected.json").exists()),
    ids=lambda p: p.name,
)
def test_obfuscated_addresses_diagnose_the_same(fixture, tmp_path):
    from doctor.bundle.obfuscate import IpObfuscator, obfuscate_snapshot
    from doctor.snapshot.store import Snapshot

    snapshot = Snapshot.read(fixture)
    obfuscator = IpObfuscator()
    assert obfuscate_snapshot(snapshot, obfuscator) > 0
    snapshot.write(tmp_path / "obfuscated")
    expected = json.loads((fixture / "expected.json").read_text())
    target = []
    if expected["target"]:  # none: a host checkup
        host, _, port = expected["target"].rpartition(":")
        target = [f"{obfuscator.address(host)}:{port}"]
    status, report = run_doctor(
        *target, *expected.get("args", ()), "--snapshot", str(tmp_path / "obfuscated")
    )
    assert ([f["code"] for f in report["findings"]], report["verdict"], status) == (
        expected["codes"],
        expected["verdict"],
        expected["exit"],
    )
    everything = b"\n".join(snapshot.artifacts.values()).decode("utf-8", "replace")
    for original, pseudonym in obfuscator.mapped.items():
        if original != pseudonym:
            assert not re.search(rf"(?<![\d.]){re.escape(original)}(?![\d.])", everything), original
            mapped = ipaddress.ip_address(pseudonym)
            assert not any(mapped in ipaddress.ip_network(n) for n in DOCKER_RANGES)


DOCKER_RANGES = ("172.16.0.0/12", "192.168.0.0/16", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("postgres://app:p/w-secret@db:5432/x", "postgres://"),
        ("https://ghp_tok123@github.com/x", "github.com"),
        ('{"password": "hunter2-json"}', '"password"'),
        ("Authorization: Bearer abc.def-bearer", "Authorization"),
        ("redis-server --requirepass s3cr3t-flag --port 6379", "--port 6379"),
        ("DB_PASSWORD=hunter2-env", "DB_PASSWORD="),
    ],
)
def test_redaction_of_free_text(text, kept):
    from doctor.bundle.redact import MASK, Redactor

    out = Redactor().text(text, "f", "x")
    secret = {
        "p/w-secret",
        "ghp_tok123",
        "hunter2-json",
        "abc.def-bearer",
        "s3cr3t-flag",
        "hunter2-env",
    }
    assert not any(s in out for s in secret) and MASK in out and kept in out


def test_redaction_walks_every_field_of_an_inspect(tmp_path):
    from doctor.bundle.redact import redact_snapshot
    from doctor.snapshot import artifacts as a
    from doctor.snapshot.store import Snapshot

    inspect = {
        "Id": "x",
        "Name": "/web",
        "Config": {"Env": []},
        "HostConfig": {
            "LogConfig": {"Type": "splunk", "Config": {"splunk-token": "tok-in-logconfig"}}
        },
    }
    snapshot = Snapshot({a.CONTAINERS: json.dumps([inspect]).encode()})
    redactions = redact_snapshot(snapshot)
    assert b"tok-in-logconfig" not in snapshot.artifacts[a.CONTAINERS]
    assert any("splunk-token" in r.field for r in redactions)


def test_redaction_reads_a_swarm_tasks_words_too():
    from doctor.bundle.redact import redact_snapshot
    from doctor.snapshot import artifacts as a
    from doctor.snapshot.store import Snapshot

    error = "starting container failed: mysql://root:hunter2@db/app refused"
    swarm = {"node_id": "n", "tasks": [{"ID": "t", "Status": {"State": "failed", "Err": error}}]}
    snapshot = Snapshot({a.SWARM: json.dumps(swarm).encode()})
    redactions = redact_snapshot(snapshot)
    kept = json.loads(snapshot.artifacts[a.SWARM])
    assert "hunter2" not in json.dumps(kept) and "starting container failed" in json.dumps(kept)
    assert kept["tasks"][0]["ID"] == "t" and any(r.file == a.SWARM for r in redactions)


def test_obfuscated_networks_keep_network_addresses_and_many_first_octets_fit():
    from doctor.bundle.obfuscate import IpObfuscator

    o = IpObfuscator()
    network, _, prefix = o.text("172.17.0.0/16").partition("/")
    assert ipaddress.ip_network(f"{network}/{prefix}").prefixlen == 16  # strict: host bits are zero
    assert len({o.address(f"{first}.1.2.3") for first in range(1, 224) if first != 127}) > 200
