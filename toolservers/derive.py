"""Tools derived from any SQLite database: the tools a person would write by hand.

For every table: get, search, count, create, update and delete, plus one list tool per
foreign key (``list_invoice_lines_for_invoice``). Everything comes from the schema
(declared types, NOT NULL, defaults, keys, ``CHECK (x IN (...))``) and one look at the
data: which JSON types the values really have, which dates are ISO dates, and which
text columns hold only a handful of values (those become enums).

Every tool is parameterised SQL (optional filters bind NULL, the sort column is picked
by a CASE, never by building SQL at call time) with precise input and output schemas.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from schemas import DatabaseSpec, Effect, Environment, ResultShape, SqlImplementation, ToolSpec
from schemas.errors import DatabaseFileError
from toolservers.database import check_sqlite_file, open_database
from toolservers.executor import sql_parameters
from toolservers.naming import (
    FORMATS,
    Column,
    Names,
    Table,
    noun,
    read_tables,
    snake,
    words,
)
from toolservers.sql import quote_ident as qi
from toolservers.sql import quote_literal

__all__ = ["derive_environment", "derive_environment_from_ddl", "derive_tools"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: At most this many numeric columns are totalled by a count tool.
MAX_TOTALS = 3
# A user's text is matched literally: '!' escapes LIKE's own wildcards.
_CONTAINS = "'%' || replace(replace(replace(:{p}, '!', '!!'), '%', '!%'), '_', '!_') || '%' ESCAPE '!'"


def derive_tools(conn: sqlite3.Connection) -> list[ToolSpec]:
    """Derive the tools of every table of the database behind ``conn``.

    ``conn`` must be a plain connection (no authorizer); it is only read. Raises
    sqlite3.Error when the database cannot be read.
    """
    return _derive(conn)[1]


def derive_environment(
    path: Path, *, env_id: str | None = None, domain: str | None = None, description: str = ""
) -> Environment:
    """An environment serving the tools derived from the SQLite file at ``path``.

    The file is opened read-only and never changed. Raises DatabaseFileError for a
    missing, empty or non-SQLite file, or one without tables.
    """
    check_sqlite_file(path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DatabaseFileError(str(path), f"cannot be opened: {exc}") from exc
    try:
        tables, tools = _derive(conn)
    except sqlite3.Error as exc:
        raise DatabaseFileError(str(path), f"cannot be read as SQLite: {exc}") from exc
    finally:
        conn.close()
    if not tables:
        raise DatabaseFileError(str(path), "has no tables")
    return Environment(
        id=env_id or path.stem,
        domain=domain or path.stem,
        description=description,
        database=DatabaseSpec(path=str(path.resolve())),
        tools=tools,
    )


def derive_environment_from_ddl(
    ddl: str,
    seed: dict[str, list[dict[str, Any]]],
    *,
    env_id: str,
    domain: str,
    description: str = "",
    policy: str | None = None,
    extra_tools: Sequence[ToolSpec] = (),
) -> Environment:
    """An environment over a DDL script and seed rows, with derived tools plus ``extra_tools``.

    An extra tool with the name of a derived one replaces it (so a domain pack can hand-tune
    a tool); the others are appended. Raises DatabaseFileError when SQLite refuses the DDL
    or a seed row, or the DDL creates no tables.
    """
    # The same spec goes into the environment: open_database caches the built database by spec.
    spec = DatabaseSpec(ddl=ddl, seed=seed)
    db = open_database(spec)
    # Deriving compiles write statements (EXPLAIN INSERT ...), which the Database's
    # authorizer rightly refuses while reading: work on a plain copy instead.
    plain = sqlite3.connect(":memory:")
    try:
        db.conn.backup(plain)
        tables, tools = _derive(plain)
    finally:
        plain.close()
        db.close()
    if not tables:
        raise DatabaseFileError("database.ddl", "has no tables")
    extra = {t.name: t for t in extra_tools}
    merged = [extra.pop(t.name, t) for t in tools] + list(extra.values())
    return Environment(
        id=env_id,
        domain=domain,
        description=description,
        policy=policy,
        database=spec,
        tools=merged,
    )


# -- schemas ----------------------------------------------------------------------------


def _object(props: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = False
    return schema


def _rows_schema(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"rows": {"type": "array", "items": item}, "count": {"type": "integer"}},
        "required": ["rows", "count"],
    }


def _limit(t: Table) -> dict[str, Any]:
    return {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_LIMIT,
        "default": DEFAULT_LIMIT,
        "description": f"Most {t.p_human} to return",
    }


def _pick(param: str, columns: list[str]) -> str:
    """The value of the column a parameter names: how ORDER BY / GROUP BY stay parameterised."""
    return f"CASE :{param} " + " ".join(f"WHEN {quote_literal(n)} THEN {qi(n)}" for n in columns) + " END"


def _key(t: Table, pn: Names, props: dict[str, Any], purpose: str) -> str:
    """Declare the primary key's parameters in ``props``; return the matching WHERE clause."""
    where = []
    for c in t.pk:
        p = pn.claim(c.param)
        props[p] = c.schema(f"{t.describe(c)}: {purpose}")
        where.append(f"{qi(c.name)} = :{p}")
    return " AND ".join(where)


# -- the tools --------------------------------------------------------------------------

_Builder = Callable[[Table, dict[str, Table]], list[ToolSpec]]


def _derive(conn: sqlite3.Connection) -> tuple[list[Table], list[ToolSpec]]:
    tables = read_tables(conn)
    by_name = {t.name: t for t in tables}
    names = Names()
    builders: list[_Builder] = [_get, _search, _list_related, _count, _create, _update, _delete]
    drafts = [tool for t in tables for build in builders for tool in build(t, by_name)]
    # Names are claimed in order, so a second table that reads the same gets ``get_x_2``.
    named = [msgspec.structs.replace(t, name=names.claim(t.name)) for t in drafts if _compiles(conn, t)]
    return tables, named


def _compiles(conn: sqlite3.Connection, tool: ToolSpec) -> bool:
    # A table SQLite refuses to write a certain way (a generated column, say) loses that
    # tool rather than shipping one that fails on every call.
    try:
        for sql in tool.implementation.statements:
            conn.execute("EXPLAIN " + sql, dict.fromkeys(sql_parameters(sql)))
    except sqlite3.Error:
        return False
    return True


def _spec(
    t: Table,
    name: str,
    category: str,
    description: str,
    input_schema: dict[str, Any],
    sql: str,
    *,
    rows: dict[str, Any] | None = None,
    effect: Effect = Effect.READ,
) -> ToolSpec:
    """A tool over ``t``; with ``rows`` (a row's schema) it returns rows, else exactly one of t's."""
    return ToolSpec(
        name=name,
        description=description,
        input_schema=input_schema,
        output_schema=t.row_schema() if rows is None else _rows_schema(rows),
        implementation=SqlImplementation(
            statements=[sql], result=ResultShape.ROW if rows is None else ResultShape.ROWS
        ),
        effect=effect,
        category=category,
        table=t.name,
    )


def _only(t: Table, c: Column, verb: str) -> str:
    if c.kind == "bool":
        return f"{t.describe(c)}: {verb.lower()} {t.p_human} with this value"
    return f"{verb} {t.p_human} with this {noun(c.name, c.kind)} (exact match)"


def _keys(t: Table) -> str:
    return " and ".join(noun(c.name, c.kind) for c in t.pk)


def _get(t: Table, _: dict[str, Table]) -> list[ToolSpec]:
    if not t.pk:
        return []
    props: dict[str, Any] = {}
    where = _key(t, Names(), props, f"which {t.s_human} to get")
    desc = f"Get one {t.s_human} by its {_keys(t)}. Fails with not_found when there is none."
    sql = f"SELECT {t.select_list} FROM {qi(t.name)} WHERE {where}"
    return [_spec(t, f"get_{t.s}", "get", desc, _object(props, list(props)), sql)]


def _search(t: Table, _: dict[str, Table]) -> list[ToolSpec]:
    pn, props, where = Names(), dict[str, Any](), list[str]()
    for c in t.visible:
        q = qi(c.name)
        if c.kind in {"id", "enum", "bool"}:
            p = pn.claim(c.param)
            props[p] = c.schema(_only(t, c, "Only"))
            where.append(f"(:{p} IS NULL OR {q} = :{p})")
        elif c.kind == "text":
            p = pn.claim(c.param)
            desc = f"Part of the {noun(c.name, c.kind)} to look for (case-insensitive)"
            props[p] = {"type": "string", "description": desc}
            where.append(f"(:{p} IS NULL OR {q} LIKE {_CONTAINS.format(p=p)})")
        elif c.kind in {"number", "date"}:
            fmt = f" ({FORMATS[c.fmt]})" if c.fmt else ""
            words_ = ("Earliest", "Latest") if c.kind == "date" else ("Smallest", "Largest")
            for bound, word, op in (("min", words_[0], ">="), ("max", words_[1], "<=")):
                p = pn.claim(f"{bound}_{c.param}")
                props[p] = c.schema(f"{word} {noun(c.name, c.kind)} to include{fmt}")
                where.append(f"(:{p} IS NULL OR {q} {op} :{p})")
    cols = [c.name for c in t.visible]
    p_order, p_desc, p_limit = pn.claim("order_by"), pn.claim("descending"), pn.claim("limit")
    first = t.pk[0].name if t.pk else cols[0]
    props[p_order] = {"type": "string", "enum": cols, "default": first, "description": "The column to sort by"}
    props[p_desc] = {"type": "boolean", "default": False, "description": "Sort from largest to smallest"}
    props[p_limit] = _limit(t)
    pick, tie = _pick(p_order, cols), ", ".join(qi(c.name) for c in t.pk) or "rowid"
    sql = (
        f"SELECT {t.select_list} FROM {qi(t.name)} WHERE {' AND '.join(where) or '1'} "
        f"ORDER BY CASE WHEN :{p_desc} THEN NULL ELSE {pick} END ASC, "
        f"CASE WHEN :{p_desc} THEN {pick} END DESC, {tie} LIMIT :{p_limit}"
    )
    desc = (
        f"Search {t.p_human}. Every filter is optional and filters combine with AND: text filters "
        "match part of the value (case-insensitive), min_/max_ filters are inclusive bounds. "
        f"Returns up to `limit` {t.p_human} sorted by `order_by`."
    )
    return [_spec(t, f"search_{t.p}", "search", desc, _object(props), sql, rows=t.row_schema())]


def _list_related(t: Table, tables: dict[str, Table]) -> list[ToolSpec]:
    links = [(c, c.fk, tables[c.fk[0]]) for c in t.visible if c.fk and c.fk[0] in tables]
    order = ", ".join(qi(c.name) for c in t.pk) or "rowid"
    out = []
    for c, (_, to), parent in links:
        name = f"list_{t.p}_for_{parent.s}"
        if sum(1 for *_, other in links if other is parent) > 1:  # say which of the keys
            name = f"list_{t.p}_for_{'_'.join(w for w in words(c.name) if w != 'id') or parent.s}"
        pn = Names()
        p, p_limit = pn.claim(c.param), pn.claim("limit")
        props = {
            p: c.schema(t.describe(c)),
            p_limit: _limit(t),
        }
        sql = f"SELECT {t.select_list} FROM {qi(t.name)} WHERE {qi(c.name)} = :{p} ORDER BY {order} LIMIT :{p_limit}"
        desc = f"List the {t.p_human} of one {parent.s_human} (by {t.name}.{c.name} = {parent.name}.{to})."
        out.append(_spec(t, name, "list_related", desc, _object(props, [p]), sql, rows=t.row_schema()))
    return out


def _count(t: Table, _: dict[str, Table]) -> list[ToolSpec]:
    pn, props, where = Names(), dict[str, Any](), list[str]()
    for c in t.visible:
        if c.kind in {"enum", "bool"} or (c.kind == "id" and c.fk):
            p = pn.claim(c.param)
            props[p] = c.schema(_only(t, c, "Only count"))
            where.append(f"(:{p} IS NULL OR {qi(c.name)} = :{p})")
    groups = [c for c in t.visible if c.kind in {"enum", "bool"}]
    measures = [c for c in t.visible if c.summable][:MAX_TOTALS]
    item: dict[str, Any] = {}
    if groups:
        types = [x for x in ("integer", "number", "string") if any(x in c.result_types for c in groups)]
        item["group"] = {"type": [*types, "null"], "description": "The group's value (null when not grouped)"}
    item["count"] = {"type": "integer", "description": f"How many {t.p_human}"}
    aliases, aggs = Names({"group", "count"}), ['COUNT(*) AS "count"']
    for c in measures:
        alias = aliases.claim(f"total_{snake(c.name)}")
        item[alias] = {"type": ["number", "null"], "description": f"The sum of {noun(c.name, c.kind)}"}
        aggs.append(f"SUM({qi(c.name)}) AS {qi(alias)}")
    cond, table = " AND ".join(where) or "1", qi(t.name)
    sql = f"SELECT {', '.join(aggs)} FROM {table} WHERE {cond}"
    desc = f"Count {t.p_human}, optionally only those matching the filters"
    if groups:
        p_group = pn.claim("group_by")
        gnames = [c.name for c in groups]
        props[p_group] = {"type": "string", "enum": gnames, "description": "Count per value of this column"}
        # Grouping by a NULL constant gives no row at all when nothing matches: add the 0.
        sql = (
            f'SELECT {_pick(p_group, gnames)} AS "group", {", ".join(aggs)} FROM {table} WHERE {cond} '
            f"GROUP BY 1 UNION ALL SELECT NULL, 0{', NULL' * len(measures)} WHERE :{p_group} IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {table} WHERE {cond}) ORDER BY 2 DESC, 1"
        )
        desc += f", per value of `group_by` ({', '.join(gnames)}), largest group first"
    totals = ", ".join(noun(c.name, c.kind) for c in measures)
    desc += "." + (f" Each row also has the total {totals}." if totals else "")
    return [_spec(t, f"count_{t.p}", "count", desc, _object(props), sql, rows=_object(item, list(item)))]


def _create(t: Table, _: dict[str, Table]) -> list[ToolSpec]:
    cols = [c for c in t.columns if c is not t.rowid_alias]
    if any(c.kind == "hidden" and c.notnull and c.default is None for c in cols):
        return []
    cols = [c for c in cols if c.kind != "hidden"]
    pn, props, required, values = Names(), dict[str, Any](), list[str](), list[str]()
    for c in cols:
        p = pn.claim(c.param)
        default = f"; defaults to {c.default}" if c.default is not None else ""
        props[p] = c.schema(t.describe(c) + default, nullable=not (c.notnull or c.pk))
        if (c.notnull or c.pk) and c.default is None:
            required.append(p)
        # An explicit NULL would override the column's default; COALESCE keeps it.
        values.append(f"COALESCE(:{p}, {c.default})" if c.default is not None else f":{p}")
    names = ", ".join(qi(c.name) for c in cols)
    target = f"({names}) VALUES ({', '.join(values)})" if cols else "DEFAULT VALUES"
    a = "an" if t.s_human[:1] in set("aeiou") else "a"
    desc = f"Create {a} {t.s_human} and return it{' with its new id' if t.rowid_alias else ''}."
    sql = f"INSERT INTO {qi(t.name)} {target} RETURNING {t.select_list}"
    return [_spec(t, f"create_{t.s}", "create", desc, _object(props, required), sql, effect=Effect.WRITE)]


def _update(t: Table, _: dict[str, Table]) -> list[ToolSpec]:
    rest = [c for c in t.visible if not c.pk]
    if not t.pk or not rest:
        return []
    pn, props = Names(), dict[str, Any]()
    where = _key(t, pn, props, f"which {t.s_human} to change")
    required = list(props)
    sets = []
    for c in rest:
        p = pn.claim(c.param)
        props[p] = c.schema(f"{t.describe(c)}; null or left out keeps the current value", nullable=True)
        sets.append(f"{qi(c.name)} = COALESCE(:{p}, {qi(c.name)})")
    desc = (
        f"Change one {t.s_human}, found by its {_keys(t)}. Only the fields you pass change; a field "
        f"left out (or null) keeps its value. Returns the updated {t.s_human}; fails with "
        "not_found when there is none."
    )
    schema = {**_object(props, required), "minProperties": len(required) + 1}
    sql = f"UPDATE {qi(t.name)} SET {', '.join(sets)} WHERE {where} RETURNING {t.select_list}"
    return [_spec(t, f"update_{t.s}", "update", desc, schema, sql, effect=Effect.WRITE)]


def _delete(t: Table, _: dict[str, Table]) -> list[ToolSpec]:
    if not t.pk:
        return []
    props: dict[str, Any] = {}
    where = _key(t, Names(), props, f"which {t.s_human} to delete")
    desc = f"Delete one {t.s_human} by its {_keys(t)} and return the deleted row. " + _on_delete(t)
    sql = f"DELETE FROM {qi(t.name)} WHERE {where} RETURNING {t.select_list}"
    return [_spec(t, f"delete_{t.s}", "delete", desc, _object(props, list(props)), sql, effect=Effect.WRITE)]


def _on_delete(t: Table) -> str:
    """What deleting a row of ``t`` does to the rows that refer to it, per foreign key's ON DELETE."""
    blocking = [r.child for r in t.referred_by if r.on_delete in {"NO ACTION", "RESTRICT"}]
    if len(blocking) == len(t.referred_by):
        return "Fails with not_found when there is none, and fails while other rows still refer to it."
    out = "Fails with not_found when there is none"
    if blocking:
        out += f", and fails while {' or '.join(dict.fromkeys(blocking))} rows still refer to it"
    then = []
    for r in t.referred_by:
        cols = r.columns[0] if len(r.columns) == 1 else "(" + ", ".join(r.columns) + ")"
        if r.on_delete == "CASCADE":
            then.append(f"Also deletes the {r.child} rows that refer to it.")
        elif r.on_delete == "SET NULL":
            then.append(f"Clears {r.child}.{cols} in rows that refer to it.")
        elif r.on_delete == "SET DEFAULT":
            then.append(f"Sets {r.child}.{cols} back to its default in rows that refer to it.")
    return " ".join([out + ".", *dict.fromkeys(then)])
