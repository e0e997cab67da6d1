"""Offline task generation: chains of tool calls over real rows, later steps using earlier
results, expected outcomes computed by execution, facts, follow-ups, determinism by seed.

The planner's claims are checked independently: every scenario's chains are replayed in
order, with the recorded ``resolved`` arguments, on a fresh copy of the database through
the real ToolExecutor, and every assertion is checked with ``check_assertion``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas import DatabaseSpec, Effect, Environment, Mode, Scenario, Task
from schemas.errors import ConfigError
from simulator.dialogue.verify import check_assertion
from simulator.offline.language import format_value
from simulator.offline.planner import rows_of, task_count
from simulator.offline.scenarios import build_scenario, build_scenarios
from tests.conftest import shop_environment
from tests.simulator.conftest import DOMAINS
from toolservers.database import Database, open_database
from toolservers.executor import ToolExecutor

SEED = 3
PER_DOMAIN = 8


@dataclass
class Replay:
    """A scenario's chains executed in order on a fresh copy of its database."""

    env: Environment
    scenario: Scenario
    db: Database
    #: Rows each step returned, as later steps see them (after a refinement, the refined rows).
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Rows each step returned with exactly its own arguments.
    plain: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: (step id, argument, value the ref points at, value in ``resolved``) for every ref.
    refs: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    #: Step id -> whether its step checks held right after it ran.
    checks_after_step: dict[str, bool] = field(default_factory=dict)


def replay(env: Environment, scenario: Scenario) -> Replay:
    db = open_database(env.database)
    out = Replay(env, scenario, db)
    executor = ToolExecutor(env, db)
    for task in scenario.tasks:
        for step in task.chain:
            for name, ref in step.refs.items():
                pointed = out.rows[ref.step][ref.row][ref.field] if ref.step in out.rows else KeyError(ref.step)
                out.refs.append((step.id, name, pointed, step.resolved.get(name)))
            rows = rows_of(executor.call(step.tool, dict(step.resolved)).structured)
            out.plain[step.id] = rows
            if task.refinement is not None and task.refinement.step == step.id:
                refined = {**step.resolved, **task.refinement.arguments}
                rows = rows_of(executor.call(step.tool, refined).structured)
            out.rows[step.id] = rows
            checks = [c for c in task.expected.step_checks if c.step == step.id]
            if checks:
                out.checks_after_step[step.id] = all(check_assertion(db.query, c) for c in checks)
    return out


@pytest.fixture(scope="module")
def planned(domain_envs: dict[str, Environment]) -> list[tuple[Environment, Scenario]]:
    return [
        (domain_envs[name], build_scenario(domain_envs[name], index=i, seed=SEED))
        for name in DOMAINS
        for i in range(PER_DOMAIN)
    ]


@pytest.fixture(scope="module")
def replays(planned: list[tuple[Environment, Scenario]]) -> Iterator[list[Replay]]:
    out = [replay(env, scenario) for env, scenario in planned]
    yield out
    for r in out:
        r.db.close()


def writes(env: Environment, task: Task) -> bool:
    return any(env.tool(step.tool).effect is Effect.WRITE for step in task.chain)


def test_chains_are_deep_and_use_known_tools(planned: list[tuple[Environment, Scenario]]) -> None:
    lengths = []
    for env, scenario in planned:
        names = {t.name for t in env.tools}
        for task in scenario.tasks:
            assert 1 <= len(task.chain) <= 24, (scenario.id, task.id)
            assert {s.tool for s in task.chain} <= names
            lengths.append(len(task.chain))
    assert max(lengths) >= 5, "no deep chain (find, follow a relation, fan out) in the sample"
    assert sum(lengths) / len(lengths) >= 2


def test_users_identify_themselves_in_any_of_the_ways_the_rules_allow(
    planned: list[tuple[Environment, Scenario]],
) -> None:
    """Not always by the first (the email): some users know their phone number instead."""
    for name in DOMAINS:
        keys = {
            key
            for env, scenario in planned
            if env.domain == name and scenario.user is not None
            for key in scenario.user.facts
        }
        rules = next(env.rules for env, _ in planned if env.domain == name)
        assert rules is not None and keys <= set(rules.identify_by) and len(keys) > 1, (name, keys)


def test_no_scenario_asks_the_same_thing_twice(domain_envs: dict[str, Environment]) -> None:
    """The same calls with the same arguments (finding the user aside) are one request, asked once."""
    for name in DOMAINS:
        for index in range(30):
            scenario = build_scenario(domain_envs[name], index=index, seed=11)
            me = scenario.tasks[0].chain[0].id
            seen = set()
            for task in scenario.tasks:
                calls = tuple((s.tool, repr(sorted(s.resolved.items()))) for s in task.chain if s.id != me)
                assert calls not in seen, (scenario.id, task.id)
                seen.add(calls)


def test_scenarios_have_tasks_with_unique_ids(planned: list[tuple[Environment, Scenario]]) -> None:
    for _, scenario in planned:
        assert 1 <= len(scenario.tasks) <= 12, scenario.id
        assert len({t.id for t in scenario.tasks}) == len(scenario.tasks)
        step_ids = [s.id for t in scenario.tasks for s in t.chain]
        assert len(set(step_ids)) == len(step_ids)


def test_tasks_per_dialogue_spread_from_one_to_eight_and_more() -> None:
    rng = random.Random(5)
    counts = [task_count(rng) for _ in range(2000)]
    assert min(counts) == 1 and max(counts) >= 8
    assert 2.5 <= sum(counts) / len(counts) <= 3.5


def test_every_step_runs_on_real_rows(replays: list[Replay]) -> None:
    # Replaying raised nothing (no not-found, no refused write); reads found rows.
    for r in replays:
        for task in r.scenario.tasks:
            for step in task.chain:
                if r.env.tool(step.tool).effect is Effect.READ and step.report:
                    assert r.plain[step.id], (r.scenario.id, step.id, step.tool)


def test_later_steps_take_their_refs_from_earlier_results(replays: list[Replay]) -> None:
    checked = 0
    for r in replays:
        order = [s.id for t in r.scenario.tasks for s in t.chain]
        for task in r.scenario.tasks:
            for step in task.chain:
                for name, ref in step.refs.items():
                    assert order.index(ref.step) < order.index(step.id), (r.scenario.id, step.id, ref)
                    assert name not in step.arguments  # a ref is not also a literal the user says
        for step_id, name, pointed, resolved in r.refs:
            assert pointed == resolved, (r.scenario.id, step_id, name)
            checked += 1
    assert checked >= 10, "too few refs in the sample to show anything"


def test_sub_requests_cover_each_chain_step_once_in_order(planned: list[tuple[Environment, Scenario]]) -> None:
    for _, scenario in planned:
        for task in scenario.tasks:
            covered = [sid for sub in task.sub_requests for sid in sub.steps]
            assert covered == [s.id for s in task.chain], (scenario.id, task.id)


def test_step_checks_hold_right_after_their_step(replays: list[Replay]) -> None:
    assert any(r.checks_after_step for r in replays)
    for r in replays:
        assert all(r.checks_after_step.values()), (r.scenario.id, r.checks_after_step)


def test_final_assertions_hold_after_the_chains_ran_in_order(replays: list[Replay]) -> None:
    asserted = 0
    for r in replays:
        for task in r.scenario.tasks:
            if writes(r.env, task):
                assert task.expected.assertions, (r.scenario.id, task.id, "a write task with nothing to check")
            for assertion in task.expected.assertions:
                assert check_assertion(r.db.query, assertion), (r.scenario.id, task.id, assertion.description)
                asserted += 1
    assert asserted >= 10


def test_final_assertions_of_write_tasks_fail_on_the_untouched_database(
    planned: list[tuple[Environment, Scenario]],
) -> None:
    vacuous = []
    for env, scenario in planned:
        original = open_database(env.database)
        try:
            vacuous += [
                f"{scenario.id}/{task.id}"
                for task in scenario.tasks
                if writes(env, task) and all(check_assertion(original.query, a) for a in task.expected.assertions)
            ]
        finally:
            original.close()
    assert vacuous == [], "final assertions that already hold before anything was done"


def test_expected_values_are_what_the_steps_returned(replays: list[Replay]) -> None:
    compared = 0
    for r in replays:
        for task in r.scenario.tasks:
            for value in task.expected.values:
                if value.name == "count":
                    continue
                rows = r.plain[value.step]
                assert rows and rows[0].get(value.name) == value.value, (r.scenario.id, value)
                compared += 1
            if task.refinement is not None:
                refined = r.rows[task.refinement.step]
                for value in task.refinement.values:
                    assert refined[0].get(value.name) == value.value, (r.scenario.id, value)
                    compared += 1
    assert compared >= 20


def test_facts_are_argument_values_the_user_knows(planned: list[tuple[Environment, Scenario]]) -> None:
    facts = 0
    for _, scenario in planned:
        for task in scenario.tasks:
            for fact in task.facts:
                steps = [s for s in task.chain if s.arguments.get(fact.name) == fact.value]
                assert steps, (scenario.id, task.id, fact)
                assert all(s.resolved[fact.name] == fact.value for s in steps)
                assert format_value(fact.value) in task.goal  # the hidden goal tells the user
                facts += 1
    assert facts >= 10


def test_withheld_facts_are_not_in_the_request_text(planned: list[tuple[Environment, Scenario]]) -> None:
    withheld = 0
    for _, scenario in planned:
        for task in scenario.tasks:
            facts = {f.name: f.value for f in task.facts}
            for sub in task.sub_requests:
                args = {k for sid in sub.steps for s in task.chain if s.id == sid for k in s.arguments}
                for name in args & facts.keys():
                    if name in sub.stated:
                        continue
                    withheld += 1
                    assert format_value(facts[name]) not in sub.text, (scenario.id, sub.id, name)
    assert withheld >= 5


def test_follow_up_tasks_reference_the_task_they_follow(planned: list[tuple[Environment, Scenario]]) -> None:
    follow_ups = 0
    for _, scenario in planned:
        ids = [t.id for t in scenario.tasks]
        for task in scenario.tasks:
            if task.follows is None:
                continue
            follow_ups += 1
            assert ids.index(task.follows) < ids.index(task.id)
            followed = {s.id for t in scenario.tasks if t.id == task.follows for s in t.chain}
            assert any(ref.step in followed for s in task.chain for ref in s.refs.values()), (scenario.id, task.id)
    assert follow_ups >= 3


def test_same_seed_gives_the_same_scenario_and_another_seed_another(domain_envs: dict[str, Environment]) -> None:
    env = domain_envs["retail"]
    first = build_scenario(env, index=2, seed=11)
    again = build_scenario(env, index=2, seed=11)
    assert msgspec.json.encode(first) == msgspec.json.encode(again)
    other = build_scenario(env, index=2, seed=12)
    assert msgspec.json.encode(other.tasks) != msgspec.json.encode(first.tasks)
    neighbour = build_scenario(env, index=3, seed=11)
    assert msgspec.json.encode(neighbour.tasks) != msgspec.json.encode(first.tasks)


def test_the_mode_does_not_change_the_tasks(domain_envs: dict[str, Environment]) -> None:
    for name in DOMAINS:
        uo = build_scenario(domain_envs[name], index=1, seed=SEED, mode=Mode.USER_ORIENTED)
        to = build_scenario(domain_envs[name], index=1, seed=SEED, mode=Mode.TASK_ORIENTED)
        assert to.mode is Mode.TASK_ORIENTED and uo.mode is Mode.USER_ORIENTED
        assert msgspec.json.encode(to.tasks) == msgspec.json.encode(uo.tasks)
        assert (to.id, to.persona) == (uo.id, uo.persona)


def test_build_scenarios_spreads_over_environments_with_stable_ids(domain_envs: dict[str, Environment]) -> None:
    envs = [domain_envs[name] for name in DOMAINS]
    scenarios = build_scenarios(envs, count=4, seed=5)
    assert [s.environment_id for s in scenarios] == ["clinic", "retail", "travel", "clinic"]
    assert [s.id for s in scenarios] == [
        f"{e}-5-{i:05d}" for i, e in enumerate(["clinic", "retail", "travel", "clinic"])
    ]
    assert msgspec.json.encode(scenarios[1]) == msgspec.json.encode(build_scenario(envs[1], index=1, seed=5))


def test_no_environments_or_no_rows_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        build_scenarios([], count=1, seed=0)
    env = shop_environment()
    empty = msgspec.structs.replace(env, database=DatabaseSpec(ddl=env.database.ddl))
    with pytest.raises(ConfigError):
        build_scenario(empty, index=0, seed=0)


def test_scenarios_share_what_is_read_before_planning_and_plan_alike(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Schema, derived policy and the users' scores are read once per database source and
    # shared: the plans are those of a planner that reads everything afresh each time.
    import sqlite3
    import time

    import simulator.offline.schema_view as schema_view
    from simulator.offline import scenarios as scenarios_module
    from toolservers.derive import derive_environment

    db_file = tmp_path / "club.sqlite"
    conn = sqlite3.connect(db_file)
    conn.executescript(
        """
        CREATE TABLE members (member_id INTEGER PRIMARY KEY, first_name TEXT NOT NULL,
            last_name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);
        CREATE TABLE bookings (booking_id INTEGER PRIMARY KEY,
            member_id INTEGER NOT NULL REFERENCES members(member_id),
            court TEXT NOT NULL CHECK (court IN ('north', 'south', 'east')), day TEXT NOT NULL);
        """
    )
    conn.executemany(
        "INSERT INTO members VALUES (?, ?, ?, ?)",
        [(i, f"Name{i}", f"Family{i}", f"m{i}@club.test") for i in range(1, 13)],
    )
    conn.executemany(
        "INSERT INTO bookings VALUES (?, ?, ?, ?)",
        [(i, 1 + i % 9, ("north", "south", "east")[i % 3], f"2026-05-{1 + i % 28:02d}") for i in range(1, 40)],
    )
    conn.commit()
    conn.close()
    environments = [shop_environment(), derive_environment(db_file)]

    def plans() -> list[bytes]:
        return [msgspec.json.encode(build_scenario(env, index=i, seed=SEED)) for env in environments for i in range(6)]

    reads: list[str] = []
    original = schema_view.read_schema

    def counted(environment: Environment, db: Database) -> schema_view.Schema:
        reads.append(environment.id)
        return original(environment, db)

    monkeypatch.setattr(schema_view, "read_schema", counted)
    schema_view._SHARED.clear()
    shared = plans()
    assert sorted(reads) == sorted(env.id for env in environments)  # once per environment
    # Each scenario reading its schema afresh plans exactly the same.
    monkeypatch.setattr(scenarios_module, "shared_schema", lambda env, db: original(env, db))
    assert plans() == shared
    monkeypatch.undo()
    # A database file that changed is read again.
    reads.clear()
    monkeypatch.setattr(schema_view, "read_schema", counted)
    conn = sqlite3.connect(db_file)
    conn.execute("DELETE FROM bookings WHERE member_id = 1")
    conn.commit()
    conn.close()
    os.utime(db_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    build_scenario(environments[1], index=0, seed=SEED)
    assert reads == [environments[1].id]
