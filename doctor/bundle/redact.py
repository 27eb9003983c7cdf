"""Redaction: secrets out of a snapshot before anything is written, with a report of what was cut.

The report names the file, the field and the rule, never the value.  IP addresses stay:
network diagnosis needs them (see :mod:`doctor.bundle.obfuscate` to pseudonymise them).
"""

from __future__ import annotations

import json
import re
from typing import Any

from msgspec import Struct, to_builtins

from doctor.snapshot import artifacts as a
from doctor.snapshot.store import Snapshot

MASK = "<redacted>"
#: Names that look secret: environment variables, labels, JSON keys.
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[_-]?key|(^|[_.-])key($|[_.-])|private|"
    r"credential|auth(?!or)|cookie|session|signature|salt",
    re.IGNORECASE,
)
#: scheme://user:password@host (the password may hold '/'), scheme://token@host -> scheme://<redacted>@host
URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<credentials>[^\s/?#@:]+(?::[^\s@]*)?)@", re.IGNORECASE
)
#: --password=VALUE, --db-token VALUE (the next argument), -p with a secret flag name
FLAG_WITH_VALUE = re.compile(r"^(?P<flag>--?[A-Za-z0-9_.-]+)=(?P<value>.+)$")
#: password=..., token: ..., "password": "...", --requirepass VALUE inside free text (logs, shell commands)
SECRET_WORD = r"[\w.-]*(?:pass(?:word|wd)?|secret|token|api[_-]?key)[\w.-]*"
INLINE_SECRET = re.compile(
    rf"(?P<name>\b{SECRET_WORD})(?P<sep>[\"']?\s*[=:]\s*[\"']?)(?P<value>[^\s,;&\"'}}]+)",
    re.IGNORECASE,
)
FLAG_SECRET = re.compile(
    rf"(?P<name>(?<!\S)--?{SECRET_WORD})(?P<sep>\s+)(?P<value>[^\s-]\S*)", re.IGNORECASE
)
#: Authorization: Bearer/Basic/Token VALUE
AUTH_HEADER = re.compile(
    r"(?P<name>authorization\s*[:=]\s*[\"']?(?:bearer|basic|token)\s+)(?P<value>[^\s\"',;]+)",
    re.IGNORECASE,
)


class Redaction(Struct, frozen=True):
    file: str
    field: str
    rule: str  # secret-name, url-credentials, secret-argument, inline-secret


class Redactor:
    def __init__(self) -> None:
        self.done: list[Redaction] = []

    def note(self, file: str, field: str, rule: str) -> None:
        self.done.append(Redaction(file, field, rule))

    def text(self, value: str, file: str, field: str) -> str:
        """Credentials inside any string: URLs and name=value pairs."""

        def url(match: re.Match[str]) -> str:
            self.note(file, field, "url-credentials")
            return f"{match['scheme']}{MASK}@"

        def inline(match: re.Match[str]) -> str:
            if match["value"] == MASK or MASK in match["value"]:
                return match[0]
            self.note(file, field, "inline-secret")
            return f"{match['name']}{match.groupdict().get('sep') or ''}{MASK}"

        value = URL_CREDENTIALS.sub(url, value)
        value = AUTH_HEADER.sub(inline, value)
        value = FLAG_SECRET.sub(inline, value)
        return INLINE_SECRET.sub(inline, value)

    def named(self, name: str, value: Any, file: str, field: str) -> Any:
        """A value under a name: all of it goes when the name looks secret."""
        if isinstance(value, str) and value and SECRET_NAME.search(name):
            self.note(file, field, "secret-name")
            return MASK
        return self.text(value, file, field) if isinstance(value, str) else value

    def argv(self, args: list[str], file: str, field: str) -> list[str]:
        out: list[str] = []
        secret_next = False
        for index, arg in enumerate(args):
            if secret_next:
                self.note(file, f"{field}[{index}]", "secret-argument")
                out.append(MASK)
                secret_next = False
                continue
            flag = FLAG_WITH_VALUE.match(arg)
            if flag and SECRET_NAME.search(flag["flag"]):
                self.note(file, f"{field}[{index}]", "secret-argument")
                out.append(f"{flag['flag']}={MASK}")
                continue
            if arg.startswith("-") and SECRET_NAME.search(arg) and "=" not in arg:
                secret_next = True  # --password VALUE
            out.append(self.text(arg, file, f"{field}[{index}]"))
        return out


def redact_snapshot(snapshot: Snapshot) -> list[Redaction]:
    """Redact ``snapshot`` in place; what was redacted, without the values."""
    r = Redactor()
    containers = snapshot.json(a.CONTAINERS)
    if containers is not None:
        for c in containers:
            _container(r, c)
        # Then every other field (LogConfig.Config's splunk-token, ...): secret keys, credentials in strings.
        containers = [
            _tree(r, c, a.CONTAINERS, (c.get("Name") or "?").lstrip("/")) for c in containers
        ]
        snapshot.artifacts[a.CONTAINERS] = json.dumps(containers, indent=1).encode()
    for key in list(snapshot.artifacts):
        if key.startswith(("engine/logs/", "containers/")):
            text = snapshot.artifacts[key].decode("utf-8", "replace")
            snapshot.artifacts[key] = r.text(text, key, "text").encode()
        elif key == a.DAEMON_CONFIG:
            snapshot.artifacts[key] = json.dumps(
                _tree(r, json.loads(snapshot.artifacts[key]), key, ""), indent=1
            ).encode()
        elif key == a.DAEMON_ARGV:  # dockerd --some-token VALUE
            daemon = json.loads(snapshot.artifacts[key])
            daemon["argv"] = r.argv(daemon.get("argv") or [], key, "argv")
            snapshot.artifacts[key] = json.dumps(daemon, indent=1).encode()
    swarm = snapshot.json(a.SWARM)
    if swarm is not None:  # a task's error is free text: the words of a command that failed
        snapshot.artifacts[a.SWARM] = json.dumps(_tree(r, swarm, a.SWARM, ""), indent=1).encode()
    networks = snapshot.json(a.NETWORKS)
    if networks is not None:
        snapshot.artifacts[a.NETWORKS] = json.dumps(
            [
                {**n, "Labels": _labels(r, n.get("Labels"), a.NETWORKS, f"{n.get('Name')}.Labels")}
                for n in networks
            ],
            indent=1,
        ).encode()
    return r.done


def _container(r: Redactor, c: dict[str, Any]) -> None:
    name = (c.get("Name") or c.get("Id", "?")).lstrip("/")
    file = a.CONTAINERS
    config = c.get("Config") or {}
    env = []
    for entry in config.get("Env") or ():
        key, sep, value = entry.partition("=")
        env.append(f"{key}{sep}{r.named(key, value, file, f'{name}.Config.Env[{key}]')}")
    if config.get("Env"):
        config["Env"] = env
    for field in ("Cmd", "Entrypoint"):
        if isinstance(config.get(field), list):
            config[field] = r.argv(config[field], file, f"{name}.Config.{field}")
    if isinstance(c.get("Args"), list):
        c["Args"] = r.argv(c["Args"], file, f"{name}.Args")
    if isinstance(c.get("Path"), str):
        c["Path"] = r.text(c["Path"], file, f"{name}.Path")
    config["Labels"] = _labels(r, config.get("Labels"), file, f"{name}.Config.Labels")
    health = (c.get("State") or {}).get("Health") or {}
    for index, entry in enumerate(health.get("Log") or ()):
        if isinstance(entry.get("Output"), str):
            entry["Output"] = r.text(entry["Output"], file, f"{name}.State.Health.Log[{index}]")
    test = (config.get("Healthcheck") or {}).get("Test")
    if isinstance(test, list):
        config["Healthcheck"]["Test"] = r.argv(test, file, f"{name}.Config.Healthcheck.Test")


def _labels(
    r: Redactor, labels: dict[str, str] | None, file: str, field: str
) -> dict[str, str] | None:
    if not labels:
        return labels
    return {k: r.named(k, v, file, f"{field}[{k}]") for k, v in labels.items()}


def _tree(r: Redactor, value: Any, file: str, field: str) -> Any:
    """Any JSON document (daemon.json): secret-looking keys, credentials in strings."""
    if isinstance(value, dict):
        return {
            k: (
                _tree(r, v, file, f"{field}.{k}".lstrip("."))
                if not isinstance(v, str)
                else r.named(k, v, file, f"{field}.{k}".lstrip("."))
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_tree(r, v, file, f"{field}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        return r.text(value, file, field)
    return value


def report(redactions: list[Redaction]) -> list[dict[str, str]]:
    return [to_builtins(x) for x in redactions]
