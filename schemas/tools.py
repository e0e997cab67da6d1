"""Tool specifications: what a tool is called, what it takes, and the SQL that implements it."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

__all__ = ["Effect", "ResultShape", "SqlImplementation", "ToolSpec"]


class Effect(enum.StrEnum):
    """Whether a tool may change the database. Read tools run under a read-only authorizer."""

    READ = "read"
    WRITE = "write"


class ResultShape(enum.StrEnum):
    """How the rows of the last statement become the tool's result.

    ``rows``: a list of objects; ``row``: exactly one object (none is a not-found error);
    ``optional_row``: one object or null; ``affected``: ``{"affected": n}``, the number of
    rows the statements changed; ``scalar``: the first column of the first row.
    """

    ROWS = "rows"
    ROW = "row"
    OPTIONAL_ROW = "optional_row"
    AFFECTED = "affected"
    SCALAR = "scalar"


class SqlImplementation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag="sql", tag_field="kind"):
    """Parameterised SQL run with named parameters (``:order_id``) only.

    ``statements`` run in order inside one transaction; the result comes from the last
    one. A parameter the caller leaves out is bound to its schema default, else NULL, so
    optional filters are written ``(:status IS NULL OR status = :status)``.
    """

    statements: list[str]
    result: ResultShape = ResultShape.ROWS


class ToolSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One tool as an MCP server lists it, plus its implementation."""

    name: str
    description: str
    input_schema: dict[str, Any]
    implementation: SqlImplementation
    effect: Effect = Effect.READ
    output_schema: dict[str, Any] | None = None
    #: A short label of what kind of tool this is (``get``, ``search``, ``create``, ``composite``...).
    category: str = "custom"
    #: The table the tool is mainly about, when there is one.
    table: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"tool name must be letters, digits, '_' or '-', got {self.name!r}")
        if self.input_schema.get("type") != "object":
            raise ValueError(f"input_schema of {self.name!r} must have type 'object'")
        if not self.implementation.statements:
            raise ValueError(f"tool {self.name!r} has no SQL statements")
