"""The dataset record of one dialogue."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.events import Event, TerminationReason
from schemas.task import Scenario

__all__ = [
    "RECORD_VERSION",
    "DialogueMetrics",
    "DialogueRecord",
    "Message",
    "MessageToolCall",
    "TaskOutcome",
    "Usage",
]

#: Bumped whenever a field of DialogueRecord (or what it contains) changes.
#: 2: TaskOutcome gained ``judgment`` and ``reasoning`` (the rubric judge).
#: 3: external environments: TaskOutcome gained ``unchecked``; ExpectedOutcome ``calls`` and
#:    ``state``; ValueRef ``pattern``; events ``user_tool_call`` / ``user_tool_result``.
RECORD_VERSION = 3


class MessageToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: dict[str, Any]


class Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A normalised chat message. ``role`` is ``user``, ``assistant`` or ``tool``."""

    role: str
    content: str = ""
    tool_calls: list[MessageToolCall] = []
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False


class TaskOutcome(msgspec.Struct, kw_only=True):
    """Whether a task was done: database assertions and values said, and, with an LLM judge,
    its verdict on the rubric (``judgment`` is ``valid`` or ``invalid``)."""

    task_id: str
    success: bool
    failed_assertions: list[str] = []
    missing_values: list[str] = []
    judgment: str | None = None
    reasoning: str | None = None
    #: What could not be checked and why (external environments: results that vary between runs).
    unchecked: list[str] = []


class DialogueMetrics(msgspec.Struct, kw_only=True):
    """Counted as the paper counts (Appendix B).

    ``turns``: every user, assistant, tool-call and tool-output message; ``steps``: the
    longest run of sequential tool calls answering one user request (``mean_steps`` is
    the mean over requests that used tools); ``tasks``: goals in the dialogue.
    """

    turns: int = 0
    user_turns: int = 0
    assistant_turns: int = 0
    steps: int = 0
    mean_steps: float = 0.0
    tasks: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    invalid_arguments: int = 0
    feedback: dict[str, int] = {}


class Usage(msgspec.Struct, kw_only=True):
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    cost_usd: float = 0.0


class DialogueRecord(msgspec.Struct, kw_only=True):
    """Everything about one dialogue: what was asked, what happened, whether it worked.

    ``error`` follows one rule: it says what broke, and is ``None`` when nothing did. A
    dialogue that *failed* (``termination`` is ``agent_failure``, ``user_failure``,
    ``tool_failure`` or ``timeout``; what every count of failed dialogues counts) always has
    a non-empty reason. A dialogue that ran its course (``user_done``, ``user_gave_up``,
    ``max_turns``, ``too_many_tool_errors``: the ``dialogue_ended`` event's ``detail`` says
    more) has ``None``, unless checking it broke (verification or the judge raised): then
    the reason names that phase (``"verify failed: ..."``) and its tasks fail.

    A dataset file may hold several records of one id (``--retry-failed`` appends a new
    one after a failure); the last one is the dialogue's record.
    """

    id: str
    scenario: Scenario
    messages: list[Message]
    events: list[Event]
    outcomes: list[TaskOutcome]
    metrics: DialogueMetrics
    termination: TerminationReason
    success: bool
    usage: Usage = msgspec.field(default_factory=Usage)
    #: Which brain played each role, e.g. ``{"user": "offline-template", "agent": "offline-rules"}``.
    brains: dict[str, str] = {}
    started_at: float = 0.0
    duration_s: float = 0.0
    error: str | None = None
    version: int = RECORD_VERSION
