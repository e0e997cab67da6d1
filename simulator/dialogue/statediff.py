"""The full-state check: a dialogue's final database against a replay of its gold calls.

The gold replay opens a fresh copy of the environment's database, applies the scenario's
initial state (``initial_state.db_actions``, as the runner does before the conversation)
and then the gold calls of every task in order, straight through the executor (no MCP):
each step of a task's chain with its ``resolved`` arguments; for a change of mind, the
first value and then the final one; for a refinement, the re-run search after its step.
Reads change nothing; their results are kept as what the values the agent must tell the
user are about (``simulator.dialogue.grounding``).

The two databases are then compared table by table and row by row. Every difference
is a :class:`~schemas.StateChange`; ``→`` goes from what the gold replay holds to what the
dialogue left. Two kinds of column legitimately differ, and each has a rule, no table
is skipped:

- **generated keys**: in a table whose primary key is one ``INTEGER`` column (SQLite's
  rowid, filled in on insert), a row whose key is above the largest key the table had
  before the dialogue is an inserted row. Inserted rows are matched by content, the key
  left out (the same key preferred), and references to them from other tables (foreign
  keys) are compared through that matching.
- **clock columns**: a column whose default (or a trigger, or a write tool's SQL) takes
  its value from the clock (``CURRENT_TIMESTAMP``, ``datetime('now')``, …) must be set,
  or not set, on both sides; its value is not compared.

Numbers compare as numbers (``37.62`` equals ``37.620000000000005``). Only tables some
write of the dialogue or of the gold replay can change are read (SQLite itself says
which tables a write tool's statements, triggers and foreign-key actions change; the
others are unchanged copies of the same start); tables that hold the same rows on both
sides are found equal by one list comparison. Two databases whose bytes are the same
(every page; ``same_image``) are found equal without reading a row: what a dialogue that
did its tasks leaves is, as a rule, what the replay left, byte for byte.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas import ChainStep, Effect, Environment, Scenario, StateChange, Task, ToolInvocation
from schemas.errors import DialogsimError, VerificationError
from toolservers.database import Database, file_stamp, open_database, source_file
from toolservers.executor import ToolExecutor, ToolOutcome, sql_parameters

__all__ = [
    "GoldCall",
    "GoldReplay",
    "TableRule",
    "diff_states",
    "gold_calls",
    "replay_gold",
    "same_image",
    "table_rules",
    "tables_written",
    "touched_tables",
    "writes",
]

#: Largest number of differences kept per dialogue; the rest are counted.
MAX_CHANGES = 50

_CLOCK = re.compile(
    r"(?i)\bcurrent_(?:timestamp|date|time)\b|\b(?:datetime|date|time|julianday|unixepoch|strftime)\s*\([^()]*'now'"
)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- the gold calls


@dataclass(frozen=True, slots=True)
class GoldCall:
    """One call of the replay: the task and step it comes from, and the invocation.

    ``role``: ``step`` (the step as planned), ``first`` (the first value of a change of
    mind, before the step) or ``refined`` (a refinement's re-run of a search, after it).
    """

    task_id: str
    step_id: str
    call: ToolInvocation
    write: bool
    role: str = "step"


def writes(task: Task, environment: Environment) -> bool:
    """Whether any step of ``task`` calls a write tool."""
    return any(_effect(environment, step.tool) is Effect.WRITE for step in task.chain)


def _effect(environment: Environment, tool: str) -> Effect | None:
    try:
        return environment.tool(tool).effect
    except KeyError:
        return None


def gold_calls(scenario: Scenario, environment: Environment) -> list[GoldCall]:
    """Every call that does the tasks of ``scenario``, in order (see the module docstring).

    Reads are listed too: they change nothing, but their results are what a value the
    agent must tell the user is about (``simulator.dialogue.grounding``). A step's
    arguments are its ``resolved`` ones; a step planned without them (only literal
    ``arguments``) uses those. Raises VerificationError for a step whose tool the
    environment does not have, or a write whose references were never resolved.
    """
    out: list[GoldCall] = []
    for task in scenario.tasks:
        for step in task.chain:
            effect = _effect(environment, step.tool)
            if effect is None:
                raise VerificationError(f"task {task.id} step {step.id}: no tool {step.tool!r} in the environment")
            write = effect is Effect.WRITE
            args = _arguments(task, step, write=write)
            if args is None:
                continue
            com = task.change_of_mind
            if write and com is not None and com.step == step.id:
                first = ToolInvocation(tool=step.tool, arguments={**args, com.argument: com.first})
                out.append(GoldCall(task.id, step.id, first, write, "first"))
            out.append(GoldCall(task.id, step.id, ToolInvocation(tool=step.tool, arguments=args), write))
            ref = task.refinement
            if ref is not None and ref.step == step.id and not write:
                refined = ToolInvocation(tool=step.tool, arguments={**args, **ref.arguments})
                out.append(GoldCall(task.id, step.id, refined, False, "refined"))
    return out


def _arguments(task: Task, step: ChainStep, *, write: bool) -> dict[str, Any] | None:
    if step.resolved:
        return dict(step.resolved)
    missing = [name for name in step.refs if name not in step.arguments]
    if missing and write:
        raise VerificationError(
            f"task {task.id} step {step.id}: arguments {', '.join(missing)} come from earlier steps "
            "and were never resolved; the gold call cannot be replayed"
        )
    return None if missing else dict(step.arguments)


@dataclass(slots=True)
class GoldReplay:
    """The gold state of a dialogue: its database, what each table held before the calls, and
    the result of every gold call (by step id, and ``STEP:refined`` for a refinement)."""

    database: Database
    calls: int
    #: The largest integer key per table before the gold calls (None: the table was empty).
    keys_before: dict[str, int | None] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    #: The write tools the gold calls used.
    tools: frozenset[str] = frozenset()
    #: Why the replay stopped before its end (a gold write failed), or None.
    failure: str | None = None
    #: Generated-key column -> the largest key before the gold calls (the smallest, for a
    #: column name several tables share; None when a table was empty).
    new_keys: dict[str, int | None] = field(default_factory=dict)
    #: The tables a write of the gold calls or of the dialogue may have changed (None: any).
    touched: frozenset[str] | None = None
    #: Gives the database back (see ``_gold_database``); closing it when None.
    release: Callable[[], None] | None = None

    def close(self) -> None:
        if self.release is not None:
            self.release()
        else:
            self.database.close()


def replay_gold(
    scenario: Scenario,
    environment: Environment,
    *,
    base_dir: Path | None = None,
    called: Iterable[str] | None = None,
    wanted: Collection[str] | None = None,
) -> GoldReplay:
    """Replay the initial state and the gold calls of ``scenario`` on a fresh copy of the database.

    ``called``: the tools the dialogue called; with it, only the tables some write of
    either side can change are prepared for the diff (``touched``), else all of them.
    ``wanted``: the results the caller reads (keys of ``results``); a read whose result
    is not among them is not run (a read changes nothing). None: every read runs.

    A gold write that fails stops the replay there (``failure`` says why: the tasks do
    not fit this environment, so no state can be compared); a read that fails only
    leaves its result out. Raises VerificationError when the database cannot be opened
    or an initial action fails.
    """
    calls = gold_calls(scenario, environment)
    try:
        db, release = _gold_database(environment, base_dir)
    except DialogsimError as exc:
        raise VerificationError(f"the gold replay cannot open the database: {exc}") from exc
    results: dict[str, Any] = {}
    failure = None
    try:
        executor = ToolExecutor(environment, db, source=f"environment {environment.id}")
        for action in scenario.initial_state.db_actions:
            _call(executor, action, "initial action")
        rules = table_rules(db, environment)
        touched = None
        if called is not None:
            touched = touched_tables(db, environment, {*called, *(g.call.tool for g in calls if g.write)})
        keys_before = {
            t.name: _max_key(db, t)
            for t in rules.values()
            if t.generated is not None and (touched is None or t.name in touched)
        }
        for gold in calls:
            if wanted is not None and not gold.write and _result_key(gold) not in wanted:
                continue
            try:
                outcome = executor.call(gold.call.tool, gold.call.arguments)
            except DialogsimError as exc:
                if not gold.write:
                    continue
                failure = f"the gold call of task {gold.task_id} step {gold.step_id} ({gold.call.tool}) failed: {exc}"
                break
            if gold.role != "first":
                results[_result_key(gold)] = outcome.structured
    except BaseException:
        release()
        raise
    written = [g.call.tool for g in calls if g.write]
    new_keys: dict[str, int | None] = {}
    for rule in rules.values():
        if rule.generated is None or rule.name not in keys_before:
            continue
        before = keys_before[rule.name]
        if rule.generated not in new_keys:
            new_keys[rule.generated] = before
        else:
            known = new_keys[rule.generated]
            new_keys[rule.generated] = None if known is None or before is None else min(known, before)
    return GoldReplay(
        database=db,
        new_keys=new_keys,
        touched=touched,
        calls=len(written),
        keys_before=keys_before,
        results=results,
        tools=frozenset(written),
        failure=failure,
        release=release,
    )


def _result_key(gold: GoldCall) -> str:
    """Where a gold call's result is kept in ``GoldReplay.results``."""
    return gold.step_id + (":refined" if gold.role == "refined" else "")


# --------------------------------------------------------------------------- the replay's database

# One warm copy of each environment's database for the replays, kept from one dialogue to
# the next: each replay runs inside a transaction on it, rolled back when the replay is
# closed, so every replay starts from the same state a fresh copy has. A fresh copy costs
# its opening and, on first use, the preparing of every statement (half of a tool call's
# time); the warm copy keeps them prepared. Databases where a transaction around the calls
# would change what a call does are copied fresh each time: deferred foreign keys (checked
# at the outer commit, not at the call's end) and ``OR ROLLBACK`` / ``RAISE(ROLLBACK)``
# (which would undo the earlier calls too). A database file is copied again when it changes.
_NOT_NESTABLE = re.compile(r"(?i)\bINITIALLY\s+DEFERRED\b|\bOR\s+ROLLBACK\b|\bRAISE\s*\(\s*ROLLBACK\b")
_WARM_LIMIT = 16


@dataclass(slots=True)
class _Warm:
    spec: object  # the environment's DatabaseSpec, kept so its id() stays its own while cached
    stamp: tuple[int, int, int] | None  # the file's (mtime_ns, size, inode), for a file database
    db: Database
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False


_WARM: OrderedDict[tuple[int, str], _Warm] = OrderedDict()
_WARM_GUARD = threading.Lock()


def _nestable(db: Database, environment: Environment) -> bool:
    texts = [sql or "" for (sql,) in db.query("SELECT sql FROM sqlite_master")]
    texts += [stmt for tool in environment.tools for stmt in tool.implementation.statements]
    return not any(_NOT_NESTABLE.search(text) for text in texts)


def _gold_database(environment: Environment, base_dir: Path | None) -> tuple[Database, Callable[[], None]]:
    """A database in the environment's initial state for one replay, and how to give it back.

    The warm copy inside a new transaction when it is free, else a fresh copy (closed on
    release). Raises what ``open_database`` raises.
    """
    spec = environment.database
    path = source_file(environment.database, base_dir)
    stamp = file_stamp(path)
    key = (id(spec), str(path))
    with _WARM_GUARD:
        warm = _WARM.get(key)
        if warm is not None and (warm.spec is not spec or warm.stamp != stamp):
            _drop(key, warm)
            warm = None
        if warm is not None:
            _WARM.move_to_end(key)
    acquired = warm is not None and warm.lock.acquire(blocking=False)
    if acquired and warm is not None and warm.closed:  # dropped by another thread since it was looked up
        warm.lock.release()
        acquired, warm = False, None
    if not acquired:
        db = open_database(spec, base_dir=base_dir)
        # Busy (another thread replays on it), unreadable or not nestable: a copy of its own.
        if warm is not None or (path is not None and stamp is None) or not _nestable(db, environment):
            return db, db.close
        warm = _Warm(spec, stamp, db)
        warm.lock.acquire()
        with _WARM_GUARD:
            _WARM[key] = warm
            while len(_WARM) > _WARM_LIMIT:
                _drop(*next(iter(_WARM.items())))
    assert warm is not None
    held = warm
    db = held.db
    try:
        # Learned once per schema, and never inside the transaction: learning what the
        # tools write copies the database, which waits forever on its own open write.
        tables_written(db, environment)
        table_rules(db, environment)
        db.trusted("BEGIN")
    except BaseException:
        _give_back(key, held, broken=True)
        raise
    return db, lambda: _give_back(key, held)


def _give_back(key: tuple[int, str], warm: _Warm, *, broken: bool = False) -> None:
    try:
        if not broken and warm.db.conn.in_transaction:
            warm.db.trusted("ROLLBACK")
        else:
            broken = True  # something ended the transaction: the state is no longer the start
    except sqlite3.Error:
        broken = True
    finally:
        warm.lock.release()
    with _WARM_GUARD:
        if broken or _WARM.get(key) is not warm:
            _drop(key, warm)


def _drop(key: tuple[int, str], warm: _Warm) -> None:
    """Forget ``warm`` (under ``_WARM_GUARD``); closed now if free, else by whoever holds it."""
    if _WARM.get(key) is warm:
        del _WARM[key]
    if warm.lock.acquire(blocking=False):
        try:
            if not warm.closed:
                warm.closed = True
                warm.db.close()
        finally:
            warm.lock.release()


def _call(executor: ToolExecutor, call: ToolInvocation, what: str) -> ToolOutcome:
    """An initial action: the runner applied it before the conversation, so it must replay."""
    try:
        return executor.call(call.tool, call.arguments)
    except DialogsimError as exc:
        raise VerificationError(f"the gold replay failed at {what} ({call.tool}): {exc}") from exc


def _max_key(db: Database, rule: TableRule) -> int | None:
    assert rule.generated is not None
    value = db.query(f"SELECT max({_q(rule.generated)}) FROM {_q(rule.name)}")[0][0]
    return value if isinstance(value, int) else None


# --------------------------------------------------------------------------- table rules


@dataclass(frozen=True, slots=True)
class TableRule:
    """How one table is compared: its columns, key, generated key, clock columns, references."""

    name: str
    columns: tuple[str, ...]
    pk: tuple[str, ...]
    #: The INTEGER PRIMARY KEY column SQLite fills in for new rows, if the table has one.
    generated: str | None
    clock: frozenset[str]
    #: Column -> (parent table, parent column) for each single-column foreign key.
    refs: dict[str, tuple[str, str]]

    @property
    def order(self) -> str:
        cols = self.pk or self.columns
        return ", ".join(_q(c) for c in cols)


_RULES: OrderedDict[tuple[int, str], tuple[Environment, dict[str, TableRule]]] = OrderedDict()


def table_rules(db: Database, environment: Environment) -> dict[str, TableRule]:
    """The comparison rules of every table of ``db``, in an order where parents come before children.

    Read from the schema (``PRAGMA table_xinfo``, ``foreign_key_list``), the triggers and
    the write tools' SQL; kept per (environment, schema).
    """
    schema = db.schema_text()
    key = (id(environment), schema)
    hit = _RULES.get(key)
    if hit is not None and hit[0] is environment:
        _RULES.move_to_end(key)
        return hit[1]
    rules = _read_rules(db, environment)
    _RULES[key] = (environment, rules)
    while len(_RULES) > 64:
        _RULES.popitem(last=False)
    return rules


def _read_rules(db: Database, environment: Environment) -> dict[str, TableRule]:
    master = db.query("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
    tables = [(name, sql or "") for kind, name, _, sql in master if kind == "table" and not name.startswith("sqlite_")]
    sql_texts = [sql or "" for kind, _, _, sql in master if kind == "trigger"]
    sql_texts += [s for t in environment.tools if t.effect is Effect.WRITE for s in t.implementation.statements]
    assigned = _clock_assignments(sql_texts)
    rules: dict[str, TableRule] = {}
    for name, ddl in tables:
        info = db.query(f"PRAGMA table_xinfo({_q(name)})")
        columns = tuple(r[1] for r in info if r[6] in (0, 2, 3))  # ordinary and generated columns
        pk_cols = sorted((r[5], r[1]) for r in info if r[5])
        pk = tuple(c for _, c in pk_cols)
        types = {r[1]: (r[2] or "").upper() for r in info}
        without_rowid = bool(re.search(r"(?i)\)\s*without\s+rowid\s*;?\s*$", ddl.strip()))
        generated = pk[0] if len(pk) == 1 and types.get(pk[0]) == "INTEGER" and not without_rowid else None
        clock = {r[1] for r in info if r[4] is not None and _CLOCK.search(str(r[4]))}
        clock |= {c for table, c in assigned if table.lower() == name.lower() and c in columns}
        fks = db.query(f"PRAGMA foreign_key_list({_q(name)})")
        sizes = Counter(r[0] for r in fks)
        refs = {r[3]: (r[2], r[4] or "") for r in fks if sizes[r[0]] == 1}
        rules[name] = TableRule(name, columns, pk, generated, frozenset(clock), refs)
    return _parents_first(rules)


def _parents_first(rules: dict[str, TableRule]) -> dict[str, TableRule]:
    ordered: dict[str, TableRule] = {}
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name in visiting or name not in rules:
            return
        visiting.add(name)
        for parent, _ in rules[name].refs.values():
            if parent != name:
                visit(parent)
        visiting.discard(name)
        ordered[name] = rules[name]

    for name in rules:
        visit(name)
    return ordered


_NAME = r"(\"(?:[^\"]|\"\")+\"|\w+)"
_UPDATE_SET = re.compile(r"(?is)\bUPDATE\s+(?:OR\s+\w+\s+)?" + _NAME + r"\s+SET\s+(.*?)(?:\bWHERE\b|\bRETURNING\b|;|$)")
_INSERT = re.compile(
    r"(?is)\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s+" + _NAME + r"\s*\(([^)]*)\)\s*VALUES\s*\((.*?)\)\s*(?:RETURNING\b|;|$)"
)


def _unquote(name: str) -> str:
    name = name.strip()
    if name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _clock_assignments(statements: Iterable[str]) -> set[tuple[str, str]]:
    """(table, column) pairs some statement sets from the clock."""
    out: set[tuple[str, str]] = set()
    for sql in statements:
        if not _CLOCK.search(sql):
            continue
        for m in _UPDATE_SET.finditer(sql):
            table = _unquote(m.group(1))
            for part in _split_top(m.group(2)):
                column, eq, value = part.partition("=")
                if eq and _CLOCK.search(value):
                    out.add((table, _unquote(column)))
        for m in _INSERT.finditer(sql):
            table = _unquote(m.group(1))
            columns = [_unquote(c) for c in _split_top(m.group(2))]
            values = _split_top(m.group(3))
            out.update((table, c) for c, v in zip(columns, values, strict=False) if _CLOCK.search(v))
    return out


# --------------------------------------------------------------------------- what can change

_WRITES = frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})
_TOUCHES: OrderedDict[tuple[int, str], tuple[Environment, dict[str, frozenset[str] | None]]] = OrderedDict()


def tables_written(db: Database, environment: Environment) -> dict[str, frozenset[str] | None]:
    """For each write tool, every table one of its calls can change (None: cannot tell).

    Asked of SQLite itself: each statement is prepared (``EXPLAIN``) on a scratch copy of
    the schema under an authorizer that records every insert, update and delete it would
    do, triggers and foreign-key actions included; tables a cascading foreign key reaches
    are added too. Kept per (environment, schema).
    """
    schema = db.schema_text()
    key = (id(environment), schema)
    hit = _TOUCHES.get(key)
    if hit is not None and hit[0] is environment:
        _TOUCHES.move_to_end(key)
        return hit[1]
    scratch = sqlite3.connect(":memory:", cached_statements=0)
    try:
        db.conn.backup(scratch)
        scratch.execute("PRAGMA foreign_keys = ON")
        out = {t.name: _statement_writes(scratch, t.implementation.statements) for t in environment.tools}
        cascades = _cascades(scratch)
    finally:
        scratch.close()
    closed = {name: None if tables is None else _closure(tables, cascades) for name, tables in out.items()}
    _TOUCHES[key] = (environment, closed)
    while len(_TOUCHES) > 64:
        _TOUCHES.popitem(last=False)
    return closed


def _statement_writes(conn: sqlite3.Connection, statements: Sequence[str]) -> frozenset[str] | None:
    seen: set[str] = set()

    def record(action: int, arg1: str | None, _a2: str | None, _db: str | None, _trig: str | None) -> int:
        if action in _WRITES and arg1 is not None and not arg1.startswith("sqlite_"):
            seen.add(arg1)
        return sqlite3.SQLITE_OK

    conn.set_authorizer(record)
    try:
        for stmt in statements:
            conn.execute("EXPLAIN " + stmt, dict.fromkeys(sql_parameters(stmt)))
    except sqlite3.Error:
        return None
    finally:
        conn.set_authorizer(None)
    return frozenset(seen)


def _cascades(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Parent table -> child tables whose foreign key acts on a change of the parent."""
    out: dict[str, set[str]] = {}
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for child in tables:
        for row in conn.execute(f"PRAGMA foreign_key_list({_q(child)})"):
            parent, on_update, on_delete = row[2], str(row[5]).upper(), str(row[6]).upper()
            if on_update not in {"NO ACTION", "RESTRICT"} or on_delete not in {"NO ACTION", "RESTRICT"}:
                out.setdefault(parent, set()).add(child)
    return out


def _closure(tables: frozenset[str], cascades: dict[str, set[str]]) -> frozenset[str]:
    done: set[str] = set()
    todo = list(tables)
    while todo:
        table = todo.pop()
        if table not in done:
            done.add(table)
            todo.extend(cascades.get(table, ()))
    return frozenset(done)


def touched_tables(db: Database, environment: Environment, tools: Iterable[str]) -> frozenset[str] | None:
    """The tables calls of ``tools`` may have changed, or None when that cannot be told."""
    written = tables_written(db, environment)
    out: set[str] = set()
    for tool in tools:
        if tool not in written:
            continue  # no such tool: its calls were refused, nothing changed
        tables = written[tool]
        if tables is None:
            return None
        out |= tables
    return frozenset(out)


# --------------------------------------------------------------------------- the diff


def diff_states(
    gold: Database,
    actual: Database,
    rules: dict[str, TableRule],
    keys_before: dict[str, int | None],
    *,
    only: frozenset[str] | None = None,
) -> list[StateChange]:
    """Every difference between ``gold`` and ``actual``, table by table (parents first).

    ``only``: the tables that may differ (those some write of either side can change,
    :func:`touched_tables`); the others started equal and are not read. None: all.
    """
    if same_image(gold, actual):
        return []
    changes: list[StateChange] = []
    #: Per table with a generated key: actual key -> gold key of each matched inserted row.
    mapped: dict[str, dict[Any, Any]] = {}
    for rule in rules.values():
        if only is not None and rule.name not in only:
            continue
        sql = f"SELECT {', '.join(_q(c) for c in rule.columns)} FROM {_q(rule.name)} ORDER BY {rule.order}"
        gold_rows = gold.query(sql)
        actual_rows = actual.query(sql)
        remapped = any(mapped.get(parent) for parent, _ in rule.refs.values())
        if gold_rows == actual_rows and not remapped:
            continue
        changes.extend(_diff_table(rule, gold_rows, actual_rows, keys_before.get(rule.name), mapped))
    return changes


# The parts of SQLite's 100-byte file header that say how the pages are read: the page size,
# the bytes reserved at the end of each page and the payload fractions, the schema format
# (which record encodings may occur) and the text encoding. The rest of it counts changes
# (the file change counter, the schema cookie, the version that last wrote it) or says
# which pages are free, and differs between equal states.
_LAYOUT = (slice(16, 18), slice(20, 24), slice(44, 48), slice(56, 60))


def same_image(a: Database, b: Database) -> bool:
    """Whether ``a`` and ``b`` hold the same bytes: every page, and the parts of the header that
    say how a page is read (``_LAYOUT``). Then every table holds the same rows (what any query
    reads is in those pages), and no row need be read. False for different bytes (the rows may
    still be equal: the same changes made in another order lay pages out differently) and for
    a database too large to copy (``Database.image``).
    """
    image_a = a.image()
    if image_a is None:
        return False
    image_b = b.image()
    if image_b is None or len(image_a) != len(image_b) or image_a[100:] != image_b[100:]:
        return False
    return all(image_a[part] == image_b[part] for part in _LAYOUT)


def _diff_table(
    rule: TableRule,
    gold_rows: list[tuple[Any, ...]],
    actual_rows: list[tuple[Any, ...]],
    key_before: int | None,
    mapped: dict[str, dict[Any, Any]],
) -> list[StateChange]:
    index = {c: i for i, c in enumerate(rule.columns)}
    translate = [
        (index[col], mapped[parent]) for col, (parent, _) in rule.refs.items() if col in index and mapped.get(parent)
    ]
    if translate:
        actual_rows = [_translated(row, translate) for row in actual_rows]
    if not rule.pk:
        return _diff_bags(rule, gold_rows, actual_rows)
    pk_idx = [index[c] for c in rule.pk]

    def key_of(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(row[i] for i in pk_idx)

    gold_by = {key_of(r): r for r in gold_rows}
    actual_by = {key_of(r): r for r in actual_rows}
    changes: list[StateChange] = []
    if rule.generated is not None:

        def is_new(key: tuple[Any, ...]) -> bool:
            value = key[0]
            return isinstance(value, int) and (key_before is None or value > key_before)

        gold_new = {k: r for k, r in gold_by.items() if is_new(k)}
        actual_new = {k: r for k, r in actual_by.items() if is_new(k)}
        for k in gold_new:
            del gold_by[k]
        for k in actual_new:
            del actual_by[k]
        changes.extend(_match_inserted(rule, gold_new, actual_new, mapped.setdefault(rule.name, {})))
    for key in sorted(gold_by.keys() | actual_by.keys(), key=_sort_key):
        g, a = gold_by.get(key), actual_by.get(key)
        if g is None and a is not None:
            changes.append(_one_side(rule, "extra", key, a))
        elif a is None and g is not None:
            changes.append(_one_side(rule, "missing", key, g))
        elif g is not None and a is not None:
            cols = _differing(rule, g, a)
            if cols:
                changes.append(_changed(rule, key, cols))
    return changes


def _match_inserted(
    rule: TableRule,
    gold_new: dict[tuple[Any, ...], tuple[Any, ...]],
    actual_new: dict[tuple[Any, ...], tuple[Any, ...]],
    mapping: dict[Any, Any],
) -> list[StateChange]:
    """Match inserted rows by content without the generated key; the same key is preferred."""
    gen = rule.columns.index(rule.generated) if rule.generated in rule.columns else -1
    by_content: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for key, row in gold_new.items():
        by_content.setdefault(_content(rule, row, skip=gen), []).append(key)
    unmatched_actual: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for key, row in sorted(actual_new.items(), key=lambda kv: _sort_key(kv[0])):
        candidates = by_content.get(_content(rule, row, skip=gen))
        if not candidates:
            unmatched_actual[key] = row
            continue
        gold_key = key if key in candidates else candidates[0]
        candidates.remove(gold_key)
        if gold_key != key:
            mapping[key[0]] = gold_key[0]
    unmatched_gold = {k: gold_new[k] for keys in by_content.values() for k in keys}
    changes: list[StateChange] = []
    for key in sorted(unmatched_gold.keys() | unmatched_actual.keys(), key=_sort_key):
        g, a = unmatched_gold.get(key), unmatched_actual.get(key)
        if g is not None and a is not None:
            changes.append(_changed(rule, key, _differing(rule, g, a), note=" (inserted)"))
        elif a is not None:
            changes.append(_one_side(rule, "extra", key, a))
        elif g is not None:
            changes.append(_one_side(rule, "missing", key, g))
    return changes


def _diff_bags(
    rule: TableRule, gold_rows: list[tuple[Any, ...]], actual_rows: list[tuple[Any, ...]]
) -> list[StateChange]:
    """Tables without a primary key: rows compared as multisets."""
    pending: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in gold_rows:
        pending.setdefault(_content(rule, row), []).append(row)
    changes: list[StateChange] = []
    for row in actual_rows:
        same = pending.get(_content(rule, row))
        if same:
            same.pop()
        else:
            changes.append(_one_side(rule, "extra", None, row))
    changes.extend(_one_side(rule, "missing", None, row) for rows in pending.values() for row in rows)
    return changes


def _translated(row: tuple[Any, ...], translate: list[tuple[int, dict[Any, Any]]]) -> tuple[Any, ...]:
    values = list(row)
    for i, mapping in translate:
        if values[i] in mapping:
            values[i] = mapping[values[i]]
    return tuple(values)


def _norm(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return value
        return float(f"{value:.12g}")
    return value


def _content(rule: TableRule, row: tuple[Any, ...], *, skip: int = -1) -> tuple[Any, ...]:
    return tuple(
        (value is None) if rule.columns[i] in rule.clock else _norm(value) for i, value in enumerate(row) if i != skip
    )


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return False


def _differing(rule: TableRule, gold: tuple[Any, ...], actual: tuple[Any, ...]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for column, g, a in zip(rule.columns, gold, actual, strict=True):
        if column in rule.clock:
            if (g is None) != (a is None):
                out[column] = [g, a]
        elif not _same(g, a):
            out[column] = [g, a]
    return out


# --------------------------------------------------------------------------- wording


def _show(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return "'" + text.replace("'", "''") + "'"
    return repr(value)


def _key_text(rule: TableRule, key: Sequence[Any]) -> str:
    if len(key) == 1:
        return f"pk={_show(key[0])}"
    return "pk=(" + ", ".join(f"{c}={_show(v)}" for c, v in zip(rule.pk, key, strict=True)) + ")"


def _key_dict(rule: TableRule, key: Sequence[Any] | None) -> dict[str, Any]:
    return {} if key is None else dict(zip(rule.pk, key, strict=True))


def _changed(rule: TableRule, key: Sequence[Any], cols: dict[str, list[Any]], note: str = "") -> StateChange:
    parts = "; ".join(f"{c} {_show(g)} → {_show(a)}" for c, (g, a) in cols.items())
    return StateChange(
        kind="changed",
        table=rule.name,
        key=_key_dict(rule, key),
        columns={c: [_plain(g), _plain(a)] for c, (g, a) in cols.items()},
        text=f"{rule.name} {_key_text(rule, key)}{note}: {parts}",
    )


def _one_side(rule: TableRule, kind: str, key: Sequence[Any] | None, row: tuple[Any, ...]) -> StateChange:
    sign = "+" if kind == "extra" else "-"
    values = {c: _plain(v) for c, v in zip(rule.columns, row, strict=True)}
    if key is not None:
        where = _key_text(rule, key)
    else:
        shown = ", ".join(f"{c}={_show(v)}" for c, v in list(zip(rule.columns, row, strict=True))[:4])
        where = f"({shown}{', ...' if len(rule.columns) > 4 else ''})"
    return StateChange(
        kind=kind, table=rule.name, key=_key_dict(rule, key), row=values, text=f"{sign} {rule.name} {where}"
    )


def _plain(value: Any) -> Any:
    return f"<{len(value)} bytes>" if isinstance(value, bytes) else value


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((type(v).__name__ != "int", str(v) if not isinstance(v, int) else v) for v in key)
