"""The dialogue runner end to end: long verified multi-task dialogues on the built-in
domains, the shorter task-oriented baseline, determinism, traceable tool results, every
way a dialogue can end badly recorded without raising, and the three transports."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from schemas import (
    AgentMessage,
    DialogueEnded,
    DialogueRecord,
    DialogueStarted,
    Environment,
    ErrorEvent,
    Mode,
    ResultShape,
    Scenario,
    SqlImplementation,
    TaskCompleted,
    TaskStarted,
    TerminationReason,
    ToolCall,
    ToolResult,
    UserMessage,
)
from schemas.errors import ToolError
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.dialogue.verify import check_assertion
from simulator.offline.agent import OfflineAgent
from simulator.offline.scenarios import build_scenario
from simulator.offline.user import OfflineUser
from simulator.run.config import RunConfig
from simulator.run.dataset import iter_records
from simulator.run.execute import execute_run
from simulator.run.plan import prepare_run
from tests.conftest import shop_environment
from tests.simulator.conftest import DOMAINS, Dialogue, done_as_the_user_sees, shop_scenario, shop_tasks
from toolservers.database import open_database
from toolservers.executor import ToolExecutor

pytestmark = pytest.mark.anyio


def conversation(record: DialogueRecord) -> list[tuple[Any, ...]]:
    """What was said and called, in order: role, content, tool calls, the call answered."""
    return [
        (m.role, m.content, [(c.id, c.name, c.arguments) for c in m.tool_calls], m.tool_call_id, m.is_error)
        for m in record.messages
    ]


def broken_shop() -> Environment:
    """The shop, but setting an order's status breaks a CHECK constraint at run time."""
    env = shop_environment()
    failing = SqlImplementation(
        statements=[
            "UPDATE customers SET tier = 'platinum' WHERE :status IS NOT NULL AND customer_id = "
            "(SELECT customer_id FROM orders WHERE order_id = :order_id) RETURNING *"
        ],
        result=ResultShape.ROW,
    )
    tools = [
        msgspec.structs.replace(t, implementation=failing) if t.name == "update_order_status" else t for t in env.tools
    ]
    return msgspec.structs.replace(env, id="shop-broken", tools=tools)


def update_only(env_id: str = "shop") -> Scenario:
    scenario = shop_scenario([shop_tasks()[1]])
    return msgspec.structs.replace(scenario, id=f"{env_id}-update", environment_id=env_id)


def assert_ended_cleanly(record: DialogueRecord, reason: TerminationReason) -> None:
    assert record.termination is reason, (record.termination, record.error)
    assert not record.success
    assert isinstance(record.events[0], DialogueStarted)
    ended = record.events[-1]
    assert isinstance(ended, DialogueEnded) and ended.reason is reason
    assert [o.task_id for o in record.outcomes] == [t.id for t in record.scenario.tasks]
    completed = [e.task_id for e in record.events if isinstance(e, TaskCompleted)]
    assert completed == [t.id for t in record.scenario.tasks]
    assert [e.seq for e in record.events] == list(range(len(record.events)))


# --------------------------------------------------------------------------- the paper's figures


def test_user_oriented_dialogues_are_long_multi_task_and_verified(user_oriented: list[Dialogue]) -> None:
    records = [d.record for d in user_oriented]
    assert len(records) == 15
    assert statistics.mean(r.metrics.turns for r in records) >= 20
    assert statistics.mean(r.metrics.tasks for r in records) >= 2
    for r in records:
        assert r.termination is TerminationReason.USER_DONE, (r.id, r.termination, r.error)
        assert r.success and all(o.success for o in r.outcomes), (r.id, r.outcomes)
        assert r.metrics.tasks == len(r.scenario.tasks) >= 1
        assert {e.task_id for e in r.events if isinstance(e, TaskStarted)} == {t.id for t in r.scenario.tasks}
    # every domain has tasks verified by the database state, not only by what was said
    for name in DOMAINS:
        assert any(
            t.expected.assertions for d in user_oriented if d.environment.id == name for t in d.scenario.tasks
        ), name


def test_task_oriented_runs_the_same_tasks_in_clearly_fewer_turns(
    user_oriented: list[Dialogue], task_oriented: list[Dialogue]
) -> None:
    for uo, to in zip(user_oriented, task_oriented, strict=True):
        assert to.scenario.mode is Mode.TASK_ORIENTED and uo.scenario.mode is Mode.USER_ORIENTED
        assert msgspec.json.encode(to.scenario.tasks) == msgspec.json.encode(uo.scenario.tasks)
        assert done_as_the_user_sees(to.record), (to.scenario.id, to.record.termination, to.record.outcomes)
    assert sum(d.record.success for d in task_oriented) >= len(task_oriented) - 2

    # The same tasks need the same tool calls (deep chains make them most of the turns): the
    # conversation itself (user and agent messages) is what gets shorter.
    def spoken(d: Dialogue) -> int:
        return sum(m.role in {"user", "assistant"} for m in d.record.messages)

    uo_turns = statistics.mean(spoken(d) for d in user_oriented)
    to_turns = statistics.mean(spoken(d) for d in task_oriented)
    assert to_turns <= 0.75 * uo_turns, (to_turns, uo_turns)
    assert statistics.mean(d.record.metrics.turns for d in task_oriented) < statistics.mean(
        d.record.metrics.turns for d in user_oriented
    )


# --------------------------------------------------------------------------- determinism


async def test_the_same_scenario_gives_the_same_dialogue(user_oriented: list[Dialogue]) -> None:
    for d in user_oriented[::5]:
        again = await run_dialogue(d.scenario, d.environment, DialogueConfig())
        assert conversation(again) == conversation(d.record)
        assert [type(e) for e in again.events] == [type(e) for e in d.record.events]
        assert again.outcomes == d.record.outcomes


async def test_another_seed_gives_another_dialogue(user_oriented: list[Dialogue]) -> None:
    d = user_oriented[0]
    other = msgspec.structs.replace(d.scenario, seed=d.scenario.seed + 1)
    record = await run_dialogue(other, d.environment, DialogueConfig())
    assert record.success
    assert [m.content for m in record.messages] != [m.content for m in d.record.messages]


# --------------------------------------------------------------------------- traceability


def test_every_tool_result_answers_an_executed_call(
    user_oriented: list[Dialogue], task_oriented: list[Dialogue]
) -> None:
    for d in [*user_oriented, *task_oriented]:
        events = d.record.events
        calls: dict[str, ToolCall] = {}
        answered: set[str] = set()
        for e in events:
            if isinstance(e, ToolCall):
                assert e.call_id not in calls
                calls[e.call_id] = e
            elif isinstance(e, ToolResult):
                assert e.call_id in calls, (d.scenario.id, e.call_id)  # published after its call
                assert calls[e.call_id].tool == e.tool
                assert e.call_id not in answered
                answered.add(e.call_id)
        assert answered == set(calls)
        assert d.record.metrics.tool_calls == len(calls) > 0

        messages = d.record.messages
        for i, m in enumerate(messages):
            if m.tool_calls:
                ids = [c.id for c in m.tool_calls]
                following = messages[i + 1 : i + 1 + len(ids)]
                assert [(f.role, f.tool_call_id) for f in following] == [("tool", x) for x in ids]
            if m.role == "tool":
                owner = next(p for p in reversed(messages[:i]) if p.tool_calls)
                assert m.tool_call_id in {c.id for c in owner.tool_calls}
        assert sum(len(m.tool_calls) for m in messages) == len(calls)


def test_replaying_the_recorded_calls_gives_the_recorded_results(user_oriented: list[Dialogue]) -> None:
    """Every recorded result is what its call returns when executed again in order on a
    fresh copy; the replayed database satisfies every task's final assertions."""
    for d in user_oriented:
        db = open_database(d.environment.database)
        try:
            executor = ToolExecutor(d.environment, db)
            results = {e.call_id: e for e in d.record.events if isinstance(e, ToolResult)}
            for call in (e for e in d.record.events if isinstance(e, ToolCall)):
                recorded = results[call.call_id]
                try:
                    outcome = executor.call(call.tool, call.arguments)
                except ToolError as exc:
                    assert recorded.is_error and recorded.error_code == exc.code, (d.scenario.id, call)
                else:
                    assert not recorded.is_error and recorded.text == outcome.text, (d.scenario.id, call)
            for task in d.scenario.tasks:
                assert all(check_assertion(db.query, a) for a in task.expected.assertions), (d.scenario.id, task.id)
        finally:
            db.close()


# --------------------------------------------------------------------------- failures


async def test_a_failing_tool_is_recorded_as_an_error_and_the_dialogue_ends() -> None:
    record = await run_dialogue(update_only("shop-broken"), broken_shop(), DialogueConfig())
    results = [e for e in record.events if isinstance(e, ToolResult)]
    assert results and all(r.is_error and r.error_code == "execution_failed" for r in results)
    tool_messages = [m for m in record.messages if m.role == "tool"]
    assert len(tool_messages) == len(results) and all(m.is_error for m in tool_messages)
    assert record.metrics.tool_errors == len(results)
    assert record.termination in {TerminationReason.USER_GAVE_UP, TerminationReason.TOO_MANY_TOOL_ERRORS}
    assert_ended_cleanly(record, record.termination)
    assert record.outcomes[0].failed_assertions == ["order 10 is shipped"]
    # the user did not say it was done
    assert not any(e.is_task_complete for e in record.events if isinstance(e, UserMessage))


async def test_too_many_tool_errors_stop_the_dialogue() -> None:
    record = await run_dialogue(update_only("shop-broken"), broken_shop(), DialogueConfig(max_tool_errors=1))
    assert_ended_cleanly(record, TerminationReason.TOO_MANY_TOOL_ERRORS)
    assert sum(isinstance(e, ToolResult) and e.is_error for e in record.events) == 2
    # It ran its course (not a failure): no error; the ending says why (DialogueRecord.error).
    assert record.error is None
    (ended,) = [e for e in record.events if isinstance(e, DialogueEnded)]
    assert ended.detail == "2 tool errors"


async def test_the_same_task_succeeds_when_the_tool_works() -> None:
    record = await run_dialogue(update_only(), shop_environment(), DialogueConfig())
    assert record.termination is TerminationReason.USER_DONE and record.success


async def test_an_agent_that_raises_is_recorded_as_agent_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: OfflineAgent, text: str, acts: Any) -> Any:
        raise RuntimeError("the agent broke")

    monkeypatch.setattr(OfflineAgent, "respond", broken)
    record = await run_dialogue(shop_scenario(), shop_environment(), DialogueConfig())
    assert_ended_cleanly(record, TerminationReason.AGENT_FAILURE)
    errors = [e for e in record.events if isinstance(e, ErrorEvent)]
    assert [(e.where, e.error_type) for e in errors] == [("agent_failure", "RuntimeError")]
    assert record.error
    assert not any(isinstance(e, AgentMessage) for e in record.events)


async def test_a_user_that_raises_is_recorded_as_user_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: OfflineUser, text: str, acts: Any) -> Any:
        raise KeyError("the user broke")

    monkeypatch.setattr(OfflineUser, "respond", broken)
    record = await run_dialogue(shop_scenario(), shop_environment(), DialogueConfig())
    assert_ended_cleanly(record, TerminationReason.USER_FAILURE)
    assert [(e.where, e.error_type) for e in record.events if isinstance(e, ErrorEvent)] == [
        ("user_failure", "KeyError")
    ]


async def test_max_turns_stops_the_dialogue(user_oriented: list[Dialogue]) -> None:
    d = user_oriented[0]
    record = await run_dialogue(d.scenario, d.environment, DialogueConfig(max_turns=4))
    assert_ended_cleanly(record, TerminationReason.MAX_TURNS)
    assert record.metrics.turns < d.record.metrics.turns
    assert not any(e.is_task_complete for e in record.events if isinstance(e, UserMessage))


@pytest.fixture
def hanging_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    async def hang(self: OfflineAgent, text: str, acts: Any) -> Any:
        await anyio.sleep_forever()

    monkeypatch.setattr(OfflineAgent, "respond", hang)


@pytest.mark.usefixtures("hanging_agent")
async def test_a_hanging_agent_hits_the_dialogue_timeout() -> None:
    record = await run_dialogue(shop_scenario(), shop_environment(), DialogueConfig(timeout_s=0.2))
    assert_ended_cleanly(record, TerminationReason.TIMEOUT)
    assert record.error


@pytest.mark.usefixtures("hanging_agent")
async def test_a_hanging_agent_hits_the_turn_timeout_and_is_blamed() -> None:
    """The user waited for an answer that never came: the agent side is at fault (or the
    dialogue timed out), not the user."""
    record = await run_dialogue(shop_scenario(), shop_environment(), DialogueConfig(turn_timeout_s=0.2))
    assert record.termination in {TerminationReason.TIMEOUT, TerminationReason.AGENT_FAILURE}, (
        record.termination,
        record.error,
    )
    assert_ended_cleanly(record, record.termination)


def _slowed(monkeypatch: pytest.MonkeyPatch, cls: type, delays: dict[int, float], default: float = 0.0) -> None:
    """``cls.respond`` waits before answering: ``delays[n]`` seconds on its n-th call (from 1)."""
    original = cls.respond  # type: ignore[attr-defined]
    calls = 0

    async def respond(self: Any, text: str, acts: Any) -> Any:
        nonlocal calls
        calls += 1
        await anyio.sleep(delays.get(calls, default))
        return await original(self, text, acts)

    monkeypatch.setattr(cls, "respond", respond)


def _turn_timeouts(record: DialogueRecord) -> list[ErrorEvent]:
    return [e for e in record.events if isinstance(e, ErrorEvent) and e.error_type == "TurnTimeout"]


async def test_every_wait_gets_the_whole_turn_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each answer has ``turn_timeout_s`` of its own: waits that add up to far more than it
    end no dialogue (one clock times every wait of the user's side, moved for each)."""
    _slowed(monkeypatch, OfflineAgent, {}, default=0.1)
    _slowed(monkeypatch, OfflineUser, {}, default=0.1)
    record = await run_dialogue(shop_scenario(), shop_environment(), DialogueConfig(turn_timeout_s=0.5))
    assert record.termination is TerminationReason.USER_DONE, (record.termination, record.error)
    assert not _turn_timeouts(record) and record.error is None
    slowed = sum(1 for e in record.events if isinstance(e, UserMessage | AgentMessage)) - 1  # not the opening
    assert slowed * 0.1 > 2 * 0.5  # the waits took two turn timeouts and more in all


@pytest.mark.parametrize(
    ("late", "nth", "side", "message"),
    [
        # The agent's third reply never comes in time: the two replies before it stay.
        (OfflineAgent, 3, "agent", AgentMessage),
        # The user's second answer to a reply never comes: the opening and one answer stay.
        (OfflineUser, 2, "user", UserMessage),
    ],
)
async def test_a_late_answer_midway_is_blamed_on_its_side(
    monkeypatch: pytest.MonkeyPatch, late: type, nth: int, side: str, message: type
) -> None:
    _slowed(monkeypatch, late, {nth: 2.0})
    record = await run_dialogue(shop_scenario(), shop_environment(), DialogueConfig(turn_timeout_s=0.4))
    reason = TerminationReason.AGENT_FAILURE if side == "agent" else TerminationReason.USER_FAILURE
    assert_ended_cleanly(record, reason)
    assert record.error == f"the {side} did not answer within 0.4 s"
    assert [e.where for e in _turn_timeouts(record)] == [reason.value]
    assert sum(1 for e in record.events if isinstance(e, message)) == 2


async def test_a_failing_dialogue_does_not_stop_the_run(tmp_path: Path) -> None:
    good, broken = shop_environment(), broken_shop()
    scenarios = [update_only("shop-broken"), msgspec.structs.replace(update_only(), id="shop-good")]

    def planner(config: RunConfig) -> tuple[list[Environment], list[Scenario]]:
        return [good, broken], scenarios

    out = tmp_path / "run"
    prepared = prepare_run(RunConfig(dialogues=2, seed=0, out_dir=out, concurrency=2), planner=planner)
    summary = await execute_run(prepared, progress=False)
    records = {r.id: r for _, r in iter_records(out)}
    assert set(records) == {"shop-broken-update", "shop-good"}
    assert summary.generated == 2
    assert records["shop-good"].success
    assert not records["shop-broken-update"].success
    assert records["shop-broken-update"].termination in {
        TerminationReason.USER_GAVE_UP,
        TerminationReason.TOO_MANY_TOOL_ERRORS,
    }


# --------------------------------------------------------------------------- transports


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_other_transports_give_the_same_dialogue(transport: str, user_oriented: list[Dialogue]) -> None:
    d = next(x for x in user_oriented if x.environment.id == "retail")
    record = await run_dialogue(d.scenario, d.environment, DialogueConfig(transport=transport))  # type: ignore[arg-type]
    assert record.termination is TerminationReason.USER_DONE, record.error
    assert record.success
    assert conversation(record) == conversation(d.record)


async def test_a_scenario_of_another_seed_is_not_the_same_scenario(domain_envs: dict[str, Environment]) -> None:
    env = domain_envs["clinic"]
    a = build_scenario(env, index=0, seed=1)
    b = build_scenario(env, index=0, seed=2)
    assert a.id != b.id
    ra = await run_dialogue(a, env, DialogueConfig())
    rb = await run_dialogue(b, env, DialogueConfig())
    assert ra.success and rb.success
    assert conversation(ra) != conversation(rb)


async def test_a_cut_reply_reaches_the_user_without_its_acts(domain_envs: dict[str, Environment]) -> None:
    """The acts describe the whole reply; the user was shown only its first characters (a
    question to confirm a change, say, cut away), so it gets the words alone."""
    config = DialogueConfig(max_message_chars=120)
    cut = whole = 0
    for index in range(6):
        record = await run_dialogue(
            build_scenario(domain_envs["retail"], index=index, seed=3), domain_envs["retail"], config
        )
        for event in record.events:
            if isinstance(event, AgentMessage):
                if "[dialogsim: message cut here" in event.text:
                    cut += 1
                    assert event.acts == [], event.text
                else:
                    whole += bool(event.acts)
    assert cut and whole  # both kinds were there
