"""What every domain pack shares: the reference date and builders for composite tools."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from schemas import Effect, ResultShape, SqlImplementation, ToolSpec

__all__ = [
    "DATE_PATTERN",
    "TIME_PATTERN",
    "TODAY",
    "TODAY_DATE",
    "boolean",
    "composite_tool",
    "date_param",
    "integer",
    "number",
    "object_schema",
    "rows_schema",
    "string",
]

#: The simulated "today" of every built-in domain. Tools never read the wall clock, so
#: the same scenario gives the same database state whenever it runs; seeded history lies
#: before this day and bookable future (appointments, flights) after it.
TODAY_DATE = dt.date(2026, 5, 4)
TODAY = TODAY_DATE.isoformat()

DATE_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
TIME_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"


def integer(description: str, *, minimum: int | None = 1, maximum: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "description": description}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def number(description: str) -> dict[str, Any]:
    return {"type": "number", "description": description}


def string(
    description: str, *, enum: Sequence[str] | None = None, pattern: str | None = None, min_length: int = 1
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "description": description}
    if enum is not None:
        schema["enum"] = list(enum)
    if pattern is not None:
        schema["pattern"] = pattern
    elif enum is None:
        schema["minLength"] = min_length
    return schema


def boolean(description: str, *, default: bool) -> dict[str, Any]:
    return {"type": "boolean", "description": description, "default": default}


def date_param(description: str) -> dict[str, Any]:
    return string(f"{description} (YYYY-MM-DD)", pattern=DATE_PATTERN)


def object_schema(fields: Mapping[str, str | list[str]]) -> dict[str, Any]:
    """A JSON Schema object whose every field is required, typed ``{"col": "integer"}``.

    A list of types (``["string", "null"]``) marks a nullable column.
    """
    return {
        "type": "object",
        "properties": {name: {"type": kind} for name, kind in fields.items()},
        "required": list(fields),
    }


def rows_schema(fields: Mapping[str, str | list[str]]) -> dict[str, Any]:
    """The output schema of a ``rows`` tool: ``{"rows": [...], "count": n}``."""
    return {
        "type": "object",
        "properties": {
            "rows": {"type": "array", "items": object_schema(fields)},
            "count": {"type": "integer"},
        },
        "required": ["rows", "count"],
    }


def composite_tool(
    name: str,
    description: str,
    *,
    table: str,
    params: Mapping[str, dict[str, Any]],
    required: Sequence[str],
    statements: Sequence[str],
    result: ResultShape,
    effect: Effect,
    output: Mapping[str, str | list[str]] | None = None,
) -> ToolSpec:
    """A hand-written tool of a domain pack (``category="composite"``).

    ``output`` lists the result's columns and types: the object of a ``row`` tool, the
    items of a ``rows`` tool.
    """
    output_schema: dict[str, Any] | None = None
    if output is not None:
        output_schema = rows_schema(output) if result is ResultShape.ROWS else object_schema(output)
    return ToolSpec(
        name=name,
        description=description,
        input_schema={
            "type": "object",
            "properties": dict(params),
            "required": list(required),
            "additionalProperties": False,
        },
        output_schema=output_schema,
        implementation=SqlImplementation(statements=list(statements), result=result),
        effect=effect,
        category="composite",
        table=table,
    )
