"""An evaluation run: K trials of every scenario with the agent under test, scored.

The output directory holds::

    eval.json      the settings that decide what is evaluated (agent, user, source, seed...)
    records/       a dataset directory (simulator.run.execute): manifest, environments/, one
                   DialogueRecord per trial in dialogues.jsonl, summary.json
    results.json   the scores (simulator.eval.scoring), rewritten at the end of each run
    floors/NAME/   with ``floors``: the same evaluation of each sanity floor
                   (``baseline:NAME``, simulator.eval.baselines), whose summaries the
                   results carry next to the agent's

Trials are dialogues of their own: trial ``k`` of scenario ``S`` is dialogue ``S~tk``,
with its own dialogue seed derived from (seed, scenario, k). Every agent evaluated with
the same seed gets the same scenarios and, trial by trial, the same user seeds, so
differences between two agents come from the agents. The run reuses the dataset
machinery of ``dialogsim generate``: it is safe to kill, and the same command resumes
it without losing or repeating a trial; more ``--trials`` later extend it; other
settings that decide what is evaluated or how it ends (the agent, the source, the time
limits, the message cap...) are refused for the same directory. How the trials are run
(concurrency, tool server, executor) may change.

Tools are served to every agent through the connector of the run: each dialogue's
in-process tool server is mounted on one loopback HTTP host (URL, token and a stdio
relay for outside agents), or, with ``tool_server="pool"``, served by a pre-started
stdio worker.

Outside agents never see the evaluator's environment: ``cmd:`` agents get the
allow-listed one (``simulator.eval.agents.agent_environment``, plus ``agent_env``), and
before a ``python:`` agent is imported the provider keys and secret-looking variables are
deleted from ``os.environ`` (``scrub_environment``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from schemas import DialogueRecord, Environment, Event, Mode, Scenario, TaskOutcome
from schemas.errors import ConfigError
from simulator.dialogue.brains import resolve_agent, resolve_user
from simulator.dialogue.runner import Connector, DialogueConfig, EventSink, run_dialogue
from simulator.eval.agents import AgentEndpoint, agent_environment, check_cmd_program, scrub_environment
from simulator.eval.baselines import FLOORS
from simulator.eval.scoring import EvalResults, score, trial_id
from simulator.eval.sources import DEFAULT_PER_DOMAIN, ScenarioSource, load_source, resolve_source
from simulator.log import get_logger
from simulator.run.config import RunConfig
from simulator.run.dataset import iter_records, settings_differences
from simulator.run.execute import DialogueFn, Executor, RunSummary, execute_run
from simulator.run.plan import prepare_run
from toolservers.host import ToolHost
from toolservers.server import EventCallback, ProtocolErrorCallback
from toolservers.stdio_pool import StdioPool
from toolservers.transports import Connected, connect_tool_server

__all__ = [
    "EVAL_FILE",
    "FLOORS_DIR",
    "RECORDS_DIR",
    "RESULTS_FILE",
    "EvalConfig",
    "EvalDialogues",
    "EvalOutcome",
    "run_eval",
    "trial_scenarios",
]

EVAL_FILE = "eval.json"
RECORDS_DIR = "records"
RESULTS_FILE = "results.json"
FLOORS_DIR = "floors"
_EVAL_FORMAT = 1
_MANIFEST_NOTE = (
    "the settings of the command that created this evaluation; a later command may have added trials "
    f"(../{RESULTS_FILE} has the trials scored) or changed only how trials run (concurrency, tool server, "
    "executor, retry-failed) or the confidence level"
)

log = get_logger(__name__)

ToolServerMode = Literal["host", "pool"]


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """What to evaluate, how, and where the results go."""

    agent: str
    out_dir: Path
    seed: int = 0
    trials: int = 1
    #: ``--scenarios``: None (every built-in domain), domain names, a file or a dataset.
    source: str | None = None
    #: Scenarios to use (0: a default per domain, or all of a file or dataset).
    limit: int = 0
    user: str = "offline"
    mode: Mode = Mode.USER_ORIENTED
    concurrency: int = 4
    tool_server: ToolServerMode = "host"
    pool_size: int = 2
    max_turns: int = 200
    turn_timeout_s: float = 60.0
    timeout_s: float = 600.0
    #: Mistakes of the built-in offline agent (ignored by other agents).
    mistake_rate: float = 0.1
    confidence: float = 0.95
    progress: bool = True
    #: Give the agent the user's words only, never the offline user's dialogue acts.
    text_only: bool = False
    #: An external MCP server as the environment (``--server``/``--url``, ``simulator.external``):
    #: scenarios are planned over it offline and every dialogue gets its own instance.
    external: Any = None
    #: Also evaluate the sanity floors (``baseline:silent``, ``guess``, ``random``) on the same
    #: scenarios and trials, each in ``out_dir/floors/NAME``, and report them beside the agent.
    floors: bool = False
    #: Environment variables granted to outside agents besides the allow-list (``--agent-env``).
    agent_env: tuple[str, ...] = ()
    #: Longest agent message the user is given (characters); longer ones are cut, with a note.
    max_message_chars: int = 32_000
    #: Run again the trials that failed on the infrastructure's side (``simulator.run.retry``).
    retry_failed: bool = False
    #: Stop cleanly on SIGINT / SIGTERM (the command line; needs the main thread).
    stop_on_signals: bool = False
    #: The command's merged settings (defaults, ``--config`` file, flags), kept in the records' manifest.
    settings: dict[str, Any] = field(default_factory=dict, compare=False)
    #: Where the trials run (None: in this process); e.g. ``simulator.run.ray_executor.RayExecutor``.
    executor: Executor | None = field(default=None, compare=False)


@dataclass(frozen=True)
class EvalOutcome:
    """What ``run_eval`` did: the run's summary and the scores of the whole evaluation."""

    run: RunSummary
    results: EvalResults
    results_path: Path
    #: With ``floors``: the run of each floor, by agent spec.
    floor_runs: dict[str, RunSummary] = dataclasses.field(default_factory=dict)


def _trial_seed(seed: int, scenario: Scenario, trial: int) -> int:
    digest = hashlib.sha256(f"eval:{seed}:{scenario.seed}:{scenario.id}:{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def trial_scenarios(scenarios: Sequence[Scenario], *, trials: int, seed: int) -> list[Scenario]:
    """Every scenario once per trial (trial-major order): same tasks, a per-trial id and seed."""
    return [
        msgspec.structs.replace(s, id=trial_id(s.id, k), seed=_trial_seed(seed, s, k))
        for k in range(1, trials + 1)
        for s in scenarios
    ]


def _check(config: EvalConfig, agent_env: Mapping[str, str]) -> None:
    if config.trials < 1:
        raise ConfigError(f"--trials: expected at least 1, got {config.trials}")
    if config.limit < 0:
        raise ConfigError(f"--limit: expected 0 or more, got {config.limit}")
    if not 0 < config.confidence < 1:
        raise ConfigError(f"--confidence: expected a number between 0 and 1, got {config.confidence}")
    if config.tool_server not in ("host", "pool"):
        raise ConfigError(f"--tool-server: expected host or pool, got {config.tool_server!r}")
    if config.pool_size < 1:
        raise ConfigError(f"--pool-size: expected at least 1, got {config.pool_size}")
    if not config.turn_timeout_s > 0:
        raise ConfigError(f"--turn-timeout: expected a positive number of seconds, got {config.turn_timeout_s}")
    if config.max_message_chars < 1:
        raise ConfigError(f"--max-message-chars: expected at least 1, got {config.max_message_chars}")
    # Checks the specs now (an unknown scheme, a module that does not import), not per dialogue.
    resolve_agent(config.agent)
    resolve_user(config.user)
    scheme, _, command = config.agent.partition(":")
    if scheme == "cmd":
        check_cmd_program(command, path=agent_env.get("PATH"))


#: Settings recorded in eval.json since after its format 1 came out: one an older eval.json
#: lacks is taken to be this run's (it cannot be checked) and is recorded from now on.
_RECORDED_LATER = ("turn_timeout", "dialogue_timeout", "max_message_chars", "call_timeout")


def _settings(config: EvalConfig, source: ScenarioSource) -> dict[str, Any]:
    """What decides what is evaluated and how a trial can end; the trials may grow, the rest must stay."""
    return {
        "format": _EVAL_FORMAT,
        "agent": config.agent,
        "user": config.user,
        "source": source.label,
        "limit": config.limit,
        "seed": config.seed,
        "mode": config.mode.value,
        "max_turns": config.max_turns,
        "mistake_rate": config.mistake_rate,
        **({"text_only": True} if config.text_only else {}),
        "turn_timeout": config.turn_timeout_s,
        "dialogue_timeout": config.timeout_s,
        "max_message_chars": config.max_message_chars,
    }


def _check_out_dir(out: Path, settings: dict[str, Any]) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    if not out.exists():
        return
    path = out / EVAL_FILE
    if not path.exists():
        if any(p.name not in {RECORDS_DIR, FLOORS_DIR} for p in out.iterdir()):
            raise ConfigError(f"{out}: is not empty and holds no evaluation; choose a new or empty --out")
        return
    try:
        theirs = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be read as an evaluation's settings: {exc}") from None
    theirs = {**{k: settings[k] for k in _RECORDED_LATER if k in settings}, **theirs}
    differences = settings_differences(theirs, settings)
    if differences:
        raise ConfigError(
            f"{out}: holds an evaluation with other settings ({differences}); "
            "use the same settings to resume or extend it, or another --out"
        )


@dataclass(eq=False)
class _EvalConnection(Connected):
    endpoint: AgentEndpoint | None = None


def host_connector(host: ToolHost, *, agent_env: Mapping[str, str] | None = None) -> Connector:
    """Serve each dialogue's tool server in process and mount it on ``host`` for outside agents.

    ``agent_env`` is what outside agents' process environment is built from (default: the allow-list).
    """

    @asynccontextmanager
    async def connect(
        environment: Environment,
        *,
        transport: str = "inprocess",
        on_event: EventCallback | None = None,
        on_protocol_error: ProtocolErrorCallback | None = None,
        dialogue_id: str = "",
        base_dir: Path | None = None,
        database: Path | None = None,
    ) -> AsyncIterator[Connected]:
        async with connect_tool_server(
            environment,
            transport="inprocess",
            on_event=on_event,
            on_protocol_error=on_protocol_error,
            dialogue_id=dialogue_id,
            base_dir=base_dir,
            database=database,
        ) as conn:
            assert conn.tool_server is not None
            async with AsyncExitStack() as mounted:
                mount = await mounted.enter_async_context(host.mount(conn.tool_server, name=dialogue_id))

                async def close() -> None:
                    # Unmount first: nothing from outside may change the state being verified.
                    await mounted.aclose()
                    await conn.finish()

                yield _EvalConnection(
                    conn.client,
                    conn.database,
                    conn.transport,
                    conn.tool_server,
                    close,
                    endpoint=AgentEndpoint(url=mount.url, token=mount.token, stdio=mount.stdio, environment=agent_env),
                )

    return connect


def external_host_connector(
    connector: Connector, host: ToolHost, agent_env: Mapping[str, str] | None = None
) -> Connector:
    """An external server's dialogues with their recording proxy mounted on ``host``, for ``cmd:`` agents.

    The agent's process reaches the proxy over HTTP (or its stdio relay), so every call is
    recorded as for the built-in environments. The mount is removed before the tasks are
    checked and before the instance is closed.
    """
    from simulator.external.connect import ExternalConnection

    @asynccontextmanager
    async def connect(environment: Environment, **kwargs: Any) -> AsyncIterator[Connected]:
        async with connector(environment, **kwargs) as conn:
            assert isinstance(conn, ExternalConnection) and conn.proxy is not None
            async with AsyncExitStack() as mounted:
                mount = await mounted.enter_async_context(host.mount(conn.proxy, name=kwargs.get("dialogue_id", "")))
                close, verify = conn._close, conn.verify

                async def unmounted_close() -> None:
                    await mounted.aclose()
                    await close()

                async def unmounted_verify(scenario: Scenario, events: list[Event]) -> list[TaskOutcome]:
                    await mounted.aclose()  # nothing from outside may change the state being checked
                    assert verify is not None
                    return await verify(scenario, events)

                conn._close = unmounted_close
                conn.verify = unmounted_verify if verify is not None else None
                conn.endpoint = AgentEndpoint(
                    url=mount.url, token=mount.token, stdio=mount.stdio, environment=agent_env
                )
                yield conn

    return connect


def pool_connector(pool: StdioPool, *, agent_env: Mapping[str, str] | None = None) -> Connector:
    """Serve each dialogue's tools from a pre-started stdio worker (outside agents get its relay)."""

    @asynccontextmanager
    async def connect(
        environment: Environment,
        *,
        transport: str = "stdio",
        on_event: EventCallback | None = None,
        on_protocol_error: ProtocolErrorCallback | None = None,
        dialogue_id: str = "",
        base_dir: Path | None = None,
        database: Path | None = None,
    ) -> AsyncIterator[Connected]:
        async with pool.connect(
            environment,
            on_event=on_event,
            on_protocol_error=on_protocol_error,
            dialogue_id=dialogue_id,
            base_dir=base_dir,
            database=database,
        ) as conn:

            async def close() -> None:
                await conn.finish()

            yield _EvalConnection(
                conn.client,
                conn.database,
                conn.transport,
                None,
                close,
                endpoint=AgentEndpoint(url=None, token=None, stdio=conn.stdio, environment=agent_env),
            )

    return connect


@dataclass(frozen=True)
class EvalDialogues:
    """The evaluation's dialogue function, opened in every process that runs trials.

    Serves each dialogue's tools through one loopback HTTP host (``host``) or a pool of
    pre-started stdio workers (``pool``) of that process, so that outside agents reach
    them; picklable, so that each Ray worker opens its own. ``agent_env`` is the
    environment outside agents get; ``scrub_keep``, for a ``python:`` agent, scrubs the
    process's own environment first (keeping those names), as the driver did.
    """

    tool_server: ToolServerMode = "host"
    pool_size: int = 2
    base_dir: Path | None = None
    agent_env: tuple[tuple[str, str], ...] = ()
    scrub_keep: tuple[str, ...] | None = None
    #: An external MCP server (``--server``/``--url``): one instance per trial, started by this process.
    external: Any = None
    #: Mount the external server's recording proxy on a loopback host (for ``cmd:`` agents).
    mount_external: bool = False

    @asynccontextmanager
    async def __call__(self, environments: Sequence[Environment], total: int | None) -> AsyncIterator[DialogueFn]:
        if self.scrub_keep is not None:
            scrub_environment(os.environ, keep=self.scrub_keep)  # before any agent is imported here
        agent_env = dict(self.agent_env)
        async with AsyncExitStack() as stack:
            connector: Connector = connect_tool_server
            if total == 0:
                pass  # everything is recorded already: serve nothing
            elif self.external is not None:
                from simulator.external.connect import ExternalRun

                external = await stack.enter_async_context(ExternalRun(self.external, environments[0]))
                connector = external.connector()
                if self.mount_external:
                    host = await stack.enter_async_context(ToolHost())
                    connector = external_host_connector(connector, host, agent_env)
            elif self.tool_server == "pool":
                size = self.pool_size if total is None else min(self.pool_size, total)
                pool = await stack.enter_async_context(StdioPool(size, total=total, environments=environments))
                connector = pool_connector(pool, agent_env=agent_env)
            else:
                host = await stack.enter_async_context(ToolHost())
                connector = host_connector(host, agent_env=agent_env)
            base_dir = self.base_dir

            async def dialogue_fn(
                scenario: Scenario,
                environment: Environment,
                config: DialogueConfig,
                *,
                on_event: EventSink | None = None,
            ) -> DialogueRecord:
                return await run_dialogue(
                    scenario, environment, config, on_event=on_event, base_dir=base_dir, connect=connector
                )

            yield dialogue_fn


async def run_eval(config: EvalConfig) -> EvalOutcome:
    """Run (or resume) the evaluation ``config`` describes and score it; with ``floors``, the
    sanity floors too (each its own evaluation under ``floors/``), carried in the results.

    Raises ConfigError, before any work, for a bad setting, an unknown agent or user
    spec, a bad source, a granted ``agent_env`` variable that is not set, or an output
    directory that holds something else. For a ``python:`` agent, deletes provider keys
    and secret-looking variables from ``os.environ`` before importing it (keys the run
    needs must have been read into its LLM setup already).
    """
    outcome = await _run_eval(config)
    if not config.floors or outcome.run.interrupted:
        return outcome
    floors = {}
    runs = {}
    for name in FLOORS:
        floor = dataclasses.replace(
            config,
            agent=f"baseline:{name}",
            out_dir=config.out_dir / FLOORS_DIR / name,
            floors=False,
            text_only=True,
        )
        done = await _run_eval(floor)
        runs[floor.agent] = done.run
        if done.run.interrupted:  # stopped by a signal: the next command resumes the floors
            break
        floors[floor.agent] = done.results.summary
    results = msgspec.structs.replace(outcome.results, floors=floors)
    _write_results(outcome.results_path, results)
    return EvalOutcome(run=outcome.run, results=results, results_path=outcome.results_path, floor_runs=runs)


def _write_results(path: Path, results: EvalResults) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(results), indent=2) + b"\n")
    tmp.replace(path)


async def _run_eval(config: EvalConfig) -> EvalOutcome:
    agent_env = agent_environment(config.agent_env)
    if config.agent.partition(":")[0] == "python":
        removed = scrub_environment(os.environ, keep=config.agent_env)
        if removed:
            log.info("agent_environment_scrubbed", removed=removed)
    _check(config, agent_env)
    if config.external is not None:
        from simulator.external.execute import plan_external

        if config.source is not None:
            raise ConfigError("--scenarios goes with the built-in environments; --server/--url plans its own")
        if config.tool_server == "pool":
            raise ConfigError("--tool-server pool serves built-in environments; use --server-pool N with --server")
        env, base = await plan_external(
            config.external, count=config.limit or DEFAULT_PER_DOMAIN, seed=config.seed, mode=config.mode
        )
        environments, base_dir = [env], None
        source = ScenarioSource("domains", (env.id,))
    else:
        source = resolve_source(config.source)
        environments, base, base_dir = load_source(source, seed=config.seed, mode=config.mode, limit=config.limit)
    scenarios = trial_scenarios(base, trials=config.trials, seed=config.seed)
    settings = _settings(config, source)
    if config.external is not None:
        settings["source"] = "external"
        settings["external"] = config.external.describe()
        settings["call_timeout"] = config.external.call_timeout_s
    out = config.out_dir
    _check_out_dir(out, settings)
    records_dir = out / RECORDS_DIR
    run_config = RunConfig(
        dialogues=len(scenarios),
        seed=config.seed,
        out_dir=records_dir,
        concurrency=config.concurrency,
        mode=config.mode,
        domains=source.domains,
        external=config.external.describe() if config.external is not None else None,
        dialogue=DialogueConfig(
            transport="inprocess",
            max_turns=config.max_turns,
            timeout_s=config.timeout_s,
            turn_timeout_s=config.turn_timeout_s,
            agent_mistake_rate=config.mistake_rate,
            agent=config.agent,
            user=config.user,
            agent_sees_acts=not config.text_only,
            max_message_chars=config.max_message_chars,
        ),
        retry_failed=config.retry_failed,
        # The manifest is written once: say so, where the later runs' trials are.
        settings={"recorded": _MANIFEST_NOTE, **config.settings} if config.settings else {},
    )
    prepared = prepare_run(run_config, planner=lambda _config: (environments, scenarios))
    out.mkdir(parents=True, exist_ok=True)
    (out / EVAL_FILE).write_text(json.dumps(settings, indent=2) + "\n")

    summary = await execute_run(
        prepared,
        dialogues=EvalDialogues(
            tool_server=config.tool_server,
            pool_size=config.pool_size,
            base_dir=base_dir,
            agent_env=tuple(agent_env.items()),
            scrub_keep=tuple(config.agent_env) if config.agent.partition(":")[0] == "python" else None,
            external=config.external,
            mount_external=config.agent.startswith("cmd:"),
        ),
        executor=config.executor,
        progress=config.progress,
        stop_on_signals=config.stop_on_signals,
    )

    wanted = {s.id for s in scenarios}
    records = [record for _, record in iter_records(records_dir) if record.id in wanted]
    results = score(
        records,
        trials=config.trials,
        seed=config.seed,
        confidence=config.confidence,
        agent=config.agent,
        user=config.user,
        text_only=config.text_only,
    )
    results_path = out / RESULTS_FILE
    _write_results(results_path, results)
    return EvalOutcome(run=summary, results=results, results_path=results_path)
