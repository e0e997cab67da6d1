"""The LLM environment designer: a domain description becomes a database and tools that really work.

The model writes the DDL, seed rows and tools (each with a JSON Schema for its
parameters and parameterised SQL). Nothing is trusted:

- the database is built from the DDL and seed rows; when SQLite refuses them the error
  goes back to the model once for a corrected design;
- every tool is compiled on its own (so one bad tool names itself) and run once on the
  seeded database with sample arguments drawn from the seeded rows, inside an outer
  savepoint that is rolled back (a dry run leaves the rows as they were);
- the tools that fail are sent back once with their errors, then dropped;
- the tools derived from the schema (get/search/count/create/update/delete/list per
  table) are added, so the environment is always usable, with the designed tools on top.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
from jsonschema import Draft202012Validator

from schemas import DatabaseSpec, Effect, Environment, ResultShape, SqlImplementation, ToolSpec
from schemas.errors import DatabaseFileError, NotFoundError, ToolDefinitionError, ToolError, ToolExecutionError
from simulator.log import get_logger
from simulator.providers import ChatMessage, LLMClient, Request, complete_structured
from toolservers.database import Database, open_database
from toolservers.derive import derive_environment_from_ddl
from toolservers.executor import ToolExecutor
from toolservers.sql import quote_ident

__all__ = ["EnvironmentDesign", "ToolDesign", "ToolRepairs", "design_environment", "dry_run", "sample_arguments"]

log = get_logger(__name__)

_FORBIDDEN = re.compile(r"\b(ATTACH|DETACH|PRAGMA|VACUUM|load_extension)\b", re.IGNORECASE)
_TABLES = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE)\s+[\"`\[]?(\w+)", re.IGNORECASE)


class ToolDesign(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    description: str
    parameters: dict[str, Any]
    sql: list[str]
    effect: Effect = Effect.READ
    result: ResultShape = ResultShape.ROWS


class EnvironmentDesign(msgspec.Struct, forbid_unknown_fields=True):
    ddl: str
    seed: dict[str, list[dict[str, Any]]] = {}
    tools: list[ToolDesign] = []
    description: str = ""
    policy: str | None = None


class ToolRepairs(msgspec.Struct, forbid_unknown_fields=True):
    tools: list[ToolDesign]


async def design_environment(
    client: LLMClient,
    template: str,
    description: str,
    *,
    env_id: str,
    rows: int = 8,
    tools: int = 10,
) -> Environment:
    """Ask ``client`` to design the service ``description``; returns a validated environment.

    ``template`` is the environment designer prompt (placeholders ``{domain}``, ``{rows}``,
    ``{tools}``). Raises DatabaseFileError when the database cannot be built even after
    one repair, StructuredOutputError for undecodable replies, ProviderError subclasses.
    """
    messages = [ChatMessage.user(template.format(domain=description, rows=rows, tools=tools))]
    design = await complete_structured(client, Request(messages=messages), EnvironmentDesign, name="environment")
    try:
        spec, db = _build(design)
    except DatabaseFileError as exc:
        log.info("design of %s: the database could not be built (%s); asking for a repair", env_id, exc)
        messages += [
            ChatMessage.assistant(msgspec.json.encode(design).decode()),
            ChatMessage.user(
                f"The database could not be built: {exc}. Reply with the whole design corrected, as one JSON "
                "object with the same fields (description, policy, ddl, seed, tools)."
            ),
        ]
        design = await complete_structured(client, Request(messages=messages), EnvironmentDesign, name="environment")
        spec, db = _build(design)
    try:
        kept: dict[str, ToolSpec] = {}
        failed: dict[str, str] = {}
        for tool in design.tools:
            if tool.name in kept or tool.name in failed:
                continue
            checked = _check_tool(tool, spec, db, env_id)
            if isinstance(checked, ToolSpec):
                kept[tool.name] = checked
            else:
                failed[tool.name] = checked
        if failed:
            log.info("design of %s: %d tools failed their dry run; asking for a repair", env_id, len(failed))
            listed = "\n".join(f"- {name}: {problem}" for name, problem in failed.items())
            messages += [
                ChatMessage.assistant(msgspec.json.encode(design).decode()),
                ChatMessage.user(
                    "These tools failed when tried on the seeded database:\n"
                    f"{listed}\n"
                    'Reply with corrected versions of only these tools, as one JSON object {"tools": [...]} '
                    "with the same fields per tool (name, description, effect, parameters, sql, result)."
                ),
            ]
            repairs = await complete_structured(client, Request(messages=messages), ToolRepairs, name="tool_repairs")
            for tool in repairs.tools:
                if tool.name not in failed or tool.name in kept:
                    continue
                checked = _check_tool(tool, spec, db, env_id)
                if isinstance(checked, ToolSpec):
                    kept[tool.name] = checked
                    del failed[tool.name]
                else:
                    failed[tool.name] = checked
            for name, problem in failed.items():
                log.warning("design of %s: dropped tool %s: %s", env_id, name, problem)
    finally:
        db.close()
    env = derive_environment_from_ddl(
        design.ddl,
        design.seed,
        env_id=env_id,
        domain=env_id,
        description=design.description or description,
        policy=design.policy,
        extra_tools=list(kept.values()),
    )
    return with_output_schemas(env)


def with_output_schemas(env: Environment) -> Environment:
    """Give designed tools output schemas consistent with the derived ones.

    A designed tool about a table returns that table's columns with the same types as the
    derived ``get_`` tool's output schema (extra columns, from joins or aggregates, are
    allowed untyped). The schema is kept only when the tool's dry-run result matches it.
    """
    rows = {t.table: t.output_schema for t in env.tools if t.category == "get" and t.table and t.output_schema}
    db = open_database(env.database)
    try:
        executor = ToolExecutor(env, db, source=f"designed environment {env.id}")
        tools = []
        for tool in env.tools:
            if tool.category != "designed" or tool.output_schema is not None:
                tools.append(tool)
                continue
            row = rows.get(tool.table or "")
            item: dict[str, Any] = {"type": "object", "properties": dict(row["properties"]) if row else {}}
            schema = _shaped(tool.implementation.result, item)
            try:
                result = dry_run(executor, tool.name, sample_arguments(tool, db))
            except ToolError:
                result = None  # nothing to check against: keep the schema, it only types known columns
            if result is not None and list(Draft202012Validator(schema).iter_errors(result)):
                schema = _shaped(tool.implementation.result, {"type": "object"})
            tools.append(msgspec.structs.replace(tool, output_schema=schema))
    finally:
        db.close()
    return msgspec.structs.replace(env, tools=tools)


def _shaped(shape: ResultShape, item: dict[str, Any]) -> dict[str, Any]:
    """The structured result of a tool of result ``shape`` whose rows look like ``item``."""
    if shape is ResultShape.ROWS:
        return {
            "type": "object",
            "properties": {"rows": {"type": "array", "items": item}, "count": {"type": "integer"}},
            "required": ["rows", "count"],
        }
    if shape is ResultShape.ROW:
        return item
    if shape is ResultShape.OPTIONAL_ROW:
        return {"type": "object", "properties": {"row": {"anyOf": [item, {"type": "null"}]}}, "required": ["row"]}
    if shape is ResultShape.AFFECTED:
        return {"type": "object", "properties": {"affected": {"type": "integer"}}, "required": ["affected"]}
    return {"type": "object", "properties": {"value": {}}, "required": ["value"]}


def _build(design: EnvironmentDesign) -> tuple[DatabaseSpec, Database]:
    found = _FORBIDDEN.search(design.ddl)
    if found:
        raise DatabaseFileError("database.ddl", f"the DDL may only create tables and indexes, not use {found.group(1)}")
    try:
        spec = DatabaseSpec(ddl=design.ddl, seed=design.seed)
    except ValueError as exc:
        raise DatabaseFileError("database", str(exc)) from exc
    db = open_database(spec)
    if not db.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"):
        db.close()
        raise DatabaseFileError("database.ddl", "creates no tables")
    return spec, db


def _check_tool(tool: ToolDesign, spec: DatabaseSpec, db: Database, env_id: str) -> ToolSpec | str:
    """The tool as a ToolSpec when it compiles and its dry run works; else what went wrong."""
    table = _main_table(tool, db)
    try:
        tool_spec = ToolSpec(
            name=tool.name,
            description=tool.description,
            input_schema=tool.parameters,
            implementation=SqlImplementation(statements=list(tool.sql), result=tool.result),
            effect=tool.effect,
            category="designed",
            table=table,
        )
        env = Environment(id=env_id, domain=env_id, database=spec, tools=[tool_spec])
        executor = ToolExecutor(env, db, source=f"designed environment {env_id}")
    except (ValueError, TypeError, ToolDefinitionError) as exc:
        return str(exc)
    args = sample_arguments(tool_spec, db)
    try:
        dry_run(executor, tool_spec.name, args)
    except (NotFoundError, ToolExecutionError) as exc:
        if isinstance(exc, NotFoundError) or "UNIQUE constraint" in str(exc):
            return tool_spec  # the SQL ran; these sample values just did not fit
        return f"with arguments {json.dumps(args, default=str)}: {exc}"
    except ToolError as exc:
        return f"with arguments {json.dumps(args, default=str)}: {exc}"
    return tool_spec


def dry_run(executor: ToolExecutor, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call tool ``name`` inside an outer savepoint that is rolled back: the database is left as it was."""
    conn = executor.db.conn
    conn.execute("SAVEPOINT dry_run")
    try:
        return executor.call(name, arguments).structured
    finally:
        conn.execute("ROLLBACK TO dry_run")
        conn.execute("RELEASE dry_run")


def _main_table(tool: ToolDesign, db: Database) -> str | None:
    tables = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type='table'")}
    for stmt in tool.sql:
        for m in _TABLES.finditer(stmt):
            if m.group(1) in tables:
                return str(m.group(1))
    return None


def sample_arguments(tool: ToolSpec, db: Database) -> dict[str, Any]:
    """Arguments for a dry run: values of a seeded row where a parameter names a column, else by type."""
    props: dict[str, Any] = tool.input_schema.get("properties", {})
    required = set(tool.input_schema.get("required", []))
    rows = _seed_rows(db, tool.table)
    args: dict[str, Any] = {}
    for name, prop in props.items():
        if not isinstance(prop, dict):
            continue
        kind = prop.get("type")
        if isinstance(prop.get("enum"), list) and prop["enum"]:
            args[name] = prop["enum"][0]
            continue
        value = next((row[name] for row in rows if row.get(name) is not None), None)
        if value is not None and _fits(value, kind):
            args[name] = value
        elif name in required:
            args[name] = _by_type(kind, prop)
    return args


def _seed_rows(db: Database, table: str | None) -> list[dict[str, Any]]:
    """The first row of ``table`` first, then the first row of every other table."""
    names = [r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    names.sort(key=lambda n: n != table)
    out = []
    for name in names:
        cur = db.conn.execute(f"SELECT * FROM {quote_ident(name)} ORDER BY rowid LIMIT 1")
        found = cur.fetchone()
        if found is not None:
            out.append(dict(zip([d[0] for d in cur.description], found, strict=True)))
    return out


def _fits(value: Any, kind: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool) or value in (0, 1)
    return True


def _by_type(kind: Any, prop: dict[str, Any]) -> Any:
    if "default" in prop:
        return prop["default"]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "sample"
