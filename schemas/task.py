"""Tasks and scenarios: the user's hidden goals and everything needed to check them."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

__all__ = [
    "CallCheck",
    "ChainStep",
    "ChangeOfMind",
    "Refinement",
    "Difficulty",
    "ExpectedOutcome",
    "ExpectedValue",
    "Fact",
    "InitialState",
    "Mode",
    "Persona",
    "RubricItem",
    "RubricKind",
    "Scenario",
    "SqlAssertion",
    "FileChange",
    "SubRequest",
    "Task",
    "ToolInvocation",
    "ValueRef",
]


class Mode(enum.StrEnum):
    """User-oriented: hidden goal, revealed step by step. Task-oriented: all up front (the baseline)."""

    USER_ORIENTED = "user-oriented"
    TASK_ORIENTED = "task-oriented"


class Difficulty(enum.StrEnum):
    EASY = "easy"
    MEDIUM = "medium"
    HARD = "hard"


class RubricKind(enum.StrEnum):
    CRITICAL = "critical"  # enforced
    STRUCTURAL = "structural"  # guidance on how it is done
    NON_CRITICAL = "non_critical"  # nice to have


class RubricItem(msgspec.Struct, frozen=True):
    kind: RubricKind
    text: str


class ValueRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A value taken from an earlier step's result: ``row`` of that step's rows, column ``field``.

    ``pattern`` (external servers whose results are text): a regular expression searched
    in that field's text; the value is its first group at the first match.
    """

    step: str
    field: str
    row: int = 0
    pattern: str | None = None


class ChainStep(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One tool call of a task's chain. ``arguments`` are literal; ``refs`` come from earlier steps."""

    id: str
    tool: str
    arguments: dict[str, Any] = {}
    refs: dict[str, ValueRef] = {}
    #: Columns of the result the user cares about and the agent must say.
    report: list[str] = []
    #: The complete arguments as the step ran when the task was generated (refs resolved).
    resolved: dict[str, Any] = {}


class SubRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One thing the user asks for in one message; covers one or more chain steps."""

    id: str
    steps: list[str]
    intent: str
    #: What the user says to ask for it (no withheld facts inside).
    text: str
    #: Arguments the user states with the request; the others are given only when asked.
    stated: list[str] = []


class Fact(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Something the user knows and reveals when asked: the value of a tool argument."""

    name: str
    value: Any
    description: str


class SqlAssertion(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A query over the final database and the rows it must return."""

    description: str
    sql: str
    params: dict[str, Any] = {}
    expected: list[list[Any]] = []
    #: For a check right after one step (``step_checks``): the step it checks.
    step: str | None = None


class ExpectedValue(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A value the agent must communicate to the user."""

    step: str
    name: str
    value: Any


class CallCheck(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A read call of an external server re-run on the final state (and on a fresh replay).

    ``expected`` is what it returned when the task was planned, after the scenario's calls
    ran on a fresh instance (the structured content, else the text); it tells which parts
    of the result are stable between runs.
    """

    description: str
    tool: str
    arguments: dict[str, Any] = {}
    expected: Any = None


class FileChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One file of an external environment's state directory that a task's calls changed."""

    path: str
    change: str  # added | removed | changed
    #: sha256 of the content afterwards; None when removed.
    digest: str | None = None


class ExpectedOutcome(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``assertions`` hold on the final database; ``step_checks`` right after their step
    (what the user looks at to give feedback); ``values`` must appear in the agent's words.

    External environments have no database: ``calls`` are read calls re-run at the end,
    and ``state`` the changes the task's calls made to the state directory when planned.
    """

    assertions: list[SqlAssertion] = []
    step_checks: list[SqlAssertion] = []
    values: list[ExpectedValue] = []
    calls: list[CallCheck] = []
    state: list[FileChange] = []


class ChangeOfMind(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    step: str
    argument: str
    first: Any


class Refinement(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Run ``step`` again with ``arguments`` added; ``values`` are then expected in the answer."""

    step: str
    arguments: dict[str, Any]
    description: str
    values: list[ExpectedValue] = []


class Task(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A user's end goal, hidden from the agent, with its checkable outcome."""

    id: str
    goal: str
    chain: list[ChainStep]
    sub_requests: list[SubRequest]
    facts: list[Fact] = []
    difficulty: Difficulty = Difficulty.MEDIUM
    rubric: list[RubricItem] = []
    expected: ExpectedOutcome = msgspec.field(default_factory=ExpectedOutcome)
    #: The task whose results this one builds on, if any.
    follows: str | None = None
    #: A value the user first asks for on a write step, then changes to the chain's value.
    change_of_mind: ChangeOfMind | None = None
    #: A narrowing or re-sorting the user asks for once a search step's result is in.
    refinement: Refinement | None = None


class Persona(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    verbosity: str = "normal"  # terse | normal | verbose
    temperament: str = "polite"  # polite | neutral | impatient


class ToolInvocation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tool: str
    arguments: dict[str, Any] = {}


class InitialState(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a dialogue starts: DB actions replayed first, and a message-history prefix."""

    db_actions: list[ToolInvocation] = []
    history: list[dict[str, Any]] = []


class Scenario(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One dialogue to run: environment, several tasks, a persona, a mode and a seed."""

    id: str
    environment_id: str
    domain: str
    tasks: list[Task]
    persona: Persona
    mode: Mode = Mode.USER_ORIENTED
    seed: int = 0
    initial_state: InitialState = msgspec.field(default_factory=InitialState)
    #: Set when this scenario continues a recorded dialogue (``--branch-from``).
    branched_from: str | None = None
