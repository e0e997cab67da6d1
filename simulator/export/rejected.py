"""The agent messages the simulated user rejected, found from a record's events.

The user's reaction to an agent turn is recorded as :class:`~schemas.UserFeedback` events
published just before the ``UserMessage`` that carries it (the runner publishes a user
turn's ``task_started``, then its feedback, then its message). A turn is *rejected* when
that message's feedback has a ``correction`` (the answer is wrong) or ``missing``
(something asked for was not done or not said): its assistant messages, the text reply
and the tool-call messages between the previous user message and that one, are what the
user said no to. Trained on as targets, they teach the mistake; ``confirm``, ``refine``,
``change_of_mind`` and ``confirmation_request`` are not about a mistake.

A task's planned detour (:class:`~schemas.Detour`) has the user first ask for values the
tool refuses; the agent calls the tool, reports the refusal, which is what it should do, and
the user gives the chain's values instead. The offline user records that as a
``change_of_mind``; datasets written before it did record a ``correction`` of the detour's
step, which is not about the agent either. That one is
recognised from the scenario, not from any text: a ``correction`` of the detour's task and
step answering a turn in which the step's tool, called with the detour's arguments, came
back with the detour's error code.

What the records do not hold cannot be found here: a user who gives up on a request
("never mind that part") records no feedback for it, and a branched dialogue's replayed
prefix keeps its messages but not the feedback given in it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from schemas import DialogueRecord, Event, FeedbackKind, Task, ToolCall, ToolResult, UserFeedback, UserMessage
from simulator.export._chat import InvalidDialogue

__all__ = ["RejectedTurns", "rejected_messages"]

_REJECTING = frozenset({FeedbackKind.CORRECTION, FeedbackKind.MISSING})


class RejectedTurns(enum.StrEnum):
    """What an export does with the agent messages the user rejected."""

    # Mark them not to be trained on where the format has a per-message field for it
    # ("weight": 0); they stay in the conversation as the context of the correction after them.
    MASK = "mask"
    DROP_DIALOGUE = "drop-dialogue"  # leave out the dialogues that have one
    KEEP = "keep"  # write them as training targets like every other agent message


def rejected_messages(record: DialogueRecord) -> frozenset[int]:
    """The indexes into ``record.messages`` of the assistant messages the user then rejected.

    Raises InvalidDialogue when the record's user messages are not one for each
    ``user_message`` event, in order (then no message can be matched to its feedback).
    """
    rejected_turns = _rejected_turns(record.events, {t.id: t for t in record.scenario.tasks})
    out: set[int] = set()
    user = -1  # the ordinal of the last user message
    for index, message in enumerate(record.messages):
        if message.role == "user":
            user += 1
        elif message.role == "assistant" and user + 1 in rejected_turns:
            out.add(index)
    events = sum(1 for e in record.events if isinstance(e, UserMessage))
    if user + 1 != events:
        raise InvalidDialogue(
            f"dialogue {record.id}: {user + 1} user messages but {events} user_message events; "
            "which agent messages the user rejected cannot be told"
        )
    return frozenset(out)


def _rejected_turns(events: Sequence[Event], tasks: Mapping[str, Task]) -> set[int]:
    """The ordinals of the user messages whose feedback rejects the agent turn before them."""
    out: set[int] = set()
    user = -1
    feedback: list[UserFeedback] = []
    turn: list[ToolCall | ToolResult] = []  # the agent's calls and results since the last user message
    for event in events:
        if isinstance(event, UserFeedback):
            feedback.append(event)
        elif isinstance(event, ToolCall | ToolResult):
            turn.append(event)
        elif isinstance(event, UserMessage):
            user += 1
            if user > 0 and any(_rejects(f, turn, tasks) for f in feedback):
                out.add(user)
            feedback, turn = [], []
    return out


def _rejects(feedback: UserFeedback, turn: Sequence[ToolCall | ToolResult], tasks: Mapping[str, Task]) -> bool:
    if feedback.feedback not in _REJECTING:
        return False
    return not (feedback.feedback is FeedbackKind.CORRECTION and _planned_detour(feedback, turn, tasks))


def _planned_detour(feedback: UserFeedback, turn: Sequence[ToolCall | ToolResult], tasks: Mapping[str, Task]) -> bool:
    """Whether ``feedback`` is the user's change of values after the refusal its task planned."""
    task = tasks.get(feedback.task_id)
    detour = task.detour if task is not None else None
    if task is None or detour is None or detour.step != feedback.step_id:
        return False
    tool = next((s.tool for s in task.chain if s.id == detour.step), None)
    calls = {e.call_id: e for e in turn if isinstance(e, ToolCall)}
    for result in turn:
        if not isinstance(result, ToolResult) or not result.is_error or result.error_code != detour.error:
            continue
        call = calls.get(result.call_id)
        if (
            call is not None
            and call.tool == tool
            and all(call.arguments.get(k) == v for k, v in detour.arguments.items())
        ):
            return True
    return False
