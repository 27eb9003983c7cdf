"""Shell completion, the docker CLI's way.

Each shell's script (``docker-doctor completion bash|zsh|fish``, in ``doctor/cli/shell/``) asks
``docker-doctor __complete WORD... CURRENT``: the words typed so far and the one being completed.
The answer follows cobra's protocol, which the docker CLI also speaks to its plugins (``docker
doctor <TAB>`` runs ``docker-doctor __complete doctor WORD... CURRENT``): one candidate per line,
then ``:DIRECTIVE``.  Only the command line's parsers, the code catalogue and one container list
call are needed here, never the diagnosis stack, so that a TAB answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from doctor.cli import commands, dockercli
from doctor.collect.engine_api import ClientFlags
from doctor.errors import UsageError

# cobra's ShellCompDirective bits
FILES = 0  # nothing to suggest: let the shell complete file names
NO_FILES = 4
ENGINE_TIMEOUT = 1.0  # seconds a TAB may wait for the container list
#: the names Compose gives services; a label set by hand may hold anything, escapes included,
#: which a shell's menu of candidates would print raw
SERVICE_NAME = re.compile(r"[a-zA-Z0-9._-]+")
VANTAGES = ("host", "external")
WORDS = {
    "completion": commands.SHELLS,
    "plugin": ("install", "uninstall"),
}  # a subcommand's first word


def answer(words: list[str], env: Mapping[str, str] = os.environ) -> int:
    if env.get(dockercli.REEXEC_ENV) and words[:1] == [dockercli.NAME]:
        words = words[1:]
    *typed, current = words or [""]
    candidates, directive = complete(typed, current, env)
    for candidate in candidates:
        print(candidate)
    print(f":{directive}")
    return 0


def complete(
    typed: list[str], current: str, env: Mapping[str, str] = os.environ
) -> tuple[list[str], int]:
    """What may follow ``typed`` at ``current``: candidates starting with it, and a directive."""
    invocation = _invocation(typed)
    words = invocation.args
    command = commands.SUBCOMMANDS.get(words[0]) if words else None
    parser = command.parser() if command else commands.diagnose_parser()
    options = _options(parser) | _options(commands.global_options())
    value_of = _option(typed[-1], options) if typed else None
    if value_of is not None and value_of.nargs != 0 and "=" not in typed[-1]:
        return _values(value_of, current, invocation.flags, env)
    if current.startswith("-") and "=" in current:  # --from=web: the value, after the option
        name, _, partial = current.partition("=")
        action = _option(name, options)
        if action is None or action.nargs == 0:
            return [], NO_FILES
        found, directive = _values(action, partial, invocation.flags, env)
        return [f"{name}={value}" for value in found], directive
    if current.startswith("-"):
        return _matching(
            sorted(o for o in options if o.startswith("--") or len(o) == 2), current
        ), NO_FILES
    positionals = _positionals(words[1:] if command else words, options)
    if command is None:
        if positionals:
            return [], NO_FILES  # one target
        return _matching(
            [*commands.SUBCOMMANDS, *_containers(invocation.flags, env)], current
        ), NO_FILES
    if words[0] == "preflight":
        return [], FILES  # compose files
    if positionals:
        return [], NO_FILES
    if words[0] == "explain":
        # The built-in codes: loading every plugin for their codes is too slow for a TAB.
        from doctor.report.catalogue import CODES

        return _matching(CODES, current.upper().replace("-", "_")), NO_FILES
    return _matching(WORDS.get(words[0], ()), current), NO_FILES


def _invocation(typed: list[str]) -> commands.Invocation:
    """The words as typed (``doctor`` is no plugin name here), also when the last one is an
    option still waiting for its value, or they are not a valid command line yet."""
    for words in (typed, typed[:-1]):
        try:
            return commands.parse_invocation(words, env={})
        except UsageError:
            continue
    return commands.Invocation(ClientFlags(), False, typed)


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def _option(word: str, options: Mapping[str, argparse.Action]) -> argparse.Action | None:
    """The option ``word`` names: exactly, as ``--name=value``, or as a unique abbreviation (as
    argparse takes ``--fr`` for ``--from``)."""
    name = word.split("=", 1)[0]
    if name in options:
        return options[name]
    if not name.startswith("--"):
        return None
    matching = {action for flag, action in options.items() if flag.startswith(name)}
    return matching.pop() if len(matching) == 1 else None


def _positionals(words: list[str], options: Mapping[str, argparse.Action]) -> list[str]:
    found, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            action = _option(word, options)
            skip = action is not None and action.nargs != 0 and "=" not in word
        else:
            found.append(word)
    return found


def _values(
    action: argparse.Action, current: str, flags: ClientFlags, env: Mapping[str, str]
) -> tuple[list[str], int]:
    if action.choices:
        return _matching([str(choice) for choice in action.choices], current), NO_FILES
    if action.dest == "vantage":
        return _matching([*VANTAGES, *_containers(flags, env, services=True)], current), NO_FILES
    if action.dest == "context":
        return _matching(_contexts(flags, env), current), NO_FILES
    if action.type is Path or action.dest in ("config", "tlscacert", "tlscert", "tlskey"):
        return [], FILES
    return [], NO_FILES  # a number, an address


def _matching(candidates: Iterable[str], current: str) -> list[str]:
    return [c for c in dict.fromkeys(candidates) if c.startswith(current)]


def _containers(flags: ClientFlags, env: Mapping[str, str], services: bool = False) -> list[str]:
    """This engine's container names (and compose service names), or none when it does not answer."""
    from doctor.collect.engine_api import connect, get_json, resolve_endpoint

    try:
        listed = get_json(
            connect(resolve_endpoint(env, flags), ENGINE_TIMEOUT), "/containers/json", all=1
        )
    except Exception:  # a TAB must never print an error
        return []
    names = [name.lstrip("/") for c in listed for name in c.get("Names") or ()]
    if services:
        names += [
            label
            for c in listed
            if (label := (c.get("Labels") or {}).get("com.docker.compose.service"))
            and SERVICE_NAME.fullmatch(label)
        ]
    return sorted(set(names))


def _contexts(flags: ClientFlags, env: Mapping[str, str]) -> list[str]:
    config = Path(flags.config or env.get("DOCKER_CONFIG") or Path.home() / ".docker")
    names = ["default"]
    for meta in sorted((config / "contexts" / "meta").glob("*/meta.json")):
        try:
            names.append(json.loads(meta.read_text())["Name"])
        except (OSError, ValueError, KeyError):
            continue
    return names
