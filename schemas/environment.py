"""Environments: a database and the tools over it."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from schemas.tools import ToolSpec

__all__ = ["ENVIRONMENT_VERSION", "DatabaseSpec", "Environment", "EnvironmentKind", "ServerSpec"]

#: ``sql``: tools dialogsim builds (parameterised SQL over a per-dialogue SQLite copy);
#: ``external``: any MCP server, started per dialogue from a command or reached at a URL.
EnvironmentKind = Literal["sql", "external"]

#: Bumped whenever a field of Environment, DatabaseSpec or ToolSpec changes meaning.
ENVIRONMENT_VERSION = 1


class DatabaseSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Either a DDL script plus seed rows, or the path of an SQLite file.

    A relative ``path`` is resolved against the directory of the environment file.
    ``seed`` maps a table name to its rows, inserted in the order of the mapping.
    """

    ddl: str | None = None
    seed: dict[str, list[dict[str, Any]]] = {}
    path: str | None = None

    def __post_init__(self) -> None:
        if (self.ddl is None) == (self.path is None):
            raise ValueError("database needs exactly one of 'ddl' or 'path'")
        if self.path is not None and self.seed:
            raise ValueError("'seed' rows go with 'ddl', not with a database 'path'")


def _no_database() -> DatabaseSpec:
    return DatabaseSpec(ddl="")


class ServerSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How an external environment's MCP server is reached, and the tools it listed.

    Exactly one of ``command`` (argv of a stdio server; ``{state}`` stands for the
    dialogue's copy of the state) or ``url`` (an already running streamable HTTP server).
    ``state`` is the template copied per dialogue: a directory (``state_kind`` ``dir``) or
    one file (``file``). ``shared_state`` is True for a URL: every dialogue talks to the
    same server, so dialogues are not isolated. ``tools`` is the ``tools/list`` answer as
    the server gave it (MCP ``Tool`` objects as JSON); ``volatile_paths`` are files of the
    state that read calls were seen to change (caches, indexes): left out of state diffs.
    Header values and environment variable values are never stored, only their names.
    A chain step whose tool is one of ``user_tools`` is the user's to do, not the agent's.
    """

    command: list[str] | None = None
    url: str | None = None
    state: str | None = None
    state_kind: Literal["dir", "file"] | None = None
    shared_state: bool = False
    env_names: list[str] = []
    header_names: list[str] = []
    tools: list[dict[str, Any]] = []
    volatile_paths: list[str] = []
    server_name: str = ""
    #: Tools on the user's side ("dual control", ``--user-server``): a stdio server started per
    #: dialogue whose tools the simulated user may call; its ``tools/list`` answer.
    user_command: list[str] | None = None
    user_tools: list[dict[str, Any]] = []

    def __post_init__(self) -> None:
        if (self.command is None) == (self.url is None):
            raise ValueError("an external server needs exactly one of 'command' or 'url'")
        if (self.state is None) != (self.state_kind is None):
            raise ValueError("'state' and 'state_kind' go together")


class Environment(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A domain's database and the tools a dialogue's MCP server will expose.

    ``kind`` ``external``: the tools are another program's MCP server (``server``); there
    is no database (``database`` stays empty) and ``tools`` is empty: the server's own
    tool list is kept in ``server.tools``.
    """

    id: str
    domain: str
    database: DatabaseSpec = msgspec.field(default_factory=_no_database)
    tools: list[ToolSpec] = []
    description: str = ""
    policy: str | None = None
    version: int = ENVIRONMENT_VERSION
    kind: EnvironmentKind = "sql"
    server: ServerSpec | None = None

    def __post_init__(self) -> None:
        if (self.kind == "external") != (self.server is not None):
            raise ValueError("an environment of kind 'external' needs a 'server', and only it has one")
        if self.kind == "external" and self.tools:
            raise ValueError("an external environment lists its tools in 'server.tools', not 'tools'")
        names = [t.name for t in self.tools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate tool names: {', '.join(dupes)}")

    def tool(self, name: str) -> ToolSpec:
        """Return the tool called ``name``; raises KeyError when there is none."""
        for t in self.tools:
            if t.name == name:
                return t
        raise KeyError(name)
