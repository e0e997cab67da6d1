"""Shared fixtures for the simulator tests: the built-in domains, a sample of real dialogues
in both modes, a hand-written shop scenario, and a loop that drives the offline user."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from schemas import (
    ChainStep,
    CheckKind,
    DialogueRecord,
    Environment,
    ExpectedOutcome,
    ExpectedValue,
    Fact,
    Mode,
    Persona,
    Scenario,
    SqlAssertion,
    SubRequest,
    Task,
    TerminationReason,
    Verdict,
)
from simulator.dialogue.roles import UserTurn
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.domains import load_domain
from simulator.offline.acts import Act
from simulator.offline.scenarios import build_scenario
from simulator.offline.user import OfflineUser, write_tools_of
from tests.simulator import _datasets

DOMAINS = ("clinic", "retail", "travel")
#: The sample every "on the built-in domains" claim is measured on: 5 scenarios per domain.
SAMPLE_SEED = 1
SAMPLE_PER_DOMAIN = 5


@dataclass(frozen=True)
class Dialogue:
    """A scenario, the environment it ran in and its record."""

    environment: Environment
    scenario: Scenario
    record: DialogueRecord


@pytest.fixture(scope="session")
def domain_envs() -> dict[str, Environment]:
    return {name: load_domain(name) for name in DOMAINS}


def _run_sample(envs: dict[str, Environment], mode: Mode) -> list[Dialogue]:
    async def main() -> list[Dialogue]:
        out = []
        for name in DOMAINS:
            env = envs[name]
            for index in range(SAMPLE_PER_DOMAIN):
                scenario = build_scenario(env, index=index, seed=SAMPLE_SEED, mode=mode)
                record = await run_dialogue(scenario, env, DialogueConfig())
                out.append(Dialogue(env, scenario, record))
        return out

    return anyio.run(main)


@pytest.fixture(scope="session")
def user_oriented(domain_envs: dict[str, Environment]) -> list[Dialogue]:
    """15 user-oriented dialogues (5 per built-in domain, seed 1), default settings."""
    return _run_sample(domain_envs, Mode.USER_ORIENTED)


@pytest.fixture(scope="session")
def task_oriented(domain_envs: dict[str, Environment]) -> list[Dialogue]:
    """The same 15 scenarios (same seed and indexes) in task-oriented mode."""
    return _run_sample(domain_envs, Mode.TASK_ORIENTED)


# --------------------------------------------------------------------------- shop scenario

ORDER_STATUS_SQL = 'SELECT "status" FROM "orders" WHERE "order_id" = :pk'


def shop_tasks() -> list[Task]:
    """Three tasks over the shop of ``tests/conftest.py``: a lookup that needs a withheld
    customer id, a status change (a write), and a search."""
    lookup = Task(
        id="t0",
        goal="You want to know the email of your customer record. You know your customer ID is 1.",
        chain=[ChainStep(id="t0.s0", tool="get_customer", arguments={"customer_id": 1}, report=["email"])],
        sub_requests=[SubRequest(id="t0.r", steps=["t0.s0"], intent="lookup", text="Can you pull up my customer?")],
        facts=[Fact(name="customer_id", value=1, description="your customer ID")],
        expected=ExpectedOutcome(values=[ExpectedValue(step="t0.s0", name="email", value="ada@example.com")]),
    )
    check = SqlAssertion(
        description="order 10 is shipped", sql=ORDER_STATUS_SQL, params={"pk": 10}, expected=[["shipped"]]
    )
    update = Task(
        id="t1",
        goal="You want order 10 marked as shipped.",
        chain=[
            ChainStep(
                id="t1.s0",
                tool="update_order_status",
                arguments={"order_id": 10, "status": "shipped"},
                report=["status"],
                resolved={"order_id": 10, "status": "shipped"},
            )
        ],
        sub_requests=[
            SubRequest(
                id="t1.r",
                steps=["t1.s0"],
                intent="update",
                text="Please mark order 10 as shipped.",
                stated=["order_id", "status"],
            )
        ],
        expected=ExpectedOutcome(
            assertions=[check],
            step_checks=[
                SqlAssertion(
                    description=check.description,
                    sql=check.sql,
                    params=check.params,
                    expected=check.expected,
                    step="t1.s0",
                )
            ],
            values=[ExpectedValue(step="t1.s0", name="status", value="shipped")],
        ),
    )
    search = Task(
        id="t2",
        goal="You want the names of the basic-tier customers.",
        chain=[ChainStep(id="t2.s0", tool="search_customers", arguments={"tier": "basic"}, report=["name"])],
        sub_requests=[
            SubRequest(
                id="t2.r", steps=["t2.s0"], intent="search", text="Who are the basic customers?", stated=["tier"]
            )
        ],
        expected=ExpectedOutcome(values=[ExpectedValue(step="t2.s0", name="name", value="Alan Turing")]),
    )
    lookup.chain[0].resolved = {"customer_id": 1}
    search.chain[0].resolved = {"tier": "basic"}
    return [lookup, update, search]


def shop_scenario(tasks: list[Task] | None = None, *, mode: Mode = Mode.USER_ORIENTED, seed: int = 0) -> Scenario:
    return Scenario(
        id=f"shop-{seed}-{mode.value}",
        environment_id="shop",
        domain="shop",
        tasks=tasks if tasks is not None else shop_tasks(),
        persona=Persona(name="Ada", verbosity="normal", temperament="neutral"),
        mode=mode,
        seed=seed,
    )


def get_tools_of(env: Environment) -> dict[str, str]:
    """What the runner gives the user for double checks: table -> its get tool."""
    return {t.table: t.name for t in env.tools if t.category == "get" and t.table}


def make_user(scenario: Scenario, env: Environment, query: Any, seed: int = 0) -> OfflineUser:
    return OfflineUser(
        scenario, query, rng=random.Random(seed), get_tools=get_tools_of(env), write_tools=write_tools_of(env)
    )


def done_as_the_user_sees(record: DialogueRecord) -> bool:
    """Whether the user ended done and every check passed but the full-state one, which only a
    collateral write fails (an agent's mistake the user cannot see: another row changed)."""
    if record.termination is not TerminationReason.USER_DONE:
        return False
    for outcome in record.outcomes:
        for check in outcome.checks:
            if check.verdict is Verdict.PASS:
                continue
            if check.kind is not CheckKind.STATE or not check.diff:
                return False
    return True


AgentFn = Callable[[UserTurn], Awaitable[tuple[str, list[Act]]]]


async def drive(user: OfflineUser, agent: AgentFn, *, limit: int = 200) -> list[UserTurn]:
    """Alternate user and agent until the user is done or gives up (at most ``limit`` user turns)."""
    turns = [await user.opening()]
    while not (turns[-1].complete or turns[-1].gave_up) and len(turns) < limit:
        text, acts = await agent(turns[-1])
        turns.append(await user.respond(text, acts))
    return turns


# Real generated datasets (see _datasets), built once per session for export, filter and report tests.
@pytest.fixture(scope="session")
def user_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _datasets.dataset(tmp_path_factory, "user")


@pytest.fixture(scope="session")
def task_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _datasets.dataset(tmp_path_factory, "task")


@pytest.fixture(scope="session")
def errors_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _datasets.dataset(tmp_path_factory, "errors")


@pytest.fixture(scope="session")
def branched_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _datasets.dataset(tmp_path_factory, "branched")
