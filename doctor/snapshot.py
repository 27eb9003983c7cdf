"""A snapshot: raw artifacts exactly as the probes read them, plus what each probe did.

The same object comes from the live host, from a directory written earlier, or from a
fixture, so every diagnosis can be replayed offline.  Keys are relative POSIX paths
(``engine/containers.json``); values are bytes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from doctor import __version__
from doctor.errors import UsageError
from doctor.model import ProbeRun

SNAPSHOT_SCHEMA = "docker-doctor/snapshot/v1"
MANIFEST = "manifest.json"


@dataclass
class Snapshot:
    artifacts: dict[str, bytes] = field(default_factory=dict)
    probes: list[ProbeRun] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def text(self, key: str) -> str | None:
        raw = self.artifacts.get(key)
        return None if raw is None else raw.decode("utf-8", "replace")

    def json(self, key: str) -> Any:
        raw = self.artifacts.get(key)
        return None if raw is None else json.loads(raw)

    def keys_under(self, prefix: str) -> list[str]:
        return sorted(k for k in self.artifacts if k.startswith(prefix))

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for key, data in self.artifacts.items():
            path = directory / _checked_key(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        manifest = {
            "schema": SNAPSHOT_SCHEMA,
            "doctor": __version__,
            "created": self.meta.get("created", time.time()),
            "meta": self.meta,
            "probes": [asdict(p) for p in self.probes],
            "artifacts": sorted(self.artifacts),
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

    @classmethod
    def read(cls, directory: Path) -> Snapshot:
        manifest_path = directory / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text())
        except FileNotFoundError:
            raise UsageError(f"{directory} is not a docker-doctor snapshot: no {MANIFEST}") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read {manifest_path}: {exc}") from None
        if manifest.get("schema") != SNAPSHOT_SCHEMA:
            raise UsageError(
                f"{directory}: unsupported snapshot schema {manifest.get('schema')!r}"
                f" (this docker-doctor reads {SNAPSHOT_SCHEMA})"
            )
        artifacts = {}
        root = directory.resolve()
        for key in manifest.get("artifacts", []):
            path = (root / _checked_key(key)).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                raise UsageError(f"{directory}: artifact {key!r} is missing or outside the snapshot")
            artifacts[key] = path.read_bytes()
        probes = [ProbeRun(**p) for p in manifest.get("probes", [])]
        return cls(artifacts=artifacts, probes=probes, meta=manifest.get("meta", {}))


def _checked_key(key: str) -> PurePosixPath:
    path = PurePosixPath(key)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise UsageError(f"refusing artifact path {key!r}")
    return path
