"""The recorder: one dialogue's event stream becomes its dataset record, in one place.

Everything that makes a :class:`DialogueRecord` — the runner at the end of a dialogue,
the run's failure path when a dialogue function raised, the tests — goes through
:func:`build_record`, so messages, metrics and usage are derived the same way.

Counting follows Appendix B of the paper (``compute_dialogue_metrics``):

- a **turn** is every user, assistant and tool call/output message: an assistant message
  counts once per tool call it carries (plus once for its text, if it has any), every
  tool result and every user message counts once;
- the **steps** of one user request are the tool calls made between that user message
  and the next; ``DialogueMetrics.steps`` is the largest over the dialogue's requests and
  ``mean_steps`` the mean over the requests that used at least one tool;
- **tasks** are the goals of the dialogue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import msgspec

from schemas import (
    AgentMessage,
    DialogueMetrics,
    DialogueRecord,
    ErrorEvent,
    Event,
    Message,
    MessageToolCall,
    ProviderCall,
    Scenario,
    StateCheck,
    TaskOutcome,
    TerminationReason,
    ToolCall,
    ToolResult,
    Usage,
    UserFeedback,
    UserMessage,
)
from simulator.log import scrub_text

__all__ = ["NO_RESULT_TEXT", "build_record", "compute_dialogue_metrics", "messages_from_events", "usage_of"]


def build_record(
    scenario: Scenario,
    events: list[Event],
    outcomes: list[TaskOutcome],
    termination: TerminationReason,
    *,
    success: bool,
    brains: dict[str, str] | None = None,
    started_at: float = 0.0,
    duration_s: float = 0.0,
    error: str | None = None,
    state: StateCheck | None = None,
) -> DialogueRecord:
    """The record of one dialogue from what it published: messages, metrics and usage derived here."""
    messages = messages_from_events(events)
    if error:
        error = scrub_text(error)  # a provider error that echoes a key shows it redacted
    events = [_scrubbed(e) if isinstance(e, ErrorEvent) else e for e in events]
    return DialogueRecord(
        id=scenario.id,
        scenario=scenario,
        messages=messages,
        events=events,
        outcomes=outcomes,
        metrics=compute_dialogue_metrics(messages, events, len(scenario.tasks)),
        termination=termination,
        success=success,
        usage=usage_of(events),
        brains=brains or {},
        started_at=started_at,
        duration_s=duration_s,
        error=error,
        state=state,
    )


def usage_of(events: Sequence[Event]) -> Usage:
    """Tokens, requests and cost of the dialogue's model calls (cache hits cost nothing)."""
    calls = [e for e in events if isinstance(e, ProviderCall)]
    return Usage(
        input_tokens=sum(c.input_tokens for c in calls),
        output_tokens=sum(c.output_tokens for c in calls),
        requests=sum(1 for c in calls if not c.cached),
        cost_usd=sum(c.cost_usd or 0.0 for c in calls),
    )


#: The content of the tool message made for a call whose result never came.
NO_RESULT_TEXT = "error: the tool call got no result before the dialogue ended"


def messages_from_events(events: Sequence[Event]) -> list[Message]:
    """Normalise a dialogue's event stream into chat messages.

    User and agent messages become ``user`` and ``assistant`` messages. A run of tool
    calls becomes one ``assistant`` message carrying them (in call order), followed by one
    ``tool`` message per call, in the same order, so every call is answered right after
    it as chat APIs require. Calls and results are grouped even when they interleave
    (``call a, result a, call b, result b`` gives one call message for ``a`` and its
    result, then the same for ``b``; ``call a, call b, result a, result b`` gives one
    message with both calls, then both results). A call whose result never came is
    answered with an error tool message (:data:`NO_RESULT_TEXT`); a result with no call
    is left out of the messages (it stays in the events).
    """
    messages: list[Message] = []
    calls: list[ToolCall] = []
    results: dict[str, list[ToolResult]] = {}
    in_results = False

    def flush() -> None:
        nonlocal in_results
        if calls:
            messages.append(
                Message(
                    role="assistant",
                    tool_calls=[MessageToolCall(id=c.call_id, name=c.tool, arguments=c.arguments) for c in calls],
                )
            )
            for call in calls:
                pending = results.get(call.call_id)
                if pending:
                    result = pending.pop(0)
                    messages.append(
                        Message(
                            role="tool",
                            tool_call_id=call.call_id,
                            name=call.tool,
                            content=result.text,
                            is_error=result.is_error,
                        )
                    )
                else:
                    messages.append(
                        Message(
                            role="tool",
                            tool_call_id=call.call_id,
                            name=call.tool,
                            content=NO_RESULT_TEXT,
                            is_error=True,
                        )
                    )
        calls.clear()
        results.clear()
        in_results = False

    for event in events:
        if isinstance(event, ToolCall):
            if in_results and not _awaiting_results(calls, results):
                flush()
            calls.append(event)
        elif isinstance(event, ToolResult):
            if any(c.call_id == event.call_id for c in calls):
                results.setdefault(event.call_id, []).append(event)
                in_results = True
        elif isinstance(event, UserMessage):
            flush()
            messages.append(Message(role="user", content=event.text))
        elif isinstance(event, AgentMessage):
            flush()
            messages.append(Message(role="assistant", content=event.text))
    flush()
    return messages


def _awaiting_results(calls: list[ToolCall], results: dict[str, list[ToolResult]]) -> bool:
    """Whether some buffered call still waits for its result (then a new call joins the batch)."""
    wanted = Counter(c.call_id for c in calls)
    return any(len(results.get(call_id, ())) < n for call_id, n in wanted.items())


# --------------------------------------------------------------------------- per dialogue


def compute_dialogue_metrics(messages: Sequence[Message], events: Sequence[Event], tasks: int) -> DialogueMetrics:
    """Count one dialogue as the paper does (see the module docstring).

    Turns and steps come from ``messages`` (so a replayed history prefix counts too);
    tool calls, tool errors, invalid arguments and feedback come from ``events`` (what
    actually ran in this dialogue). ``user_turns`` counts user messages and
    ``assistant_turns`` the assistant messages with text (the agent's replies).
    """
    turns = 0
    user_turns = 0
    assistant_turns = 0
    request_steps: list[int] = []
    current: int | None = None  # tool calls since the last user message; None before the first

    for message in messages:
        if message.role == "user":
            turns += 1
            user_turns += 1
            if current is not None:
                request_steps.append(current)
            current = 0
        elif message.role == "assistant":
            n_calls = len(message.tool_calls)
            has_text = bool(message.content) or not n_calls
            turns += n_calls + (1 if has_text else 0)
            if message.content:
                assistant_turns += 1
            if current is not None:
                current += n_calls
        else:
            turns += 1
    if current is not None:
        request_steps.append(current)

    used = [s for s in request_steps if s > 0]
    tool_calls = 0
    tool_errors = 0
    invalid = 0
    feedback: Counter[str] = Counter()
    for event in events:
        if isinstance(event, ToolCall):
            tool_calls += 1
        elif isinstance(event, ToolResult):
            if event.is_error:
                tool_errors += 1
                if event.error_code == "invalid_arguments":
                    invalid += 1
        elif isinstance(event, UserFeedback):
            feedback[event.feedback.value] += 1

    return DialogueMetrics(
        turns=turns,
        user_turns=user_turns,
        assistant_turns=assistant_turns,
        steps=max(request_steps, default=0),
        mean_steps=sum(used) / len(used) if used else 0.0,
        tasks=tasks,
        tool_calls=tool_calls,
        tool_errors=tool_errors,
        invalid_arguments=invalid,
        feedback=dict(sorted(feedback.items())),
    )


def _scrubbed(event: ErrorEvent) -> ErrorEvent:
    message = scrub_text(event.message)
    return event if message == event.message else msgspec.structs.replace(event, message=message)
