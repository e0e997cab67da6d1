"""Per-dialogue SQLite databases: private copies, guarded by an authorizer, bounded in time.

A ``Database`` owns one connection in autocommit mode; the executor opens and closes
transactions itself. The authorizer is installed once and consults the database's
current ``effect``: reads may only read, writes may also insert, update and delete, and
nothing may attach files, load extensions, change pragmas or alter the schema. While a
tool's statements or a ``query`` run, transaction control (BEGIN, COMMIT, ROLLBACK,
SAVEPOINT, RELEASE) and writes to SQLite's own tables (``sqlite_sequence``) are refused
too; the executor marks its own savepoint statements as trusted.

Every statement run through ``run``/``run_async`` (tool calls, ``query``, ``snapshot``)
has a deadline (``call_timeout_s``, 10 s by default) that a progress handler enforces
inside SQLite: past it the statement is interrupted. ``run_async`` keeps the common fast
statement on the event loop, with no thread hop, but gives it only ``loop_budget_s``
(10 ms) there: a statement that needs longer is interrupted, and the work resumes in a
worker thread with the rest of the deadline, so a runaway query stalls the other
dialogues sharing the loop for about that budget, not for its deadline. An interrupted
read changes nothing; an interrupted write makes SQLite roll the whole transaction back,
which is why only work that can start again (see ``run_async``) is tried on the loop.
While a worker thread holds the connection, other callers wait for it (bounded by their
own deadline), asynchronously in ``run_async``.
"""

from __future__ import annotations

import enum
import math
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio

from schemas import DatabaseSpec, Effect
from schemas.errors import ConfigError, DatabaseFileError, DialogsimError, QueryTimeoutError, UsageError
from toolservers.sql import quote_ident

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "IMAGE_LIMIT",
    "LOOP_BUDGET_S",
    "SQLITE_HEADER",
    "Database",
    "DatabaseBusy",
    "Interruption",
    "check_sqlite_file",
    "file_stamp",
    "open_database",
    "source_file",
]

T = TypeVar("T")

SQLITE_HEADER = b"SQLite format 3\x00"
#: Seconds a call (a tool call, a query, a snapshot) may run before SQLite interrupts it.
DEFAULT_CALL_TIMEOUT_S = 10.0
#: Seconds a statement may hold the event loop before it is moved to a worker thread.
LOOP_BUDGET_S = 0.01
# The progress handler runs every this many SQLite VM steps (about 150 µs of work): on the
# event loop the budget is checked that often, a small fraction of the budget. In a worker
# thread it runs every ~3 ms only, since each run takes the GIL from the event loop's thread.
_PROGRESS_STEPS = 5000
_WORKER_PROGRESS_STEPS = 100_000
# A query's own statements are cached apart from the same text run directly on the
# connection: SQLite consults the authorizer only when it prepares a statement.
_QUERY_TAG = "\n/* dialogsim: query */"
_CLOSE_WAIT_S = 5.0

_READ_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_SELECT,
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_FUNCTION,
        sqlite3.SQLITE_TRANSACTION,
        sqlite3.SQLITE_SAVEPOINT,
        sqlite3.SQLITE_RECURSIVE,
    }
)
_WRITE_ACTIONS = _READ_ACTIONS | {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}
# Reading a column and running a SELECT: allowed for every effect, guarded or not; by far
# the most frequent questions (one per column a statement reads), answered first.
_ALWAYS_ALLOWED = frozenset({sqlite3.SQLITE_READ, sqlite3.SQLITE_SELECT})
_ROW_WRITES = frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})
#: The largest database ``Database.image`` copies (bytes).
IMAGE_LIMIT = 16 * 1024 * 1024
_READ_PRAGMAS = frozenset({"table_info", "table_xinfo", "foreign_key_list", "index_list", "index_info"})
_DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})


class Interruption(enum.Enum):
    """Why SQLite interrupted the statement that just failed."""

    DEADLINE = "deadline"  # the call's deadline passed
    BUDGET = "budget"  # the statement overran its time on the event loop; it resumes in a thread
    CANCEL = "cancel"  # the caller was cancelled while a worker thread ran the statement
    ABORT = "abort"  # ``abort()``: the database is being shut down


class DatabaseBusy(DialogsimError):
    """Another statement held the connection for the whole of a call's deadline (internal: callers turn
    it into a timeout)."""

    code = "database_busy"


def check_sqlite_file(path: Path) -> None:
    """Raise DatabaseFileError unless ``path`` is a non-empty SQLite database file."""
    if not path.exists():
        raise DatabaseFileError(str(path), "no such file")
    if not path.is_file():
        raise DatabaseFileError(str(path), "not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise DatabaseFileError(str(path), "the file is empty; expected an SQLite database")
    with path.open("rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise DatabaseFileError(str(path), "not an SQLite database (the file does not start with the SQLite header)")


class Database:
    """One connection, its authorizer, the effect currently allowed, and the deadline of what runs.

    ``denied`` records what the authorizer refused last, so a refusal can be told apart
    from any other SQLite error without reading message text; ``interrupted_by`` does the
    same for an interruption. Use a Database from one event loop (and its thread); it
    hands statements to worker threads itself, so ``conn`` must be opened with
    ``check_same_thread=False`` (every connection ``open_database`` opens is).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        label: str = ":memory:",
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        loop_budget_s: float = LOOP_BUDGET_S,
    ) -> None:
        check_timeout(call_timeout_s, "call_timeout_s")
        self.conn = conn
        self.label = label
        #: The deadline of a call that does not give its own.
        self.call_timeout_s = call_timeout_s
        #: How long a statement of ``run_async`` may hold the event loop.
        self.loop_budget_s = loop_budget_s
        self.effect: Effect = Effect.READ
        self.denied: str | None = None
        #: Why the last statement was interrupted (None: it was not).
        self.interrupted_by: Interruption | None = None
        # While True (a tool's statements, a query), transaction control is refused.
        self._guarded = False
        # While True, the executor's own statements (savepoints, checks) run unchecked.
        self._trusted = False
        self._limit = math.inf
        self._limit_is_budget = False
        self._stop: Interruption | None = None
        # Held by whoever runs statements now: this thread, or a worker thread.
        self._lock = threading.Lock()
        self._owner: int | None = None
        # Set (on the loop) when a worker thread gives the connection back.
        self._released: anyio.Event | None = None
        # (SQLite's schema cookie, the schema's text) as last read: see ``schema_text``.
        self._schema: tuple[int, str] | None = None
        conn.isolation_level = None
        conn.execute("PRAGMA foreign_keys = ON")
        conn.set_authorizer(self._authorize)
        conn.set_progress_handler(self._progress, _PROGRESS_STEPS)

    @property
    def busy(self) -> bool:
        """Whether a worker thread holds the connection now (a long statement is running)."""
        return self._released is not None

    # -- the authorizer ---------------------------------------------------------------

    def _authorize(self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _trig: str | None) -> int:
        if self._trusted or action in _ALWAYS_ALLOWED:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION:
            if arg2 is not None and arg2.lower() in _DENIED_FUNCTIONS:
                return self._deny(f"function {arg2}()")
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA:
            # Only the schema-reading pragmas pass (their argument is a table name); any
            # other pragma could change a setting.
            if arg1 is not None and arg1.lower() in _READ_PRAGMAS:
                return sqlite3.SQLITE_OK
            return self._deny(f"PRAGMA {arg1}")
        if self._guarded:
            if action == sqlite3.SQLITE_TRANSACTION:
                return self._deny(f"transaction control ({arg1})")
            if action == sqlite3.SQLITE_SAVEPOINT:
                verb = {"BEGIN": "SAVEPOINT", "RELEASE": "RELEASE", "ROLLBACK": "ROLLBACK TO"}.get(arg1 or "", arg1)
                return self._deny(f"transaction control ({verb} {arg2})")
            if action in _ROW_WRITES and arg1 is not None and arg1.lower().startswith("sqlite_"):
                return self._deny(f"{_ACTION_NAMES[action]} on SQLite's own table {arg1}")
        allowed = _WRITE_ACTIONS if self.effect is Effect.WRITE else _READ_ACTIONS
        if action in allowed:
            return sqlite3.SQLITE_OK
        return self._deny(_ACTION_NAMES.get(action, f"action {action}") + (f" on {arg1}" if arg1 else ""))

    def _deny(self, what: str) -> int:
        self.denied = what
        return sqlite3.SQLITE_DENY

    @contextmanager
    def allowing(self, effect: Effect) -> Iterator[None]:
        """Run the body with ``effect`` allowed; ``denied`` is reset on entry."""
        previous = self.effect
        self.effect = effect
        self.denied = None
        try:
            yield
        finally:
            self.effect = previous

    @contextmanager
    def guarded(self, effect: Effect) -> Iterator[None]:
        """Run untrusted SQL (a tool's, a query's): ``effect`` allowed, transaction control refused.

        ``denied`` is reset on entry.
        """
        previous, was_guarded = self.effect, self._guarded
        self.effect, self._guarded, self.denied = effect, True, None
        try:
            yield
        finally:
            self.effect, self._guarded = previous, was_guarded

    def trusted(self, sql: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """Execute one of dialogsim's own statements (a savepoint, a check) past the authorizer."""
        previous = self._trusted
        self._trusted = True
        try:
            return self.conn.execute(sql, params)
        finally:
            self._trusted = previous

    # -- deadlines --------------------------------------------------------------------

    def _progress(self) -> int:
        if self._stop is not None:
            self.interrupted_by = self._stop
            return 1
        if time.monotonic() > self._limit:
            self.interrupted_by = Interruption.BUDGET if self._limit_is_budget else Interruption.DEADLINE
            return 1
        return 0

    def deadline(self, timeout_s: float | None = None) -> float:
        """The monotonic time a call started now must end by."""
        return time.monotonic() + (self.call_timeout_s if timeout_s is None else timeout_s)

    def run(self, job: Callable[[], T], *, deadline: float | None = None) -> T:
        """Run ``job`` (statements on this connection) on this thread, interrupted at ``deadline``.

        Blocks while a worker thread holds the connection, until ``deadline`` at most.
        Raises DatabaseBusy when it stays held; whatever ``job`` raises otherwise (an
        interrupted statement raises ``sqlite3.OperationalError``, with ``interrupted_by`` set).
        """
        end = self.deadline() if deadline is None else deadline
        if self._owner == threading.get_ident():
            raise UsageError(f"{self.label}: a statement started while another one runs on the same thread")
        if not self._lock.acquire(timeout=max(0.0, end - time.monotonic())):
            raise DatabaseBusy(self.label)
        try:
            return self._attempt(job, end, on_loop=False)
        finally:
            self._give_back()

    async def run_async(
        self,
        job: Callable[[], T],
        *,
        deadline: float | None = None,
        restartable: Callable[[], bool] | None = None,
    ) -> T:
        """Run ``job`` without stalling the event loop for longer than ``loop_budget_s``.

        ``job`` runs on the loop first; if SQLite interrupts it for the budget
        (``interrupted_by`` is BUDGET while ``job`` sees the error: it must re-raise it
        unchanged and be ready to be called again, continuing where it can), it is called
        again in a worker thread with the rest of the deadline. Work that cannot be
        called again (``restartable`` returns False once the connection is this call's:
        a write inside a transaction someone else opened, which an interrupted write
        would roll back) goes to the thread at once.
        Waits (asynchronously) while a worker thread holds the connection. Raises what
        ``run`` raises.
        """
        end = self.deadline() if deadline is None else deadline
        while not self._lock.acquire(blocking=False):
            # Only a worker thread holds the connection across an await (a statement run
            # on this loop gives it back before anything else can run here).
            released = self._released
            if released is None:
                raise UsageError(f"{self.label}: the database is in use on another thread")
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise DatabaseBusy(self.label)
            with anyio.move_on_after(remaining):
                await released.wait()
        handed_over = False
        try:
            if restartable is None or restartable():
                try:
                    return self._attempt(job, end, on_loop=True)
                except sqlite3.OperationalError:
                    if self.interrupted_by is not Interruption.BUDGET:
                        raise
            handed_over = True
            return await self._in_worker(job, end)
        finally:
            if not handed_over:
                self._give_back()

    def _attempt(self, job: Callable[[], T], end: float, *, on_loop: bool) -> T:
        if self._stop is Interruption.ABORT:
            self.interrupted_by = Interruption.ABORT
            raise sqlite3.OperationalError(f"{self.label}: interrupted, the database is shutting down")
        self._owner = threading.get_ident()
        self.interrupted_by = None
        budget_end = time.monotonic() + self.loop_budget_s if on_loop else math.inf
        self._limit_is_budget = budget_end < end
        self._limit = min(end, budget_end)
        try:
            return job()
        finally:
            self._limit = math.inf
            self._owner = None

    async def _in_worker(self, job: Callable[[], T], end: float) -> T:
        """Run ``job`` in a worker thread, which gives the connection back when done."""
        started = False
        outcome: list[tuple[bool, Any]] = []
        done = anyio.Event()
        released = self._released = anyio.Event()

        def work() -> T:
            nonlocal started
            started = True
            try:
                self.conn.set_progress_handler(self._progress, _WORKER_PROGRESS_STEPS)
                try:
                    return self._attempt(job, end, on_loop=False)
                finally:
                    self.conn.set_progress_handler(self._progress, _PROGRESS_STEPS)
            finally:
                self._give_back()

        async def wait_for_worker() -> None:
            try:
                outcome.append((True, await anyio.to_thread.run_sync(work)))
            except Exception as exc:  # the job's own error, re-raised below, outside the task group
                outcome.append((False, exc))
            finally:
                done.set()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_for_worker)
                try:
                    await done.wait()
                except anyio.get_cancelled_exc_class():
                    # The thread cannot be abandoned while it holds the connection: stop
                    # its statement now, and the task group waits the moment it takes.
                    self._interrupt(Interruption.CANCEL)
                    raise
        finally:
            if not started:
                self._give_back()
            if self._stop is Interruption.CANCEL:
                self._stop = None
            if self._released is released:
                self._released = None
            released.set()
        ok, value = outcome[0]
        if ok:
            result: T = value
            return result
        raise value

    def _give_back(self) -> None:
        self._lock.release()

    def _interrupt(self, why: Interruption) -> None:
        self._stop = why
        self.conn.interrupt()

    def abort(self) -> None:
        """Interrupt the statement running now, on any thread, and refuse every later one.

        For shutting down (a signal, closing): thread-safe and immediate.
        """
        self._interrupt(Interruption.ABORT)

    # -- reading ----------------------------------------------------------------------

    def query(
        self, sql: str, params: dict[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a read-only query (verification, grounding, checks) under the authorizer.

        Transaction control is refused like in a tool. Bounded by ``timeout_s``
        (default ``call_timeout_s``): raises QueryTimeoutError past it.
        """
        return self._bounded_read(lambda: self._read(sql, params), sql, timeout_s)

    async def aquery(
        self, sql: str, params: dict[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> list[tuple[Any, ...]]:
        """``query`` that moves to a worker thread when it runs long instead of stalling the loop."""
        deadline = self.deadline(timeout_s)
        try:
            return await self.run_async(lambda: self._read(sql, params), deadline=deadline)
        except (sqlite3.OperationalError, DatabaseBusy) as exc:
            raise self._timeout_error(exc, sql, timeout_s) or exc from None

    def _read(self, sql: str, params: dict[str, Any] | None) -> list[tuple[Any, ...]]:
        with self.guarded(Effect.READ):
            return list(self.conn.execute(sql + _QUERY_TAG, params or {}))

    def schema_text(self) -> str:
        """Every statement of the schema, joined: what caches of facts about a schema are keyed on.

        Read again only after the schema changed: SQLite's schema cookie
        (``PRAGMA schema_version``) moves on every change, whichever connection made it.
        """

        def job() -> str:
            version = int(self.trusted("PRAGMA schema_version").fetchone()[0])
            if self._schema is None or self._schema[0] != version:
                rows = self._read(_SCHEMA_SQL, None)
                self._schema = (version, rows[0][0] or "")
            return self._schema[1]

        return self._bounded_read(job, "the schema", None)

    def image(self, *, limit: int = IMAGE_LIMIT) -> bytes | None:
        """The database's bytes as SQLite lays them out (``sqlite3_serialize``), or None when
        it is larger than ``limit`` bytes (it is not copied then).

        What an open transaction on this connection has written is in it. For comparing
        two states without reading their rows (``simulator.dialogue.statediff``).
        """

        def job() -> bytes | None:
            size = self.trusted("PRAGMA page_count").fetchone()[0] * self.trusted("PRAGMA page_size").fetchone()[0]
            if size > limit:
                return None
            # sqlite3_serialize prepares statements of its own, which the authorizer would refuse.
            previous, self._trusted = self._trusted, True
            try:
                return self.conn.serialize()
            finally:
                self._trusted = previous

        return self._bounded_read(job, "the database image", None)

    def snapshot(self, *, timeout_s: float | None = None) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: for comparing states in tests and checks.

        One deadline for the whole snapshot; raises QueryTimeoutError past it.
        """

        def job() -> dict[str, list[tuple[Any, ...]]]:
            tables = [r[0] for r in self._read("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name", None)]
            return {
                t: sorted(self._read(f"SELECT * FROM {quote_ident(t)}", None), key=repr)
                for t in tables
                if not t.startswith("sqlite_")
            }

        return self._bounded_read(job, "snapshot of every table", timeout_s)

    def _bounded_read(self, job: Callable[[], T], sql: str, timeout_s: float | None) -> T:
        try:
            return self.run(job, deadline=self.deadline(timeout_s))
        except (sqlite3.OperationalError, DatabaseBusy) as exc:
            raise self._timeout_error(exc, sql, timeout_s) or exc from None

    def _timeout_error(self, exc: Exception, sql: str, timeout_s: float | None) -> QueryTimeoutError | None:
        limit = self.call_timeout_s if timeout_s is None else timeout_s
        if isinstance(exc, DatabaseBusy):
            return QueryTimeoutError(_clip(sql), timeout_s=limit, busy=True)
        if self.interrupted_by is Interruption.DEADLINE:
            return QueryTimeoutError(_clip(sql), timeout_s=limit)
        return None

    def close(self) -> None:
        """Interrupt whatever still runs, wait (briefly) for a worker thread to let go, close."""
        self.abort()
        if self._lock.acquire(timeout=_CLOSE_WAIT_S):
            self._lock.release()
        self.conn.close()


def source_file(spec: DatabaseSpec, base_dir: Path | None = None) -> Path | None:
    """The file a database spec copies from (relative paths under ``base_dir``), or None for DDL."""
    if spec.path is None:
        return None
    path = Path(spec.path)
    return base_dir / path if not path.is_absolute() and base_dir is not None else path


def file_stamp(path: Path | None) -> tuple[int, int, int] | None:
    """``(mtime_ns, size, inode)`` of ``path``: what tells a changed file; None without one."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def check_timeout(value: float, name: str) -> None:
    """Raise ConfigError unless ``value`` is a positive, finite number of seconds."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}: expected a positive number of seconds, got {value!r}")


def _clip(sql: str, limit: int = 120) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_ACTION_NAMES = {
    sqlite3.SQLITE_INSERT: "INSERT",
    sqlite3.SQLITE_UPDATE: "UPDATE",
    sqlite3.SQLITE_DELETE: "DELETE",
    sqlite3.SQLITE_ATTACH: "ATTACH",
    sqlite3.SQLITE_DETACH: "DETACH",
    sqlite3.SQLITE_CREATE_TABLE: "CREATE TABLE",
    sqlite3.SQLITE_CREATE_INDEX: "CREATE INDEX",
    sqlite3.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER",
    sqlite3.SQLITE_CREATE_VIEW: "CREATE VIEW",
    sqlite3.SQLITE_CREATE_TEMP_TABLE: "CREATE TEMP TABLE",
    sqlite3.SQLITE_CREATE_TEMP_INDEX: "CREATE TEMP INDEX",
    sqlite3.SQLITE_CREATE_TEMP_TRIGGER: "CREATE TEMP TRIGGER",
    sqlite3.SQLITE_CREATE_TEMP_VIEW: "CREATE TEMP VIEW",
    sqlite3.SQLITE_DROP_TABLE: "DROP TABLE",
    sqlite3.SQLITE_DROP_INDEX: "DROP INDEX",
    sqlite3.SQLITE_DROP_TRIGGER: "DROP TRIGGER",
    sqlite3.SQLITE_DROP_VIEW: "DROP VIEW",
    sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE",
    sqlite3.SQLITE_REINDEX: "REINDEX",
    sqlite3.SQLITE_ANALYZE: "ANALYZE",
    sqlite3.SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE",
    sqlite3.SQLITE_DROP_VTABLE: "DROP VIRTUAL TABLE",
}


def open_database(
    spec: DatabaseSpec,
    *,
    base_dir: Path | None = None,
    in_place: bool = False,
    override_path: Path | None = None,
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
) -> Database:
    """Open a private copy of the database ``spec`` describes.

    With a DDL spec the copy is built in memory from the DDL and seed rows. With a file
    (``spec.path``, or ``override_path``) the file is checked, then copied into memory
    through the SQLite backup API, so the source is never modified, unless ``in_place``.
    ``call_timeout_s`` bounds every tool call, query and snapshot on it.

    Raises DatabaseFileError for a missing, empty or non-SQLite file, and for DDL or
    seed rows SQLite refuses; ValueError for a timeout that is not a positive number.
    """
    check_timeout(call_timeout_s, "call_timeout_s")
    path = override_path
    if path is None and spec.path is not None:
        path = Path(spec.path)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
    if path is not None:
        check_sqlite_file(path)
        if in_place:
            conn = sqlite3.connect(str(path), check_same_thread=False)
            return Database(conn, label=str(path), call_timeout_s=call_timeout_s)
        src = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            conn = sqlite3.connect(":memory:", check_same_thread=False)
            try:
                src.backup(conn)
                # A truncated or damaged file can copy cleanly and fail on first use: check now.
                problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise DatabaseFileError(str(path), f"cannot be read as SQLite: {exc}") from exc
            if problems != ["ok"]:
                conn.close()
                raise DatabaseFileError(str(path), f"the database is damaged: {problems[0]}")
        finally:
            src.close()
        return Database(conn, label=f"copy of {path}", call_timeout_s=call_timeout_s)
    template, schema = _template(spec)
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    template.backup(conn)
    # The copy's schema is the template's, text for text; its cookie is its own (a backup
    # does not carry the source's over), so the text is kept under the copy's cookie.
    version = int(conn.execute("PRAGMA schema_version").fetchone()[0])
    db = Database(conn, label=":memory:", call_timeout_s=call_timeout_s)
    db._schema = (version, schema)
    return db


# Built databases of DDL specs, copied with the backup API for each new dialogue: far
# cheaper than running the DDL and inserting the seed rows again. Keyed by the spec's
# identity; the entry keeps the spec alive so the id cannot be reused while cached. With
# it, the schema's text (``Database.schema_text``), so no copy has to read it again.
_TEMPLATES: OrderedDict[int, tuple[DatabaseSpec, sqlite3.Connection, str]] = OrderedDict()
#: Every statement of a schema, joined: the text ``Database.schema_text`` gives.
_SCHEMA_SQL = "SELECT group_concat(sql, ';') FROM sqlite_master"
_TEMPLATE_LIMIT = 32


def _template(spec: DatabaseSpec) -> tuple[sqlite3.Connection, str]:
    hit = _TEMPLATES.get(id(spec))
    if hit is not None and hit[0] is spec:
        _TEMPLATES.move_to_end(id(spec))
        return hit[1], hit[2]
    conn = _build(spec)
    schema = conn.execute(_SCHEMA_SQL).fetchone()[0] or ""
    _TEMPLATES[id(spec)] = (spec, conn, schema)
    while len(_TEMPLATES) > _TEMPLATE_LIMIT:
        _, (_, old, _) = _TEMPLATES.popitem(last=False)
        old.close()
    return conn, schema


def _build(spec: DatabaseSpec) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        try:
            conn.executescript(spec.ddl or "")
        except sqlite3.Error as exc:
            raise DatabaseFileError("database.ddl", f"SQLite refused the DDL: {exc}") from exc
        for table, rows in spec.seed.items():
            for i, row in enumerate(rows):
                cols = ", ".join(quote_ident(c) for c in row)
                marks = ", ".join("?" for _ in row)
                try:
                    conn.execute(f"INSERT INTO {quote_ident(table)} ({cols}) VALUES ({marks})", list(row.values()))
                except sqlite3.Error as exc:
                    raise DatabaseFileError("database.seed", f"{table}[{i}]: {exc}") from exc
        conn.commit()
    except BaseException:
        conn.close()
        raise
    return conn
