"""``dialogsim generate``: run many dialogues into a resumable dataset directory."""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console

from schemas import Mode
from simulator.cli._config import effective_settings
from simulator.cli._executor import add_executor_arguments, describe, ray_executor
from simulator.cli._external import EXTERNAL_HELP, add_external_arguments, external_spec
from simulator.cli._models import add_model_arguments, request_cap, role_models
from simulator.cli._types import non_negative_int, positive_int, rate, seconds

_EPILOG = (
    """\
The dataset directory holds manifest.json, environments/, dialogues.jsonl (one record per
line) and summary.json. It is safe to kill a run at any moment: run the same command again
and it continues where it stopped, without losing or repeating a dialogue. Ctrl-C or SIGTERM
stops it within seconds (exit 130 / 143) and says what was done. Asking for more
--dialogues later extends the dataset; changing the seed, mode, domains, database or
dialogue settings for an existing directory is refused. Failed dialogues stay failed on a
resume, unless --retry-failed is given: then those that failed on the infrastructure's side
(a model endpoint, a timeout, the tool server) run again and their new record is appended.

examples:
  dialogsim generate --dialogues 100 --seed 7 --out data/
  dialogsim generate --dialogues 50 --domain retail --mode task-oriented --seed 1 --out baseline/
  dialogsim generate --dialogues 20 --database shop.sqlite --seed 3 --concurrency 16 --out shop/
  dialogsim generate --dialogues 10 --design "a pet grooming salon" --model openai:gpt-4.1 \\
      --tasks-model openai:gpt-4.1 --seed 1 --out salon/
  dialogsim generate --dialogues 10000 --seed 7 --executor ray --out big/          # all local cores
  dialogsim generate --dialogues 100000 --seed 7 --executor ray --ray-address auto --out big/

With --design or --tasks-model the environments and scenarios a model planned are kept in
DIR/plan/ on the first run and reused when the run is resumed (model output is not
reproducible), so a resumed run keeps its scenarios.

--shard I/N generates the I-th (0-based) of N disjoint slices of the run (scenario indexes
k with k % N == I; the ids are those of the whole run), e.g. one per Slurm array task:
  dialogsim generate --dialogues 100000 --seed 7 --shard $SLURM_ARRAY_TASK_ID/64 --out shards/$SLURM_ARRAY_TASK_ID
  dialogsim merge shards/* --out data/
"""
    + EXTERNAL_HELP
    + """
  dialogsim generate --server "mcp-server-time --local-timezone UTC" --dialogues 5 --seed 1 --out time/
  dialogsim generate --server "mcp-server-git --repository {state}" --state-dir repo/ --dialogues 5 --seed 1 --out git/
"""
)

_ROLES = ("user", "agent", "judge", "tasks", "env")


#: DialogueConfig's defaults, for --help only (importing the runner here would slow every
#: command down); a test keeps them equal. Flags left out are not passed, so the runner's
#: own defaults apply.
HELP_DEFAULTS: dict[str, object] = {
    "transport": "inprocess",
    "max_turns": 200,
    "agent_mistake_rate": 0.1,
    "timeout_s": 600.0,
    "turn_timeout_s": 120.0,
    "max_message_chars": 32_000,
}


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
        help="end a dialogue once it has this many turns (messages, tool calls and results), checked after each "
        "agent reply, so the last reply's calls may take it a little over "
        f"(default: {HELP_DEFAULTS['max_turns']})",
    )
    how.add_argument(
        "--mistake-rate",
        type=rate,
        metavar="P",
        help=(
            "probability that the offline agent misreads a result of two or more rows a user asked for "
            "(says the second row's fields as the first's, or overlooks the last row); the user then "
            "corrects it, and export masks the rejected turn "
            f"(default: {HELP_DEFAULTS['agent_mistake_rate']})"
        ),
    )
    how.add_argument(
        "--dialogue-timeout",
        type=seconds,
        metavar="S",
        help=f"seconds a dialogue may take before it fails as timeout (default: {HELP_DEFAULTS['timeout_s']:g})",
    )
    how.add_argument(
        "--turn-timeout",
        type=seconds,
        metavar="S",
        help=(
            "seconds the user or the agent may take to answer before the dialogue fails "
            f"(default: {HELP_DEFAULTS['turn_timeout_s']:g})"
        ),
    )
    how.add_argument(
        "--max-message-chars",
        type=positive_int,
        metavar="N",
        help=f"cut an agent message longer than this, with a note (default: {HELP_DEFAULTS['max_message_chars']})",
    )
    how.add_argument(
        "--retry-failed",
        action="store_true",
        help="run again the dialogues that failed on the infrastructure's side (model endpoint, timeout, tool server)",
    )
    how.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset directory (created, or resumed)")
    how.add_argument(
        "--shard",
        metavar="I/N",
        help="generate only the I-th (0-based) of N disjoint slices of the run; 'dialogsim merge' joins them",
    )
    how.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    add_executor_arguments(how)

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
    add_external_arguments(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from schemas.errors import ConfigError
    from simulator.dialogue.runner import DialogueConfig
    from simulator.run.config import RunConfig, Shard
    from simulator.run.execute import execute_run
    from simulator.run.plan import drop_stale_plan, model_planner, prepare_run

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
    executor = ray_executor(args)  # a missing extra stops here, before any work
    llm_planning = bool(designs) or models.specs["tasks"] != "offline"
    if llm_planning and args.branch_from is not None:
        raise ConfigError("--branch-from reuses the source's scenarios; drop --design and --tasks-model")
    shard = Shard.parse(args.shard) if args.shard is not None else None
    if shard is not None and designs:
        raise ConfigError("--shard with --design: each shard would design its own environments; drop one of them")
    given = {
        "transport": args.transport,
        "max_turns": args.max_turns,
        "agent_mistake_rate": args.mistake_rate,
        "timeout_s": args.dialogue_timeout,
        "turn_timeout_s": args.turn_timeout,
        "max_message_chars": args.max_message_chars,
    }
    dialogue_settings: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    dialogue_settings.update(agent=models.specs["agent"], user=models.specs["user"], judge=models.specs["judge"])
    external = external_spec(args)
    if external is not None and executor is not None:
        raise ConfigError("--executor ray with --server/--url is not supported: run the dialogues in one process")
    if external is not None:
        if shard is not None:
            raise ConfigError("--shard with --server/--url is not supported: run the dialogues in one process")
        return _run_external(args, external, models, dialogue_settings)
    if args.user_server is not None:
        raise ConfigError("--user-server goes with --server or --url (tools for the user of an external environment)")
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
        retry_failed=args.retry_failed,
        shard=shard,
        settings=effective_settings(args),
    )
    planner = None
    if llm_planning:
        assert models.setup is not None
        drop_stale_plan(args.out)
        planner = functools.partial(
            model_planner,
            designs=designs,
            env_model=models.specs["env"] if designs else None,
            tasks_model=models.specs["tasks"] if models.specs["tasks"] != "offline" else None,
            setup=models.setup,
        )
    prepared = prepare_run(config, planner=planner)
    if prepared.skipped or prepared.retried:
        again = f"; {len(prepared.retried)} failed ones to run again" if prepared.retried else ""
        print(
            f"resuming {args.out}: {prepared.skipped} of {prepared.requested} dialogues already done{again}",
            file=sys.stderr,
        )
    cap = request_cap(models.setup, args.concurrency)
    if cap is not None:
        print(
            f"note: --max-requests {cap} is below --concurrency {args.concurrency}: "
            f"at most {cap} model requests at a time" + (" in each Ray worker" if executor is not None else ""),
            file=sys.stderr,
        )
    run_it = functools.partial(
        execute_run, prepared, progress=not args.no_progress, stop_on_signals=True, executor=executor, request_cap=cap
    )
    return _run_and_report(models, run_it, args.out, executor=executor, concurrency=args.concurrency)


def run_line(summary: Any, where: Path, *, what: str = "summary") -> str:
    """The one line that says what an invocation did (shared with ``eval``)."""
    retried = f", {summary.retried} of them run again" if summary.retried else ""
    line = (
        f"{summary.generated} new dialogues ({summary.failed} failed{retried}), {summary.skipped} already present, "
        f"in {summary.elapsed_s:.1f} s; {what} in {where}"
    )
    if summary.interrupted:
        line = (
            f"interrupted by {summary.interrupted}: {line}; {summary.not_run} not run yet "
            "(run the same command to resume)"
        )
    return line


def interrupted_exit(summary: Any) -> int:
    """0, or 128 + the signal's number when a signal stopped the run (130 for SIGINT, 143 for SIGTERM)."""
    import signal

    return 128 + int(signal.Signals[summary.interrupted]) if summary.interrupted else 0


def _closing(setup: Any, work: Any) -> Any:
    """Run ``work`` and close the setup's model clients afterwards, in the same event loop."""

    async def run() -> Any:
        try:
            return await work()
        finally:
            await setup.pool.aclose()

    return run


def _run_external(args: argparse.Namespace, spec: Any, models: Any, dialogue_settings: dict[str, Any]) -> int:
    """``generate --server/--url``: scenarios over an external MCP server (``simulator.external``)."""
    from schemas.errors import ConfigError
    from simulator.dialogue.runner import DialogueConfig
    from simulator.external.execute import execute_external, plan_run
    from simulator.run.config import RunConfig
    from simulator.run.plan import drop_stale_plan, prepare_run

    if args.domains or args.database is not None or args.designs or args.branch_from is not None:
        raise ConfigError("--server/--url is the environment: drop --domain, --database, --design and --branch-from")
    tasks_model = models.specs["tasks"] if models.specs["tasks"] != "offline" else None
    user_spec = None
    external = spec.describe()
    if args.user_server is not None:
        from simulator.external.spec import ExternalSpec

        user_spec = ExternalSpec(
            command=args.user_server, connect_timeout_s=args.server_timeout, call_timeout_s=args.call_timeout
        )
        user_spec.check()
        external["user_server"] = args.user_server
    config = RunConfig(
        dialogues=args.dialogues,
        seed=args.seed,
        concurrency=args.concurrency,
        mode=Mode(args.mode),
        dialogue=DialogueConfig(**dialogue_settings),
        out_dir=args.out,
        external=external,
        retry_failed=args.retry_failed,
        settings=effective_settings(args),
    )
    drop_stale_plan(args.out)
    setup = models.setup if tasks_model else None
    planner = functools.partial(plan_run, spec=spec, tasks_model=tasks_model, setup=setup, user_spec=user_spec)
    prepared = prepare_run(config, planner=planner)
    if prepared.skipped or prepared.retried:
        again = f"; {len(prepared.retried)} failed ones to run again" if prepared.retried else ""
        print(
            f"resuming {args.out}: {prepared.skipped} of {prepared.requested} dialogues already done{again}",
            file=sys.stderr,
        )
    run_it = functools.partial(
        execute_external,
        prepared,
        spec,
        progress=not args.no_progress,
        state_root=args.out / "state" if spec.keep_state else None,
        user_spec=user_spec,
        stop_on_signals=True,
    )
    return _run_and_report(models, run_it, args.out)


def _run_and_report(models: Any, run_it: Any, out: Path, *, executor: Any = None, concurrency: int = 0) -> int:
    """Run under the model setup (closed after), print the summary, the endpoints and the run line.

    With a Ray ``executor`` the cluster is started (or joined) around the run; a run whose
    workers were all lost is one error line (exit 1): what was written stays.
    """
    from simulator.llm import use_setup
    from simulator.run.dataset import DATASET_FILE
    from simulator.run.ray_executor import ExecutorError
    from simulator.summary import render_endpoints, render_summary

    with contextlib.ExitStack() as stack:
        if executor is not None:
            describe(executor, concurrency, stack)  # starts (or joins) the Ray cluster
        try:
            if models.setup is not None:
                with use_setup(models.setup):
                    summary = anyio.run(_closing(models.setup, run_it))
            else:
                summary = anyio.run(run_it)
        except ExecutorError as exc:
            print(f"dialogsim: error: {exc}", file=sys.stderr)
            return 1
    console = Console()
    console.print(render_summary(summary.dataset, title=f"{out / DATASET_FILE}"))
    if summary.endpoints:
        console.print(render_endpoints(summary.endpoints))
    console.print(run_line(summary, out / "summary.json"), highlight=False)
    return interrupted_exit(summary)
