"""Plugging an external server into the dialogue runner: a :data:`Connector` per run.

Each dialogue gets an instance (a fresh process on its own state copy, or a leased pool
process, or the shared URL server), the recording proxy in front of it, and an
in-process ``mcp.Client`` to the proxy for the agent. The connection also carries the
verification (``verify``): the runner calls it once the conversation is over, instead of
checking a database (``simulator.external.verify`` says how).
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mcp
import mcp_types as types

from schemas import Environment, Event, Scenario, TaskOutcome
from simulator.dialogue.runner import Connector
from simulator.external.instance import Instance, InstancePool, list_all_tools, open_instance
from simulator.external.planner import is_read_tool
from simulator.external.proxy import RecordingProxy
from simulator.external.spec import ExternalSpec
from simulator.external.tree import Snapshot, snapshot
from simulator.external.verify import Route, compare, replay, run_checks
from simulator.log import get_logger
from toolservers.database import Database
from toolservers.server import EventCallback
from toolservers.transports import Connected

__all__ = ["ExternalConnection", "ExternalRun"]

log = get_logger(__name__)

Verify = Callable[[Scenario, list[Event]], Awaitable[list[TaskOutcome]]]


@dataclass(eq=False)
class ExternalConnection(Connected):
    """A dialogue's connection to an external server; ``verify`` checks its tasks at the end."""

    verify: Verify | None = None
    endpoint: Any = None
    instance: Instance | None = None
    #: The recording proxy the agent's client talks to (mounted on a host for outside agents).
    proxy: RecordingProxy | None = None
    #: The user's own tools (``--user-server``) and how the user calls one (recorded as the user's).
    user_tools: list[types.Tool] = field(default_factory=list)
    call_user_tool: Callable[[str, dict[str, Any]], Awaitable[types.CallToolResult]] | None = None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "dialogue"


class ExternalRun:
    """The external server of one run: how dialogues get instances, and their verification.

    ``root`` holds the per-dialogue state copies (kept there with ``keep_state``); a
    temporary directory when None. Use ``async with`` (it starts the pool, if any).
    """

    def __init__(
        self,
        spec: ExternalSpec,
        environment: Environment,
        *,
        root: Path | None = None,
        user_spec: ExternalSpec | None = None,
    ) -> None:
        self.spec = spec
        self.user_spec = user_spec
        self.environment = environment
        self._root = root
        self._stack = AsyncExitStack()
        self.pool: InstancePool | None = None
        self._template: Snapshot | None = None

    async def __aenter__(self) -> ExternalRun:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="dialogsim-external-"))
            self._stack.callback(_remove, self._root)
        self._root.mkdir(parents=True, exist_ok=True)
        if self.spec.pool:
            self.pool = await self._stack.enter_async_context(
                InstancePool(self.spec, self.spec.pool, root=self._root / "pool")
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @property
    def root(self) -> Path:
        assert self._root is not None, "enter the ExternalRun first"
        return self._root

    def template(self) -> Snapshot:
        if self._template is None:
            self._template = snapshot(self.spec.state)
        return self._template

    @asynccontextmanager
    async def instance(self, name: str, *, keep: bool = False) -> AsyncIterator[Instance]:
        """An instance for one use: leased from the pool, or started fresh on its own state copy."""
        if self.pool is not None:
            async with self.pool.lease() as leased:
                yield leased
            return
        async with open_instance(self.spec, self.root / _safe(name), keep_state=keep) as started:
            yield started

    def connector(self) -> Connector:
        """The runner's ``connect``: same keyword arguments as ``connect_tool_server``."""

        @asynccontextmanager
        async def connect(
            environment: Environment,
            *,
            transport: str = "stdio",
            on_event: EventCallback | None = None,
            on_protocol_error: Any = None,  # the foreign server answers unknown tools itself
            dialogue_id: str = "",
            base_dir: Path | None = None,
            database: Path | None = None,
        ) -> AsyncIterator[Connected]:
            async with self._connect(on_event, dialogue_id) as conn:
                yield conn

        return connect

    @asynccontextmanager
    async def _connect(self, on_event: EventCallback | None, dialogue_id: str) -> AsyncIterator[ExternalConnection]:
        spec = self.spec
        outer = AsyncExitStack()
        inner = AsyncExitStack()
        db = Database(sqlite3.connect(":memory:", check_same_thread=False), label="external environment (no database)")
        try:
            instance = await outer.enter_async_context(self.instance(dialogue_id, keep=spec.keep_state))
            tools = await list_all_tools(instance.client, spec.connect_timeout_s)
            proxy = RecordingProxy(
                instance,
                tools,
                on_event=on_event,
                dialogue_id=dialogue_id,
                call_timeout_s=spec.call_timeout_s,
                name=self.environment.id,
            )
            route = Route(instance)
            user_tools: list[types.Tool] = []
            call_user_tool = None
            if self.user_spec is not None:
                user = await outer.enter_async_context(
                    open_instance(self.user_spec, self.root / f"{_safe(dialogue_id)}.user")
                )
                user_tools = await list_all_tools(user.client, self.user_spec.connect_timeout_s)
                user_proxy = RecordingProxy(
                    user,
                    user_tools,
                    on_event=on_event,
                    dialogue_id=dialogue_id,
                    side="user",
                    name="user",
                    call_timeout_s=self.user_spec.call_timeout_s,
                )
                call_user_tool = user_proxy.call_next
                route = Route(instance, user, frozenset(t.name for t in user_tools))

            # Entered last: the agent's client is closed first, before the instances behind it.
            client = await inner.enter_async_context(mcp.Client(proxy.server))

            async def close() -> None:
                await inner.aclose()
                await outer.aclose()

            async def verify(scenario: Scenario, events: list[Event]) -> list[TaskOutcome]:
                return await self._verify(scenario, events, route, inner, outer)

            yield ExternalConnection(
                client,
                db,
                "http" if spec.url else "stdio",
                None,
                close,
                verify=verify,
                instance=instance,
                proxy=proxy,
                user_tools=user_tools,
                call_user_tool=call_user_tool,
            )
        finally:
            await inner.aclose()
            await outer.aclose()
            db.close()

    async def _verify(
        self, scenario: Scenario, events: list[Event], live: Route, inner: AsyncExitStack, outer: AsyncExitStack
    ) -> list[TaskOutcome]:
        spec = self.spec
        limit = spec.call_timeout_s
        live_checks = await run_checks(live, scenario, limit)
        await inner.aclose()  # nothing reaches the live server from the agent's side any more
        final = snapshot(live.agent.state) if spec.state is not None else None
        await outer.aclose()
        if spec.url is not None:
            outcomes = compare(
                scenario,
                events,
                live_checks=live_checks,
                gold=None,
                gold_checks=None,
                trees=None,
                not_checked="a --url server has one shared state: there is no fresh instance to replay on",
                write_tools=self._write_tools(),
            )
            return [_only_values(o) for o in outcomes]
        try:
            async with AsyncExitStack() as replaying:
                fresh = await replaying.enter_async_context(self.instance(f"{scenario.id}.replay"))
                route = Route(fresh)
                if self.user_spec is not None:
                    user = await replaying.enter_async_context(
                        open_instance(self.user_spec, self.root / f"{_safe(scenario.id)}.replay.user")
                    )
                    route = Route(fresh, user, live.user_tools)
                gold = await replay(route, scenario, limit)
                gold_checks = await run_checks(route, scenario, limit)
                gold_state = snapshot(fresh.state) if spec.state is not None else None
        except Exception as exc:  # the replay's own failure: nothing can be checked
            log.warning("external_replay_failed", dialogue=scenario.id, error=str(exc))
            return compare(
                scenario,
                events,
                live_checks=live_checks,
                gold=None,
                gold_checks=None,
                trees=None,
                not_checked=f"the replay on a fresh instance failed: {exc}",
                write_tools=self._write_tools(),
            )
        trees = (self.template(), final, gold_state) if final is not None and gold_state is not None else None
        server = self.environment.server
        ignore = server.volatile_paths if server is not None else []
        return compare(
            scenario,
            events,
            live_checks=live_checks,
            gold=gold,
            gold_checks=gold_checks,
            trees=trees,
            ignore=ignore,
            write_tools=self._write_tools(),
        )

    def _write_tools(self) -> frozenset[str]:
        """The agent's tools on this server that are not reads (the user's own tools are not among them)."""
        server = self.environment.server
        listed = [types.Tool.model_validate(t) for t in server.tools] if server is not None else []
        return frozenset(t.name for t in listed if not is_read_tool(t))


def _only_values(outcome: TaskOutcome) -> TaskOutcome:
    """A shared-state server's outcome: decided by the writes made and the values said; the state
    is reported as unchecked."""
    reason = next(
        (f.removeprefix("not checked: ") for f in outcome.failed_assertions if f.startswith("not checked")), ""
    )
    failed = [f for f in outcome.failed_assertions if not f.startswith("not checked")]
    return TaskOutcome(
        task_id=outcome.task_id,
        success=not outcome.missing_values and not failed,
        failed_assertions=failed,
        missing_values=outcome.missing_values,
        unchecked=[f"state: {reason}"],
    )


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
