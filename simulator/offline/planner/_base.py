"""What every kind of task shares: the draft under construction, rows of a result, checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas import ChainStep, ChangeOfMind, Detour, ExpectedValue, Fact, Refinement, SqlAssertion, SubRequest
from toolservers.database import Database

__all__ = ["Anchor", "Draft", "Skip", "final_assertion", "first_that_plans", "rows_of"]


def rows_of(structured: Any) -> list[dict[str, Any]]:
    """The rows of a tool result, whatever its shape."""
    if isinstance(structured, dict):
        if isinstance(structured.get("rows"), list):
            return [r for r in structured["rows"] if isinstance(r, dict)]
        if "row" in structured and len(structured) == 1:
            return [structured["row"]] if isinstance(structured["row"], dict) else []
        return [structured]
    return []


def final_assertion(db: Database, check: SqlAssertion) -> SqlAssertion:
    """``check``'s query as a final-state assertion: expecting what it returns on ``db`` now."""
    rows = [list(r) for r in db.query(check.sql, check.params)]
    return SqlAssertion(description=check.description, sql=check.sql, params=check.params, expected=rows)


@dataclass(frozen=True, slots=True)
class Anchor:
    """A row an earlier task found: later tasks may build on it."""

    step: str
    table: str
    row: dict[str, Any]
    index: int = 0


class Skip(Exception):
    """This kind of task does not fit here; try another."""


@dataclass(slots=True)
class Draft:
    """A task under construction."""

    task_id: str
    steps: list[ChainStep] = field(default_factory=list)
    subs: list[SubRequest] = field(default_factory=list)
    facts: dict[str, Fact] = field(default_factory=dict)
    values: list[ExpectedValue] = field(default_factory=list)
    checks: list[SqlAssertion] = field(default_factory=list)
    #: Checks whose final-state form is not the same query re-run: index in ``checks`` -> builder.
    finals: dict[int, Callable[[], SqlAssertion]] = field(default_factory=dict)
    purposes: list[str] = field(default_factory=list)
    anchors: list[Anchor] = field(default_factory=list)
    change_of_mind: ChangeOfMind | None = None
    refinement: Refinement | None = None
    detour: Detour | None = None
    refusal: str | None = None
    forbidden: ChainStep | None = None
    follows: str | None = None
    #: Steps not yet given to a sub-request (the identification step waits for the first one).
    loose: list[str] = field(default_factory=list)

    def step_id(self) -> str:
        return f"{self.task_id}.s{len(self.steps)}"


def first_that_plans(p: Any, d: Draft, attempts: Iterable[Callable[[], None]]) -> None:
    """Run ``attempts`` in turn until one plans without ``Skip``; each failed one is undone
    (the draft's steps, loose ends and facts, and the planner's results and identity step)
    before the next. Raises Skip when none plans."""
    for attempt in attempts:
        steps, loose, facts, results, me_step = len(d.steps), list(d.loose), dict(d.facts), list(p.results), p.me_step
        try:
            attempt()
            return
        except Skip:
            del d.steps[steps:]
            d.loose[:] = loose
            d.facts.clear()
            d.facts.update(facts)
            for key in list(p.results):
                if key not in results:
                    del p.results[key]
            p.me_step = me_step
    raise Skip
