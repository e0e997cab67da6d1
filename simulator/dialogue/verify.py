"""Checking tasks: SQL assertions on the database and values the agent had to say."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from schemas import Scenario, SqlAssertion, TaskOutcome
from simulator.offline.language import value_forms

__all__ = ["REFUSAL_MARKERS", "check_assertion", "refused", "said", "verify_tasks"]

Query = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]


def check_assertion(query: Query, assertion: SqlAssertion) -> bool:
    """Whether ``assertion``'s query returns exactly its expected rows."""
    rows = [list(r) for r in query(assertion.sql, assertion.params)]
    if len(rows) != len(assertion.expected):
        return False
    return all(_same_row(a, b) for a, b in zip(rows, assertion.expected, strict=True))


def _same_row(a: list[Any], b: list[Any]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, float) or isinstance(y, float):
            if x is None or y is None or not math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9):
                return False
        elif x != y:
            return False
    return True


def said(value: Any, texts: Sequence[str]) -> bool:
    """Whether any of ``texts`` mentions ``value`` in one of its usual forms."""
    forms = [f.lower() for f in value_forms(value)]
    return any(form in text.lower() for text in texts for form in forms)


#: Words an agent refuses with ("I'm sorry, I can't ..."), for tasks the rules forbid.
REFUSAL_MARKERS = (
    "can't", "cannot", "unable", "not able", "not possible", "isn't possible", "not allowed", "i'm afraid",
    "not something i can", "won't be able",
)  # fmt: skip


def refused(agent_texts: Sequence[str]) -> bool:
    """Whether the agent said it would not do something (a refusal, in words)."""
    return any(marker in text.lower() for text in agent_texts for marker in REFUSAL_MARKERS)


def verify_tasks(scenario: Scenario, query: Query, agent_texts: Sequence[str]) -> list[TaskOutcome]:
    """One outcome per task: every final-state assertion holds and every expected value was said.

    A task the rules forbid (``expected.refusal``) succeeds only when its rows are unchanged
    (its assertions) and the agent refused.
    """
    outcomes = []
    for task in scenario.tasks:
        failed = [a.description for a in task.expected.assertions if not check_assertion(query, a)]
        if task.expected.refusal and not refused(agent_texts):
            failed.append(f"the agent did not refuse: {task.expected.refusal}")
        values = task.expected.values
        if task.refinement is not None:
            values = [*values, *task.refinement.values]
        missing = [f"{v.step}:{v.name}={v.value!r}" for v in values if not said(v.value, agent_texts)]
        outcomes.append(
            TaskOutcome(
                task_id=task.id, success=not failed and not missing, failed_assertions=failed, missing_values=missing
            )
        )
    return outcomes
