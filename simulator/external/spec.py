"""What an external environment is: a server command or URL, its state template, its options.

Checked before any work (:meth:`ExternalSpec.check`), each problem a one-line
:class:`~schemas.errors.ExternalServerError` (exit code 2). ``{state}`` in the command stands for the
dialogue's copy of the state template. Dialogues never see that token nor the copy's
temporary path: agents, users and records see a display path instead,
``/workspace/<name of the template>`` (:func:`display_path`), the same for every dialogue
of a run; the recording proxy maps it to the real path on the way in and back on the way
out (:func:`bind_state`, :func:`unbind_state`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.errors import ExternalServerError
from simulator.log import add_secret

#: Variable names whose values are kept out of logs and records.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)

__all__ = [
    "DISPLAY_ROOT", "STATE_TOKEN", "ExternalSpec", "bind_state", "display_path", "environment_id", "unbind_state",
]  # fmt: skip

#: The placeholder for the state copy's path in a ``--server`` command (never in a dialogue).
STATE_TOKEN = "{state}"
#: Where the state copy appears to be, in everything a dialogue shows.
DISPLAY_ROOT = "/workspace"


def display_path(template: Path) -> str:
    """The path dialogues show for copies of ``template``: ``/workspace/<its name>``."""
    name = template.resolve().name or "state"
    return f"{DISPLAY_ROOT}/{name}"


@dataclass(frozen=True, kw_only=True)
class ExternalSpec:
    """An external MCP server as the command line describes it.

    ``command``: a stdio server started per dialogue (``{state}`` is replaced by the path of
    the dialogue's state copy, shell-quoted); ``url``: an already running streamable HTTP
    server, whose state every dialogue shares. ``state_dir``/``state_file``: the template
    copied per dialogue. ``pool``: pre-started processes reused across dialogues, their
    state restored from the template in place between dialogues (only for servers that
    read their state afresh on every call). ``env``: variables added to the server's
    allow-listed environment.
    """

    command: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    state_dir: Path | None = None
    state_file: Path | None = None
    keep_state: bool = False
    pool: int = 0
    #: Where per-dialogue state copies and server logs go (a temporary directory when None).
    work_dir: Path | None = None
    description: str = ""
    connect_timeout_s: float = 30.0
    call_timeout_s: float = 60.0

    @property
    def state(self) -> Path | None:
        return self.state_dir if self.state_dir is not None else self.state_file

    @property
    def state_kind(self) -> str | None:
        if self.state_dir is not None:
            return "dir"
        return "file" if self.state_file is not None else None

    @property
    def shown_state(self) -> str | None:
        """The path agents, users and records see for this run's state copies (None without state)."""
        return display_path(self.state) if self.state is not None else None

    @property
    def flag(self) -> str:
        """The flag that names the server, for error messages."""
        return "--server" if self.command is not None else "--url"

    @property
    def shared_state(self) -> bool:
        return self.url is not None

    def check(self) -> None:
        """Raise ExternalServerError for settings that cannot work, before anything starts."""
        if (self.command is None) == (self.url is None):
            raise ExternalServerError("--server", "give exactly one of --server 'COMMAND' or --url URL")
        if self.command is not None:
            try:
                words = shlex.split(self.command)
            except ValueError as exc:
                raise ExternalServerError("--server", f"cannot split {self.command!r} into words: {exc}") from None
            if not words:
                raise ExternalServerError("--server", "the command is empty")
            has_token = STATE_TOKEN in self.command
            if has_token and self.state is None:
                raise ExternalServerError(
                    "--server",
                    "the command has a {state} placeholder but neither --state-dir nor --state-file is given",
                )
            if self.state is not None and not has_token:
                raise ExternalServerError(
                    "--state-dir" if self.state_dir is not None else "--state-file",
                    "the --server command has no {state} placeholder to put the copy's path in",
                )
        if self.url is not None:
            if not self.url.startswith(("http://", "https://")):
                raise ExternalServerError("--url", f"expected an http:// or https:// URL, got {self.url!r}")
            if self.state is not None:
                raise ExternalServerError(
                    "--state-dir",
                    "goes with --server: a server at a --url keeps its own state, shared by every dialogue",
                )
            if self.pool:
                raise ExternalServerError("--server-pool", "goes with --server, not --url")
            if self.env:
                raise ExternalServerError("--env", "goes with --server, not --url")
        if self.headers and self.url is None:
            raise ExternalServerError("--header", "goes with --url")
        for value in self.headers.values():
            add_secret(value)  # header values are credentials as often as not
        for name, value in self.env.items():
            if _SECRET_NAME.search(name):
                add_secret(value)
        if self.state_dir is not None and self.state_file is not None:
            raise ExternalServerError("--state-file", "give --state-dir or --state-file, not both")
        if self.state_dir is not None and not self.state_dir.is_dir():
            raise ExternalServerError("--state-dir", f"{self.state_dir} is not a directory")
        if self.state_file is not None and not self.state_file.is_file():
            raise ExternalServerError("--state-file", f"{self.state_file} is not a file")
        if self.pool < 0:
            raise ExternalServerError("--server-pool", f"expected 0 or more processes, got {self.pool}")
        if self.keep_state and self.state is None:
            raise ExternalServerError("--keep-state", "goes with --state-dir or --state-file")
        if self.keep_state and self.pool:
            raise ExternalServerError("--keep-state", "a --server-pool restores its state between dialogues: drop one")

    def argv_text(self, state: Path | None) -> str:
        """The command with ``{state}`` replaced by ``state`` (shell-quoted)."""
        assert self.command is not None
        if state is None:
            return self.command
        return self.command.replace(STATE_TOKEN, shlex.quote(str(state)))

    def describe(self) -> dict[str, Any]:
        """What decides what a run over this server generates (no header or variable values)."""
        out: dict[str, Any] = {"command": self.command} if self.command is not None else {"url": self.url}
        if self.state is not None:
            out["state"] = str(self.state.resolve())
            out["state_kind"] = self.state_kind
            out["shown_state"] = self.shown_state
        if self.shared_state:
            out["shared_state"] = True
        if self.env:
            out["env"] = sorted(self.env)
        return out


def environment_id(spec: ExternalSpec, server_name: str) -> str:
    """A file-name-safe id for the environment: the server's own name, else its program's."""
    base = server_name
    if not base:
        base = Path(shlex.split(spec.command)[0]).name if spec.command else (spec.url or "server")
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-").lower()
    return slug or "external"


def _shown_pattern(shown: str) -> re.Pattern[str]:
    # Not inside a longer name: /workspace/repo is not the start of /workspace/repository.
    return re.compile(re.escape(shown) + r"(?![\w-])")


def bind_state(value: Any, state: Path | None, shown: str | None) -> Any:
    """``value`` with the display path ``shown`` replaced by ``state``'s real path, in every string inside."""
    if state is None or shown is None:
        return value
    return _bind(value, _shown_pattern(shown), str(state))


def _bind(value: Any, pattern: re.Pattern[str], real: str) -> Any:
    if isinstance(value, str):
        return pattern.sub(lambda _m: real, value)
    if isinstance(value, dict):
        return {k: _bind(v, pattern, real) for k, v in value.items()}
    if isinstance(value, list):
        return [_bind(v, pattern, real) for v in value]
    return value


def unbind_state(value: Any, state: Path | None, shown: str | None) -> Any:
    """``value`` with ``state``'s path (as given and resolved) replaced by the display path ``shown``."""
    if state is None or shown is None:
        return value
    paths = sorted({str(state), str(state.resolve())}, key=len, reverse=True)
    return _unbind(value, paths, shown)


def _unbind(value: Any, paths: list[str], shown: str) -> Any:
    if isinstance(value, str):
        for path in paths:
            value = value.replace(path, shown)
        return value
    if isinstance(value, dict):
        return {k: _unbind(v, paths, shown) for k, v in value.items()}
    if isinstance(value, list):
        return [_unbind(v, paths, shown) for v in value]
    return value
