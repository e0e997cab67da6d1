"""Branching: continue recorded dialogues from turn K, with the database state rebuilt.

For each recorded dialogue long enough, the prefix up to turn K (rounded down to the
last agent reply, so the next speaker is the user) becomes the new scenario's message
history, and every write call that succeeded in that prefix becomes an initial database
action, replayed through the tool server before the conversation goes on. Each of the
``variants`` continuations plans fresh tasks over that rebuilt state with its own seed,
so one recorded opening fans out into several different dialogues.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgspec

from schemas import (
    AgentMessage,
    DialogueRecord,
    Effect,
    Environment,
    Event,
    InitialState,
    Scenario,
    ToolCall,
    ToolInvocation,
    ToolResult,
    UserMessage,
)
from schemas.errors import ConfigError, ToolError
from simulator.offline.planner import Planner
from simulator.offline.scenarios import make_persona
from simulator.offline.schema_view import read_schema
from toolservers.database import open_database
from toolservers.executor import ToolExecutor
from toolservers.loader import load_environment

__all__ = ["branch_point", "branch_scenarios"]

_CONVERSATION = (UserMessage, AgentMessage, ToolCall, ToolResult)


def branch_point(events: list[Event], at_turn: int) -> int:
    """How many of ``events`` form the prefix: up to turn ``at_turn``, ending on an agent reply.

    Turns are counted as the paper counts them (user, assistant, tool call and tool
    output messages). Returns 0 when no agent reply falls within the first K turns.
    """
    turns = 0
    cut = 0
    for i, event in enumerate(events):
        if not isinstance(event, _CONVERSATION):
            continue
        turns += 1
        if turns > at_turn:
            break
        if isinstance(event, AgentMessage):
            cut = i + 1
    return cut


def branch_scenarios(
    dataset_dir: Path, *, at_turn: int, variants: int, seed: int
) -> tuple[list[Environment], list[Scenario]]:
    """Scenarios that continue the dialogues of ``dataset_dir`` from turn ``at_turn``.

    Raises ConfigError when the directory is not a dataset, an environment file is
    missing, or no dialogue reaches an agent reply within ``at_turn`` turns.
    """
    from simulator.run.dataset import iter_records

    if at_turn < 1:
        raise ConfigError(f"--at-turn must be at least 1, got {at_turn}")
    if variants < 1:
        raise ConfigError(f"--variants must be at least 1, got {variants}")
    environments: dict[str, Environment] = {}
    scenarios: list[Scenario] = []
    records = sorted((r for _, r in iter_records(dataset_dir)), key=lambda r: r.id)
    for record in records:
        env = environments.get(record.scenario.environment_id)
        if env is None:
            path = dataset_dir / "environments" / f"{record.scenario.environment_id}.json"
            if not path.is_file():
                raise ConfigError(f"{dataset_dir}: environment file {path.name} is missing")
            env = environments[record.scenario.environment_id] = load_environment(path)
        cut = branch_point(record.events, at_turn)
        if cut == 0:
            continue
        for variant in range(variants):
            scenario = _continue(record, env, cut, at_turn, variant, seed)
            if scenario is not None:
                scenarios.append(scenario)
    if not scenarios:
        raise ConfigError(f"{dataset_dir}: no dialogue has an agent reply within the first {at_turn} turns")
    return list(environments.values()), scenarios


def _continue(
    record: DialogueRecord, env: Environment, cut: int, at_turn: int, variant: int, seed: int
) -> Scenario | None:
    prefix = record.events[:cut]
    writes = _successful_writes(prefix, env)
    rng = random.Random(f"branch:{seed}:{record.id}:{at_turn}:{variant}")
    db = open_database(env.database)
    try:
        executor = ToolExecutor(env, db, source=f"environment {env.id}")
        for action in writes:
            try:
                executor.call(action.tool, action.arguments)
            except ToolError as exc:  # the recording said it succeeded; the state cannot be rebuilt
                raise ConfigError(f"{record.id}: replaying {action.tool} failed: {exc}") from exc
        tasks = Planner(env, executor, read_schema(env, db), rng).plan(rng.choice([1, 2, 2, 3]))
    finally:
        db.close()
    if not tasks:
        return None
    history: list[dict[str, Any]] = [msgspec.to_builtins(e) for e in prefix if isinstance(e, _CONVERSATION)]
    return Scenario(
        id=f"{record.id}-b{at_turn}-v{variant}",
        environment_id=env.id,
        domain=env.domain,
        tasks=tasks,
        persona=record.scenario.persona if variant == 0 else make_persona(rng),
        mode=record.scenario.mode,
        seed=seed,
        initial_state=InitialState(db_actions=writes, history=history),
        branched_from=record.id,
    )


def _successful_writes(prefix: list[Event], env: Environment) -> list[ToolInvocation]:
    writes = {t.name for t in env.tools if t.effect is Effect.WRITE}
    calls = {e.call_id: e for e in prefix if isinstance(e, ToolCall)}
    out = []
    for event in prefix:
        if isinstance(event, ToolResult) and not event.is_error and event.tool in writes:
            call = calls.get(event.call_id)
            if call is not None:
                out.append(ToolInvocation(tool=call.tool, arguments=call.arguments))
    return out
