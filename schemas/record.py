"""The dataset record of one dialogue."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from schemas.events import Event, TerminationReason
from schemas.task import Scenario

__all__ = [
    "READABLE_RECORD_VERSIONS",
    "RECORD_VERSION",
    "Check",
    "CheckKind",
    "DialogueMetrics",
    "DialogueRecord",
    "Evidence",
    "Message",
    "MessageToolCall",
    "StateChange",
    "StateCheck",
    "TaskOutcome",
    "Usage",
    "Verdict",
]

#: Bumped whenever a field of DialogueRecord (or what it contains) changes.
#: 2: TaskOutcome gained ``judgment`` and ``reasoning`` (the rubric judge).
#: 3: TaskOutcome gained ``checks`` (every check with its verdict, grounding evidence and
#:    state diff) and ``unchecked`` (what could not be checked, external environments);
#:    DialogueRecord gained ``state`` (the full-state check) and ``migrated_from``;
#:    ExpectedOutcome ``calls`` and ``state``; ValueRef ``pattern``; events
#:    ``user_tool_call`` / ``user_tool_result`` (external environments).
RECORD_VERSION = 3
#: Versions the readers accept; older ones are migrated to RECORD_VERSION as they are read.
READABLE_RECORD_VERSIONS = frozenset({2, 3})


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


class Verdict(enum.StrEnum):
    """What one check found. ``error``: the check itself could not be carried out."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


class CheckKind(enum.StrEnum):
    """``assertion``: an SQL assertion on the final database (what the task needed);
    ``value``: a value the agent had to tell the user, grounded in a tool result;
    ``state``: the whole final database against the replay of the gold calls;
    ``call``: a write the task needs was really made in its part of the dialogue (a
    successful call of the step's tool that changed a row, with the gold arguments);
    ``judge``: the rubric judge's verdict."""

    ASSERTION = "assertion"
    VALUE = "value"
    STATE = "state"
    CALL = "call"
    JUDGE = "judge"


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """Where a value was found: the agent message that said it and the earlier tool result
    that contained it, as indexes into the record's ``events`` (their ``seq``). For a call
    check (a write really made) ``message`` is None and ``result`` is the call's result."""

    result: int
    #: The words of the message that matched the value (the tool's name for a call check).
    said: str
    message: int | None = None


class StateChange(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One difference between the dialogue's final database and the gold replay.

    ``kind``: ``changed`` (the row exists in both; ``columns`` maps each differing column
    to ``[gold, actual]``), ``extra`` (only in the dialogue's database) or ``missing``
    (only in the gold replay). ``key`` is the row's primary key, ``row`` its values when
    it exists on one side only. ``text`` says it in one line, e.g.
    ``orders pk=17: status 'pending' → 'cancelled'`` or ``+ reviews pk=301``.
    """

    kind: str
    table: str
    text: str
    key: dict[str, Any] = {}
    columns: dict[str, list[Any]] = {}
    row: dict[str, Any] = {}


class StateCheck(msgspec.Struct, kw_only=True):
    """The full-state check of a dialogue: its final database compared, table by table and
    row by row, with a fresh copy on which the initial state and then the gold calls of
    every task were replayed. ``diff`` is empty when they match (capped; ``more`` counts
    the differences left out)."""

    verdict: Verdict
    gold_calls: int = 0
    diff: list[StateChange] = []
    more: int = 0
    detail: str = ""
    duration_ms: float = 0.0


class Check(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One check of a task and its verdict. ``name`` is the assertion's description, the
    value as ``step:name=value``, ``full state``, the write as ``step:tool`` or ``rubric
    judge``; ``evidence`` says where a value was found (for a write: ``message`` and
    ``result`` are both the index of its tool result); ``diff`` is the state check's
    differences."""

    kind: CheckKind
    name: str
    verdict: Verdict
    detail: str = ""
    expected: Any = None
    evidence: list[Evidence] = []
    diff: list[StateChange] = []


class TaskOutcome(msgspec.Struct, kw_only=True):
    """Whether a task was done: every check passed. ``checks`` holds each of them (SQL
    assertions, grounded values, the full-state check for a task that writes, the judge);
    ``failed_assertions`` and ``missing_values`` name the failed ones for quick reading.
    With an LLM judge, ``judgment`` is ``valid``, ``invalid`` or ``error``."""

    task_id: str
    success: bool
    failed_assertions: list[str] = []
    missing_values: list[str] = []
    judgment: str | None = None
    reasoning: str | None = None
    checks: list[Check] = []
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
    #: The full-state check (None in records migrated from a version that had none).
    state: StateCheck | None = None
    #: The version this record was written in, when it was migrated on reading.
    migrated_from: int | None = None
    version: int = RECORD_VERSION
