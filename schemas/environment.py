"""Environments: a database and the tools over it."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.policy import Policy
from schemas.tools import ToolSpec

__all__ = ["ENVIRONMENT_VERSION", "DatabaseSpec", "Environment"]

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


class Environment(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A domain's database and the tools a dialogue's MCP server will expose."""

    id: str
    domain: str
    database: DatabaseSpec
    tools: list[ToolSpec]
    description: str = ""
    policy: str | None = None
    #: The rules of ``policy`` as data (see schemas.policy), when the environment has them.
    rules: Policy | None = None
    version: int = ENVIRONMENT_VERSION

    def __post_init__(self) -> None:
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
