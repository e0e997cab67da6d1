"""Loading and saving environment files, with errors that name the file and the place in it."""

from __future__ import annotations

from pathlib import Path

import msgspec

from schemas import ENVIRONMENT_VERSION, Environment
from schemas.errors import EnvironmentFileError

__all__ = ["load_environment", "save_environment"]


def load_environment(path: Path) -> Environment:
    """Read and validate an environment JSON file.

    Raises EnvironmentFileError naming the file, the JSON path inside it and what was
    expected. The database and the tools' SQL are checked when a server is built.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EnvironmentFileError(str(path), "$", "no such file") from None
    except OSError as exc:
        raise EnvironmentFileError(str(path), "$", f"cannot be read: {exc.strerror}") from None
    if not data.strip():
        raise EnvironmentFileError(str(path), "$", "the file is empty; expected an environment JSON object")
    try:
        env = msgspec.json.decode(data, type=Environment)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        raise EnvironmentFileError(str(path), where.rstrip("`") or "$", message) from None
    except msgspec.DecodeError as exc:
        raise EnvironmentFileError(str(path), "$", f"not valid JSON: {exc}") from None
    if env.version != ENVIRONMENT_VERSION:
        raise EnvironmentFileError(
            str(path),
            "$.version",
            f"format version {env.version} is not supported; expected {ENVIRONMENT_VERSION}",
        )
    return env


def save_environment(env: Environment, path: Path) -> None:
    """Write ``env`` as indented JSON (atomically: a reader never sees half a file).

    Raises OSError when the file cannot be written (``IsADirectoryError`` for a
    directory); the temporary file is removed then, nothing is left behind.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(env), indent=2) + b"\n")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
