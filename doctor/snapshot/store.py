"""A snapshot: raw artifacts exactly as the probes read them, plus what each probe did.

The same object comes from the live host, from a directory written earlier, or from a
fixture, so every diagnosis can be replayed offline.  Keys are relative POSIX paths
(``engine/containers.json``); values are bytes.
"""

from __future__ import annotations

import json
import lzma
import time
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from msgspec import Struct, field, to_builtins

from doctor import __version__
from doctor.errors import UsageError
from doctor.report.document import ProbeRun

SNAPSHOT_SCHEMA = "docker-doctor/snapshot/v1"
MANIFEST = "manifest.json"
MAX_MEMBER = 64 * 1024 * 1024  # a container log bounded by the bundle is far smaller
MAX_TOTAL = 512 * 1024 * 1024
MAX_MEMBERS = 100_000


class Snapshot(Struct):
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

    def files(self) -> dict[str, bytes]:
        """The snapshot as files: each artifact at its key's path, and the manifest."""
        manifest = {
            "schema": SNAPSHOT_SCHEMA,
            "doctor": __version__,
            "created": self.meta.get("created", time.time()),
            "meta": self.meta,
            "probes": [to_builtins(p) for p in self.probes],
            "artifacts": sorted(self.artifacts),
        }
        laid_out = {str(_checked_key(key)): data for key, data in self.artifacts.items()}
        return {**laid_out, MANIFEST: (json.dumps(manifest, indent=2) + "\n").encode()}

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in self.files().items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        """A snapshot directory, or a bundle (.tar.gz) that `docker-doctor bundle` wrote."""
        if path.is_dir():
            return cls.read(path)
        if path.is_file():
            return cls.read_archive(path)
        raise UsageError(f"no snapshot at {path}: no such file or directory")

    @classmethod
    def read(cls, directory: Path) -> Snapshot:
        root = directory.resolve()

        def member(key: PurePosixPath) -> bytes | None:
            unresolved = root / key
            path = unresolved.resolve()
            if not path.is_relative_to(root) or unresolved.is_symlink() or not path.is_file():
                return None
            if path.stat().st_size > MAX_MEMBER:
                raise UsageError(
                    f"{directory}: artifact {key} is too large ({path.stat().st_size} bytes)"
                )
            return path.read_bytes()

        return cls._from(str(directory), member)

    @classmethod
    def read_archive(cls, path: Path) -> Snapshot:
        """A bundle, read in memory: nothing of it is written anywhere.

        Refused, as bad input: not a tarball; members that are links, devices or fifos,
        absolute or with '..'; a member over MAX_MEMBER bytes or more than MAX_TOTAL in all.
        """
        import tarfile  # here: only archives need it, and it costs a diagnosis ~7 ms at start

        members: dict[PurePosixPath, bytes] = {}
        total = 0
        try:
            with tarfile.open(path, "r:*") as tar:
                for count, info in enumerate(tar):
                    if count >= MAX_MEMBERS:
                        raise UsageError(f"{path}: more than {MAX_MEMBERS} members")
                    if info.isdir():
                        continue
                    if not info.isfile():
                        raise UsageError(
                            f"{path}: refusing member {info.name!r}: not a regular file"
                        )
                    name = _checked_key(info.name.removeprefix("./"))
                    if info.size > MAX_MEMBER or total + info.size > MAX_TOTAL:
                        raise UsageError(
                            f"{path}: member {info.name!r} is too large ({info.size} bytes)"
                        )
                    data = tar.extractfile(info)
                    members[name] = data.read(MAX_MEMBER + 1) if data else b""
                    total += len(members[name])
        except tarfile.ReadError:
            raise UsageError(f"{path}: not a docker-doctor bundle: not a tar archive") from None
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError) as exc:
            raise UsageError(
                f"{path}: not a docker-doctor bundle: {(str(exc).splitlines() or [repr(exc)])[0]}"
            ) from None
        manifests = [n for n in members if n.name == MANIFEST and len(n.parts) <= 2]
        if len(manifests) != 1:
            raise UsageError(
                f"{path}: not a docker-doctor bundle: no {MANIFEST}"
                if not manifests
                else f"{path}: several {MANIFEST} files"
            )
        base = manifests[0].parent
        return cls._from(str(path), lambda key: members.get(base / key))

    @classmethod
    def _from(cls, where: str, member: Callable[[PurePosixPath], bytes | None]) -> Snapshot:
        raw = member(PurePosixPath(MANIFEST))
        if raw is None:
            raise UsageError(f"{where} is not a docker-doctor snapshot: no {MANIFEST}")
        try:
            manifest = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise UsageError(f"cannot read {where}/{MANIFEST}: {exc}") from None
        schema = manifest.get("schema") if isinstance(manifest, dict) else None
        if schema != SNAPSHOT_SCHEMA:
            newer = isinstance(schema, str) and schema.startswith("docker-doctor/snapshot/")
            raise UsageError(
                f"{where}: snapshot schema {schema!r} "
                + (
                    "is newer than this docker-doctor reads"
                    if newer
                    else "is not one docker-doctor knows"
                )
                + f" ({SNAPSHOT_SCHEMA})"
            )
        keys = manifest.get("artifacts", [])
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise UsageError(f"{where}/{MANIFEST}: `artifacts` must be a list of paths")
        artifacts = {}
        for key in keys:
            data = member(_checked_key(key))
            if data is None:
                raise UsageError(f"{where}: artifact {key!r} is missing or outside the snapshot")
            artifacts[key] = data
        try:
            probes = [ProbeRun(**p) for p in manifest.get("probes", [])]
        except TypeError as exc:
            raise UsageError(f"{where}/{MANIFEST}: bad probe entry: {exc}") from None
        return cls(artifacts=artifacts, probes=probes, meta=manifest.get("meta", {}))


def _checked_key(key: str) -> PurePosixPath:
    path = PurePosixPath(key)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise UsageError(f"refusing artifact path {key!r}")
    return path
