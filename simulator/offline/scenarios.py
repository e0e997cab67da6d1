"""Scenarios for a run: tasks sampled over real rows, personas, modes; deterministic by seed."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from schemas import Environment, Mode, Persona, Scenario
from schemas.errors import ConfigError
from simulator.offline.planner import Planner, task_count
from simulator.offline.schema_view import shared_schema
from toolservers.database import open_database
from toolservers.executor import ToolExecutor

__all__ = ["OfflineScenarios", "build_scenario", "build_scenarios", "make_persona", "scenario_id"]

_FIRST = [
    "Maya", "Jonas", "Aiko", "Ravi", "Lucía", "Tomasz", "Amara", "Chen", "Fatima", "Oliver", "Ingrid", "Kwame",
    "Sofia", "Mateo", "Yuki", "Noah", "Leila", "Priya", "Erik", "Zanele",
]  # fmt: skip
_LAST = [
    "Okafor", "Lindqvist", "Tanaka", "Sharma", "García", "Nowak", "Haddad", "Wei", "Brennan", "Silva", "Müller",
    "Mensah", "Rossi", "Kowalski", "Dubois",
]  # fmt: skip


def make_persona(rng: random.Random) -> Persona:
    return Persona(
        name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
        verbosity=rng.choices(["terse", "normal", "verbose"], [0.25, 0.5, 0.25])[0],
        temperament=rng.choices(["polite", "neutral", "impatient"], [0.5, 0.3, 0.2])[0],
    )


def scenario_id(environment_id: str, seed: int, index: int) -> str:
    """The id of scenario ``index`` of a run: ``{environment}-{seed}-{index:05d}`` (every planner's)."""
    return f"{environment_id}-{seed}-{index:05d}"


def build_scenario(
    environment: Environment,
    *,
    index: int,
    seed: int,
    mode: Mode = Mode.USER_ORIENTED,
    tasks: int | None = None,
    max_turns: int | None = None,
) -> Scenario:
    """Plan one scenario on a private copy of the environment's database.

    The scenario depends only on (environment, seed, index), not on the mode, so both
    modes can be compared on the same tasks. What is planned comes from one seeded
    generator, how the requests are worded from another, so a change of wording never
    changes a plan. ``max_turns`` is the dialogue's turn limit (default: DialogueConfig's):
    the tasks planned fit within it.
    """
    rng = random.Random(f"{seed}:{environment.id}:{index}")
    wording = random.Random(f"wording:{seed}:{environment.id}:{index}")
    persona = make_persona(rng)
    count = tasks if tasks is not None else task_count(rng)
    db = open_database(environment.database)
    try:
        executor = ToolExecutor(environment, db, source=f"environment {environment.id}")
        planner = Planner(
            environment,
            executor,
            shared_schema(environment, db),
            rng,
            persona=persona,
            wording=wording,
            max_turns=max_turns,
        )
        planned = planner.plan(count)
    finally:
        db.close()
    if planner.user is not None and planner.user.name:
        persona = msgspec.structs.replace(persona, name=planner.user.name)
    if not planned:
        raise ConfigError(f"environment {environment.id!r}: no task could be sampled (no rows, or no usable tools)")
    return Scenario(
        id=scenario_id(environment.id, seed, index),
        environment_id=environment.id,
        domain=environment.domain,
        tasks=planned,
        persona=persona,
        mode=mode,
        seed=seed,
        user=planner.user,
    )


@dataclass(frozen=True)
class OfflineScenarios:
    """Position ``p`` of a run's offline plan: ``build_scenario`` of scenario index ``indexes[p]``.

    Plain data (picklable), so another process can build a run's scenarios from it.
    """

    environments: tuple[Environment, ...]
    indexes: range
    seed: int
    mode: Mode
    max_turns: int | None = None

    def id_of(self, p: int) -> str:
        i = self.indexes[p]
        return scenario_id(self.environments[i % len(self.environments)].id, self.seed, i)

    def __call__(self, p: int) -> Scenario:
        i = self.indexes[p]
        env = self.environments[i % len(self.environments)]
        return build_scenario(env, index=i, seed=self.seed, mode=self.mode, max_turns=self.max_turns)


def build_scenarios(
    environments: Sequence[Environment],
    *,
    count: int,
    seed: int,
    mode: Mode = Mode.USER_ORIENTED,
) -> list[Scenario]:
    """Return ``count`` scenarios spread over ``environments``; the same seed gives the same list.

    Scenario ids are stable (``{environment_id}-{seed}-{index}``) so a resumed run can
    tell which dialogues it already has. Raises ConfigError when an environment yields
    no tasks at all.
    """
    if not environments:
        raise ConfigError("no environments to generate over")
    return [build_scenario(environments[i % len(environments)], index=i, seed=seed, mode=mode) for i in range(count)]
