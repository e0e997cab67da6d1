"""Run a tool: validate its arguments, execute its SQL under the authorizer, shape the result.

The executor knows nothing of MCP; the server and the benchmarks call it directly.
``call`` runs on the calling thread; ``acall`` is what a server awaits: the same work,
but a statement that runs long moves to a worker thread instead of stalling the event
loop (see ``Database.run_async``). Both are bounded by the database's deadline.
"""

from __future__ import annotations

import math
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
    ToolError,
    ToolExecutionError,
    ToolTimeoutError,
)
from toolservers._foreign_keys import describe_violation
from toolservers._json import dumps, standard
from toolservers.database import Database, DatabaseBusy, Interruption
from toolservers.limits import MAX_RESULT_CHARS, fetch_bounded, refused, refused_rows, shown
from toolservers.sql import REFUSED_KEYWORDS, TRANSACTION_KEYWORDS, leading_keyword
from toolservers.validation import ArgumentValidator, schema_problems

__all__ = ["ToolExecutor", "ToolOutcome", "sql_parameters"]

# Named parameters outside quoted strings: strip literals first, then find ":name".
_LITERAL = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
# A tool's statements are cached by SQLite under a text no other statement has, so each
# is prepared (and authorized) for its own effect, never reused from a trusted run.
_TAGS = {Effect.READ: "\n/* dialogsim: read tool */", Effect.WRITE: "\n/* dialogsim: write tool */"}
_SAVEPOINT = "SAVEPOINT dialogsim_tool_call"
_RELEASE = "RELEASE dialogsim_tool_call"
_ROLLBACK = "ROLLBACK TO dialogsim_tool_call"


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
    statements: list[str]  # tagged for the statement cache


# (id(environment), database schema) -> (environment kept alive so its id stays its own, tools)
_CHECKED: OrderedDict[tuple[int, str], tuple[Environment, dict[str, _Compiled]]] = OrderedDict()


class ToolExecutor:
    """Executes an environment's tools against one database.

    Construction checks every tool against the database (schema validity, parameters,
    tables and columns, effect, no transaction control or other connection-state
    statements) and raises ToolDefinitionError naming ``source``, the tool and the
    statement when one does not fit.
    """

    def __init__(self, environment: Environment, db: Database, *, source: str = "environment") -> None:
        self.environment = environment
        self.db = db
        # Every dialogue's server checks the same environment against a database of the
        # same schema: the checked tools are kept per (environment, schema) and shared.
        schema = db.schema_text()
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
            shown = f"statement {i} ({_clip(stmt)})"
            for name in sql_parameters(stmt):
                if name not in props:
                    raise ToolDefinitionError(
                        source, tool.name, f"{shown} uses parameter :{name}, which input_schema does not declare"
                    )
            keyword = leading_keyword(stmt)
            if keyword in REFUSED_KEYWORDS:
                raise ToolDefinitionError(source, tool.name, f"{shown} is not allowed in a tool: {_why(keyword)}")
            with self.db.guarded(tool.effect):
                try:
                    self.db.conn.execute("EXPLAIN " + stmt, dict.fromkeys(sql_parameters(stmt)))
                except sqlite3.Error as exc:
                    if self.db.denied is not None:
                        raise ToolDefinitionError(
                            source, tool.name, f"{shown} is not allowed for a {tool.effect} tool: {self.db.denied}"
                        ) from exc
                    raise ToolDefinitionError(source, tool.name, f"{shown} does not fit the database: {exc}") from exc
        tagged = [stmt + _TAGS[tool.effect] for stmt in tool.implementation.statements]
        return _Compiled(tool, ArgumentValidator(tool.input_schema), defaults, tagged)

    @property
    def tools(self) -> list[ToolSpec]:
        return [c.spec for c in self._tools.values()]

    def has_tool(self, name: str) -> bool:
        """Whether ``name`` is one of the environment's tools."""
        return name in self._tools

    def call(self, name: str, arguments: dict[str, Any] | None) -> ToolOutcome:
        """Run tool ``name`` on this thread, bounded by the database's deadline.

        Raises InvalidArgumentsError (bad or unknown tool/arguments; the database is not
        touched), NotFoundError, ToolExecutionError (rolled back), AuthorizationError,
        ToolTimeoutError (interrupted at the deadline, rolled back) or ResultTooLargeError
        (a read past ``MAX_RESULT_CHARS``; a write past it succeeds with its largest values
        shown as markers: see ``toolservers.limits``).
        """
        call = self._prepare(name, arguments)
        try:
            return self.db.run(call.run, deadline=self.db.deadline())
        except DatabaseBusy:
            raise call.busy() from None
        except sqlite3.OperationalError:
            raise call.stopped() from None

    async def acall(self, name: str, arguments: dict[str, Any] | None) -> ToolOutcome:
        """``call`` for servers: a statement that runs long finishes in a worker thread.

        The event loop is held for at most the database's ``loop_budget_s`` per call.
        Raises what ``call`` raises.
        """
        call = self._prepare(name, arguments)
        try:
            return await self.db.run_async(call.run, deadline=self.db.deadline(), restartable=call.restartable)
        except DatabaseBusy:
            raise call.busy() from None
        except sqlite3.OperationalError:
            raise call.stopped() from None

    def _prepare(self, name: str, arguments: dict[str, Any] | None) -> _Call:
        compiled = self._tools.get(name)
        if compiled is None:
            raise InvalidArgumentsError("name", f"unknown tool {name!r}; expected one of: {', '.join(self._tools)}")
        args = dict(arguments or {})
        _check_finite(args)
        compiled.validator.validate(args)
        _check_sqlite_values(args)
        return _Call(self.db, compiled, args, {**compiled.defaults, **args})


class _Call:
    """One call's statements; ``run`` may be called again after the loop budget interrupted it."""

    def __init__(self, db: Database, compiled: _Compiled, args: dict[str, Any], params: dict[str, Any]) -> None:
        self.db = db
        self.compiled = compiled
        self.spec = compiled.spec
        self.args = args
        self.params = params
        self.write = compiled.spec.effect is Effect.WRITE
        # A read that lists rows stops fetching them past the size cap (see toolservers.limits).
        self.bounded = not self.write and compiled.spec.implementation.result is ResultShape.ROWS
        self.index = 0
        self.rows: list[dict[str, Any]] = []
        self.complete = True  # whether self.rows are all the rows of the last statement
        self.affected = 0
        self.open = False

    def restartable(self) -> bool:
        """Whether the call may start on the event loop and start over in a thread.

        Asked once the call holds the connection. A write inside a transaction someone
        else opened (a dry run, a planner) may not: an interrupted write rolls back that
        whole transaction.
        """
        return not (self.write and self.db.conn.in_transaction)

    def run(self) -> ToolOutcome:
        db, conn, spec = self.db, self.db.conn, self.spec
        with db.guarded(spec.effect):
            try:
                if self.write and not self.open:
                    # A savepoint nests inside an outer transaction (dry runs, planners) and
                    # acts as BEGIN when there is none.
                    db.trusted(_SAVEPOINT)
                    self.open, self.index, self.affected = True, 0, 0
                statements = self.compiled.statements
                while self.index < len(statements):
                    before = conn.total_changes
                    cur = conn.execute(statements[self.index], self.params)
                    cols = [d[0] for d in cur.description] if cur.description else []
                    if self.bounded and self.index == len(statements) - 1:
                        fetched, self.complete = fetch_bounded(cur)
                    else:
                        fetched = cur.fetchall()
                    self.rows = [dict(zip(cols, r, strict=True)) for r in fetched] if cols else []
                    self.affected += conn.total_changes - before
                    self.index += 1
                if self.write:
                    if spec.implementation.result is ResultShape.ROW and not self.rows:
                        raise NotFoundError(_not_found(spec, self.args))
                    db.trusted(_RELEASE)
                    self.open = False
            except BaseException as exc:
                if db.interrupted_by is Interruption.BUDGET and isinstance(exc, sqlite3.OperationalError):
                    # Resumed in a worker thread: an interrupted read undid nothing and runs
                    # again; an interrupted write rolled the whole call back, which starts over.
                    if self.write and not conn.in_transaction:
                        self.open = False
                    raise
                try:
                    failure = self._failed(exc)
                except sqlite3.OperationalError:
                    # Naming a broken foreign key overran the loop budget: undo the call,
                    # which starts over in a worker thread.
                    self._undo()
                    raise
                if failure is exc:
                    raise
                raise failure from exc
        if not self.complete:
            raise refused_rows(spec, self.rows, None)
        structured, text = standard(_shape(spec, self.rows, self.affected, self.args))
        if len(text) > MAX_RESULT_CHARS:
            if not self.write:
                raise refused(spec, structured, text)
            # The write is committed: refusing its result would report a change that was made
            # as failed, so it succeeds with its largest values shown by their size.
            structured, text = shown(structured, text)
        return ToolOutcome(structured, text, self.affected)

    def _failed(self, exc: BaseException) -> BaseException:
        """Undo the call and say why it failed: what the caller raises instead of ``exc``."""
        db = self.db
        why, denied = db.interrupted_by, db.denied
        problem: str | None = None
        if isinstance(exc, sqlite3.IntegrityError) and exc.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
            # Named while the call's savepoint still holds what came before the failure.
            statements = self.compiled.statements
            # Past the last statement it is the commit that failed (a deferred key).
            failed = statements[self.index] if self.index < len(statements) else None
            problem = describe_violation(db, failed, self.params, self.spec.table)
        self._undo()
        if not isinstance(exc, sqlite3.Error):
            return exc
        if why is Interruption.DEADLINE:
            return ToolTimeoutError(
                f"the tool's SQL ran longer than the {db.call_timeout_s:g} s limit and was interrupted; "
                + ("nothing was changed" if self.write else "try narrower arguments"),
                timeout_s=db.call_timeout_s,
            )
        if why in (Interruption.ABORT, Interruption.CANCEL):
            return ToolExecutionError("the call was interrupted: the tool server is stopping")
        if denied is not None:
            return AuthorizationError(f"not allowed for a {self.spec.effect} tool: {denied}")
        return ToolExecutionError(f"the database refused the change: {problem or exc}")

    def _undo(self) -> None:
        # Whatever stops the call (SQLite, a value it cannot bind, a cancellation), the
        # savepoint is undone: a half-open one would swallow every later write.
        if self.write and self.open and self.db.conn.in_transaction:
            try:
                self.db.trusted(_ROLLBACK)
                self.db.trusted(_RELEASE)
            except sqlite3.Error:
                pass  # an interrupted write took the savepoint with it
        self.open = False

    def stopped(self) -> ToolError:
        """What a call gets when the database refused to start it (it is shutting down)."""
        return ToolExecutionError("the call was not run: the tool server is stopping")

    def busy(self) -> ToolError:
        return ToolTimeoutError(
            f"the database was busy with another long call for the whole {self.db.call_timeout_s:g} s limit; "
            "nothing was run",
            timeout_s=self.db.call_timeout_s,
        )


def _why(keyword: str) -> str:
    if keyword in TRANSACTION_KEYWORDS:
        return (
            f"{keyword} controls the transaction, which dialogsim owns (each write tool call runs in its own "
            "savepoint, committed on success and rolled back on error)"
        )
    return f"{keyword} maintains the database file (indexes, statistics, pages), which is not a tool's job"


def _clip(sql: str, limit: int = 60) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_INT64 = (-(2**63), 2**63 - 1)


def _check_finite(value: Any, path: str = "") -> None:
    """Refuse NaN and ±Infinity anywhere in the arguments: JSON has no such numbers."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        field = f"{path}.{key}" if path else str(key)
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidArgumentsError(field, f"expected a finite number, got {item!r}")
        if isinstance(item, dict | list):
            _check_finite(item, field)


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
    keys = ", ".join(f"{k}={dumps(v)}" for k, v in args.items())
    return f"no {what} found" + (f" with {keys}" if keys else "")
