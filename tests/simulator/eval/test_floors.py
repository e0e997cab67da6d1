"""Sanity floors on the built-in domains: agents that should fail do, and the offline agent
still passes. Measured on 102 user-oriented scenarios (34 per domain, seed 7), the default
offline user and mistake rate."""

from __future__ import annotations

import pytest

from schemas import DialogueRecord, Environment, Scenario, TerminationReason, Verdict
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.eval.baselines import FLOORS
from simulator.offline.language import value_forms
from simulator.offline.scenarios import build_scenarios
from tests.simulator.conftest import DOMAINS

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SCENARIOS = 102


@pytest.fixture(scope="module")
def scenarios(domain_envs: dict[str, Environment]) -> list[Scenario]:
    return build_scenarios([domain_envs[d] for d in DOMAINS], count=SCENARIOS, seed=7)


async def _run(scenarios: list[Scenario], envs: dict[str, Environment], agent: str) -> list[DialogueRecord]:
    return [await run_dialogue(s, envs[s.environment_id], DialogueConfig(agent=agent)) for s in scenarios]


def _task_rate(records: list[DialogueRecord]) -> float:
    outcomes = [o for r in records for o in r.outcomes]
    return sum(o.success for o in outcomes) / len(outcomes)


def _old_passes(records: list[DialogueRecord]) -> int:
    """Read-only tasks the checks before version 3 passed: every value said, anywhere, in any form."""
    passed = 0
    for record in records:
        said = " ".join(m.content.lower() for m in record.messages if m.role == "assistant")
        for task in record.scenario.tasks:
            if task.expected.assertions or not task.expected.values:
                continue
            values = [*task.expected.values, *(task.refinement.values if task.refinement else [])]
            passed += all(any(f.lower() in said for f in value_forms(v.value)) for v in values)
    return passed


@pytest.mark.parametrize("floor", FLOORS)
async def test_each_floor_passes_fewer_than_one_percent_of_the_tasks(
    floor: str, scenarios: list[Scenario], domain_envs: dict[str, Environment]
) -> None:
    assert len(scenarios) >= 100 and {s.domain for s in scenarios} == set(DOMAINS)
    records = await _run(scenarios, domain_envs, f"baseline:{floor}")
    rate = _task_rate(records)
    assert rate < 0.01, (floor, rate, [(r.id, [o.task_id for o in r.outcomes if o.success]) for r in records])
    assert not any(r.success for r in records)
    if floor == "silent":
        assert all(r.metrics.tool_calls == 0 for r in records)
        assert not any(r.termination is TerminationReason.USER_DONE for r in records)
    if floor == "guess":
        # No tool call, and what it makes up would have passed the old checks on some tasks.
        assert all(r.metrics.tool_calls == 0 for r in records)
        assert _old_passes(records) > 0
        # The user cannot see tool results: now and then it believes a guess, and says it is done.
        # The verifier does not: such a dialogue fails (``done_but_failed`` in the summaries).
    if floor == "random":
        assert sum(r.metrics.tool_calls for r in records) >= len(records)
    if floor == "refuse":
        # Forbidden requests are among the tasks, and refusing them without looking does not pass.
        refusals = [c for r in records for o in r.outcomes for c in o.checks if c.name == "refused"]
        assert refusals and all(c.verdict is Verdict.FAIL and "before any tool result" in c.detail for c in refusals)


async def test_the_offline_agent_still_passes_95_percent_of_the_tasks(
    scenarios: list[Scenario], domain_envs: dict[str, Environment]
) -> None:
    records = await _run(scenarios, domain_envs, "offline")
    assert DialogueConfig().agent_mistake_rate == 0.1
    assert sum(int(r.brains.get("agent_mistakes", "0")) for r in records) > 0  # it did make mistakes
    assert _task_rate(records) >= 0.95
    assert all(r.state is not None for r in records)
