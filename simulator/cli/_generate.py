"""``dialogsim generate``: run many dialogues into a resumable dataset directory."""

from __future__ import annotations

import argparse
import functools
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console

from schemas import Mode
from simulator.cli._models import add_model_arguments, role_models
from simulator.cli._types import non_negative_int, positive_int, rate

_EPILOG = """\
The dataset directory holds manifest.json, environments/, dialogues.jsonl (one record per
line) and summary.json. It is safe to kill a run at any moment: run the same command again
and it continues where it stopped, without losing or repeating a dialogue. Asking for more
--dialogues later extends the dataset; changing the seed, mode, domains, database or
dialogue settings for an existing directory is refused.

examples:
  dialogsim generate --dialogues 100 --seed 7 --out data/
  dialogsim generate --dialogues 50 --domain retail --mode task-oriented --seed 1 --out baseline/
  dialogsim generate --dialogues 20 --database shop.sqlite --seed 3 --concurrency 16 --out shop/
  dialogsim generate --dialogues 10 --design "a pet grooming salon" --model openai:gpt-4.1 \
      --tasks-model openai:gpt-4.1 --seed 1 --out salon/

With --design or --tasks-model the environments and scenarios a model planned are kept in
DIR/plan/ on the first run and reused when the run is resumed (model output is not
reproducible), so a resumed run keeps its scenarios.
"""

_ROLES = ("user", "agent", "judge", "tasks", "env")

#: Where a run planned with a model keeps what it planned (reused on resume).
PLAN_DIR = "plan"


#: DialogueConfig's defaults, for --help only (importing the runner here would slow every
#: command down); a test keeps them equal. Flags left out are not passed, so the runner's
#: own defaults apply.
HELP_DEFAULTS: dict[str, object] = {"transport": "inprocess", "max_turns": 200, "agent_mistake_rate": 0.1}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "generate",
        help="generate a dataset of dialogues (resumable)",
        description=(
            "Generate multi-turn, tool-using dialogues between a simulated user and an agent. Every "
            "dialogue gets its own copy of the database and its own MCP tool server."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_argument_group("what to generate")
    what.add_argument(
        "--dialogues",
        type=non_negative_int,
        metavar="N",
        help="number of dialogues in the dataset (required, except with --branch-from)",
    )
    what.add_argument(
        "--domain",
        action="append",
        default=[],
        metavar="NAME",
        dest="domains",
        help="a built-in domain to use; repeat for several (default: all, or none with --database)",
    )
    what.add_argument(
        "--database",
        type=Path,
        metavar="FILE.sqlite",
        help="derive an environment (tools over its tables) from this SQLite database",
    )
    what.add_argument(
        "--design",
        action="append",
        default=[],
        metavar="DESCRIPTION",
        dest="designs",
        help=(
            'let a model design an environment for this service, e.g. "a pet grooming salon"; repeat for '
            "several (needs --env-model or --model; used instead of the built-in domains unless --domain is given)"
        ),
    )
    what.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=Mode.USER_ORIENTED.value,
        help="user-oriented: hidden goal revealed turn by turn (default); task-oriented: the baseline",
    )
    what.add_argument("--seed", type=int, required=True, metavar="S", help="seed; the same seed gives the same data")

    how = p.add_argument_group("how to run")
    how.add_argument(
        "--concurrency",
        type=positive_int,
        default=8,
        metavar="C",
        help="dialogues run at the same time (default: %(default)s)",
    )
    how.add_argument(
        "--transport",
        choices=["inprocess", "stdio", "http"],
        help=f"how the agent reaches the MCP tool server (default: {HELP_DEFAULTS['transport']})",
    )
    how.add_argument(
        "--max-turns",
        type=positive_int,
        metavar="N",
        help=f"end a dialogue after this many turns (default: {HELP_DEFAULTS['max_turns']})",
    )
    how.add_argument(
        "--mistake-rate",
        type=rate,
        metavar="P",
        help=(
            "probability that the offline agent makes a plausible mistake on a step "
            f"(default: {HELP_DEFAULTS['agent_mistake_rate']})"
        ),
    )
    how.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset directory (created, or resumed)")
    how.add_argument("--no-progress", action="store_true", help="do not show the progress bar")

    # Branching (simulator.run.branch): continue recorded dialogues instead of building new ones.
    branch = p.add_argument_group("branching (continue the dialogues of an existing dataset)")
    branch.add_argument(
        "--branch-from", type=Path, metavar="DATASET", help="dataset directory whose dialogues to branch"
    )
    branch.add_argument(
        "--at-turn", type=positive_int, metavar="K", help="branch after turn K (required with --branch-from)"
    )
    branch.add_argument(
        "--variants",
        type=positive_int,
        default=1,
        metavar="N",
        help="continuations per source dialogue (default: 1)",
    )
    add_model_arguments(p, roles=_ROLES)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from schemas.errors import ConfigError
    from simulator.dialogue.runner import DialogueConfig
    from simulator.llm import use_setup
    from simulator.run.execute import DATASET_FILE, RunConfig, execute_run, prepare_run
    from simulator.summary import render_summary

    if args.dialogues is None and args.branch_from is None:
        raise ConfigError("--dialogues is required (how many dialogues to generate)")
    if args.branch_from is not None and args.at_turn is None:
        raise ConfigError("--at-turn is required with --branch-from (the turn to branch after)")
    # A missing key or an unknown provider stops here, before any work. The task generator
    # is only used when asked for by name: --model alone keeps the offline planner.
    models = role_models(args, roles=_ROLES, explicit_only=("tasks",))
    designs = list(dict.fromkeys(args.designs))
    if designs and models.specs["env"] == "offline":
        raise ConfigError("--design needs a model to design with: give --env-model or --model")
    llm_planning = bool(designs) or models.specs["tasks"] != "offline"
    if llm_planning and args.branch_from is not None:
        raise ConfigError("--branch-from reuses the source's scenarios; drop --design and --tasks-model")
    given = {"transport": args.transport, "max_turns": args.max_turns, "agent_mistake_rate": args.mistake_rate}
    dialogue_settings: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    dialogue_settings.update(agent=models.specs["agent"], user=models.specs["user"], judge=models.specs["judge"])
    config = RunConfig(
        dialogues=args.dialogues if args.dialogues is not None else 0,
        seed=args.seed,
        concurrency=args.concurrency,
        mode=Mode(args.mode),
        domains=tuple(args.domains),
        database=args.database,
        dialogue=DialogueConfig(**dialogue_settings),
        out_dir=args.out,
        branch_from=args.branch_from,
        at_turn=args.at_turn or 0,
        variants=args.variants,
    )
    planner = None
    if llm_planning:
        assert models.setup is not None
        _drop_stale_plan(args.out)
        planner = functools.partial(
            _llm_planner,
            designs=designs,
            env_model=models.specs["env"] if designs else None,
            tasks_model=models.specs["tasks"] if models.specs["tasks"] != "offline" else None,
            setup=models.setup,
        )
    prepared = prepare_run(config, planner=planner)
    if prepared.skipped:
        print(
            f"resuming {args.out}: {prepared.skipped} of {len(prepared.scenarios)} dialogues already done",
            file=sys.stderr,
        )
    run_it = functools.partial(execute_run, prepared, progress=not args.no_progress)
    if models.setup is not None:
        with use_setup(models.setup):
            summary = anyio.run(_closing(models.setup, run_it))
    else:
        summary = anyio.run(run_it)
    console = Console()
    console.print(render_summary(summary.dataset, title=f"{args.out / DATASET_FILE}"))
    console.print(
        f"{summary.generated} new dialogues ({summary.failed} failed), {summary.skipped} already present, "
        f"in {summary.elapsed_s:.1f} s; summary in {args.out / 'summary.json'}",
        highlight=False,
    )
    return 0


def _closing(setup: Any, work: Any) -> Any:
    """Run ``work`` and close the setup's model clients afterwards, in the same event loop."""

    async def run() -> Any:
        try:
            return await work()
        finally:
            await setup.pool.aclose()

    return run


# --------------------------------------------------------------------------- planning with models


def _drop_stale_plan(out: Path) -> None:
    """A plan left by a run that never started (no manifest) is not the dataset's: plan afresh."""
    from simulator.run.dataset import MANIFEST_FILE

    plan = out / PLAN_DIR
    if plan.is_dir() and not (out / MANIFEST_FILE).exists():
        shutil.rmtree(plan)


def _llm_planner(
    config: Any,
    *,
    designs: list[str],
    env_model: str | None,
    tasks_model: str | None,
    setup: Any,
) -> tuple[list[Any], list[Any]]:
    """The run's environments and scenarios, planned with models once and then read from DIR/plan/."""
    from schemas.errors import ConfigError
    from simulator.llm import use_setup
    from simulator.providers import ProviderError

    plan_dir: Path = config.out_dir / PLAN_DIR
    settings = {"designs": designs, "env_model": env_model, "tasks_model": tasks_model}
    stored = _load_plan(plan_dir)

    async def work() -> tuple[list[Any], list[Any]]:
        if stored is not None:
            meta, environments, scenarios = stored
            if meta["settings"] != settings:
                raise ConfigError(
                    f"{config.out_dir}: was planned with {json.dumps(meta['settings'])}; this run asks for "
                    f"{json.dumps(settings)}. Use a new --out directory"
                )
            planned = int(meta["planned"])
        else:
            environments = _base_environments(config, designs)
            for description in designs:
                environments.append(await _design(setup, env_model, description, environments))
            scenarios, planned = [], 0
        if config.dialogues > planned:
            scenarios += await _plan_scenarios(
                setup, tasks_model, config, environments, range(planned, config.dialogues)
            )
            planned = config.dialogues
            _save_plan(plan_dir, settings, environments, scenarios, planned)
        return environments, [s for s in scenarios if _index(s) < config.dialogues]

    async def closing() -> tuple[list[Any], list[Any]]:
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


def _base_environments(config: Any, designs: list[str]) -> list[Any]:
    """Built-in domains and a derived database as without a model (none by default when designing)."""
    import dataclasses

    from simulator.run.execute import _default_planner

    if designs and not config.domains and config.database is None:
        return []
    environments, _ = _default_planner(dataclasses.replace(config, dialogues=0))
    return list(environments)


async def _design(setup: Any, model: str | None, description: str, existing: list[Any]) -> Any:
    from simulator.llm.environment import design_environment
    from simulator.providers import parse_model

    assert model is not None
    slug = re.sub(r"[^a-z0-9]+", "-", description.lower()).strip("-")[:40].strip("-") or "designed"
    taken = {e.id for e in existing}
    env_id, n = slug, 2
    while env_id in taken:
        env_id, n = f"{slug}-{n}", n + 1
    client = setup.client(parse_model(model)).bind(role="env", meter=setup.meter)
    print(f"designing environment {env_id!r} ({description}) with {model}", file=sys.stderr)
    return await design_environment(client, setup.prompt("environment_designer"), description, env_id=env_id)


async def _plan_scenarios(
    setup: Any, model: str | None, config: Any, environments: list[Any], indexes: range
) -> list[Any]:
    """Scenarios ``indexes`` (ids as the offline planner makes them); a model writes their tasks if given."""
    import random

    from schemas import Scenario
    from schemas.errors import ConfigError
    from simulator.llm.tasks import generate_tasks
    from simulator.offline.scenarios import build_scenario, make_persona
    from simulator.providers import StructuredOutputError, parse_model

    if not environments:
        raise ConfigError("no environments to generate over")
    found: dict[int, Any] = {}
    if model is None:
        for i in indexes:
            env = environments[i % len(environments)]
            found[i] = build_scenario(env, index=i, seed=config.seed, mode=config.mode)
        return [found[i] for i in indexes]
    client = setup.client(parse_model(model)).bind(role="tasks", meter=setup.meter)
    template = setup.prompt("task_generator")
    limit = anyio.CapacityLimiter(config.concurrency)
    print(f"writing the tasks of {len(indexes)} dialogues with {model}", file=sys.stderr)

    async def one(i: int) -> None:
        env = environments[i % len(environments)]
        rng = random.Random(f"{config.seed}:{env.id}:{i}")
        persona = make_persona(rng)
        count = rng.choice([2, 3, 3, 4])
        async with limit:
            try:
                tasks = await generate_tasks(client, template, env, count=count, rng=rng)
            except StructuredOutputError as exc:
                print(f"dialogue {i}: the task generator's reply was unusable ({exc}); skipped", file=sys.stderr)
                return
        if not tasks:
            print(f"dialogue {i}: no task the model wrote could be carried out; skipped", file=sys.stderr)
            return
        found[i] = Scenario(
            id=f"{env.id}-{config.seed}-{i:05d}",
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


def _index(scenario: Any) -> int:
    return int(str(scenario.id).rsplit("-", 1)[1])


def _save_plan(
    plan_dir: Path, settings: dict[str, Any], environments: list[Any], scenarios: list[Any], planned: int
) -> None:
    """Write the plan; a new plan appears whole (written aside, then renamed into place)."""
    import msgspec

    from simulator.run.dataset import write_atomic
    from toolservers.loader import save_environment

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


def _load_plan(plan_dir: Path) -> tuple[dict[str, Any], list[Any], list[Any]] | None:
    import msgspec

    from schemas import Scenario
    from schemas.errors import ConfigError
    from toolservers.loader import load_environment

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
