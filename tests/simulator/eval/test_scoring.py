"""pass^k, pass@k and their intervals on constructed outcomes: the arithmetic, by hand."""

from __future__ import annotations

import pytest

from schemas import (
    DialogueMetrics,
    DialogueRecord,
    ProviderCall,
    Scenario,
    TaskOutcome,
    TerminationReason,
)
from simulator.eval import pass_at_k, pass_hat_k, score, split_trial_id, trial_id
from simulator.eval.scoring import dialogue_passed, interval_of_mean, wilson
from tests.simulator.conftest import shop_scenario


def test_pass_hat_k_and_pass_at_k_by_hand() -> None:
    # 4 trials, 3 passed: C(3,k)/C(4,k) and 1 - C(1,k)/C(4,k).
    assert [pass_hat_k(4, 3, k) for k in (1, 2, 3, 4)] == [0.75, 0.5, 0.25, 0.0]
    assert [pass_at_k(4, 3, k) for k in (1, 2, 3, 4)] == [0.75, 1.0, 1.0, 1.0]
    # n == k: pass^k is simply "all k passed", pass@k "any passed".
    assert pass_hat_k(3, 3, 3) == 1.0 and pass_hat_k(3, 2, 3) == 0.0
    assert pass_at_k(3, 1, 3) == 1.0 and pass_at_k(3, 0, 3) == 0.0
    assert pass_hat_k(5, 2, 2) == pytest.approx(1 / 10)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)
    for bad in ((3, 1, 4), (3, 1, 0), (3, 4, 1), (3, -1, 1)):
        with pytest.raises(ValueError):
            pass_hat_k(*bad)


def test_trial_ids_round_trip() -> None:
    assert trial_id("retail-1-00003", 2) == "retail-1-00003~t2"
    assert split_trial_id("retail-1-00003~t2") == ("retail-1-00003", 2)
    assert split_trial_id("a~t1~t12") == ("a~t1", 12)
    assert split_trial_id("plain") == ("plain", 1)
    assert split_trial_id("odd~tx") == ("odd~tx", 1)


def test_wilson_interval_known_values() -> None:
    half = wilson(5, 10)
    assert half.value == 0.5
    assert half.low == pytest.approx(0.2366, abs=1e-4) and half.high == pytest.approx(0.7634, abs=1e-4)
    none = wilson(0, 10)
    assert none.low == 0.0 and none.high == pytest.approx(0.2775, abs=1e-4)
    assert wilson(0, 0).value == 0.0


def test_the_interval_of_a_mean_brackets_it_and_never_collapses() -> None:
    values = [1.0, 0.0, 0.5, 1.0, 0.25, 0.75]
    a = interval_of_mean(values)
    assert a == interval_of_mean(values)  # no randomness
    assert a.value == pytest.approx(sum(values) / len(values))
    assert a.low < a.value < a.high
    assert interval_of_mean(values, confidence=0.5).high < a.high
    # At the extremes it is one-sided and exact: (alpha/2)^(1/n) and 1 - (alpha/2)^(1/n).
    one = interval_of_mean([1.0])
    assert one.value == 1.0 and one.high == 1.0 and one.low == pytest.approx(0.025, abs=1e-6)
    assert one.low < 0.5  # one passing dialogue says little
    six_failures = interval_of_mean([0.0] * 6)
    assert six_failures.low == 0.0 and six_failures.high == pytest.approx(1 - 0.025 ** (1 / 6), abs=1e-6)
    twenty = interval_of_mean([1.0] * 20)
    assert twenty.low == pytest.approx(0.025 ** (1 / 20), abs=1e-6) and twenty.high == 1.0


def _record(
    scenario: Scenario,
    trial: int,
    tasks_ok: dict[str, bool],
    *,
    termination: TerminationReason = TerminationReason.USER_DONE,
    events: list[ProviderCall] | None = None,
    tool_calls: int = 2,
    tool_errors: int = 0,
) -> DialogueRecord:
    outcomes = [
        TaskOutcome(task_id=t, success=ok, failed_assertions=[] if ok else [f"{t} check"]) for t, ok in tasks_ok.items()
    ]
    return DialogueRecord(
        id=trial_id(scenario.id, trial),
        scenario=scenario,
        messages=[],
        events=list(events or []),
        outcomes=outcomes,
        metrics=DialogueMetrics(turns=10 + trial, tool_calls=tool_calls, tool_errors=tool_errors, tasks=len(outcomes)),
        termination=termination,
        success=termination is TerminationReason.USER_DONE and all(tasks_ok.values()),
        error=None if termination is TerminationReason.USER_DONE else "the agent exited (code 3)",
    )


def test_score_on_constructed_outcomes() -> None:
    a, b = shop_scenario(seed=1), shop_scenario(seed=2)
    a.id, b.id = "A", "B"
    ok = {"t0": True, "t1": True, "t2": True}
    records = [
        # A: trials 1, 2, 4 pass, trial 3 fails task t1 -> c = 3 of 4
        _record(a, 1, ok),
        _record(a, 2, ok),
        _record(a, 3, {**ok, "t1": False}),
        _record(a, 4, ok, events=[ProviderCall(role="agent", model="m", input_tokens=100, output_tokens=7)]),
        # B: only trial 2 passes -> c = 1 of 4; trial 4 crashed although its tasks checked out
        _record(b, 1, {**ok, "t0": False, "t2": False}),
        _record(b, 2, ok, events=[ProviderCall(role="agent", model="m", input_tokens=5, cost_usd=0.25)]),
        _record(b, 3, {**ok, "t2": False}, tool_errors=1),
        _record(b, 4, ok, termination=TerminationReason.AGENT_FAILURE),
    ]
    results = score(reversed(records), trials=4, seed=3, agent="x", user="offline")
    s = results.summary
    assert (s.scenarios, s.dialogues, s.tasks, s.trials) == (2, 8, 6, 4)
    # Per scenario pass^k = C(c,k)/C(4,k) with c = 3 and 1, then the mean over scenarios.
    expected_hat = {1: (3 / 4 + 1 / 4) / 2, 2: (3 / 6 + 0) / 2, 3: (1 / 4 + 0) / 2, 4: 0.0}
    expected_at = {1: 0.5, 2: ((1 - 0 / 6) + (1 - 3 / 6)) / 2, 3: (1 + (1 - 1 / 4)) / 2, 4: 1.0}
    for k in range(1, 5):
        assert s.dialogue_pass_hat[str(k)].value == pytest.approx(expected_hat[k])
        assert s.dialogue_pass_at[str(k)].value == pytest.approx(expected_at[k])
        interval = s.dialogue_pass_hat[str(k)]
        assert interval.low <= interval.value <= interval.high
    assert s.dialogue_success.value == pytest.approx(4 / 8)
    # Tasks: A: t0 4/4, t1 3/4, t2 4/4; B: t0 3/4, t1 4/4, t2 2/4 (trial 4's tasks passed).
    task_c = [4, 3, 4, 3, 4, 2]
    assert s.task_pass_hat["2"].value == pytest.approx(sum(pass_hat_k(4, c, 2) for c in task_c) / 6)
    assert s.task_success.value == pytest.approx(sum(task_c) / 24)
    by_id = {sc.scenario_id: sc for sc in results.scenarios}
    assert [sc.scenario_id for sc in results.scenarios] == ["A", "B"]
    assert (by_id["A"].passed, by_id["B"].passed) == (3, 1)
    assert {t.task_id: t.passed for t in by_id["B"].tasks} == {"t0": 3, "t1": 4, "t2": 2}
    assert by_id["B"].tasks[2].failed_assertions == {"t2 check": 2}
    assert by_id["B"].terminations == {"agent_failure": 1, "user_done": 3}
    (failure,) = s.failures
    assert (failure.dialogue_id, failure.reason) == ("B~t4", "agent_failure")
    assert failure.detail == "the agent exited (code 3)"
    assert s.tool_calls == 16 and s.tool_error_rate == pytest.approx(1 / 16)
    assert s.turns.mean == pytest.approx(12.5) and s.turns.max == 14
    assert (s.input_tokens, s.output_tokens, s.cost_usd) == (105, 7, 0.25)
    # Order of the records does not matter; the same seed gives the same intervals.
    assert score(records, trials=4, seed=3, agent="x", user="offline") == results


def test_a_broken_dialogue_fails_even_when_its_tasks_check_out() -> None:
    scenario = shop_scenario()
    ok = {"t0": True, "t1": True, "t2": True}
    assert dialogue_passed(_record(scenario, 1, ok))
    assert not dialogue_passed(_record(scenario, 1, ok, termination=TerminationReason.TIMEOUT))
    assert not dialogue_passed(_record(scenario, 1, {**ok, "t1": False}))


def test_units_with_fewer_trials_than_k_are_left_out_of_that_k() -> None:
    a, b = shop_scenario(seed=1), shop_scenario(seed=2)
    a.id, b.id = "A", "B"
    ok = {"t0": True, "t1": True, "t2": True}
    results = score([_record(a, 1, ok), _record(a, 2, ok), _record(b, 1, {**ok, "t0": False})], trials=2, seed=0)
    assert results.summary.dialogue_pass_hat["1"].value == pytest.approx(0.5)
    assert results.summary.dialogue_pass_hat["2"].value == 1.0  # only A has two trials
    assert results.summary.input_tokens is None and results.summary.cost_usd is None
