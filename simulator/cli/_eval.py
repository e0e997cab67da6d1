"""``dialogsim eval``: K trials of every scenario with the agent under test, scored."""

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
from simulator.cli._external import add_external_arguments, external_spec
from simulator.cli._generate import interrupted_exit, run_line
from simulator.cli._models import add_connection_arguments, llm_setup
from simulator.cli._types import non_negative_int, positive_int, rate, seconds

_EPILOG = """\
agents (--agent):
  offline                           the built-in rule-based agent
  anthropic:MODEL, openai:MODEL     an LLM agent (when the LLM brains are installed)
  python:package.module:factory     a Python factory; also python:path/to/file.py:factory
  cmd:"COMMAND ARGS"                any program speaking the JSON-lines protocol
                                    (documented in simulator/eval/protocol.py); it gets the
                                    dialogue's MCP server as DIALOGSIM_MCP_URL + DIALOGSIM_MCP_TOKEN
                                    (streamable HTTP) and DIALOGSIM_MCP_STDIO (a stdio command)
  baseline:silent|guess|random|refuse
                                    sanity floors: says "OK"; makes values up without tools;
                                    random schema-valid tool calls; refuses everything without
                                    looking (--floors runs all four)

Outside agents do not inherit this environment: a cmd: agent gets PATH, HOME, LANG, TMPDIR,
the DIALOGSIM_* variables and what --agent-env NAME grants (repeat it); a python: agent runs
in this process, with provider keys and secret-looking variables removed from os.environ.

scenarios (--scenarios): a built-in domain or a comma-separated list (default: all), a
scenarios file (JSON), or a dataset directory made by `dialogsim generate` (replayed).

The output directory holds eval.json (settings), records/ (one record per trial, a dataset
like generate's) and results.json (per scenario and task, and the summary); with --floors,
floors/NAME/ holds the same evaluation of each sanity floor, shown in a column next to the
agent's. Kill it at any moment (Ctrl-C or SIGTERM stop it within seconds) and run the same
command again to resume; a larger --trials extends it; --retry-failed also runs again the
trials that failed on the infrastructure's side (a model endpoint, a timeout, the tool
server), never an outside agent's own failures. Any other setting that can change a trial's
outcome (the agent, the scenarios, --text-only, the time limits, --max-message-chars...)
must stay the same for the same --out; --concurrency and --tool-server may change.

examples:
  dialogsim eval --agent offline --trials 3 --seed 1 --out evals/offline
  dialogsim eval --agent offline --floors --trials 2 --seed 1 --out evals/offline-floors
  dialogsim eval --agent python:examples/python_agent.py:make_agent --scenarios retail --seed 1 --out evals/py
  dialogsim eval --agent 'cmd:python examples/jsonl_agent.py' --trials 2 --seed 1 --out evals/cmd
  dialogsim eval --agent offline --trials 8 --seed 1 --executor ray --workers 2 --out evals/ray
  dialogsim eval --agent offline --server "mcp-server-git --repository {state}" --state-dir repo/ \
      --trials 2 --seed 1 --out evals/git

With --server/--url the scenarios are planned over that MCP server (--limit of them, default 2)
and every trial gets its own server instance on its own copy of --state-dir / --state-file.
"""


def _confidence(text: str) -> float:
    value = rate(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate an agent: K trials per scenario, pass^k with confidence intervals (resumable)",
        description=(
            "Evaluate any MCP-capable agent against the simulated user: every dialogue gets its own database "
            "and MCP tool server, every task is checked against the final database state and what the agent said."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_argument_group("what to evaluate")
    what.add_argument("--agent", required=True, metavar="AGENT", help="the agent under test (see below)")
    what.add_argument("--scenarios", metavar="SOURCE", help="domains, a scenarios file or a dataset (default: all)")
    what.add_argument(
        "--limit",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="number of scenarios (default: 2 per domain; all of a file or dataset)",
    )
    what.add_argument("--trials", type=positive_int, default=1, metavar="K", help="trials per scenario (default: 1)")
    what.add_argument("--seed", type=int, required=True, metavar="S", help="the same seed gives the same scenarios")
    what.add_argument("--user", default="offline", metavar="USER", help="the user simulator (default: offline)")
    what.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=Mode.USER_ORIENTED.value,
        help="for scenarios built from domains (default: user-oriented)",
    )

    how = p.add_argument_group("how to run")
    how.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory (created, or resumed)")
    how.add_argument(
        "--concurrency", type=positive_int, default=4, metavar="C", help="dialogues at a time (default: 4)"
    )
    how.add_argument(
        "--tool-server",
        choices=["host", "pool"],
        default="host",
        help="host: in-process servers mounted on one loopback HTTP host (default); pool: pre-started stdio servers",
    )
    how.add_argument(
        "--pool-size", type=positive_int, default=2, metavar="N", help="stdio workers kept warm (default: 2)"
    )
    how.add_argument("--max-turns", type=positive_int, default=200, metavar="N", help="turns per dialogue (200)")
    how.add_argument(
        "--turn-timeout",
        type=seconds,
        default=60.0,
        metavar="S",
        help="seconds a side may take to answer (default: 60; outside agents get 80%% of it)",
    )
    how.add_argument(
        "--dialogue-timeout",
        "--timeout",
        dest="timeout",
        type=seconds,
        default=600.0,
        metavar="S",
        help="seconds per dialogue (default: 600)",
    )
    how.add_argument(
        "--max-message-chars",
        type=positive_int,
        default=32_000,
        metavar="N",
        help="cut an agent message longer than this, with a note (default: 32000)",
    )
    how.add_argument(
        "--agent-env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass this environment variable to outside agents; repeat for several (default: none beyond PATH, ...)",
    )
    how.add_argument(
        "--retry-failed",
        action="store_true",
        help="run again the trials that failed on the infrastructure's side (model endpoint, timeout, tool server)",
    )
    how.add_argument(
        "--mistake-rate",
        type=rate,
        default=0.1,
        metavar="P",
        help="with --agent offline: probability that it misreads a result of two or more rows (default: 0.1)",
    )
    how.add_argument(
        "--confidence", type=_confidence, default=0.95, metavar="C", help="confidence level of intervals (0.95)"
    )
    how.add_argument(
        "--text-only",
        action="store_true",
        help="give the agent the user's words only, not the offline user's dialogue acts (use for benchmarks)",
    )
    how.add_argument(
        "--floors",
        action="store_true",
        help="also evaluate the sanity floors (baseline:silent, guess, random, refuse) and show them beside the agent",
    )
    how.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    add_executor_arguments(how)
    add_connection_arguments(p)
    add_external_arguments(p, user_server=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from schemas.errors import ConfigError
    from simulator.eval import EvalConfig, render_results, run_eval
    from simulator.run.ray_executor import ExecutorError

    executor = ray_executor(args)  # a missing extra stops here, before any work
    external = external_spec(args)
    if external is not None and executor is not None:
        raise ConfigError("--executor ray with --server/--url is not supported: run the trials in one process")
    config = EvalConfig(
        agent=args.agent,
        out_dir=args.out,
        seed=args.seed,
        trials=args.trials,
        source=args.scenarios,
        limit=args.limit,
        user=args.user,
        mode=Mode(args.mode),
        concurrency=args.concurrency,
        tool_server=args.tool_server,
        pool_size=args.pool_size,
        max_turns=args.max_turns,
        turn_timeout_s=args.turn_timeout,
        timeout_s=args.timeout,
        mistake_rate=args.mistake_rate,
        confidence=args.confidence,
        progress=not args.no_progress,
        text_only=args.text_only,
        external=external,
        floors=args.floors,
        agent_env=tuple(dict.fromkeys(args.agent_env)),
        max_message_chars=args.max_message_chars,
        retry_failed=args.retry_failed,
        stop_on_signals=True,
        settings=effective_settings(args),
        executor=executor,
    )
    setup = llm_setup([args.agent, args.user], args)  # a missing key stops here, before any work
    with contextlib.ExitStack() as stack:
        if executor is not None:
            describe(executor, args.concurrency, stack)  # starts (or joins) the Ray cluster
        try:
            if setup is None:
                outcome = anyio.run(functools.partial(run_eval, config))
            else:
                from simulator.llm import use_setup

                async def evaluate() -> Any:
                    try:
                        return await run_eval(config)
                    finally:
                        await setup.pool.aclose()

                with use_setup(setup):
                    outcome = anyio.run(evaluate)
        except ExecutorError as exc:  # the run's workers were lost: what was written stays
            print(f"dialogsim: error: {exc}", file=sys.stderr)
            return 1
    console = Console()
    for table in render_results(outcome.results):
        console.print(table)
    for spec, floor in outcome.floor_runs.items():
        console.print(
            f"floor {spec}: {floor.generated} new dialogues, {floor.skipped} already present, in "
            f"{floor.elapsed_s:.1f} s",
            highlight=False,
        )
    console.print(run_line(outcome.run, outcome.results_path).replace("; summary in", "; results in"), highlight=False)
    return interrupted_exit(outcome.run)
