"""``--config FILE.toml``: a command's long flags, written down once.

Keys mirror the long flags (``concurrency = 32`` for ``--concurrency 32``, ``max-turns`` or
``max_turns`` for ``--max-turns``; a repeatable flag takes a list; a switch takes true or
false), and the ``[models]`` table names a model per role (``user = "openai:gpt-4.1"`` for
``--user-model``; ``all`` for ``--model``). Precedence: the command's defaults, then the
file, then the flags given on the command line. A key the command does not know is an
error naming the key and the file. Secrets (``api-key``) are accepted but never stored.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from schemas.errors import ConfigError

__all__ = ["add_config_option", "apply_config", "effective_settings"]

#: ``[models]`` keys and the flag each one stands for.
_MODEL_KEYS = {"all": "model", "user": "user_model", "agent": "agent_model", "judge": "judge_model"}
_MODEL_KEYS |= {"tasks": "tasks_model", "env": "env_model"}
#: Settings never written to a manifest.
#: Never written to a manifest: keys, and an external server's HTTP headers and environment
#: values (a bearer token, a password; ``simulator.external`` keeps only their names).
_SECRET_DESTS = frozenset({"api_key", "header", "env"})
_NOT_SETTINGS = frozenset({"handler", "config", "command"})


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE.toml",
        help="read settings from this TOML file (keys mirror the long flags; flags given here win)",
    )


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The parser's options by long flag name without the dashes (``max-turns``)."""
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if action.dest in _NOT_SETTINGS or isinstance(action, argparse._HelpAction):
            continue
        for flag in action.option_strings:
            if flag.startswith("--"):
                found[flag[2:]] = action
    return found


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"--config {path}: is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML ({exc})") from None


def _convert(path: Path, key: str, action: argparse.Action, value: Any) -> Any:
    where = f"--config {path}: {key}"
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_one(where, action, item) for item in items]
    if isinstance(value, list | dict):
        raise ConfigError(f"{where}: expected one value, got {type(value).__name__}")
    return _one(where, action, value)


def _one(where: str, action: argparse.Action, value: Any) -> Any:
    if isinstance(value, dict | list):
        raise ConfigError(f"{where}: expected a value, got {type(value).__name__}")
    converted = value
    if action.type is not None and not (isinstance(value, bool)):
        try:
            converted = action.type(str(value))  # type: ignore[operator]
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    elif isinstance(value, bool):
        raise ConfigError(f"{where}: expected a value, got {value!r}")
    if action.choices is not None and converted not in action.choices:
        shown = ", ".join(map(str, action.choices))
        raise ConfigError(f"{where}: expected one of {shown}, got {value!r}")
    return converted


def _settings_of(path: Path, data: dict[str, Any], options: dict[str, argparse.Action]) -> dict[str, Any]:
    """Destination -> value for every key of the file; raises ConfigError for an unknown key or a bad value."""
    found: dict[str, Any] = {}
    for key, value in data.items():
        if key == "models" and isinstance(value, dict):
            for role, spec in value.items():
                flag = _MODEL_KEYS.get(role, "").replace("_", "-")
                if flag not in options:
                    known = ", ".join(k for k, f in _MODEL_KEYS.items() if f.replace("_", "-") in options)
                    raise ConfigError(f"--config {path}: [models] {role}: unknown role; expected one of: {known}")
                found[options[flag].dest] = _convert(path, f"[models] {role}", options[flag], spec)
            continue
        action = options.get(key.replace("_", "-"))
        if action is None or key in {"config", "help"}:
            known = ", ".join(sorted(options))
            raise ConfigError(f"--config {path}: unknown key {key!r}; this command takes: {known}")
        found[action.dest] = _convert(path, key, action, value)
    return found


def apply_config(parser: argparse.ArgumentParser, argv: Sequence[str], commands: Sequence[str]) -> None:
    """Make the ``--config`` file named in ``argv`` the defaults of its command (flags still win).

    Done before parsing, so a flag the file gives (``--seed``) is no longer required on
    the command line. Only the commands in ``commands`` take ``--config``.
    """
    command_name = next((a for a in argv if a in commands), None)
    path = _config_path(argv)
    if command_name is None or path is None:
        return
    command = _subparser(parser, command_name)
    options = _options(command)
    settings = _settings_of(path, _read(path), options)
    for action in options.values():
        if action.dest in settings:
            action.required = False  # given by the file: no longer required on the command line
    command.set_defaults(**settings)


def _config_path(argv: Sequence[str]) -> Path | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    return None


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen: argparse.ArgumentParser = action.choices[name]
            return chosen
    raise ConfigError(f"no command {name!r}")


def effective_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The merged settings of a command as plain JSON values, secrets left out (for manifests)."""
    out: dict[str, Any] = {}
    for key, value in sorted(vars(args).items()):
        if key in _NOT_SETTINGS or key in _SECRET_DESTS or key.startswith("_") or callable(value):
            continue
        out[key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
