"""Run a tool: validate its arguments, execute its SQL under the authorizer, shape the result.

The executor knows nothing of MCP; the server and the benchmarks call it directly.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from schemas import Effect, Environment, ResultShape, ToolSpec
from schemas.errors import (
    AuthorizationError,
    InvalidArgumentsError,
    NotFoundError,
    ToolDefinitionError,
    ToolExecutionError,
)
from toolservers.database import Database
from toolservers.validation import ArgumentValidator, schema_problems

__all__ = ["ToolExecutor", "ToolOutcome", "sql_parameters"]

# Named parameters outside quoted strings: strip literals first, then find ":name".
_LITERAL = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def sql_parameters(sql: str) -> list[str]:
    """The named parameters a statement uses, in order of first use."""
    seen: dict[str, None] = {}
    for name in _PARAM.findall(_LITERAL.sub("''", sql)):
        seen.setdefault(name, None)
    return list(seen)


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """A successful call: the structured result (always an object) and its text form."""

    structured: dict[str, Any]
    text: str
    affected: int


@dataclass(slots=True)
class _Compiled:
    spec: ToolSpec
    validator: ArgumentValidator
    defaults: dict[str, Any]


# (id(environment), database schema) -> (environment kept alive so its id stays its own, tools)
_CHECKED: OrderedDict[tuple[int, str], tuple[Environment, dict[str, _Compiled]]] = OrderedDict()


class ToolExecutor:
    """Executes an environment's tools against one database.

    Construction checks every tool against the database (schema validity, parameters,
    tables and columns, effect) and raises ToolDefinitionError naming ``source`` and the
    tool when one does not fit.
    """

    def __init__(self, environment: Environment, db: Database, *, source: str = "environment") -> None:
        self.environment = environment
        self.db = db
        # Every dialogue's server checks the same environment against a database of the
        # same schema: the checked tools are kept per (environment, schema) and shared.
        schema = db.query("SELECT group_concat(sql, ';') FROM sqlite_master")[0][0] or ""
        key = (id(environment), schema)
        hit = _CHECKED.get(key)
        if hit is not None and hit[0] is environment:
            _CHECKED.move_to_end(key)
            self._tools = hit[1]
            return
        self._tools = {tool.name: self._compile(tool, source) for tool in environment.tools}
        _CHECKED[key] = (environment, self._tools)
        while len(_CHECKED) > 64:
            _CHECKED.popitem(last=False)

    def _compile(self, tool: ToolSpec, source: str) -> _Compiled:
        problems = schema_problems(tool.input_schema)
        if problems:
            raise ToolDefinitionError(source, tool.name, f"input_schema is not valid JSON Schema: {problems[0]}")
        if tool.output_schema is not None:
            problems = schema_problems(tool.output_schema)
            if problems:
                raise ToolDefinitionError(source, tool.name, f"output_schema is not valid JSON Schema: {problems[0]}")
        props: dict[str, Any] = tool.input_schema.get("properties", {})
        defaults = {name: prop.get("default") for name, prop in props.items() if isinstance(prop, dict)}
        for i, stmt in enumerate(tool.implementation.statements):
            for name in sql_parameters(stmt):
                if name not in props:
                    raise ToolDefinitionError(
                        source,
                        tool.name,
                        f"statement {i} uses parameter :{name}, which input_schema does not declare",
                    )
            with self.db.allowing(tool.effect):
                try:
                    self.db.conn.execute("EXPLAIN " + stmt, dict.fromkeys(sql_parameters(stmt)))
                except sqlite3.Error as exc:
                    if self.db.denied is not None:
                        raise ToolDefinitionError(
                            source,
                            tool.name,
                            f"statement {i} is not allowed for a {tool.effect} tool: {self.db.denied}",
                        ) from exc
                    raise ToolDefinitionError(
                        source, tool.name, f"statement {i} does not fit the database: {exc}"
                    ) from exc
        return _Compiled(tool, ArgumentValidator(tool.input_schema), defaults)

    @property
    def tools(self) -> list[ToolSpec]:
        return [c.spec for c in self._tools.values()]

    def call(self, name: str, arguments: dict[str, Any] | None) -> ToolOutcome:
        """Run tool ``name``.

        Raises InvalidArgumentsError (bad or unknown tool/arguments; the database is not
        touched), NotFoundError, ToolExecutionError (rolled back) or AuthorizationError.
        """
        compiled = self._tools.get(name)
        if compiled is None:
            raise InvalidArgumentsError("name", f"unknown tool {name!r}; expected one of: {', '.join(self._tools)}")
        args = dict(arguments or {})
        compiled.validator.validate(args)
        _check_sqlite_values(args)
        params = {**compiled.defaults, **args}
        spec = compiled.spec
        rows: list[dict[str, Any]] = []
        affected = 0
        db = self.db
        with db.allowing(spec.effect):
            write = spec.effect is Effect.WRITE
            try:
                if write:
                    # A savepoint nests inside an outer transaction (dry runs, planners) and
                    # acts as BEGIN when there is none.
                    db.conn.execute("SAVEPOINT tool_call")
                for stmt in spec.implementation.statements:
                    before = db.conn.total_changes
                    cur = db.conn.execute(stmt, params)
                    cols = [d[0] for d in cur.description] if cur.description else []
                    fetched = cur.fetchall()
                    rows = [dict(zip(cols, r, strict=True)) for r in fetched] if cols else []
                    affected += db.conn.total_changes - before
                if write:
                    if spec.implementation.result is ResultShape.ROW and not rows:
                        raise NotFoundError(_not_found(spec, args))
                    db.conn.execute("RELEASE tool_call")
            except BaseException as exc:
                # Whatever stops the call (SQLite, a value it cannot bind, a cancellation), the
                # savepoint is undone: a half-open one would swallow every later write.
                if write and db.conn.in_transaction:
                    db.conn.execute("ROLLBACK TO tool_call")
                    db.conn.execute("RELEASE tool_call")
                if not isinstance(exc, sqlite3.Error):
                    raise
                if db.denied is not None:
                    raise AuthorizationError(f"not allowed for a {spec.effect} tool: {db.denied}") from exc
                raise ToolExecutionError(f"the database refused the change: {exc}") from exc
        structured = _shape(spec, rows, affected, args)
        return ToolOutcome(structured, json.dumps(structured, ensure_ascii=False, default=str), affected)


_INT64 = (-(2**63), 2**63 - 1)


def _check_sqlite_values(args: dict[str, Any], path: str = "") -> None:
    """Refuse what SQLite cannot store: integers outside 64 bits (it would raise at bind time)."""
    for key, value in args.items():
        field = f"{path}.{key}" if path else key
        if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
            raise InvalidArgumentsError(field, f"expected an integer from -2^63 to 2^63-1, got {value}")
        if isinstance(value, dict):
            _check_sqlite_values(value, field)


def _shape(spec: ToolSpec, rows: list[dict[str, Any]], affected: int, args: dict[str, Any]) -> dict[str, Any]:
    shape = spec.implementation.result
    if shape is ResultShape.ROWS:
        return {"rows": rows, "count": len(rows)}
    if shape is ResultShape.ROW:
        if not rows:
            raise NotFoundError(_not_found(spec, args))
        return rows[0]
    if shape is ResultShape.OPTIONAL_ROW:
        return {"row": rows[0] if rows else None}
    if shape is ResultShape.AFFECTED:
        return {"affected": affected}
    value = next(iter(rows[0].values())) if rows else None
    return {"value": value}


def _not_found(spec: ToolSpec, args: dict[str, Any]) -> str:
    what = spec.table or "row"
    keys = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in args.items())
    return f"no {what} found" + (f" with {keys}" if keys else "")
