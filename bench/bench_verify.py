"""Verification: what the full checks cost per dialogue, and what they catch that the old ones missed.

``python -m bench verify [--dialogues N] [--mistake-rate P] [--seed S] [--mode MODE] [--json PATH]``

Runs N offline dialogues over the built-in domains (the offline user and agent, the
agent making mistakes at the given rate), then, on each dialogue's final database
(rebuilt by replaying its initial state and its recorded successful writes on a fresh
copy, as branching does) and its events, side by side in one run:

1. Cost: the full verification of version 3 (gold replay through the executor, the
   table-by-table diff, grounding every value, the assertions) against the checks
   before it (the task's own SQL assertions and a substring test of each value over all
   agent text), in milliseconds per dialogue, and against what the whole dialogue took.
2. Catches: per task and per dialogue, how often the new checks fail what the old ones
   passed, by the check that caught it (the full state, a write never made, a value not
   grounded in the task's part).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from schemas import AgentMessage, DialogueRecord, Effect, Environment, Mode, Scenario, ToolCall, ToolResult, Verdict
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.dialogue.verify import check_assertion, expected_values, verify_dialogue
from simulator.domains import domain_names, load_domain
from simulator.offline.language import value_forms
from simulator.offline.scenarios import build_scenarios
from toolservers.database import Database, open_database
from toolservers.executor import ToolExecutor


def _final_state(record: DialogueRecord, env: Environment) -> Database:
    """The dialogue's final database: its initial state, then its successful writes, in order."""
    db = open_database(env.database)
    executor = ToolExecutor(env, db)
    for action in record.scenario.initial_state.db_actions:
        executor.call(action.tool, action.arguments)
    writes = {t.name for t in env.tools if t.effect is Effect.WRITE}
    calls = {e.call_id: e for e in record.events if isinstance(e, ToolCall)}
    for event in record.events:
        if isinstance(event, ToolResult) and not event.is_error and event.tool in writes:
            if event.call_id.startswith("hist_"):
                continue  # a recorded prefix: already in the initial state
            call = calls[event.call_id]
            executor.call(call.tool, call.arguments)
    return db


def _old_outcomes(scenario: Scenario, db: Database, record: DialogueRecord) -> list[bool]:
    said = " ".join(e.text.lower() for e in record.events if isinstance(e, AgentMessage))
    return [
        all(check_assertion(db.query, a) for a in task.expected.assertions)
        and all(any(f.lower() in said for f in value_forms(v.value)) for v in expected_values(task))
        for task in scenario.tasks
    ]


def _cause(checks: list[Any]) -> str:
    failed = {c.kind.value for c in checks if c.verdict is not Verdict.PASS}
    for kind in ("state", "call", "value", "assertion", "judge"):
        if kind in failed:
            return kind
    return "?"


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    envs = [load_domain(name) for name in domain_names()]
    by_id = {e.id: e for e in envs}
    scenarios = build_scenarios(envs, count=args.dialogues, seed=args.seed, mode=Mode(args.mode))
    config = DialogueConfig(agent_mistake_rate=args.mistake_rate)
    t0 = time.perf_counter()
    records = [await run_dialogue(s, by_id[s.environment_id], config) for s in scenarios]
    run_s = time.perf_counter() - t0

    new_ms: list[float] = []
    old_ms: list[float] = []
    state_ms: list[float] = []
    tasks = old_pass = new_pass = mismatched = 0
    caught: Counter[str] = Counter()
    dialogues_old = dialogues_new = dialogues_caught = 0
    for record in records:
        env = by_id[record.scenario.environment_id]
        db = _final_state(record, env)
        try:
            t = time.perf_counter()
            verified = verify_dialogue(record.scenario, env, db, record.events)
            new_ms.append((time.perf_counter() - t) * 1000)
            state_ms.append(verified.state.duration_ms)
            t = time.perf_counter()
            old = _old_outcomes(record.scenario, db, record)
            old_ms.append((time.perf_counter() - t) * 1000)
        finally:
            db.close()
        recorded = [o.success for o in record.outcomes]
        new = [o.success for o in verified.outcomes]
        mismatched += recorded != new  # the rebuilt state must give the runner's own verdicts
        for ok_old, outcome in zip(old, verified.outcomes, strict=True):
            tasks += 1
            old_pass += ok_old
            new_pass += outcome.success
            if ok_old and not outcome.success:
                caught[_cause(outcome.checks)] += 1
        ended_done = record.termination.value == "user_done"
        d_old = ended_done and all(old)
        d_new = record.success
        dialogues_old += d_old
        dialogues_new += d_new
        dialogues_caught += d_old and not d_new
    n = len(records)
    return {
        "dialogues": n,
        "tasks": tasks,
        "mistake_rate": args.mistake_rate,
        "seed": args.seed,
        "mode": args.mode,
        "mistakes": sum(int(r.brains.get("agent_mistakes", "0")) for r in records),
        "dialogue_ms": run_s * 1000 / n,
        "verify_ms": sum(new_ms) / n,
        "state_ms": sum(state_ms) / n,
        "old_verify_ms": sum(old_ms) / n,
        "old_task_pass": old_pass,
        "new_task_pass": new_pass,
        "caught_tasks": dict(caught),
        "old_dialogue_pass": dialogues_old,
        "new_dialogue_pass": dialogues_new,
        "caught_dialogues": dialogues_caught,
        "state_failed_dialogues": sum(1 for r in records if r.state is not None and r.state.verdict is Verdict.FAIL),
        "rebuilt_state_disagreements": mismatched,
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench verify", description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=150)
    parser.add_argument("--mistake-rate", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.USER_ORIENTED.value)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(list(argv))
    result = anyio.run(_run, args)
    command = "python -m bench verify " + " ".join(argv)
    n, tasks = result["dialogues"], result["tasks"]
    print(f"command: {command.strip()}")
    print(
        f"{n} {result['mode']} dialogues, {tasks} tasks, offline agent, mistake rate {result['mistake_rate']:g} "
        f"({result['mistakes']} mistakes), seed {result['seed']}, one process"
    )
    print("1. cost per dialogue (goal: a small fraction of the dialogue)")
    print(f"  whole dialogue (runner, MCP in process, checks included): {result['dialogue_ms']:8.2f} ms")
    print(f"  full verification (gold replay, diff, grounding, asserts): {result['verify_ms']:8.2f} ms")
    print(f"    of which the full-state check (replay + diff):          {result['state_ms']:8.2f} ms")
    print(f"  old checks (assertions, substring of values):             {result['old_verify_ms']:8.2f} ms")
    ratio = result["verify_ms"] / result["dialogue_ms"]
    print(f"  ratio full verification / whole dialogue:                 {ratio:8.3f}")
    print("2. what the new checks fail that the old ones passed")
    print(
        f"  tasks passed, old checks: {result['old_task_pass']}/{tasks}; new checks: {result['new_task_pass']}/{tasks}"
    )
    caught = result["caught_tasks"]
    print(
        f"  tasks failed only by the new checks: {sum(caught.values())} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(caught.items())) or 'none'})"
    )
    print(
        f"  dialogues passed, old: {result['old_dialogue_pass']}/{n}; new: {result['new_dialogue_pass']}/{n}; "
        f"caught by the new checks only: {result['caught_dialogues']} "
        f"(full state failed in {result['state_failed_dialogues']})"
    )
    ok = result["rebuilt_state_disagreements"] == 0
    print(
        f"verdict: {'consistent' if ok else 'INCONSISTENT'}: the rebuilt final states give the runner's own verdicts "
        f"for {n - result['rebuilt_state_disagreements']}/{n} dialogues"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
