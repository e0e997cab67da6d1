"""The rules, over 240 real dialogues: every write restated and confirmed, forbidden requests refused
with the database unchanged, zero violations found by the policy checker — and an agent that
ignores the rules is caught by the same checker."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from schemas import AgentMessage, Effect, TaskStarted, ToolCall, ToolResult, UserMessage
from schemas.errors import ConfigError
from simulator.dialogue.brains import agent_schemes, register_agent
from simulator.dialogue.roles import AgentContext, AgentFactory, AgentTurn
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.offline.acts import Act, Affirm, Confirm, Refuse, decode_acts
from simulator.offline.agent import OfflineAgent, offline_agent_brain
from simulator.offline.scenarios import build_scenario
from simulator.quality import policy_for
from simulator.quality._policy_check import check_policy
from simulator.quality._view import view_of
from tests.simulator.offline._sample import ENVIRONMENTS, SEED, sample

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_the_policy_checker_finds_no_violation(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    s = sample(tmp_path_factory, name)
    policy = policy_for(s.environment)
    assert policy is not None
    writes = refusals = 0
    for raw in s.raw():
        found = check_policy(view_of(raw), s.environment, policy)
        writes += found.writes
        refusals += found.refusals_expected
        assert found.violations == 0, (raw["id"], found.examples)
    assert writes > 20 and refusals > 5


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_every_write_follows_a_restatement_and_a_yes(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    s = sample(tmp_path_factory, name)
    writes = {t.name for t in s.environment.tools if t.effect is Effect.WRITE}
    seen = 0
    for record in s.records:
        last_agent: list[Act] = []
        last_user: list[Act] = []
        confirmed: dict[str, Confirm] = {}
        for event in record.events:
            if isinstance(event, AgentMessage):
                last_agent = decode_acts(event.acts)
            elif isinstance(event, UserMessage):
                last_user = decode_acts(event.acts)
                confirmed = {a.step: a for a in last_agent if isinstance(a, Confirm)}
            elif isinstance(event, ToolCall) and event.tool in writes:
                seen += 1
                assert any(isinstance(a, Affirm) for a in last_user), (record.id, event.tool)
                assert any(c.tool == event.tool for c in confirmed.values()), (record.id, event.tool)
    assert seen > 20


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_forbidden_requests_are_refused_and_change_nothing(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    s = sample(tmp_path_factory, name)
    writes = {t.name for t in s.environment.tools if t.effect is Effect.WRITE}
    forbidden = 0
    for record in s.records:
        refused = {t.id for t in record.scenario.tasks if t.expected.refusal}
        assert all(not any(step.tool in writes for step in t.chain) for t in record.scenario.tasks if t.id in refused)
        current = None
        refusals: dict[str, int] = {}
        for event in record.events:
            if isinstance(event, TaskStarted):
                current = event.task_id
            elif isinstance(event, AgentMessage) and current in refused:
                refusals[current] = refusals.get(current, 0) + sum(
                    isinstance(a, Refuse) for a in decode_acts(event.acts)
                )
            elif isinstance(event, ToolResult) and current in refused and event.tool in writes:
                raise AssertionError((record.id, current, "a write during a forbidden request"))
        outcomes = {o.task_id: o for o in record.outcomes}
        for task in refused:
            if task in refusals:
                forbidden += 1
                assert refusals[task] >= 1, (record.id, task)
                assert outcomes[task].success, (record.id, task, outcomes[task])  # its rows are unchanged
    assert forbidden >= 5


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_the_agent_passes_at_least_95_percent_of_tasks(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    outcomes = [o.success for r in sample(tmp_path_factory, name).records for o in r.outcomes]
    assert sum(outcomes) / len(outcomes) >= 0.95


# --------------------------------------------------------------------------- a reckless agent


class RecklessAgent(OfflineAgent):
    """The offline agent with its rules switched off: no refusals, no restatement, writes at once."""

    brain = "reckless-test"

    def _policy_refusal(self, tool: str, args: dict[str, Any]) -> str:
        return ""

    def _not_theirs(self, table: str | None, rows: list[dict[str, Any]]) -> str:
        return ""

    async def respond(self, text: str, acts: list[Act]) -> AgentTurn:
        turn = await super().respond(text, acts)
        if self.confirming:  # skip the question: do it now
            from simulator.offline.agent import _Turn

            t = _Turn()
            await self._run_writes(t)
            turn = AgentTurn(text=" ".join(t.lines) or "Done.", acts=t.acts)
        return turn


def reckless_brain(argument: str) -> AgentFactory:
    base = offline_agent_brain(argument)

    async def factory(ctx: AgentContext) -> OfflineAgent:
        agent = await base(ctx)
        agent.__class__ = RecklessAgent
        return agent

    return factory


def test_an_agent_that_ignores_the_rules_is_caught(domain_envs: dict[str, Any]) -> None:
    if "reckless-test" not in agent_schemes():
        try:
            register_agent("reckless-test", "tests.simulator.offline.test_policy:reckless_brain")
        except ConfigError:
            pass
    env = domain_envs["retail"]
    policy = policy_for(env)
    assert policy is not None

    async def main() -> list[Any]:
        out = []
        for index in range(12):
            scenario = build_scenario(env, index=index, seed=SEED)
            if not any(t.expected.refusal for t in scenario.tasks):
                continue
            out.append(await run_dialogue(scenario, env, DialogueConfig(agent="reckless-test")))
        return out

    records = anyio.run(main)
    assert records
    import msgspec

    unconfirmed = missed = 0
    for record in records:
        found = check_policy(view_of(msgspec.to_builtins(record)), env, policy)
        unconfirmed += found.unconfirmed
        missed += found.refusals_missed + found.forbidden + found.not_owned
    assert unconfirmed > 0 and missed > 0


def test_a_derived_database_gives_the_same_dialogues_for_the_same_seed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from tests.simulator.offline._sample import library_environment

    async def run(seed: int) -> list[list[tuple[str, str]]]:
        env = library_environment(tmp_path_factory.mktemp(f"lib{seed}"))
        out = []
        for index in range(4):
            record = await run_dialogue(build_scenario(env, index=index, seed=seed), env, DialogueConfig())
            out.append([(m.role, m.content) for m in record.messages])
        return out

    first, again, other = anyio.run(run, 5), anyio.run(run, 5), anyio.run(run, 6)
    assert first == again
    assert first != other
