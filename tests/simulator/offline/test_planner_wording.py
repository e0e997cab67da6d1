"""The planner's wording has its own generator; plans fit the turn limit; new rows' dates are coherent."""

from __future__ import annotations

import datetime as dt
import random
import re

import pytest

from schemas import Environment, Task
from simulator.offline.planner import Planner
from simulator.offline.planner._base import Draft
from simulator.offline.planner.planner import turn_cost
from simulator.offline.scenarios import make_persona
from simulator.offline.schema_view import read_schema
from tests.simulator.conftest import DOMAINS
from tests.simulator.offline._sample import library_environment
from toolservers.database import open_database
from toolservers.executor import ToolExecutor


def _plan(env: Environment, index: int, wording: int, *, max_turns: int | None = None, count: int = 4) -> list[Task]:
    rng = random.Random(f"test:{env.id}:{index}")
    persona = make_persona(rng)
    db = open_database(env.database)
    try:
        executor = ToolExecutor(env, db, source="test")
        planner = Planner(
            env,
            executor,
            read_schema(env, db),
            rng,
            persona=persona,
            wording=random.Random(wording),
            max_turns=max_turns,
        )
        return planner.plan(count)
    finally:
        db.close()


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    return library_environment(tmp_path_factory.mktemp("library"))


def _envs(domain_envs: dict[str, Environment], library: Environment) -> list[Environment]:
    return [*(domain_envs[name] for name in DOMAINS), library]


def test_wording_never_changes_what_is_planned(domain_envs: dict[str, Environment], library: Environment) -> None:
    reworded = 0
    for env in _envs(domain_envs, library):
        for index in range(6):
            a, b = _plan(env, index, 1), _plan(env, index, 2)
            assert [[(s.tool, s.resolved) for s in t.chain] for t in a] == [
                [(s.tool, s.resolved) for s in t.chain] for t in b
            ]
            assert [t.expected.assertions for t in a] == [t.expected.assertions for t in b]
            reworded += sum(
                x.text != y.text
                for t, u in zip(a, b, strict=True)
                for x, y in zip(t.sub_requests, u.sub_requests, strict=True)
            )
    assert reworded > 0  # the wording generator does word the requests


def test_planned_tasks_fit_the_turn_limit(domain_envs: dict[str, Environment], library: Environment) -> None:
    for env in _envs(domain_envs, library):
        for index in range(4):
            small = _plan(env, index, 1, max_turns=60, count=12)
            assert small
            large = _plan(env, index, 1, max_turns=2000, count=12)
            assert len(small) <= len(large)
            assert sum(_cost(t) for t in small) <= 60


def _cost(task: Task) -> int:
    d = Draft(task_id=task.id, subs=list(task.sub_requests), detour=task.detour)
    d.change_of_mind, d.refinement, d.forbidden = task.change_of_mind, task.refinement, task.forbidden
    return turn_cost(d)


def test_new_rows_have_coherent_dates(library: Environment) -> None:
    created = 0
    for index in range(40):
        for task in _plan(library, index, 1, count=6):
            for step in task.chain:
                if step.tool == "create_loan":
                    created += 1
                    borrowed = dt.date.fromisoformat(step.resolved["borrowed_on"])
                    due = dt.date.fromisoformat(step.resolved["due_on"])
                    assert due > borrowed
    assert created > 0


def test_new_plain_rows_are_dated_today_or_in_the_past_few_days(library: Environment) -> None:
    """A loan is recorded the day it is taken out or a few days after, not always the same day."""
    days = set()
    for index in range(40):
        for task in _plan(library, index, 1, count=6):
            for step in task.chain:
                if step.tool == "create_loan":
                    days.add(dt.date.fromisoformat(step.resolved["borrowed_on"]))
    latest = max(days)
    assert len(days) > 2 and all(0 <= (latest - d).days <= 6 for d in days)


def test_users_write_dates_their_own_way(library: Environment) -> None:
    """Some write "3 May 2026", others "3 May" or "May 3" (the year left out, the date the same)."""
    texts = " ".join(
        sub.text for index in range(30) for task in _plan(library, index, index) for sub in task.sub_requests
    )
    months = "January|February|March|April|May|June|July|August|September|October|November|December"
    assert re.search(rf"\b\d{{1,2}} ({months}) 2026\b", texts)
    assert re.search(rf"\b\d{{1,2}} ({months})(?! \d)", texts)
    assert re.search(rf"\b({months}) \d{{1,2}}\b(?!,? \d{{4}})", texts)
