"""A pool of pre-started stdio tool servers, and MCP over any byte stream.

A cold stdio tool server costs a process start plus importing the MCP SDK and dialogsim
(well over a second); a dialogue that wants its tools over stdio should not pay that.
``StdioPool`` keeps ``size`` worker processes (``python -m toolservers._pool_worker``)
started and imported ahead of time. ``pool.connect(environment)`` takes a warm worker,
gives it the dialogue's environment and a private file copy of its database, and yields
a ``Connected`` whose ``mcp.Client`` talks to the worker over its stdin/stdout, like
``connect_tool_server(..., transport="stdio")`` but without the start. Every worker
serves one dialogue and exits; the pool starts a replacement at once.

A worker also accepts further MCP sessions on a unix socket (``PooledConnection.stdio``
is the command that relays a spawning agent's stdio to it), so an outside agent that
wants to launch "its" stdio server gets one that is already running, on the same
database, with every call reported like the others.

The worker (:mod:`toolservers._pool_worker`) and the framing of MCP over byte streams
(:mod:`toolservers._framing`) live in their own modules. Tool events travel back over a
unix socket exactly as for ``stdio_tool_server`` (acknowledged, so a call's events are
handled before its result).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import mcp
import msgspec
from anyio.abc import Process
from mcp.client._transport import TransportStreams

from schemas import Environment
from schemas.errors import ToolServerError, UsageError
from toolservers._framing import LineReader, StdioCommand, mcp_streams, relay_command, serve_sessions
from toolservers._listing import client_options, remember_discover
from toolservers._pool_worker import Answer, Assignment
from toolservers._stdio import _receive_events
from toolservers.database import DEFAULT_CALL_TIMEOUT_S, Database
from toolservers.loader import save_environment
from toolservers.server import EventCallback, ProtocolErrorCallback, database_file_for
from toolservers.transports import Connected

__all__ = [
    "LineReader",
    "PoolError",
    "PooledConnection",
    "StdioCommand",
    "StdioPool",
    "mcp_streams",
    "relay_command",
    "serve_sessions",
]

logger = logging.getLogger(f"dialogsim.{__name__}")

# Bounds: a worker importing everything on a loaded machine; a worker acting on its
# assignment; a worker exiting after its stdin closed; events arriving after it exited.
_START_TIMEOUT_S = 120.0
_ASSIGN_TIMEOUT_S = 30.0
_STOP_GRACE_S = 5.0
_DRAIN_TIMEOUT_S = 30.0


class PoolError(ToolServerError):
    """A pool worker could not start, or refused its assignment (the message says why)."""

    code = "pool"


# --------------------------------------------------------------------------- the pool


def _child_env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    inherited = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([root, inherited]) if inherited else root
    return env


@dataclass(eq=False)
class _Worker:
    process: Process
    reader: LineReader

    async def answer(self, timeout_s: float) -> Answer:
        with anyio.fail_after(timeout_s):
            line = await self.reader.readline()
        if line is None:
            code = self.process.returncode
            raise PoolError(f"the stdio pool worker (pid {self.process.pid}) exited (code {code}) before answering")
        try:
            return msgspec.json.decode(line, type=Answer)
        except msgspec.DecodeError:
            raise PoolError(f"the stdio pool worker wrote {line[:200]!r} where its protocol expected JSON") from None

    async def stop(self) -> None:
        """Close its stdin (it exits when its session ends), kill it if it lingers. Shielded."""
        process = self.process
        with anyio.CancelScope(shield=True):
            if process.stdin is not None:
                try:
                    await process.stdin.aclose()
                except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass
            with anyio.move_on_after(_STOP_GRACE_S):
                await process.wait()
            if process.returncode is None:
                logger.warning("stdio pool worker %d did not exit; killing it", process.pid)
                process.kill()
                with anyio.move_on_after(_STOP_GRACE_S):
                    await process.wait()
            with anyio.move_on_after(_STOP_GRACE_S):
                await process.aclose()

    @asynccontextmanager
    async def transport(self) -> AsyncIterator[TransportStreams]:
        assert self.process.stdin is not None
        async with mcp_streams(self.reader, self.process.stdin) as streams:
            yield streams


@dataclass(eq=False)
class PooledConnection(Connected):
    """A ``Connected`` served by a pool worker; ``stdio`` relays more sessions to it."""

    stdio: StdioCommand | None = None


class StdioPool:
    """Pre-started stdio tool servers: ``async with StdioPool(size) as pool``.

    Entering starts ``size`` workers in the background (it does not wait for them);
    ``connect`` waits for a warm one when none is ready yet. Leaving stops every worker.
    ``environments`` are prepared for in each worker before it is offered (see
    ``_warm``); ``total`` caps the workers started over the pool's life.
    Use it from one event loop; ``connect`` may run in many tasks at once.
    """

    def __init__(
        self,
        size: int = 2,
        *,
        total: int | None = None,
        environments: Sequence[Environment] = (),
        start_timeout_s: float = _START_TIMEOUT_S,
    ) -> None:
        if size < 1:
            raise UsageError(f"a stdio pool needs at least one worker, got size={size}")
        self.size = size
        #: Workers to start in all (None: no limit); a run that knows how many dialogues
        #: it has starts no spare worker at its end.
        self.total = total
        #: Environments the workers prepare for before they are on offer.
        self.environments = list(environments)
        self._warm_files: list[str] = []
        self._started = 0
        self._taken = 0
        self._broken = False
        self._start_timeout_s = start_timeout_s
        self._stack = AsyncExitStack()
        self._tmp: Path | None = None
        self._idle = 0
        self._changed = anyio.Condition()
        self._workers: set[_Worker] = set()
        self._env_files: dict[int, tuple[Environment, Path]] = {}

    async def __aenter__(self) -> StdioPool:
        self._send, self._receive = anyio.create_memory_object_stream[_Worker | BaseException](0)
        self._tmp = Path(tempfile.mkdtemp(prefix="dialogsim-pool-", dir="/tmp" if os.name == "posix" else None))
        self._stack.callback(shutil.rmtree, self._tmp, True)
        self._warm_files = [str(self._environment_file(e)) for e in self.environments]
        self._stack.push_async_callback(self._stop_all)
        self._stack.callback(self._send.close)
        self._stack.callback(self._receive.close)
        tg = await self._stack.enter_async_context(anyio.create_task_group())
        self._stack.callback(tg.cancel_scope.cancel)
        for _ in range(self.size):
            tg.start_soon(self._keep_one)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @property
    def idle(self) -> int:
        """Workers started, imported and waiting for a dialogue."""
        return self._idle

    async def wait_warm(self) -> None:
        """Wait until every worker of the pool is started and waiting (benchmarks, tests)."""
        async with self._changed:
            while self._idle < self._target() and not self._broken:
                await self._changed.wait()

    def _target(self) -> int:
        """How many idle workers the pool will have once every start has finished."""
        return self.size if self.total is None else min(self.size, self.total - self._taken)

    async def _keep_one(self) -> None:
        """Keep one warm worker on offer; start the next as soon as it is taken."""
        while self.total is None or self._started < self.total:
            self._started += 1
            try:
                worker = await self._spawn()
            except Exception as exc:
                async with self._changed:
                    self._broken = True
                    self._changed.notify_all()
                await self._send.send(exc)  # the next connect() reports it
                return
            async with self._changed:
                self._idle += 1
                self._changed.notify_all()
            await self._send.send(worker)

    async def _spawn(self) -> _Worker:
        process = await anyio.open_process(
            [sys.executable, "-m", "toolservers._pool_worker", *self._warm_files],
            env=_child_env(),
            stderr=None,  # the worker's log goes where ours goes
            start_new_session=True,
        )
        assert process.stdout is not None
        worker = _Worker(process, LineReader(process.stdout))
        self._workers.add(worker)
        try:
            answer = await worker.answer(self._start_timeout_s)
        except BaseException:
            await worker.stop()
            self._workers.discard(worker)
            raise
        if answer.ready is None:
            await worker.stop()
            self._workers.discard(worker)
            raise PoolError(f"a stdio pool worker did not start: {answer.error or 'no ready message'}")
        return worker

    async def _take(self) -> _Worker:
        got = await self._receive.receive()
        if isinstance(got, BaseException):
            raise PoolError(f"the stdio pool cannot start workers: {type(got).__name__}: {got}") from got
        async with self._changed:
            self._idle -= 1
            self._taken += 1
            self._changed.notify_all()
        return got

    async def _stop_all(self) -> None:
        for worker in list(self._workers):
            await worker.stop()
        self._workers.clear()

    def _environment_file(self, environment: Environment) -> Path:
        """The environment as a file the workers can load, written once per environment object."""
        hit = self._env_files.get(id(environment))
        if hit is not None and hit[0] is environment:
            return hit[1]
        assert self._tmp is not None
        path = self._tmp / f"environment-{len(self._env_files)}.json"
        save_environment(environment, path)
        self._env_files[id(environment)] = (environment, path)
        return path

    @asynccontextmanager
    async def connect(
        self,
        environment: Environment,
        *,
        on_event: EventCallback | None = None,
        dialogue_id: str = "",
        base_dir: Path | None = None,
        database: Path | None = None,
        transport: str = "stdio",
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        on_protocol_error: ProtocolErrorCallback | None = None,
    ) -> AsyncIterator[PooledConnection]:
        """Serve ``environment`` to one dialogue from a warm worker; yield it connected.

        Takes the same arguments as ``connect_tool_server`` (``transport`` is ignored:
        it is always stdio) and keeps the same promises: a private copy of the database
        (a file the worker changes in place; ``database`` on the connection reads it),
        every ToolCall/ToolResult awaited on ``on_event`` with ``dialogue_id`` before the
        call's result returns, ``finish()`` ends the session and delivers every event.
        Raises ConfigError subclasses for a bad database or tool, PoolError when the
        worker cannot take the dialogue.
        """
        if self._tmp is None:
            raise UsageError("enter the pool (async with StdioPool(...)) before connecting")
        reported = on_event is not None or on_protocol_error is not None
        tmp = Path(tempfile.mkdtemp(prefix="d-", dir=self._tmp))
        live: Database | None = None
        try:
            live = database_file_for(
                environment,
                tmp / "database.sqlite",
                base_dir=base_dir,
                database=database,
                source=f"environment {environment.id!r}",
                call_timeout_s=call_timeout_s,
                served_by="a stdio pool worker",
            )
            db_file = tmp / "database.sqlite"
            assignment = Assignment(
                environment=str(self._environment_file(environment)),
                database=str(db_file),
                dialogue_id=dialogue_id,
                events=str(tmp / "events.sock") if reported else None,
                sessions=str(tmp / "sessions.sock"),
                call_timeout_s=call_timeout_s,
            )
            async with AsyncExitStack() as stack:
                delivered = anyio.Event()
                if reported:
                    assert assignment.events is not None
                    listener = await anyio.create_unix_listener(assignment.events)
                    await stack.enter_async_context(listener)
                    tg = await stack.enter_async_context(anyio.create_task_group())
                    stack.callback(tg.cancel_scope.cancel)
                    receive = functools.partial(_receive_events, on_protocol_error=on_protocol_error)
                    tg.start_soon(receive, listener, on_event, dialogue_id, delivered)
                accepted = False

                async def drain() -> None:
                    # After the worker exited its end of the events socket is closed.
                    if accepted and reported:
                        with anyio.CancelScope(shield=True), anyio.move_on_after(_DRAIN_TIMEOUT_S):
                            await delivered.wait()

                stack.push_async_callback(drain)
                worker = await self._take()
                stack.push_async_callback(self._retire, worker)
                assert worker.process.stdin is not None
                await worker.process.stdin.send(msgspec.json.encode(assignment) + b"\n")
                answer = await worker.answer(_ASSIGN_TIMEOUT_S)
                if not answer.ok:
                    raise PoolError(f"the stdio pool worker refused the dialogue: {answer.error}")
                accepted = True
                client = await stack.enter_async_context(
                    mcp.Client(worker.transport(), **client_options(environment, "stdio-pool"))
                )
                remember_discover(client, environment, "stdio-pool")
                yield PooledConnection(
                    client,
                    live,
                    "stdio",
                    None,
                    stack.aclose,
                    environment,
                    stdio=relay_command(Path(assignment.sessions or "")),
                )
        finally:
            if live is not None:
                live.close()
            shutil.rmtree(tmp, ignore_errors=True)

    async def _retire(self, worker: _Worker) -> None:
        await worker.stop()
        self._workers.discard(worker)
