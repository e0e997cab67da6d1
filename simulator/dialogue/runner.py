"""Run one dialogue: database copy, MCP server, user and agent coroutines, verification, record.

The runner is the one catch-all boundary of a dialogue: whatever goes wrong inside (a
brain raising, a tool server dying, a timeout) becomes an ErrorEvent and a
TerminationReason on the record, and the run goes on.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import msgspec

from schemas import (
    AgentMessage,
    Check,
    CheckKind,
    DialogueEnded,
    DialogueRecord,
    DialogueStarted,
    Environment,
    ErrorEvent,
    Event,
    Scenario,
    StateCheck,
    TaskCompleted,
    TaskOutcome,
    TaskStarted,
    TerminationReason,
    ToolCall,
    ToolEvent,
    ToolResult,
    UserMessage,
    Verdict,
)
from schemas.errors import (
    BrainError,
    InitialStateError,
    JudgeError,
    ToolServerFailure,
    TurnTimeout,
    VerificationError,
)
from simulator.dialogue.brains import resolve_agent, resolve_user
from simulator.dialogue.bus import DialogueBus
from simulator.dialogue.recorder import build_record
from simulator.dialogue.roles import Agent, AgentContext, User, UserContext
from simulator.dialogue.verify import dialogue_succeeded, unverified, verify_dialogue
from simulator.offline.acts import decode_acts, encode_acts
from toolservers.database import Database
from toolservers.transports import Connected, TransportName, connect_tool_server

_T = TypeVar("_T")

__all__ = ["FAILURE_REASONS", "MESSAGE_CUT", "Connector", "DialogueConfig", "EventSink", "cap_message", "run_dialogue"]

EventSink = Callable[[Event], Awaitable[None]]
#: Serves a dialogue's tool server: :func:`connect_tool_server` or anything called like it.
Connector = Callable[..., AbstractAsyncContextManager[Connected]]

#: Endings that mean the dialogue broke rather than ran its course: exactly the records
#: whose ``error`` is set (a non-empty reason), and what every count of "failed" counts.
FAILURE_REASONS = frozenset(
    {
        TerminationReason.AGENT_FAILURE,
        TerminationReason.USER_FAILURE,
        TerminationReason.TOOL_FAILURE,
        TerminationReason.TIMEOUT,
    }
)
#: ``error_type`` of the ErrorEvent recorded when an agent message was cut to ``max_message_chars``.
MESSAGE_CUT = "MessageCut"


@dataclass(frozen=True, slots=True)
class DialogueConfig:
    """Per-dialogue settings of a run."""

    transport: TransportName = "inprocess"
    max_turns: int = 200
    max_tool_errors: int = 12
    timeout_s: float = 600.0
    agent_mistake_rate: float = 0.1
    #: How long one side may take to answer before the dialogue fails.
    turn_timeout_s: float = 120.0
    #: Brain specs (see ``simulator.dialogue.brains``): ``offline``, or e.g. ``anthropic:claude-sonnet-4-5``.
    agent: str = "offline"
    user: str = "offline"
    #: ``offline``: database assertions and values decide; ``provider:model`` adds the rubric judge.
    judge: str = "offline"
    #: Whether the agent receives the offline user's dialogue acts with its text. An agent
    #: under evaluation should not: it would read the user's intent instead of its words.
    agent_sees_acts: bool = True
    #: Longest agent message the user is given, in characters; a longer one is cut there,
    #: with a note in the message and an ErrorEvent (``MessageCut``) saying how long it was.
    max_message_chars: int = 32_000


class _Stop(Exception):
    def __init__(self, reason: TerminationReason, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class _Ending:
    reason: TerminationReason | None = None
    detail: str = ""

    def set(self, reason: TerminationReason, detail: str = "") -> None:
        if self.reason is None:
            self.reason = reason
            self.detail = detail


async def run_dialogue(
    scenario: Scenario,
    environment: Environment,
    config: DialogueConfig,
    *,
    on_event: EventSink | None = None,
    base_dir: Path | None = None,
    connect: Connector | None = None,
) -> DialogueRecord:
    """Run ``scenario`` to its end and return its record.

    Never raises for a failure of the dialogue itself: that is recorded as the record's
    termination reason and error. ``on_event`` sees every event as it is published.
    ``connect`` replaces :func:`connect_tool_server` (same keyword arguments) to serve the
    tool server another way, e.g. on the evaluation's shared HTTP host (``simulator.eval``);
    an ``endpoint`` attribute on what it yields reaches the agent as ``AgentContext.endpoint``.
    """
    dialogue_id = scenario.id
    bus = DialogueBus(dialogue_id, sink=on_event)
    ending = _Ending()
    started_at = time.time()
    clock = time.perf_counter()
    rng = random.Random(f"dialogue:{scenario.seed}:{scenario.id}")
    brains = {"user": config.user, "agent": config.agent, "tasks": "offline-planner"}
    tool_errors = 0
    state: StateCheck | None = None
    scope = anyio.CancelScope()
    replaying = _Flag()
    phase = _Phase()
    failure: str | None = None

    async def on_tool_event(event: ToolEvent) -> None:
        nonlocal tool_errors
        if replaying.is_set():
            return  # initial DB actions rebuild state; they are not part of the conversation
        await bus.publish(event)
        if isinstance(event, ToolResult) and event.error_code == ToolServerFailure.code:
            # An external tool server crashed or hung (simulator.external): the dialogue cannot go on.
            ending.set(TerminationReason.TOOL_FAILURE, f"the tool server failed: {event.text}")
            await bus.publish(ErrorEvent(where="tool_failure", error_type="ToolServerFailure", message=event.text))
            scope.cancel()
        if isinstance(event, ToolResult) and event.is_error:
            tool_errors += 1
            if tool_errors > config.max_tool_errors:
                ending.set(TerminationReason.TOO_MANY_TOOL_ERRORS, f"{tool_errors} tool errors")
                scope.cancel()

    async def on_protocol_error(event: ErrorEvent) -> None:
        # A call the server could not take as a tool call (an unknown tool): a JSON-RPC error
        # to the caller, recorded as an error event, never as one of the agent's tool calls.
        if not replaying.is_set():
            await bus.publish(event)

    await bus.publish(DialogueStarted(scenario_id=scenario.id, environment_id=environment.id, mode=str(scenario.mode)))
    try:
        with anyio.fail_after(config.timeout_s):
            phase.now = "serve"
            async with (connect or connect_tool_server)(
                environment,
                transport=config.transport,
                on_event=on_tool_event,
                on_protocol_error=on_protocol_error,
                dialogue_id=dialogue_id,
                base_dir=base_dir,
            ) as conn:
                tools = await _list_tools(conn)
                phase.now = "initial_state"
                with replaying:
                    await _replay_actions(scenario, conn.client)
                phase.now = "converse"
                with scope:
                    await _converse(
                        scenario,
                        environment,
                        conn.client,
                        conn.database,
                        bus,
                        config,
                        rng,
                        ending,
                        brains,
                        tools,
                        conn,
                    )
                # An external environment has no database: it checks its tasks by a replay (simulator.external).
                verify = getattr(conn, "verify", None)
                if verify is not None:
                    phase.now = "verify"
                    outcomes = await verify(scenario, bus.events)
                phase.now = "finish"
                database = await conn.finish()
                if verify is None:
                    phase.now = "verify"
                    outcomes, state, failure = await _verify(scenario, environment, database, bus, base_dir)
                if config.judge != "offline":
                    phase.now = "judge"
                    outcomes, judged = await _judge(config.judge, scenario, bus, outcomes, config.turn_timeout_s)
                    failure = failure or judged
    except TimeoutError:
        ending.set(TerminationReason.TIMEOUT, f"no end after {config.timeout_s:g} s")
        outcomes = None
    except Exception as exc:  # the one catch-all boundary of a dialogue
        reason, detail = _classify(exc, phase.now)
        if reason is not None:
            ending.set(reason, detail)
        failure = detail
        where = reason.value if reason is not None else phase.now
        await bus.publish(ErrorEvent(where=where, error_type=type(_leaf(exc)).__name__, message=detail))
        outcomes = None
    if outcomes is None:
        detail = "the dialogue broke before its tasks could be checked"
        outcomes = unverified(scenario, detail)
        state = StateCheck(verdict=Verdict.ERROR, detail=detail)
    for outcome in outcomes:
        await bus.publish(TaskCompleted(task_id=outcome.task_id, success=outcome.success, detail=_failed(outcome)))
    reason = ending.reason or TerminationReason.AGENT_FAILURE
    await bus.publish(DialogueEnded(reason=reason, detail=ending.detail))
    await bus.aclose()
    success = dialogue_succeeded(reason, outcomes, state)
    # One rule (see DialogueRecord.error): what broke, if anything — the dialogue (a failure),
    # or checking it (verify, judge: the conversation's ending stands).
    if reason in FAILURE_REASONS:
        error: str | None = ending.detail or failure or f"the dialogue ended with {reason.value}"
    else:
        error = failure
    return build_record(
        scenario,
        bus.events,
        outcomes,
        reason,
        success=success,
        brains=brains,
        started_at=started_at,
        duration_s=time.perf_counter() - clock,
        error=error,
        state=state,
    )


async def _converse(
    scenario: Scenario,
    environment: Environment,
    client: Any,
    database: Database,
    bus: DialogueBus,
    config: DialogueConfig,
    rng: random.Random,
    ending: _Ending,
    brains: dict[str, str],
    tools: list[Any],
    conn: Any = None,
) -> None:
    endpoint = getattr(conn, "endpoint", None)
    # The user's own tools, when the environment gives it some (simulator.external).
    user_tools, call_user_tool = getattr(conn, "user_tools", None) or [], getattr(conn, "call_user_tool", None)
    user_seed, agent_seed = rng.random(), rng.random()
    history = [msgspec.convert(raw, type=Event) for raw in scenario.initial_state.history]
    try:
        user = await resolve_user(config.user)(
            UserContext(
                scenario=scenario,
                environment=environment,
                query=database.query,
                rng=random.Random(user_seed),
                publish=bus.publish,
                tools=user_tools,
                call_tool=call_user_tool,
            )
        )
    except Exception as exc:  # a brain that cannot start fails the dialogue on its side
        raise _BrainStartError(
            TerminationReason.USER_FAILURE, f"the user could not start: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        agent = await resolve_agent(config.agent)(
            AgentContext(
                dialogue_id=scenario.id,
                client=client,
                tools=tools,
                policy=environment.policy,
                description=environment.description,
                rng=random.Random(agent_seed),
                mistake_rate=config.agent_mistake_rate,
                history=history,
                publish=bus.publish,
                call_timeout_s=config.turn_timeout_s,
                endpoint=endpoint,
                rules=environment.rules,
            )
        )
    except Exception as exc:
        raise _BrainStartError(
            TerminationReason.AGENT_FAILURE, f"the agent could not start: {type(exc).__name__}: {exc}"
        ) from exc
    brains["user"] = user.brain
    brains["agent"] = agent.brain
    try:
        await _talk(scenario, user, agent, bus, config, ending)
    finally:
        await agent.aclose()
    mistakes = getattr(agent, "mistakes", None)
    if mistakes is not None:
        brains["agent_mistakes"] = str(mistakes)


async def _talk(
    scenario: Scenario, user: User, agent: Agent, bus: DialogueBus, config: DialogueConfig, ending: _Ending
) -> None:
    await _replay_history(scenario, bus)
    user_inbox = bus.subscribe(AgentMessage)
    agent_inbox = bus.subscribe(UserMessage)
    turns = _TurnCount()

    # A dialogue that runs its course ends without cancelling anything: the user side returns
    # and ends the agent's inbox, so the agent side's loop ends too (a cancelled task leaves its
    # CancelledError and frames in a reference cycle, held until the garbage collector runs).
    ended: list[_Stop] = []

    async def finish(stop: _Stop) -> None:
        ended.append(stop)
        await bus.end(agent_inbox)

    async def user_side() -> None:
        # One cancel scope times every wait of this side: its deadline is moved to each wait's
        # end and back to never after it. A new scope per wait (``fail_after``) cost about 3%
        # of an offline dialogue's instructions.
        clock = _TurnClock(config.turn_timeout_s)
        with clock.scope:
            try:
                turn = await clock.wait("user", user.opening())
                while True:
                    for task_id in turn.started_tasks:
                        await bus.publish(TaskStarted(task_id=task_id))
                    for fb in turn.feedback:
                        await bus.publish(fb)
                    await bus.publish(
                        UserMessage(text=turn.text, acts=encode_acts(turn.acts), is_task_complete=turn.complete)
                    )
                    reply = await clock.wait("agent", user_inbox.receive())
                    if turn.complete or turn.gave_up:
                        reason = TerminationReason.USER_DONE if turn.complete else TerminationReason.USER_GAVE_UP
                        return await finish(_Stop(reason))
                    if turns(bus.events) >= config.max_turns:
                        return await finish(_Stop(TerminationReason.MAX_TURNS, f"{config.max_turns} turns"))
                    assert isinstance(reply, AgentMessage)
                    turn = await clock.wait("user", user.respond(reply.text, decode_acts(reply.acts)))
            except _Stop:
                raise
            except anyio.EndOfStream:
                raise _Stop(TerminationReason.AGENT_FAILURE, "the agent stopped answering") from None
            except Exception as exc:
                raise _Stop(TerminationReason.USER_FAILURE, f"{type(exc).__name__}: {exc}") from exc
        # Only the clock's deadline ends the block without a return or an exception.
        raise clock.late()

    async def agent_side() -> None:
        try:
            async for message in agent_inbox:
                assert isinstance(message, UserMessage)
                acts = decode_acts(message.acts) if config.agent_sees_acts else []
                turn = await agent.respond(message.text, acts)
                text, cut = cap_message(turn.text, config.max_message_chars)
                if cut:
                    await bus.publish(ErrorEvent(where="agent", error_type=MESSAGE_CUT, message=cut))
                # A cut message goes without its acts: they would tell the user what it was not shown.
                await bus.publish(AgentMessage(text=text, acts=[] if cut else encode_acts(turn.acts)))
        except Exception as exc:
            raise _Stop(TerminationReason.AGENT_FAILURE, f"{type(exc).__name__}: {exc}") from exc

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(user_side)
            tg.start_soon(agent_side)
    except* _Stop as group:
        stopped = group.exceptions[0]
        assert isinstance(stopped, _Stop)
        ended.append(stopped)
    finally:
        await user_inbox.aclose()
        await agent_inbox.aclose()
    if ended:
        stop = ended[0]
        ending.set(stop.reason, stop.detail)
        if stop.reason in {TerminationReason.AGENT_FAILURE, TerminationReason.USER_FAILURE}:
            cause = stop.__cause__
            await bus.publish(
                ErrorEvent(
                    where=stop.reason.value,
                    error_type=type(cause).__name__ if cause else "Stop",
                    message=stop.detail,
                )
            )


def cap_message(text: str, limit: int) -> tuple[str, str]:
    """``text`` cut to ``limit`` characters with a note saying so, and what was cut ("" if nothing)."""
    if len(text) <= limit:
        return text, ""
    cut = f"the agent's message had {len(text)} characters; the user was given the first {limit} (max_message_chars)"
    return f"{text[:limit]}\n[dialogsim: message cut here; {len(text) - limit} more characters not shown]", cut


async def _list_tools(conn: Any) -> list[Any]:
    """The dialogue's tools: from ``Connected.list_tools`` (listed over MCP once per environment)."""
    if isinstance(conn, Connected):
        return await conn.list_tools()
    return list((await conn.client.list_tools()).tools)


async def _replay_actions(scenario: Scenario, client: Any) -> None:
    """Apply the scenario's initial DB actions through the tool server."""
    for action in scenario.initial_state.db_actions:
        result = await client.call_tool(action.tool, action.arguments)
        if result.is_error:
            text = "".join(getattr(c, "text", "") for c in result.content)
            raise InitialStateError(f"initial action {action.tool} failed: {text}")


async def _replay_history(scenario: Scenario, bus: DialogueBus) -> None:
    """Put the scenario's message-history prefix on the bus, as it was recorded.

    Recorded call ids get a ``hist_`` prefix so they cannot collide with this server's.
    """
    for raw in scenario.initial_state.history:
        event = msgspec.convert(raw, type=Event)
        if isinstance(event, ToolCall | ToolResult):
            event = msgspec.structs.replace(event, call_id=f"hist_{event.call_id}")
        await bus.publish(event)


class _Flag:
    """Set while a block runs."""

    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def __enter__(self) -> None:
        self._set = True

    def __exit__(self, *exc: object) -> None:
        self._set = False


class _Phase:
    """Where the dialogue is: what a failure is blamed on depends on it."""

    now = "start"


class _BrainStartError(BrainError):
    """A brain that could not start: the dialogue fails on that brain's side."""

    def __init__(self, reason: TerminationReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class _TurnCount:
    """The turns (messages, tool calls and results) in a dialogue's growing event log, counted once each."""

    def __init__(self) -> None:
        self._seen = 0
        self._turns = 0

    def __call__(self, events: list[Event]) -> int:
        self._turns += sum(
            1 for e in events[self._seen :] if isinstance(e, UserMessage | AgentMessage | ToolCall | ToolResult)
        )
        self._seen = len(events)
        return self._turns


class _TurnClock:
    """The deadline of the one wait under way on the user's side of a dialogue.

    ``scope`` is entered once around the side; ``wait`` gives the awaited answer
    ``turn_timeout_s`` to come, the user's own turn ("user") or the agent's reply ("agent"),
    and ``late()`` is the stop for the wait that ran out. Between waits nothing is timed.
    """

    def __init__(self, timeout_s: float) -> None:
        self.scope = anyio.CancelScope()
        self.timeout_s = timeout_s
        self.waiting = ""

    async def wait(self, who: str, answer: Awaitable[_T]) -> _T:
        self.waiting = who
        self.scope.deadline = anyio.current_time() + self.timeout_s
        try:
            result = await answer
        finally:
            if not self.scope.cancel_called:
                self.scope.deadline = math.inf
        if self.scope.cancel_called:  # the deadline passed as the answer came: it came too late
            raise self.late()
        return result

    def late(self) -> _Stop:
        limit = f"{self.timeout_s:g} s"
        if self.waiting == "user":
            stop = _Stop(TerminationReason.USER_FAILURE, f"the user did not answer within {limit}")
            stop.__cause__ = TurnTimeout(f"no user turn within {limit}")
        else:
            stop = _Stop(TerminationReason.AGENT_FAILURE, f"the agent did not answer within {limit}")
            stop.__cause__ = TurnTimeout(f"no agent reply within {limit}")
        return stop


async def _verify(
    scenario: Scenario,
    environment: Environment,
    database: Database,
    bus: DialogueBus,
    base_dir: Path | None,
) -> tuple[list[TaskOutcome], StateCheck, str | None]:
    """Every task's checks and the full-state check, and what went wrong if they could not run.

    Checks that cannot be carried out (a VerificationError, or a bug in them) are a
    verification failure, recorded as an error of the ``verify`` phase, never a tool
    failure; every task fails and the conversation keeps its own ending. Gold calls that
    do not replay fail only the tasks that write (their state check is an error).
    """
    try:
        verified = verify_dialogue(scenario, environment, database, bus.events, base_dir=base_dir)
    except Exception as exc:  # a VerificationError, or a bug in the checks: either way, no verdict
        error = exc if isinstance(exc, VerificationError) else VerificationError(f"{type(exc).__name__}: {exc}")
        detail = f"verify failed: {error}"
        await bus.publish(ErrorEvent(where="verify", error_type=type(exc).__name__, message=str(error)))
        return unverified(scenario, str(error)), StateCheck(verdict=Verdict.ERROR, detail=str(error)), detail
    if verified.state.verdict is Verdict.ERROR:
        await bus.publish(ErrorEvent(where="verify", error_type="GoldReplay", message=verified.state.detail))
    return verified.outcomes, verified.state, None


async def _judge(
    model: str, scenario: Scenario, bus: DialogueBus, outcomes: list[TaskOutcome], timeout_s: float
) -> tuple[list[TaskOutcome], str | None]:
    """The rubric judge's verdicts on top of the checks, and what went wrong if it failed.

    A judge that fails, whatever it raises, or does not answer within ``timeout_s`` (a turn),
    is a judge failure: recorded as an error of the ``judge`` phase (never a tool failure),
    every task failed and unjudged (``judgment`` ``error``), the conversation's own ending kept.
    """
    from simulator.llm.judge import judge_outcomes

    judged: list[TaskOutcome] | None = None
    try:
        with anyio.move_on_after(timeout_s):
            judged = await judge_outcomes(model, scenario, bus.events, outcomes, bus.publish)
        if judged is None:
            raise TurnTimeout(f"the judge did not answer within {timeout_s:g} s")
    except Exception as exc:  # the judge's own boundary: its provider, its answer, a bug in it
        error = exc if isinstance(exc, JudgeError) else JudgeError(f"{type(exc).__name__}: {exc}")
        await bus.publish(ErrorEvent(where="judge", error_type=type(exc).__name__, message=str(error)))
        failed = Check(kind=CheckKind.JUDGE, name="rubric judge", verdict=Verdict.ERROR, detail=str(error))
        reason = str(error)
        unjudged = [
            msgspec.structs.replace(o, success=False, judgment="error", reasoning=reason, checks=[*o.checks, failed])
            for o in outcomes
        ]
        return unjudged, f"judge failed: {error}"
    return [
        msgspec.structs.replace(
            o,
            checks=[
                *o.checks,
                Check(
                    kind=CheckKind.JUDGE,
                    name="rubric judge",
                    verdict=Verdict.PASS if o.judgment == "valid" else Verdict.FAIL,
                    detail=o.reasoning or "",
                ),
            ],
        )
        for o in judged
    ], None


def _failed(outcome: TaskOutcome) -> str:
    """The failed checks of a task, in one line (for its TaskCompleted event)."""
    failed = [f"{c.kind.value}: {c.name}" for c in outcome.checks if c.verdict is not Verdict.PASS]
    return "; ".join(failed[:5]) + (f"; and {len(failed) - 5} more" if len(failed) > 5 else "")


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _classify(exc: BaseException, phase: str) -> tuple[TerminationReason | None, str]:
    """The ending a failure in ``phase`` means, by where it came from; None keeps the conversation's own.

    Serving the tool server, replaying the initial state and closing the session are the
    tool server's side; a brain that cannot start is its own side's failure; anything else
    escaping the conversation came from the tool server (listing its tools). A failure while
    verifying or judging does not change how the conversation ended: its tasks fail, and the
    error is recorded with the phase it happened in (``_verify`` and ``_judge`` catch their
    own; this is the last resort).
    """
    leaf = _leaf(exc)
    detail = f"{type(leaf).__name__}: {leaf}"
    if isinstance(leaf, _BrainStartError):
        return leaf.reason, str(leaf)
    if isinstance(leaf, InitialStateError):
        return TerminationReason.TOOL_FAILURE, str(leaf)
    if phase in {"verify", "judge"} or isinstance(leaf, JudgeError | VerificationError):
        return None, f"{phase} failed: {detail}"
    return TerminationReason.TOOL_FAILURE, detail
