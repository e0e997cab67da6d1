"""A pool of pre-started stdio tool servers, and MCP over any byte stream.

A cold stdio tool server costs a process start plus importing the MCP SDK and dialogsim
(well over a second); a dialogue that wants its tools over stdio should not pay that.
``StdioPool`` keeps ``size`` worker processes (``python -m toolservers.stdio_pool``)
started and imported ahead of time. ``pool.connect(environment)`` takes a warm worker,
gives it the dialogue's environment and a private file copy of its database, and yields
a ``Connected`` whose ``mcp.Client`` talks to the worker over its stdin/stdout, like
``connect_tool_server(..., transport="stdio")`` but without the start. Every worker
serves one dialogue and exits; the pool starts a replacement at once.

A worker also accepts further MCP sessions on a unix socket (``PooledConnection.stdio``
is the command that relays a spawning agent's stdio to it), so an outside agent that
wants to launch "its" stdio server gets one that is already running, on the same
database, with every call reported like the others.

The worker protocol, before MCP starts on the same pipes, is three JSON lines: the worker
says ``{"ready": PID}``; the parent sends the assignment (environment file, database
file, events socket, sessions socket, dialogue id); the worker answers ``{"ok": true}``
or ``{"error": "..."}``. Tool events travel back over a unix socket exactly as for
``stdio_tool_server`` (acknowledged, so a call's events are handled before its result).
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import mcp
import mcp_types as types
import msgspec
from anyio.abc import ByteReceiveStream, ByteSendStream, Process, SocketListener, SocketStream
from mcp.client._transport import TransportStreams
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

from schemas import Environment
from schemas.errors import ToolServerError, UsageError
from toolservers._stdio import _EventWriter, _receive_events
from toolservers.database import DEFAULT_CALL_TIMEOUT_S, Database
from toolservers.loader import load_environment, save_environment
from toolservers.server import EventCallback, ProtocolErrorCallback, build_tool_server
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

logger = logging.getLogger(__name__)

_RELAY = Path(__file__).resolve().with_name("_relay.py")
# Bounds: a worker importing everything on a loaded machine; a worker acting on its
# assignment; a worker exiting after its stdin closed; events arriving after it exited.
_START_TIMEOUT_S = 120.0
_ASSIGN_TIMEOUT_S = 30.0
_STOP_GRACE_S = 5.0
_DRAIN_TIMEOUT_S = 30.0


class PoolError(ToolServerError):
    """A pool worker could not start, or refused its assignment (the message says why)."""

    code = "pool"


class StdioCommand(NamedTuple):
    """A command that speaks MCP on its stdin/stdout, for agents that spawn their server."""

    command: str
    args: list[str]

    @property
    def shell(self) -> str:
        """The command as one shell-quoted line."""
        return shlex.join([self.command, *self.args])


def relay_command(socket_path: Path) -> StdioCommand:
    """The stdio command that relays to the MCP sessions served on ``socket_path``.

    It is a standard-library-only script run with ``-I -S``: it starts in milliseconds.
    """
    return StdioCommand(sys.executable, ["-I", "-S", str(_RELAY), str(socket_path)])


# --------------------------------------------------------------------------- MCP over bytes


class LineReader:
    """Newline-delimited frames from a byte stream; what is left after a line stays buffered."""

    def __init__(self, stream: ByteReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._scanned = 0

    async def readline(self) -> bytes | None:
        """The next line without its newline, or None at the end of the stream."""
        while True:
            at = self._buffer.find(b"\n", self._scanned)
            if at >= 0:
                line = bytes(self._buffer[:at])
                del self._buffer[: at + 1]
                self._scanned = 0
                return line
            self._scanned = len(self._buffer)
            try:
                chunk = await self._stream.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return None
            self._buffer += chunk


@asynccontextmanager
async def mcp_streams(reader: LineReader | ByteReceiveStream, send: ByteSendStream) -> AsyncIterator[TransportStreams]:
    """MCP message streams over a byte stream of newline-delimited JSON-RPC (the stdio framing).

    Yields ``(read_stream, write_stream)`` as a client transport or ``Server.run`` expects.
    A line that is not a JSON-RPC message arrives on the read stream as the exception.
    On exit, messages already written are flushed (briefly bounded) before the pumps stop.
    """
    lines = reader if isinstance(reader, LineReader) else LineReader(reader)
    read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](0)
    flushed = anyio.Event()

    async def inbound() -> None:
        async with read_send:
            while (line := await lines.readline()) is not None:
                if not line.strip():
                    continue
                item: SessionMessage | Exception
                try:
                    item = SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
                except ValueError as exc:
                    item = exc
                try:
                    await read_send.send(item)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return

    async def outbound() -> None:
        try:
            async with write_receive:
                async for message in write_receive:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
                    try:
                        await send.send(data)
                    except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                        return
        finally:
            flushed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(inbound)
        tg.start_soon(outbound)
        try:
            yield read_receive, write_send
        finally:
            write_send.close()
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                await flushed.wait()
            tg.cancel_scope.cancel()
            read_receive.close()


async def serve_sessions(server: Server[Any], listener: SocketListener) -> None:
    """Serve one MCP session of ``server`` per connection ``listener`` accepts, until cancelled.

    A session that breaks is logged and closed; the others and the listener go on.
    """

    async def session(stream: SocketStream) -> None:
        async with stream:
            try:
                async with mcp_streams(stream, stream) as (read_stream, write_stream):
                    await server.run(read_stream, write_stream, server.create_initialization_options())
            except Exception:
                logger.exception("an MCP session over a unix socket failed")

    await listener.serve(session)


# --------------------------------------------------------------------------- the worker


class _Assignment(msgspec.Struct, forbid_unknown_fields=True):
    environment: str
    database: str
    dialogue_id: str = ""
    events: str | None = None
    sessions: str | None = None
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S


class _Answer(msgspec.Struct):
    ready: int | None = None
    ok: bool = False
    error: str | None = None


def _read_line_fd(fd: int) -> bytes:
    """One line from a raw descriptor, reading nothing past it (MCP follows on the same pipe)."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _say(fd: int, answer: dict[str, Any]) -> None:
    os.write(fd, msgspec.json.encode(answer) + b"\n")


#: Environments a worker loaded and exercised before announcing readiness, by file.
_PRELOADED: dict[str, Environment] = {}


def _warm(files: list[str]) -> None:
    """Load the environments a worker may serve and build their servers once.

    Building a server checks every tool's schema against the JSON Schema metaschema and
    compiles its validators; those results are cached by content, so doing it here, before
    the worker is on offer, takes that cost off the dialogue that gets the worker.
    Best effort: an environment that fails here fails properly when assigned.
    """
    for file in files:
        try:
            environment = load_environment(Path(file))
            _PRELOADED[file] = environment
            build_tool_server(environment, source=f"environment {environment.id!r}").close()
        except Exception:
            logger.debug("warming %s failed", file, exc_info=True)


def _worker_main(argv: list[str]) -> int:
    """A pool worker: warm up, announce readiness, wait for one assignment, serve it over stdio."""
    _warm(argv)
    _say(1, {"ready": os.getpid()})
    line = _read_line_fd(0)
    if not line.strip():
        return 0  # the pool closed without using this worker
    try:
        assignment = msgspec.json.decode(line, type=_Assignment)
    except msgspec.DecodeError as exc:
        _say(1, {"error": f"bad assignment: {exc}"})
        return 2
    return anyio.run(_worker_serve, assignment)


async def _worker_serve(assignment: _Assignment) -> int:
    try:
        environment = _PRELOADED.get(assignment.environment) or load_environment(Path(assignment.environment))
        tool_server = build_tool_server(
            environment,
            database=Path(assignment.database),
            in_place=True,
            dialogue_id=assignment.dialogue_id,
            source=f"environment {environment.id!r}",
            call_timeout_s=assignment.call_timeout_s,
        )
    except Exception as exc:
        _say(1, {"error": f"{type(exc).__name__}: {exc}"})
        return 2
    try:
        async with AsyncExitStack() as stack:
            listener: SocketListener | None = None
            try:
                if assignment.events is not None:
                    events = await anyio.connect_unix(assignment.events)
                    await stack.enter_async_context(events)
                    tool_server.on_event = tool_server.on_protocol_error = _EventWriter(events)
                if assignment.sessions is not None:
                    listener = await anyio.create_unix_listener(assignment.sessions)
                    await stack.enter_async_context(listener)
            except OSError as exc:
                _say(1, {"error": f"cannot open the worker's sockets: {exc.strerror or exc}"})
                return 2
            _say(1, {"ok": True})
            server = tool_server.server
            async with anyio.create_task_group() as tg:
                if listener is not None:
                    tg.start_soon(serve_sessions, server, listener)
                async with stdio_server() as (read_stream, write_stream):
                    await server.run(read_stream, write_stream, server.create_initialization_options())
                tg.cancel_scope.cancel()
    finally:
        tool_server.close()
    return 0


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

    async def answer(self, timeout_s: float) -> _Answer:
        with anyio.fail_after(timeout_s):
            line = await self.reader.readline()
        if line is None:
            code = self.process.returncode
            raise PoolError(f"the stdio pool worker (pid {self.process.pid}) exited (code {code}) before answering")
        try:
            return msgspec.json.decode(line, type=_Answer)
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
            [sys.executable, "-m", "toolservers.stdio_pool", *self._warm_files],
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
            checked = build_tool_server(
                environment, base_dir=base_dir, database=database, source=f"environment {environment.id!r}"
            )
            db_file = tmp / "database.sqlite"
            try:
                target = sqlite3.connect(db_file)
                try:
                    checked.db.conn.backup(target)
                finally:
                    target.close()
            finally:
                checked.close()
            live = Database(
                sqlite3.connect(f"{db_file.as_uri()}?mode=ro", uri=True, check_same_thread=False),
                label=f"{db_file} (served by a stdio pool worker)",
                call_timeout_s=call_timeout_s,
            )
            assignment = _Assignment(
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
                client = await stack.enter_async_context(mcp.Client(worker.transport()))
                yield PooledConnection(
                    client,
                    live,
                    "stdio",
                    None,
                    stack.aclose,
                    stdio=relay_command(Path(assignment.sessions or "")),
                )
        finally:
            if live is not None:
                live.close()
            shutil.rmtree(tmp, ignore_errors=True)

    async def _retire(self, worker: _Worker) -> None:
        await worker.stop()
        self._workers.discard(worker)


if __name__ == "__main__":
    code = _worker_main(sys.argv[1:])
    sys.stderr.flush()
    # Everything is committed, closed and flushed by now: skip the interpreter's teardown
    # of the MCP SDK's modules, which would delay the end of the dialogue it served.
    os._exit(code)
