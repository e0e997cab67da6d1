"""Counting as the paper counts, normalising events into messages, and dataset summaries."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas import (
    AgentMessage,
    DialogueEnded,
    DialogueMetrics,
    DialogueRecord,
    DialogueStarted,
    Event,
    FeedbackKind,
    Mode,
    Persona,
    Scenario,
    TaskOutcome,
    TerminationReason,
    ToolCall,
    ToolResult,
    UserFeedback,
    UserMessage,
)
from simulator.dialogue.recorder import NO_RESULT_TEXT, compute_dialogue_metrics, messages_from_events
from simulator.summary import (
    render_summary,
    summarize,
)


def call(call_id: str, tool: str = "get_customer", **arguments: Any) -> ToolCall:
    return ToolCall(call_id=call_id, tool=tool, arguments=arguments or {"customer_id": 1})


def result(call_id: str, *, error: str | None = None, tool: str = "get_customer") -> ToolResult:
    return ToolResult(
        call_id=call_id,
        tool=tool,
        is_error=error is not None,
        error_code=error,
        text=f"error {error}" if error else f"result of {call_id}",
    )


def dialogue_events() -> list[Event]:
    """Four user requests: three tool calls in sequence, two in parallel, none, none."""
    return [
        DialogueStarted(scenario_id="s", environment_id="shop", mode="user-oriented"),
        UserMessage(text="Find Ada's account."),
        call("c1", "search_customers", name="Ada"),
        result("c1", tool="search_customers"),
        call("c2"),
        result("c2", error="invalid_arguments"),
        call("c3"),
        result("c3"),
        AgentMessage(text="Ada Lovelace is a gold customer."),
        UserFeedback(feedback=FeedbackKind.CONFIRM, task_id="t1"),
        UserMessage(text="Ship orders 10 and 12."),
        call("c4", "update_order_status", order_id=10, status="shipped"),
        call("c5", "update_order_status", order_id=12, status="shipped"),
        result("c4", tool="update_order_status"),
        result("c5", error="not_found", tool="update_order_status"),
        AgentMessage(text="Order 10 is shipped; there is no order 12."),
        UserFeedback(feedback=FeedbackKind.CORRECTION, task_id="t2"),
        UserMessage(text="What is her email?"),
        AgentMessage(text="ada@example.com"),
        UserMessage(text="Thanks, that's all.", is_task_complete=True),
        DialogueEnded(reason=TerminationReason.USER_DONE),
    ]


def shape(messages: list[Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for m in messages:
        if m.tool_calls:
            out.append(("assistant-calls", *[c.id for c in m.tool_calls]))
        elif m.role == "tool":
            out.append(("tool", m.tool_call_id))
        else:
            out.append((m.role,))
    return out


def test_messages_from_events_pairs_every_call_with_its_result_in_order() -> None:
    messages = messages_from_events(dialogue_events())
    assert shape(messages) == [
        ("user",),
        ("assistant-calls", "c1"),
        ("tool", "c1"),
        ("assistant-calls", "c2"),
        ("tool", "c2"),
        ("assistant-calls", "c3"),
        ("tool", "c3"),
        ("assistant",),
        ("user",),
        ("assistant-calls", "c4", "c5"),
        ("tool", "c4"),
        ("tool", "c5"),
        ("assistant",),
        ("user",),
        ("assistant",),
        ("user",),
    ]
    c2 = messages[4]
    assert c2.is_error and c2.name == "get_customer" and c2.content == "error invalid_arguments"
    assert messages[1].tool_calls[0].arguments == {"name": "Ada"}
    assert messages[1].tool_calls[0].name == "search_customers"
    assert messages[0].content == "Find Ada's account."


def test_messages_from_events_answers_a_call_without_result_and_drops_an_orphan_result() -> None:
    events: list[Event] = [
        UserMessage(text="hi"),
        result("ghost"),
        call("c1"),
        AgentMessage(text="sorry, something broke"),
    ]
    messages = messages_from_events(events)
    assert shape(messages) == [("user",), ("assistant-calls", "c1"), ("tool", "c1"), ("assistant",)]
    assert messages[2].is_error and messages[2].content == NO_RESULT_TEXT


def test_messages_from_events_keeps_a_new_call_in_the_batch_while_results_are_outstanding() -> None:
    events: list[Event] = [
        UserMessage(text="hi"),
        call("a"),
        call("b"),
        result("a"),
        call("c"),
        result("b"),
        result("c"),
    ]
    assert shape(messages_from_events(events)) == [
        ("user",),
        ("assistant-calls", "a", "b", "c"),
        ("tool", "a"),
        ("tool", "b"),
        ("tool", "c"),
    ]


def test_compute_dialogue_metrics_counts_as_the_paper() -> None:
    events = dialogue_events()
    metrics = compute_dialogue_metrics(messages_from_events(events), events, tasks=2)
    # Turns: 4 user + 5 tool calls + 5 tool results + 3 assistant replies.
    assert metrics == DialogueMetrics(
        turns=17,
        user_turns=4,
        assistant_turns=3,
        steps=3,
        mean_steps=2.5,  # requests with tools: 3 and 2 calls
        tasks=2,
        tool_calls=5,
        tool_errors=2,
        invalid_arguments=1,
        feedback={"confirm": 1, "correction": 1},
    )


def test_turns_do_not_depend_on_whether_text_and_calls_share_a_message() -> None:
    from schemas import Message, MessageToolCall

    merged = [
        Message(role="user", content="q"),
        Message(
            role="assistant",
            content="Let me check.",
            tool_calls=[MessageToolCall(id="a", name="t", arguments={})],
        ),
        Message(role="tool", tool_call_id="a", content="r"),
        Message(role="assistant", content="done"),
    ]
    split = [
        merged[0],
        Message(role="assistant", content="Let me check."),
        Message(role="assistant", tool_calls=[MessageToolCall(id="a", name="t", arguments={})]),
        *merged[2:],
    ]
    a = compute_dialogue_metrics(merged, [], tasks=1)
    b = compute_dialogue_metrics(split, [], tasks=1)
    assert a.turns == b.turns == 5
    assert a.steps == b.steps == 1


def test_no_tools_gives_zero_steps() -> None:
    events: list[Event] = [UserMessage(text="hi"), AgentMessage(text="hello")]
    metrics = compute_dialogue_metrics(messages_from_events(events), events, tasks=1)
    assert (metrics.turns, metrics.steps, metrics.mean_steps, metrics.tool_calls) == (2, 0, 0.0, 0)


def record(
    rid: str,
    *,
    mode: Mode = Mode.USER_ORIENTED,
    turns: int,
    steps: int,
    mean_steps: float,
    tasks: int,
    ok: list[bool],
    tool_calls: int = 0,
    tool_errors: int = 0,
    invalid: int = 0,
    termination: TerminationReason = TerminationReason.USER_DONE,
    feedback: dict[str, int] | None = None,
) -> DialogueRecord:
    scenario = Scenario(id=rid, environment_id="shop", domain="shop", tasks=[], persona=Persona(name="Ada"), mode=mode)
    return DialogueRecord(
        id=rid,
        scenario=scenario,
        messages=[],
        events=[],
        outcomes=[TaskOutcome(task_id=f"t{i}", success=s) for i, s in enumerate(ok)],
        metrics=DialogueMetrics(
            turns=turns,
            steps=steps,
            mean_steps=mean_steps,
            tasks=tasks,
            tool_calls=tool_calls,
            tool_errors=tool_errors,
            invalid_arguments=invalid,
            feedback=feedback or {},
        ),
        termination=termination,
        success=all(ok),
    )


def test_summarize_table1_and_rates() -> None:
    records = [
        record(
            "a",
            turns=10,
            steps=4,
            mean_steps=2.0,
            tasks=2,
            ok=[True, True],
            tool_calls=8,
            tool_errors=2,
            invalid=1,
            feedback={"confirm": 2},
        ),
        record(
            "b",
            turns=20,
            steps=6,
            mean_steps=3.0,
            tasks=3,
            ok=[True, False, False],
            tool_calls=2,
            termination=TerminationReason.MAX_TURNS,
            feedback={"confirm": 1, "missing": 1},
        ),
        record("c", turns=3, steps=0, mean_steps=0.0, tasks=1, ok=[True]),
    ]
    s = summarize(records)
    assert s.samples == 3
    assert (s.turns.mean, s.turns.max) == (11.0, 20)
    assert (s.tasks.mean, s.tasks.max) == (2.0, 3)
    assert (s.steps.mean, s.steps.max) == (2.5, 6)  # mean over dialogues that used tools
    assert s.task_success_rate == 4 / 6
    assert s.dialogue_success_rate == 2 / 3
    assert s.tool_calls == 10
    assert s.tool_error_rate == 0.2
    assert s.invalid_argument_rate == 0.1
    assert s.terminations == {"max_turns": 1, "user_done": 2}
    assert s.feedback == {"confirm": 3, "missing": 1}
    assert s.by_mode == {}


def test_summarize_splits_by_mode_when_both_are_present() -> None:
    records = [
        record("a", turns=10, steps=1, mean_steps=1.0, tasks=1, ok=[True]),
        record("b", mode=Mode.TASK_ORIENTED, turns=4, steps=2, mean_steps=2.0, tasks=1, ok=[False]),
    ]
    s = summarize(records)
    assert set(s.by_mode) == {"user-oriented", "task-oriented"}
    assert s.by_mode["task-oriented"].turns.mean == 4
    assert s.by_mode["user-oriented"].dialogue_success_rate == 1.0
    # The summary round-trips through JSON (it is written as summary.json).
    assert msgspec.json.decode(msgspec.json.encode(s), type=type(s)) == s
    assert render_summary(s).row_count > 5


def test_summarize_empty() -> None:
    s = summarize([])
    assert s.samples == 0 and s.turns.mean == 0.0 and s.tool_error_rate == 0.0


def test_summarize_does_not_depend_on_the_order_of_the_records() -> None:
    # Float sums in another order differ in the last bit (0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1):
    # a Ray run's records arrive in any order and must summarise exactly as one process's.
    means = [0.1, 0.2, 0.3, 1 / 3, 2 / 7, 3.7]
    records = [record(f"r{i}", turns=4, steps=3, mean_steps=m, tasks=1, ok=[True]) for i, m in enumerate(means)]
    assert sum(means) != sum(reversed(means))  # else this test proves nothing
    assert summarize(records) == summarize(list(reversed(records)))
