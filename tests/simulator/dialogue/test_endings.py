"""How dialogues end: the user is done only when every task checked out, a failure after the
conversation (the judge, the checks) is classified by where it came from, and the record's
success and the summaries read the ending the same way."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import pytest

from schemas import (
    ErrorEvent,
    Mode,
    TerminationReason,
    ToolInvocation,
    UserMessage,
    Verdict,
)
from simulator.dialogue.roles import UserTurn
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.offline.acts import Act
from simulator.providers import ProviderError
from simulator.summary import summarize
from tests.conftest import shop_environment
from tests.simulator.conftest import DOMAINS, drive, make_user, shop_scenario
from toolservers.database import open_database

pytestmark = pytest.mark.anyio

THANKS = ("thank", "thanks", "great", "perfect", "wonderful")


def _no_thanks(text: str) -> bool:
    return not any(word in text.lower() for word in THANKS)


async def ok_agent(turn: UserTurn) -> tuple[str, list[Act]]:
    return "ok", []


@pytest.mark.parametrize("mode", [Mode.USER_ORIENTED, Mode.TASK_ORIENTED])
async def test_an_agent_that_only_says_ok_never_gets_a_done_user(mode: Mode) -> None:
    """Driven directly: the offline user facing "ok" gives up, without thanks, on every scenario."""
    from simulator.domains import load_domain
    from simulator.offline.scenarios import build_scenario

    for name in DOMAINS:
        env = load_domain(name)
        for index in range(4):
            scenario = build_scenario(env, index=index, seed=5, mode=mode)
            db = open_database(env.database)
            turns = await drive(make_user(scenario, env, db.query, seed=index), ok_agent)
            last = turns[-1]
            assert not last.complete and last.gave_up, (scenario.id, [t.text for t in turns])
            assert _no_thanks(last.text), last.text
            assert not any(t.complete for t in turns)


async def test_through_the_runner_no_ok_dialogue_ends_user_done(domain_envs: dict[str, Any]) -> None:
    from simulator.offline.scenarios import build_scenario

    records = []
    for name in DOMAINS:
        for index in range(3):
            scenario = build_scenario(domain_envs[name], index=index, seed=2)
            records.append(await run_dialogue(scenario, domain_envs[name], DialogueConfig(agent="baseline:silent")))
    for record in records:
        assert record.termination is TerminationReason.USER_GAVE_UP, (record.id, record.termination)
        assert not record.success and not any(o.success for o in record.outcomes)
        users = [e for e in record.events if isinstance(e, UserMessage)]
        assert not any(u.is_task_complete for u in users) and _no_thanks(users[-1].text)
    summary = summarize(records)
    assert summary.terminations == {"user_gave_up": len(records)} and summary.dialogue_success_rate == 0.0
    assert summary.done_but_failed == 0


async def test_a_done_user_means_every_task_checked_out_for_the_offline_agent(
    user_oriented: list[Any],
) -> None:
    for d in user_oriented:
        assert d.record.termination is TerminationReason.USER_DONE
        users = [e for e in d.record.events if isinstance(e, UserMessage)]
        assert users[-1].is_task_complete
        for outcome in d.record.outcomes:
            # what the user can observe (assertions, values said) checked out; only the state check,
            # which needs the gold replay, may still find a collateral write
            assert all(c.verdict is Verdict.PASS for c in outcome.checks if c.kind != "state"), outcome


# --------------------------------------------------------------------------- failures after the conversation


async def test_a_judge_that_fails_is_recorded_as_a_judge_failure_not_a_tool_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import simulator.llm.judge

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the judge's own bug")

    monkeypatch.setattr(simulator.llm.judge, "judge_outcomes", broken)
    env = shop_environment()
    record = await run_dialogue(shop_scenario(), env, DialogueConfig(judge="openai:judge"))
    assert record.termination is TerminationReason.USER_DONE  # the conversation's own ending
    assert (record.error or "").startswith("judge failed: RuntimeError")
    (error,) = [e for e in record.events if isinstance(e, ErrorEvent)]
    assert (error.where, error.error_type) == ("judge", "RuntimeError")
    for outcome in record.outcomes:
        assert not outcome.success and outcome.judgment == "error"
        assert outcome.checks[-1].kind == "judge" and outcome.checks[-1].verdict is Verdict.ERROR
    assert not record.success

    async def refusing(*args: Any, **kwargs: Any) -> Any:
        raise ProviderError("rate limited for good")

    monkeypatch.setattr(simulator.llm.judge, "judge_outcomes", refusing)
    again = await run_dialogue(shop_scenario(), env, DialogueConfig(judge="openai:judge"))
    assert again.termination is TerminationReason.USER_DONE and (again.error or "").startswith("judge failed")
    assert not again.success and {o.judgment for o in again.outcomes} == {"error"}


async def test_checks_that_cannot_run_are_recorded_as_a_verification_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.dialogue.runner

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug in the checks")

    monkeypatch.setattr(simulator.dialogue.runner, "verify_dialogue", broken)
    record = await run_dialogue(shop_scenario(), shop_environment(), DialogueConfig())
    assert record.termination is TerminationReason.USER_DONE
    assert (record.error or "").startswith("verify failed: KeyError")
    assert record.state is not None and record.state.verdict is Verdict.ERROR
    (error,) = [e for e in record.events if isinstance(e, ErrorEvent)]
    assert (error.where, error.error_type) == ("verify", "KeyError")
    assert not any(o.success for o in record.outcomes)


async def test_an_initial_state_that_does_not_replay_is_a_tool_failure_of_the_dialogue() -> None:
    """The runner cannot set the dialogue up: that stays a tool failure (the tool server refused)."""
    scenario = msgspec.structs.replace(
        shop_scenario(),
        initial_state=msgspec.structs.replace(
            shop_scenario().initial_state,
            db_actions=[ToolInvocation(tool="update_order_status", arguments={"order_id": 10, "status": "lost"})],
        ),
    )
    record = await run_dialogue(scenario, shop_environment(), DialogueConfig())
    assert record.termination is TerminationReason.TOOL_FAILURE
    assert record.state is not None and record.state.verdict is Verdict.ERROR


def test_the_record_schema_carries_the_checks() -> None:
    from schemas import SCHEMAS, json_schema

    text = msgspec.json.encode(json_schema(SCHEMAS["record"])).decode()
    for word in ('"checks"', '"state"', '"evidence"', '"diff"', '"migrated_from"', '"call"'):
        assert word in text, word


def test_deterministic_dialogues_stay_deterministic_with_the_checks() -> None:
    async def twice() -> tuple[bytes, bytes]:
        env = shop_environment()
        a = await run_dialogue(shop_scenario(seed=4), env, DialogueConfig())
        b = await run_dialogue(shop_scenario(seed=4), env, DialogueConfig())
        strip = {"duration_ms": 0.0}
        return (
            msgspec.json.encode([o.checks for o in a.outcomes])
            + msgspec.json.encode(msgspec.structs.replace(a.state, **strip)),
            msgspec.json.encode([o.checks for o in b.outcomes])
            + msgspec.json.encode(msgspec.structs.replace(b.state, **strip)),
        )

    first, second = anyio.run(twice)
    assert first == second
