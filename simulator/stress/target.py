"""What is stressed and how to reach it: an environment file, a server command, or a URL.

- ``--environment env.json``: served from this process (``inprocess``, the default), or
  through ``stdio`` (a ``dialogsim tools serve`` subprocess on a private database file) or
  ``http`` (the same server behind streamable HTTP on loopback). The database stays
  reachable, so state safety can be checked.
- ``--server "COMMAND ARGS"``: a third-party stdio server, started with a minimal
  environment (``PATH``, ``HOME``, ``LANG`` and any ``--env K=V``) in its own process
  group, its stderr kept in a log file, and stopped at the end as the MCP spec says (stdin
  closed, then SIGTERM, then SIGKILL to the group).
- ``--url URL [--header 'K: V']``: any streamable HTTP server.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx2
import mcp
from mcp import StdioServerParameters
from mcp.client._transport import TransportStreams
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from schemas import Effect, Environment
from schemas.errors import ConfigError, UsageError
from simulator.stress._redact import Redactor
from toolservers import (
    Database,
    build_tool_server,
    http_client,
    http_tool_server,
    load_environment,
    open_database,
    save_environment,
)
from toolservers.database import DEFAULT_CALL_TIMEOUT_S
from toolservers.server import database_file_for
from toolservers.transports import TRANSPORTS, TransportName, serve_command

__all__ = ["Target", "TargetError", "TargetSpec", "open_target", "parse_env_pairs", "parse_headers"]

#: The only variables a third-party server inherits (plus what ``--env`` adds).
MINIMAL_ENV_VARS = ("PATH", "HOME", "LANG")
_LOG_TAIL_BYTES = 2000


class TargetError(ConfigError):
    """The target cannot be reached or started (exit code 2, like any bad input)."""


@dataclass(frozen=True)
class TargetSpec:
    """Exactly one of ``environment``, ``server`` or ``url``."""

    environment: Path | None = None
    #: An environment given as an object (a built-in domain); ``environment`` is its file otherwise.
    environment_object: Environment | None = None
    transport: TransportName = "inprocess"
    server: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    #: The deadline of each call's SQL on a server built from an environment (None: the default).
    call_timeout_s: float | None = None

    def __post_init__(self) -> None:
        given = [
            name
            for name, value in (
                ("--environment", self.environment),
                ("--domain", self.environment_object),
                ("--server", self.server),
                ("--url", self.url),
            )
            if value
        ]
        if len(given) != 1:
            raise ConfigError(
                "give exactly one target: --environment FILE, --domain NAME, --server 'COMMAND ARGS' or --url URL"
                + (f" (got {' and '.join(given)})" if given else "")
            )
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"--transport: expected one of {', '.join(TRANSPORTS)}, got {self.transport!r}")
        if self.transport != "inprocess" and not (self.environment or self.environment_object):
            raise ConfigError("--transport goes with --environment or --domain (a --server is stdio, a --url is HTTP)")
        if self.headers and not self.url:
            raise ConfigError("--header goes with --url")
        if self.env and not self.server:
            raise ConfigError("--env goes with --server")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"--url: expected an http:// or https:// URL, got {self.url!r}")


def parse_headers(values: list[str]) -> dict[str, str]:
    """``['K: V', ...]`` as a mapping; raises ConfigError for a value without ``:``."""
    headers: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"--header: expected 'Name: value', got {value!r}")
        headers[name.strip()] = rest.strip()
    return headers


def parse_env_pairs(values: list[str]) -> dict[str, str]:
    """``['K=V', ...]`` as a mapping; raises ConfigError for a value without ``=``."""
    env: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise ConfigError(f"--env: expected NAME=VALUE, got {value!r}")
        env[name] = rest
    return env


@dataclass(eq=False)
class Target:
    """A reachable target: ``client()`` makes a new unentered ``mcp.Client`` per connection.

    For environments, ``environment`` is set and ``database`` is a live view of the
    database the server changes; ``fresh_database()`` opens a new copy of its initial state.
    """

    kind: Literal["environment", "server", "url"]
    description: str
    transport: str
    client: Callable[[], mcp.Client]
    environment: Environment | None = None
    database: Database | None = None
    base_dir: Path | None = None
    log_path: Path | None = None
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S

    def fresh_database(self) -> Database:
        if self.environment is None:
            raise UsageError("only environment targets have a database")
        return open_database(self.environment.database, base_dir=self.base_dir, call_timeout_s=self.call_timeout_s)

    def declared_write(self, tool: str) -> bool | None:
        """The environment's own effect for ``tool``; None for other servers or unknown tools."""
        if self.environment is None:
            return None
        try:
            return self.environment.tool(tool).effect is Effect.WRITE
        except KeyError:
            return None

    def log_mark(self) -> int:
        """Where the server's stderr log ends now (0 without a log): pass to ``log_tail``."""
        if self.log_path is None:
            return 0
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_tail(self, since: int = 0) -> str | None:
        """What the server (started by command) wrote to stderr after ``since``, at most the last 2 kB.

        None without a log; an empty string when it wrote nothing.
        """
        if self.log_path is None or not self.log_path.exists():
            return None
        with self.log_path.open("rb") as fh:
            fh.seek(max(since, self.log_path.stat().st_size - _LOG_TAIL_BYTES))
            return fh.read().decode("utf-8", "replace").strip()


@asynccontextmanager
async def open_target(spec: TargetSpec, *, workdir: Path | None = None) -> AsyncIterator[Target]:
    """Make ``spec`` reachable for the length of the block; everything started is stopped at the end.

    ``workdir`` keeps temporary files (a server's stderr log); a temporary directory
    otherwise. Raises ConfigError for a bad environment file or database, or a command
    that cannot be found.
    """
    tmp = Path(tempfile.mkdtemp(prefix="dialogsim-stress-"))
    try:
        if spec.environment is not None or spec.environment_object is not None:
            async with _environment_target(spec, tmp) as target:
                yield target
        elif spec.server is not None:
            with _server_target(spec.server, dict(spec.env), workdir or tmp, Redactor.of(spec.env)) as target:
                yield target
        else:
            assert spec.url is not None
            yield _url_target(spec.url, dict(spec.headers))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@asynccontextmanager
async def _environment_target(spec: TargetSpec, tmp: Path) -> AsyncIterator[Target]:
    if spec.environment_object is not None:
        environment, base_dir, label = spec.environment_object, None, f"environment {spec.environment_object.id!r}"
    else:
        assert spec.environment is not None
        environment = load_environment(spec.environment)
        base_dir, label = spec.environment.parent, str(spec.environment)
    source = label
    timeout = DEFAULT_CALL_TIMEOUT_S if spec.call_timeout_s is None else spec.call_timeout_s
    if spec.transport == "stdio":
        # The subprocess changes a database file in place; this process reads the same file.
        db_file = tmp / "database.sqlite"
        live = database_file_for(environment, db_file, base_dir=base_dir, source=source, call_timeout_s=timeout)
        env_file = tmp / "environment.json"
        save_environment(environment, env_file)
        params = serve_command(env_file, database=db_file, in_place=True, call_timeout_s=timeout)
        log = (tmp / "server.log").open("w", encoding="utf-8")
        try:
            yield Target(
                "environment",
                label,
                "stdio",
                lambda: mcp.Client(stdio_client(params, errlog=log)),
                environment=environment,
                database=live,
                base_dir=base_dir,
                log_path=tmp / "server.log",
                call_timeout_s=timeout,
            )
        finally:
            live.close()
            log.close()
        return
    tool_server = build_tool_server(environment, base_dir=base_dir, source=source, call_timeout_s=timeout)
    try:
        if spec.transport == "http":
            async with http_tool_server(tool_server) as endpoint:
                yield Target(
                    "environment",
                    label,
                    "http",
                    lambda: http_client(endpoint.url, endpoint.token),
                    environment=environment,
                    database=tool_server.db,
                    base_dir=base_dir,
                    call_timeout_s=timeout,
                )
        else:
            yield Target(
                "environment",
                label,
                "inprocess",
                lambda: mcp.Client(tool_server.server),
                environment=environment,
                database=tool_server.db,
                base_dir=base_dir,
                call_timeout_s=timeout,
            )
    finally:
        tool_server.close()


@contextmanager
def _server_target(
    command: str, extra_env: dict[str, str], workdir: Path, redactor: Redactor | None = None
) -> Iterator[Target]:
    """A third-party stdio server: minimal environment, own process group, stderr to a log file.

    The log keeps what the server wrote while it runs (``log_tail`` reads it); at the end
    ``redactor``, when given, replaces the ``--env`` values in it.
    """
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"--server: cannot split {command!r} into words: {exc}") from None
    if not argv:
        raise ConfigError("--server: the command is empty")
    env = {k: os.environ[k] for k in MINIMAL_ENV_VARS if k in os.environ}
    env.update(extra_env)
    program = shutil.which(argv[0], path=env.get("PATH")) if os.sep not in argv[0] else argv[0]
    if program is None or not os.access(program, os.X_OK):
        raise ConfigError(f"--server: command {argv[0]!r} not found or not executable")
    env_program = shutil.which("env")
    if env_program is None:
        raise ConfigError("--server needs the 'env' program to start the server with a minimal environment")
    # The SDK merges a few variables of its own (USER, SHELL, TERM...) into the child's
    # environment; 'env -i' starts the server with exactly these, and execs it (same pid,
    # same process group, which the SDK terminates at the end).
    params = StdioServerParameters(
        command=env_program,
        args=["-i", *(f"{k}={v}" for k, v in env.items()), program, *argv[1:]],
    )
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "server-stderr.log"
    try:
        with log_path.open("w", encoding="utf-8") as log:
            yield Target(
                "server",
                command,
                "stdio",
                lambda: mcp.Client(stdio_client(params, errlog=log)),
                log_path=log_path,
            )
    finally:
        if redactor is not None:
            redactor.file(log_path)  # the server has been stopped by now: nothing writes to it any more


def _url_target(url: str, headers: dict[str, str]) -> Target:
    @asynccontextmanager
    async def transport() -> AsyncIterator[TransportStreams]:
        # The SDK's default timeouts: a response stream may stay open for a long time.
        timeout = httpx2.Timeout(30.0, read=300.0)
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=timeout))
            streams = await stack.enter_async_context(streamable_http_client(url, http_client=client))
            yield streams

    return Target("url", url, "http", lambda: mcp.Client(transport()))
