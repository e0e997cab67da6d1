"""The event union: everything that happens in a dialogue, in order.

Every event carries the dialogue id, a sequence number assigned by the dialogue's bus
(0 until published) and a wall-clock timestamp. The ``kind`` tag selects the type.
"""

from __future__ import annotations

import enum
import time
from typing import Any

import msgspec

__all__ = [
    "AgentMessage",
    "DialogueEnded",
    "DialogueStarted",
    "ErrorEvent",
    "Event",
    "EventBase",
    "FeedbackKind",
    "ProviderCall",
    "TaskCompleted",
    "TaskStarted",
    "TerminationReason",
    "ToolCall",
    "ToolEvent",
    "ToolResult",
    "UserFeedback",
    "UserMessage",
    "UserToolCall",
    "UserToolResult",
]


class TerminationReason(enum.StrEnum):
    """Why a dialogue stopped."""

    USER_DONE = "user_done"
    USER_GAVE_UP = "user_gave_up"
    MAX_TURNS = "max_turns"
    TOO_MANY_TOOL_ERRORS = "too_many_tool_errors"
    AGENT_FAILURE = "agent_failure"
    USER_FAILURE = "user_failure"
    TOOL_FAILURE = "tool_failure"
    TIMEOUT = "timeout"


class FeedbackKind(enum.StrEnum):
    """What a piece of user feedback does."""

    CONFIRM = "confirm"  # the answer is right
    CORRECTION = "correction"  # the answer is wrong (wrong row, wrong value)
    MISSING = "missing"  # something asked for was not done or not said
    REFINE = "refine"  # narrow, sort or extend the previous result
    CHANGE_OF_MIND = "change_of_mind"  # a different value than first asked for
    CONFIRMATION_REQUEST = "confirmation_request"  # the user is unsure and asks to check


def _now() -> float:
    return time.time()


class EventBase(msgspec.Struct, kw_only=True, tag_field="kind"):
    dialogue_id: str = ""
    seq: int = 0
    ts: float = msgspec.field(default_factory=_now)


class DialogueStarted(EventBase, tag="dialogue_started"):
    scenario_id: str
    environment_id: str
    mode: str


class DialogueEnded(EventBase, tag="dialogue_ended"):
    reason: TerminationReason
    detail: str = ""


class UserMessage(EventBase, tag="user_message"):
    text: str
    #: The dialogue acts the text realises (the offline user fills these; LLM users may not).
    acts: list[dict[str, Any]] = []
    is_task_complete: bool = False


class AgentMessage(EventBase, tag="agent_message"):
    text: str
    acts: list[dict[str, Any]] = []


class ToolCall(EventBase, tag="tool_call"):
    """A call as the tool server received it, before validation."""

    call_id: str
    tool: str
    arguments: dict[str, Any]


class ToolResult(EventBase, tag="tool_result"):
    """What the tool server answered. ``error_code`` is a ToolError code when ``is_error``."""

    call_id: str
    tool: str
    is_error: bool
    text: str
    structured: Any = None
    error_code: str | None = None
    duration_ms: float = 0.0
    #: Rows the call changed (writes only).
    affected: int = 0


class UserToolCall(EventBase, tag="user_tool_call"):
    """A call the simulated user made to its own tools (``--user-server``, "dual control").

    Kept apart from ToolCall: it is not part of the agent's conversation or metrics.
    """

    call_id: str
    tool: str
    arguments: dict[str, Any]


class UserToolResult(EventBase, tag="user_tool_result"):
    """What the user's tool server answered; fields as in ToolResult."""

    call_id: str
    tool: str
    is_error: bool
    text: str
    structured: Any = None
    error_code: str | None = None
    duration_ms: float = 0.0


class UserFeedback(EventBase, tag="user_feedback"):
    feedback: FeedbackKind
    task_id: str
    step_id: str | None = None
    detail: str = ""


class TaskStarted(EventBase, tag="task_started"):
    task_id: str


class TaskCompleted(EventBase, tag="task_completed"):
    task_id: str
    success: bool
    detail: str = ""


class ProviderCall(EventBase, tag="provider_call"):
    role: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: float | None = None
    cached: bool = False


class ErrorEvent(EventBase, tag="error"):
    where: str
    error_type: str
    message: str


ToolEvent = ToolCall | ToolResult

Event = (
    DialogueStarted
    | DialogueEnded
    | UserMessage
    | AgentMessage
    | ToolCall
    | ToolResult
    | UserFeedback
    | TaskStarted
    | TaskCompleted
    | ProviderCall
    | ErrorEvent
    | UserToolCall
    | UserToolResult
)
