"""Instances of an external server: a state copy, a process (or a URL), a connected client.

A stdio server is started the way ``dialogsim stress`` starts one (``simulator.stress.target``):
an allow-listed environment (``PATH``, ``HOME``, ``LANG`` plus ``--env``), its own process
group, stderr kept in a log file, stopped as the MCP spec says when the block ends. Each
instance gets its own copy of the state template; the copy is removed at the end unless
``keep_state``. :class:`InstancePool` keeps processes running across dialogues and restores
their state in place between them. :class:`Replaceable` holds one instance at a time for
work that must outlive a call that hung or crashed it (the planner's probe): an instance
that still answers is kept, one that does not is replaced by a fresh one.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp
import mcp_types as types
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from schemas.errors import ConfigError, ExternalServerError
from simulator.external.spec import ExternalSpec
from simulator.log import get_logger
from simulator.stress.target import _server_target, _url_target

__all__ = [
    "Instance", "InstancePool", "Replaceable", "describe_error", "list_all_tools", "open_instance", "responsive",
    "restore_state",
]  # fmt: skip

log = get_logger(__name__)

_LOG_TAIL_BYTES = 600
_CLOSE_TIMEOUT_S = 15.0
#: At most this long (and at most the call timeout) for a server to show it still answers.
_RESPONSIVE_S = 5.0


@dataclass(eq=False)
class Instance:
    """One running server: ``client`` is connected; ``state`` is this instance's state copy,
    ``shown`` the path callers see for it instead (the spec's display path)."""

    client: mcp.Client
    state: Path | None
    log_path: Path | None
    home: Path
    shown: str | None = None
    #: Set by whoever saw the server fail; a failed instance is not reused.
    failed: str | None = None
    #: Set when the connection has ended (the server exited or was stopped).
    dead: anyio.Event = field(default_factory=anyio.Event)
    extra: dict[str, Any] = field(default_factory=dict)

    def log_tail(self) -> str:
        """The end of what the server wrote to stderr, on one line ("" when nothing)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()[-_LOG_TAIL_BYTES:]
        return " ".join(data.decode("utf-8", "replace").split())


def describe_error(exc: BaseException) -> str:
    """The innermost meaningful message of an exception (groups unwrapped), on one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    message = " ".join((str(exc) or type(exc).__name__).split())
    return f"{type(exc).__name__}: {message[:300]}"


def copy_state(spec: ExternalSpec, home: Path) -> Path | None:
    """A fresh copy of the state template inside ``home`` (None without a template)."""
    template = spec.state
    if template is None:
        return None
    if spec.state_dir is not None:
        target = home / "state"
        shutil.copytree(template, target, symlinks=True)
        return target
    target = home / template.name
    shutil.copy2(template, target)
    return target


def _prepare(spec: ExternalSpec, home: Path) -> Path | None:
    home.mkdir(parents=True, exist_ok=True)
    return copy_state(spec, home)


def restore_state(spec: ExternalSpec, state: Path) -> None:
    """Put the template back into ``state`` in place (the same path, for a running server)."""
    template = spec.state
    assert template is not None
    if spec.state_dir is not None:
        for child in list(state.iterdir()):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        shutil.copytree(template, state, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(template, state)


async def list_all_tools(client: mcp.Client, limit_s: float) -> list[types.Tool]:
    """Every tool the server lists (all pages)."""
    tools: list[types.Tool] = []
    cursor: str | None = None
    with anyio.fail_after(limit_s):
        for _ in range(100):
            page = await client.session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
    return tools


async def responsive(instance: Instance, limit_s: float) -> bool:
    """Whether ``instance`` still answers (a ``tools/list`` within ``limit_s``), as ``dialogsim stress`` asks.

    After a call that got no answer in time, a server may be fine (the call goes on in a
    thread of its own, or was dropped) or stuck (its event loop is blocked): only asking
    tells them apart.
    """
    if instance.dead.is_set():
        return False
    try:
        with anyio.fail_after(limit_s):
            await instance.client.session.list_tools()
    except Exception:  # no answer, a closed connection, a broken answer: it does not answer
        return False
    return not instance.dead.is_set()


@asynccontextmanager
async def open_instance(spec: ExternalSpec, home: Path, *, keep_state: bool = False) -> AsyncIterator[Instance]:
    """Copy the state into ``home``, start the server on it and yield it connected.

    Raises ExternalServerError when the command cannot be found or the server does not
    complete the MCP handshake within ``spec.connect_timeout_s`` (with the end of its stderr).
    ``home`` is removed at the end unless ``keep_state``.
    """
    entered = False
    try:
        state = _prepare(spec, home)
        async with AsyncExitStack() as stack:
            if spec.url is not None:
                target = _url_target(spec.url, dict(spec.headers))
            else:
                target = stack.enter_context(_server_target(spec.argv_text(state), dict(spec.env), home))
            instance = Instance(
                client=target.client(), state=state, log_path=target.log_path, home=home, shown=spec.shown_state
            )
            await _enter(stack, instance, spec)
            entered = True
            yield instance
    except BaseExceptionGroup as group:
        # The holder task never raises: what the group holds came from starting up or from the
        # block's body, and is raised as it was (callers catch their own exception types).
        refusal = None if entered else _refusal(group)
        if refusal is not None:
            raise refusal from None
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        if not keep_state:
            shutil.rmtree(home, ignore_errors=True)


async def _enter(stack: AsyncExitStack, instance: Instance, spec: ExternalSpec) -> None:
    """Hold the client in a task of its own (a cancel scope cannot bound only its handshake otherwise)."""
    client = instance.client
    tg = await stack.enter_async_context(anyio.create_task_group())
    stop = anyio.Event()
    errors: list[BaseException] = []

    async def hold(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        started = False
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + spec.connect_timeout_s) as scope:
                async with client:
                    scope.deadline = math.inf
                    started = True
                    task_status.started()
                    await stop.wait()
            if scope.cancelled_caught and not started:
                errors.append(TimeoutError(f"no answer to the MCP handshake within {spec.connect_timeout_s:g} s"))
        except Exception as exc:  # the connection's own failure, recorded, never raised into the group
            errors.append(exc)
            if started:
                instance.failed = instance.failed or f"the connection failed: {describe_error(exc)}"
        finally:
            instance.dead.set()
        if not started:
            task_status.started()

    await tg.start(hold)
    if errors or instance.dead.is_set():
        problem = describe_error(errors[0]) if errors else "it closed the connection at once"
        if errors and isinstance(errors[0], TimeoutError):
            problem = str(errors[0])
        raise ExternalServerError(spec.flag, f"is not an MCP server it can talk to ({problem}){_tail(instance)}")

    async def leave() -> None:
        stop.set()
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT_S) as waited:
            await instance.dead.wait()
        if waited.cancelled_caught:
            tg.cancel_scope.cancel()

    stack.push_async_callback(leave)


def _refusal(group: BaseExceptionGroup[BaseException]) -> ExternalServerError | None:
    for exc in group.exceptions:
        if isinstance(exc, ExternalServerError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _refusal(exc)
            if found is not None:
                return found
    return None


def _tail(instance: Instance) -> str:
    tail = instance.log_tail()
    return f"; its stderr ends: {tail[-300:]}" if tail else ""


class Replaceable:
    """One instance of ``spec`` at a time (``current``), replaced by a fresh one when it fails.

    For work made of many calls on one instance, where one call that hangs or crashes the
    server must not end it (the planner's probe). After a ``server_failure`` answer,
    :meth:`recover` keeps the instance if it still answers, else stops it and starts a
    fresh one on a fresh copy of the state template (in ``home``/``1``, ``home``/``2``...).
    Use ``async with``.
    """

    def __init__(self, spec: ExternalSpec, home: Path) -> None:
        self.spec = spec
        self.home = home
        self.replaced = 0
        self._stack = AsyncExitStack()
        self._instance: Instance | None = None

    @property
    def current(self) -> Instance:
        assert self._instance is not None, "enter the Replaceable first"
        return self._instance

    async def __aenter__(self) -> Replaceable:
        self._instance = await self._stack.enter_async_context(open_instance(self.spec, self.home / "0"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def recover(self, problem: str) -> bool:
        """After a call failed with ``problem`` (a server failure): True when the instance was
        replaced, False when it still answers and was kept.

        Raises ExternalServerError when a fresh instance cannot be started: the server is
        really gone.
        """
        instance = self.current
        if await responsive(instance, min(_RESPONSIVE_S, self.spec.call_timeout_s)):
            instance.failed = None  # one call went unanswered; the connection is fine
            return False
        await self._stack.aclose()  # stops a stuck process, or reaps a dead one
        self._stack = AsyncExitStack()
        self._instance = None
        self.replaced += 1
        try:
            self._instance = await self._stack.enter_async_context(
                open_instance(self.spec, self.home / str(self.replaced))
            )
        except ConfigError as exc:  # not an MCP server any more, or its program is gone
            why = exc.problem if isinstance(exc, ExternalServerError) else str(exc)
            raise ExternalServerError(
                self.spec.flag, f"{problem}, and a fresh instance could not be started: {why}"
            ) from None
        return True


class InstancePool:
    """``size`` pre-started instances handed to one dialogue at a time (``--server-pool``).

    Between dialogues the state is restored from the template in place; an instance that
    failed is stopped and replaced by a fresh one. Use ``async with``, then ``lease()``.
    """

    def __init__(self, spec: ExternalSpec, size: int, root: Path | None = None) -> None:
        self.spec = spec
        self.size = size
        self._root = root
        self._stack = AsyncExitStack()
        self._send: MemoryObjectSendStream[tuple[Instance, AsyncExitStack]] | None = None
        self._receive: MemoryObjectReceiveStream[tuple[Instance, AsyncExitStack]] | None = None
        self._count = 0
        self.restarts = 0

    async def __aenter__(self) -> InstancePool:
        root = self._root or Path(tempfile.mkdtemp(prefix="dialogsim-pool-"))
        self._root = root
        if self._root is not None and not self._root.exists():
            self._root.mkdir(parents=True)
        self._stack.callback(shutil.rmtree, root, True)
        self._send, self._receive = anyio.create_memory_object_stream[tuple[Instance, AsyncExitStack]](self.size)
        try:
            for _ in range(self.size):
                self._send.send_nowait(await self._start())
        except BaseException:
            await self._close_all()
            raise
        return self

    async def _start(self) -> tuple[Instance, AsyncExitStack]:
        self._count += 1
        own = AsyncExitStack()
        assert self._root is not None
        try:
            instance = await own.enter_async_context(open_instance(self.spec, self._root / f"p{self._count}"))
        except BaseException:
            await own.aclose()
            raise
        return instance, own

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Instance]:
        """An instance for one dialogue; it goes back (restored) or is replaced at the end."""
        assert self._receive is not None and self._send is not None
        instance, own = await self._receive.receive()
        try:
            yield instance
        finally:
            with anyio.CancelScope(shield=True):
                if instance.failed is None and instance.state is not None:
                    try:
                        restore_state(self.spec, instance.state)
                    except OSError as exc:
                        instance.failed = f"state could not be restored: {exc}"
                if instance.failed is not None:
                    await own.aclose()
                    self.restarts += 1
                    instance, own = await self._start()
                self._send.send_nowait((instance, own))

    async def _close_all(self) -> None:
        if self._receive is not None:
            while True:
                try:
                    _, own = self._receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
                await own.aclose()
            self._receive.close()
        if self._send is not None:
            self._send.close()
        await self._stack.aclose()

    async def __aexit__(self, *exc: object) -> None:
        await self._close_all()
