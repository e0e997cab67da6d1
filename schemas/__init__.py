"""Data only: msgspec Structs for every persisted or exchanged object.

No I/O; imports nothing from ``toolservers`` or ``simulator``.
"""

from __future__ import annotations

from typing import Any

from schemas._jsonschema import json_schema
from schemas.environment import ENVIRONMENT_VERSION, DatabaseSpec, Environment
from schemas.events import (
    AgentMessage,
    DialogueEnded,
    DialogueStarted,
    ErrorEvent,
    Event,
    FeedbackKind,
    ProviderCall,
    TaskCompleted,
    TaskStarted,
    TerminationReason,
    ToolCall,
    ToolEvent,
    ToolResult,
    UserFeedback,
    UserMessage,
)
from schemas.record import (
    RECORD_VERSION,
    DialogueMetrics,
    DialogueRecord,
    Message,
    MessageToolCall,
    TaskOutcome,
    Usage,
)
from schemas.task import (
    ChainStep,
    ChangeOfMind,
    Detour,
    Difficulty,
    ExpectedOutcome,
    ExpectedValue,
    Fact,
    InitialState,
    Mode,
    Persona,
    Refinement,
    RubricItem,
    RubricKind,
    Scenario,
    SqlAssertion,
    SubRequest,
    Task,
    ToolInvocation,
    UserIdentity,
    ValueRef,
)
from schemas.tools import Effect, ResultShape, SqlImplementation, ToolSpec

__all__ = [
    "ENVIRONMENT_VERSION",
    "RECORD_VERSION",
    "SCHEMAS",
    "AgentMessage",
    "ChainStep",
    "ChangeOfMind",
    "Detour",
    "DatabaseSpec",
    "DialogueEnded",
    "DialogueMetrics",
    "DialogueRecord",
    "DialogueStarted",
    "Difficulty",
    "Effect",
    "Environment",
    "ErrorEvent",
    "Event",
    "ExpectedOutcome",
    "ExpectedValue",
    "Fact",
    "FeedbackKind",
    "InitialState",
    "Message",
    "MessageToolCall",
    "Mode",
    "Persona",
    "ProviderCall",
    "Refinement",
    "ResultShape",
    "RubricItem",
    "RubricKind",
    "Scenario",
    "SqlAssertion",
    "SqlImplementation",
    "SubRequest",
    "Task",
    "TaskCompleted",
    "TaskOutcome",
    "TaskStarted",
    "TerminationReason",
    "ToolCall",
    "ToolEvent",
    "ToolInvocation",
    "ToolResult",
    "ToolSpec",
    "Usage",
    "UserFeedback",
    "UserMessage",
    "UserIdentity",
    "ValueRef",
    "json_schema",
]

#: The top-level schemas ``dialogsim schema NAME`` prints, by name.
SCHEMAS: dict[str, Any] = {
    "environment": Environment,
    "tool": ToolSpec,
    "database": DatabaseSpec,
    "task": Task,
    "scenario": Scenario,
    "event": Event,
    "record": DialogueRecord,
}
