"""Planning a run: checking its settings and output directory, then building its
environments and scenarios — offline, or with models (kept in ``DIR/plan/`` for resume)."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec

from schemas import (
    Environment,
    Mode,
    Scenario,
)
from schemas.errors import ConfigError, UsageError
from simulator.llm.setup import LLMSetup, use_setup
from simulator.log import get_logger
from simulator.providers import ProviderError, StructuredOutputError, parse_model
from simulator.run.config import RunConfig, check_settings, fingerprint
from simulator.run.dataset import (
    DATASET_FILE,
    MANIFEST_FILE,
    check_out_dir,
    scan_dataset,
    settings_differences,
    write_atomic,
)
from simulator.run.retry import infrastructure_failure
from toolservers.loader import load_environment, save_environment

__all__ = [
    "PLAN_DIR",
    "Planner",
    "PreparedRun",
    "ScenarioPlan",
    "default_planner",
    "drop_stale_plan",
    "model_planner",
    "prepare_run",
]

log = get_logger(__name__)

#: Where a run planned with a model keeps what it planned (reused on resume).
PLAN_DIR = "plan"


@dataclass(frozen=True)
class ScenarioPlan:
    """A run's scenarios, built one at a time when the run gets to them.

    Scenario ``i`` (``0 <= i < count``) has the id ``id_of(i)``, which costs nothing to
    compute, and is planned by ``build(i)`` (a database copy and a planner: milliseconds);
    nothing is kept, so a run of any size holds only the scenarios it is running.
    ``ids[i]`` must equal ``build(i).id``. Executors (in process, sharded, on Ray) take
    indexes from ``PreparedRun.pending()`` and build what they run.
    """

    count: int
    id_of: Callable[[int], str]
    build: Callable[[int], Scenario]
    #: Whether ids are distinct by construction (else a repeated id runs once, the first time).
    unique: bool = False
    #: ``build`` as plain data another process can run (picklable; the offline plan, built from
    #: a seed and the environments), or None. A big run builds its scenarios with it in a
    #: second process (``simulator.run.builder``).
    remote: Callable[[int], Scenario] | None = None

    @property
    def portable(self) -> bool:
        """Whether the plan is small to send whatever its count (it has a ``remote`` build), so that
        an executor may build scenarios where it runs them (Ray workers, the builder process)."""
        return self.remote is not None

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Scenario]:
        """Every scenario, built in order (tests; a run builds only what it runs)."""
        return (self.build(p) for p in range(self.count))

    @staticmethod
    def of(scenarios: Sequence[Scenario]) -> ScenarioPlan:
        """A plan over scenarios that are already built (a stored model plan, a branch, tests)."""
        items = tuple(scenarios)
        return ScenarioPlan(len(items), lambda i: items[i].id, lambda i: items[i])


Planner = Callable[[RunConfig], tuple[Sequence[Environment], "Sequence[Scenario] | ScenarioPlan"]]
"""Builds a run's environments and scenarios (or their plan) from its config; raises ConfigError for bad input."""


@dataclass(frozen=True)
class PreparedRun:
    """A validated run, ready to execute: nothing has been written yet."""

    config: RunConfig
    fingerprint: dict[str, Any]
    environments: dict[str, Environment]
    #: Every scenario of the run, in the planner's order, built on demand.
    plan: ScenarioPlan
    #: Scenario ids already in the dataset file.
    done_ids: frozenset[str]
    has_manifest: bool
    #: Where to cut the dataset file (a trailing partial line starts there), if anywhere.
    truncate_at: int | None
    #: How many of this run's scenarios already have a record, and how many are still to run.
    skipped: int
    pending_count: int
    #: Pending scenarios that have a failed record, run again (``retry_failed``).
    retried: frozenset[str] = frozenset()
    #: Names this invocation in the run's log (``run.log``): a fresh id per invocation.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def requested(self) -> int:
        """How many scenarios the run asks for."""
        return self.plan.count

    def pending(self) -> Iterator[int]:
        """The indexes (into ``plan``) of the scenarios still to run, in order, each once."""
        seen: set[str] | None = None if self.plan.unique else set()
        for i in range(self.plan.count):
            sid = self.plan.id_of(i)
            if sid in self.done_ids:
                continue
            if seen is not None:
                if sid in seen:
                    continue
                seen.add(sid)
            yield i

    def pending_scenarios(self) -> Iterator[Scenario]:
        """The scenarios still to run, built one at a time."""
        for i in self.pending():
            yield self.plan.build(i)


def prepare_run(config: RunConfig, *, planner: Planner | None = None) -> PreparedRun:
    """Check everything a run needs before any work, and plan its scenarios.

    Raises ConfigError — and leaves ``out_dir`` untouched — for a bad setting, an unknown
    domain, a bad database, a missing branch source, or an ``out_dir`` that holds
    something else: a file, a foreign directory, a dataset of another record version or
    generated with another config. ``planner`` replaces how environments and scenarios
    are built (tests use it); by default built-in domains, a derived database or a
    branch source are used. Offline scenarios are built when the run reaches them (the
    first of each environment here, so an environment that yields no task is refused now).
    """
    check_settings(config)
    fp = fingerprint(config)
    out = config.out_dir
    has_manifest = check_out_dir(out, fp)
    scan = scan_dataset(out / DATASET_FILE, retry=infrastructure_failure if config.retry_failed else None)

    environments, planned = (planner or default_planner)(config)
    plan = planned if isinstance(planned, ScenarioPlan) else ScenarioPlan.of(planned)
    env_by_id: dict[str, Environment] = {}
    for env in environments:
        if env.id in env_by_id and env_by_id[env.id] != env:
            raise ConfigError(f"two different environments are both called {env.id!r}")
        if not env.id or "/" in env.id or "\\" in env.id or env.id.startswith("."):
            raise ConfigError(f"environment id {env.id!r} cannot be used as a file name")
        env_by_id[env.id] = env
    if not isinstance(planned, ScenarioPlan):
        for scenario in planned:
            if scenario.environment_id not in env_by_id:
                raise UsageError(
                    f"scenario {scenario.id!r} uses environment {scenario.environment_id!r}, "
                    "which the run does not have"
                )
    prepared = PreparedRun(
        config=config,
        fingerprint=fp,
        environments=env_by_id,
        plan=plan,
        done_ids=frozenset(scan.done),
        has_manifest=has_manifest,
        truncate_at=scan.truncate_at,
        skipped=0,
        pending_count=0,
    )
    pending = [plan.id_of(i) for i in prepared.pending()]
    skipped = sum(1 for i in range(plan.count) if plan.id_of(i) in prepared.done_ids)
    retried = frozenset(sid for sid in pending if sid in scan.retry)
    return dataclasses.replace(prepared, skipped=skipped, pending_count=len(pending), retried=retried)


def default_planner(config: RunConfig) -> tuple[Sequence[Environment], Sequence[Scenario] | ScenarioPlan]:
    """The offline planner: built-in domains, a derived database, or a branch source."""
    if config.branch_from is not None:
        # Branching (simulator.run.branch): continue the dialogues of an existing dataset.
        from simulator.run.branch import branch_scenarios

        branched_envs, branched = branch_scenarios(
            config.branch_from, at_turn=config.at_turn, variants=config.variants, seed=config.seed
        )
        count = min(config.dialogues, len(branched)) if config.dialogues else len(branched)
        return branched_envs, [branched[i] for i in config.scenario_indexes(stop=count)]

    from simulator.domains import domain_names, load_domain

    environments: list[Environment] = []
    names = list(dict.fromkeys(config.domains))
    if not names and config.database is None:
        names = domain_names()
    if names:
        known = domain_names()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(
                f"unknown domain {', '.join(map(repr, unknown))}; available: {', '.join(known) or 'none'}"
            )
        environments += [load_domain(name, seed=config.seed) for name in names]
    if config.database is not None:
        from simulator.policy import attach_rules
        from toolservers.derive import derive_environment

        environments.append(attach_rules(derive_environment(config.database)))
    # Only this run's (or its shard's) indexes, each built when the run reaches it.
    return environments, offline_plan(
        environments,
        config.scenario_indexes(),
        seed=config.seed,
        mode=config.mode,
        max_turns=config.dialogue.max_turns,
    )


def offline_plan(
    environments: Sequence[Environment], indexes: range, *, seed: int, mode: Mode, max_turns: int | None = None
) -> ScenarioPlan:
    """The offline scenarios of ``indexes`` spread over ``environments`` (as ``build_scenarios`` makes them), lazily.

    Position ``p`` of the plan is scenario index ``indexes[p]`` (a shard's indexes skip).

    The first scenario of each environment is built now: an environment that yields no
    task at all is refused (ConfigError) before the run starts, as it was when every
    scenario was built up front.
    """
    from simulator.offline.scenarios import OfflineScenarios

    envs = tuple(environments)
    if not envs:
        raise ConfigError("no environments to generate over")
    scenarios = OfflineScenarios(envs, indexes, seed, mode, max_turns)
    first: dict[int, Scenario] = {}
    id_of = scenarios.id_of  # build_scenario's ids: {environment_id}-{seed}-{index}; checked on every build

    def build(p: int) -> Scenario:
        scenario = first.pop(p, None) or scenarios(p)
        if scenario.id != id_of(p):
            raise AssertionError(f"scenario {indexes[p]} has id {scenario.id!r}, its plan says {id_of(p)!r}")
        return scenario

    # One per environment met first (a shard may skip some environments altogether).
    checked: set[str] = set()
    for p in range(len(indexes)):
        env_id = envs[indexes[p] % len(envs)].id
        if env_id not in checked:
            checked.add(env_id)
            first[p] = build(p)
        if len(checked) == len(envs) or p >= 4 * len(envs):
            break
    return ScenarioPlan(len(indexes), id_of, build, unique=True, remote=scenarios)


# --------------------------------------------------------------------------- planning with models


def drop_stale_plan(out: Path) -> None:
    """A plan left by a run that never started (no manifest) is not the dataset's: plan afresh."""
    plan = out / PLAN_DIR
    if plan.is_dir() and not (out / MANIFEST_FILE).exists():
        shutil.rmtree(plan)


def model_planner(
    config: RunConfig,
    *,
    designs: list[str],
    env_model: str | None,
    tasks_model: str | None,
    setup: LLMSetup,
) -> tuple[list[Environment], list[Scenario]]:
    """The run's environments and scenarios, planned with models once and then read from DIR/plan/."""
    plan_dir: Path = config.out_dir / PLAN_DIR
    settings = {"designs": designs, "env_model": env_model, "tasks_model": tasks_model}
    stored = _load_plan(plan_dir)

    async def work() -> tuple[list[Environment], list[Scenario]]:
        if stored is not None:
            meta, environments, scenarios = stored
            differences = settings_differences(meta["settings"], settings)
            if differences:
                raise ConfigError(
                    f"{config.out_dir}: was planned with other settings ({differences}); use a new --out directory"
                )
            planned = int(meta["planned"])
        else:
            environments = _base_environments(config, designs)
            for description in designs:
                environments.append(await _design(setup, env_model, description, environments))
            scenarios, planned = [], 0
        if config.dialogues > planned:
            scenarios += await _plan_scenarios(
                setup, tasks_model, config, environments, config.scenario_indexes(start=planned)
            )
            planned = config.dialogues
            _save_plan(plan_dir, settings, environments, scenarios, planned)
        return environments, [s for s in scenarios if _index(s) < config.dialogues]

    async def closing() -> tuple[list[Environment], list[Scenario]]:
        try:
            try:
                return await work()
            except BaseExceptionGroup as group:  # from the task group: the first failure is the story
                raise _first(group) from group
        except ProviderError as exc:
            raise ConfigError(f"planning with a model failed: {exc}") from exc
        finally:
            await setup.pool.aclose()

    with use_setup(setup):
        return anyio.run(closing)


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    inner: BaseException = group
    while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
        inner = inner.exceptions[0]
    return inner


def _base_environments(config: RunConfig, designs: list[str]) -> list[Environment]:
    """Built-in domains and a derived database as without a model (none by default when designing)."""
    if designs and not config.domains and config.database is None:
        return []
    environments, _ = default_planner(dataclasses.replace(config, dialogues=0))
    return list(environments)


async def _design(setup: LLMSetup, model: str | None, description: str, existing: list[Environment]) -> Environment:
    from simulator.llm.environment import design_environment

    assert model is not None
    slug = re.sub(r"[^a-z0-9]+", "-", description.lower()).strip("-")[:40].strip("-") or "designed"
    taken = {e.id for e in existing}
    env_id, n = slug, 2
    while env_id in taken:
        env_id, n = f"{slug}-{n}", n + 1
    client = setup.client(parse_model(model)).bind(role="env", meter=setup.meter)
    log.warning("designing environment %r (%s) with %s", env_id, description, model)
    return await design_environment(client, setup.prompt("environment_designer"), description, env_id=env_id)


async def _plan_scenarios(
    setup: Any, model: str | None, config: Any, environments: list[Any], indexes: range
) -> list[Any]:
    """Scenarios ``indexes`` (ids as the offline planner makes them); a model writes their tasks if given."""

    from schemas import Scenario
    from schemas.errors import ConfigError
    from simulator.llm.tasks import generate_tasks
    from simulator.offline.scenarios import build_scenario, make_persona, scenario_id
    from simulator.providers import parse_model

    if not environments:
        raise ConfigError("no environments to generate over")
    found: dict[int, Scenario] = {}
    if model is None:
        for i in indexes:
            env = environments[i % len(environments)]
            found[i] = build_scenario(
                env, index=i, seed=config.seed, mode=config.mode, max_turns=config.dialogue.max_turns
            )
        return [found[i] for i in indexes]
    client = setup.client(parse_model(model)).bind(role="tasks", meter=setup.meter)
    template = setup.prompt("task_generator")
    limit = anyio.CapacityLimiter(config.concurrency)
    log.warning("writing the tasks of %d dialogues with %s", len(indexes), model)

    async def one(i: int) -> None:
        env = environments[i % len(environments)]
        rng = random.Random(f"{config.seed}:{env.id}:{i}")
        persona = make_persona(rng)
        count = rng.choice([2, 3, 3, 4])
        async with limit:
            try:
                tasks = await generate_tasks(client, template, env, count=count, rng=rng)
            except StructuredOutputError as exc:
                log.warning("dialogue %d: the task generator's reply was unusable (%s); skipped", i, exc)
                return
        if not tasks:
            log.warning("dialogue %d: no task the model wrote could be carried out; skipped", i)
            return
        found[i] = Scenario(
            id=scenario_id(env.id, config.seed, i),
            environment_id=env.id,
            domain=env.domain,
            tasks=tasks,
            persona=persona,
            mode=config.mode,
            seed=config.seed,
        )

    async with anyio.create_task_group() as tg:
        for i in indexes:
            tg.start_soon(one, i)
    return [found[i] for i in indexes if i in found]


def _index(scenario: Scenario) -> int:
    return int(str(scenario.id).rsplit("-", 1)[1])


def _save_plan(
    plan_dir: Path, settings: dict[str, Any], environments: list[Environment], scenarios: list[Scenario], planned: int
) -> None:
    """Write the plan; a new plan appears whole (written aside, then renamed into place)."""
    fresh = not plan_dir.exists()
    target = plan_dir.with_name(plan_dir.name + ".tmp") if fresh else plan_dir
    if fresh and target.exists():
        shutil.rmtree(target)
    (target / "environments").mkdir(parents=True, exist_ok=True)
    for env in environments:
        save_environment(env, target / "environments" / f"{env.id}.json")
    write_atomic(target / "scenarios.jsonl", b"".join(msgspec.json.encode(s) + b"\n" for s in scenarios))
    meta = {"settings": settings, "environments": [e.id for e in environments], "planned": planned}
    write_atomic(target / "meta.json", json.dumps(meta, indent=2).encode() + b"\n")
    if fresh:
        target.rename(plan_dir)


def _load_plan(plan_dir: Path) -> tuple[dict[str, Any], list[Environment], list[Scenario]] | None:
    meta_file = plan_dir / "meta.json"
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        environments = [load_environment(plan_dir / "environments" / f"{i}.json") for i in meta["environments"]]
        lines = (plan_dir / "scenarios.jsonl").read_bytes().splitlines()
        scenarios = [msgspec.json.decode(line, type=Scenario) for line in lines if line.strip()]
    except (OSError, ValueError, KeyError, msgspec.DecodeError) as exc:
        raise ConfigError(f"{plan_dir}: the stored plan cannot be read ({exc}); use a new --out directory") from exc
    return meta, environments, scenarios
