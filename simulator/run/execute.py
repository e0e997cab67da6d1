"""A run: many scenarios under one config, written to a dataset that survives ``kill -9``.

The dataset directory and its files belong to ``simulator.run.dataset``. Running the same
command again cuts a partial last line away, skips the scenarios whose records are
present and runs the others: nothing is lost or duplicated.
Asking for more dialogues on a later run extends the dataset; changing anything that
decides *what* is generated (seed, mode, domains, database, dialogue settings) is refused.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from schemas import (
    RECORD_VERSION,
    DialogueEnded,
    DialogueRecord,
    Environment,
    ErrorEvent,
    Event,
    Mode,
    Scenario,
    TaskOutcome,
    TerminationReason,
    ToolCall,
    ToolResult,
)
from schemas.errors import ConfigError
from simulator.dialogue.runner import DialogueConfig, EventSink, run_dialogue
from simulator.run.dataset import (
    DATASET_FILE,
    ENVIRONMENTS_DIR,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    SUMMARY_FILE,
    DatasetFile,
    check_out_dir,
    iter_records,
    read_manifest,
    scan_dataset,
    write_atomic,
)
from simulator.summary import Summary, compute_dialogue_metrics, messages_from_events, summarize
from toolservers import save_environment

__all__ = [
    "DATASET_FILE",
    "ENVIRONMENTS_DIR",
    "FAILURE_REASONS",
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "SUMMARY_FILE",
    "DialogueFn",
    "Planner",
    "PreparedRun",
    "RunConfig",
    "RunStats",
    "RunSummary",
    "execute_run",
    "fingerprint",
    "iter_records",
    "prepare_run",
    "read_manifest",
]

#: Endings that mean the dialogue broke rather than ran its course (counted as "failed").
FAILURE_REASONS = frozenset(
    {
        TerminationReason.AGENT_FAILURE,
        TerminationReason.USER_FAILURE,
        TerminationReason.TOOL_FAILURE,
        TerminationReason.TIMEOUT,
    }
)

#: DialogueConfig fields that change how a run executes but not what it generates: the
#: transport, and every time limit (any field named ``*timeout_s``).
_RUNTIME_ONLY = frozenset({"transport"})
#: Extra time the run gives a dialogue beyond its own timeout before cutting it off.
_GUARD_GRACE_S = 60.0


class DialogueFn(Protocol):
    """Runs one dialogue, like :func:`simulator.dialogue.runner.run_dialogue` (the default)."""

    def __call__(
        self,
        scenario: Scenario,
        environment: Environment,
        config: DialogueConfig,
        *,
        on_event: EventSink | None = None,
    ) -> Awaitable[DialogueRecord]: ...


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """What to generate and where.

    ``domains`` empty means every built-in domain, unless ``database`` is given (then only
    the environment derived from it). ``branch_from`` (with ``at_turn`` and ``variants``)
    continues the dialogues of an existing dataset instead; then ``dialogues`` caps the
    number of branched scenarios (0: all of them).
    """

    dialogues: int
    seed: int
    out_dir: Path
    concurrency: int = 8
    mode: Mode = Mode.USER_ORIENTED
    domains: tuple[str, ...] = ()
    database: Path | None = None
    dialogue: DialogueConfig = field(default_factory=DialogueConfig)
    branch_from: Path | None = None
    at_turn: int = 0
    variants: int = 1


def fingerprint(config: RunConfig) -> dict[str, Any]:
    """The settings that decide *what* a run generates, as plain JSON values.

    Two runs with equal fingerprints write the same records for the same scenario ids,
    so they may share a dataset. The number of dialogues, the concurrency, the transport
    and the time limits are left out: they may change between resumes.
    """
    dialogue = msgspec.to_builtins(config.dialogue, enc_hook=str)
    fp: dict[str, Any] = {
        "record_version": RECORD_VERSION,
        "seed": config.seed,
        "mode": config.mode.value,
        "domains": list(dict.fromkeys(config.domains)),
        "database": str(config.database.resolve()) if config.database is not None else None,
        "dialogue": {
            k: v for k, v in sorted(dialogue.items()) if k not in _RUNTIME_ONLY and not k.endswith("timeout_s")
        },
    }
    if config.branch_from is not None:
        fp["branch"] = {
            "from": str(config.branch_from.resolve()),
            "at_turn": config.at_turn,
            "variants": config.variants,
        }
    return fp


Planner = Callable[[RunConfig], tuple[Sequence[Environment], Sequence[Scenario]]]
"""Builds a run's environments and scenarios from its config; raises ConfigError for bad input."""


@dataclass(frozen=True)
class PreparedRun:
    """A validated run, ready to execute: nothing has been written yet."""

    config: RunConfig
    fingerprint: dict[str, Any]
    environments: dict[str, Environment]
    #: Every scenario of the run, in the planner's order.
    scenarios: tuple[Scenario, ...]
    #: The scenarios still to run (those with no record in the dataset yet).
    pending: tuple[Scenario, ...]
    #: Scenario ids already in the dataset file.
    done_ids: frozenset[str]
    has_manifest: bool
    #: Where to cut the dataset file (a trailing partial line starts there), if anywhere.
    truncate_at: int | None

    @property
    def skipped(self) -> int:
        """How many of this run's scenarios already have a record."""
        return len(self.scenarios) - len(self.pending)


class RunSummary(msgspec.Struct, kw_only=True):
    """What one invocation did, and the summary of the whole dataset after it."""

    out_dir: str
    #: Scenarios this invocation asked for, and how many of them already had a record.
    requested: int
    skipped: int
    generated: int
    failed: int
    elapsed_s: float
    dialogues_per_s: float
    dataset: Summary


# --------------------------------------------------------------------------- prepare


def prepare_run(config: RunConfig, *, planner: Planner | None = None) -> PreparedRun:
    """Check everything a run needs before any work, and build its scenarios.

    Raises ConfigError — and leaves ``out_dir`` untouched — for a bad setting, an unknown
    domain, a bad database, a missing branch source, or an ``out_dir`` that holds
    something else: a file, a foreign directory, a dataset of another record version or
    generated with another config. ``planner`` replaces how environments and scenarios
    are built (tests use it); by default built-in domains, a derived database or a
    branch source are used.
    """
    _check_settings(config)
    fp = fingerprint(config)
    out = config.out_dir
    has_manifest = check_out_dir(out, fp)
    done_ids, truncate_at = scan_dataset(out / DATASET_FILE)

    environments, scenarios = (planner or _default_planner)(config)
    env_by_id: dict[str, Environment] = {}
    for env in environments:
        if env.id in env_by_id and env_by_id[env.id] != env:
            raise ConfigError(f"two different environments are both called {env.id!r}")
        if not env.id or "/" in env.id or "\\" in env.id or env.id.startswith("."):
            raise ConfigError(f"environment id {env.id!r} cannot be used as a file name")
        env_by_id[env.id] = env
    for scenario in scenarios:
        if scenario.environment_id not in env_by_id:
            raise ValueError(
                f"scenario {scenario.id!r} uses environment {scenario.environment_id!r}, which the run does not have"
            )

    seen: set[str] = set()
    pending: list[Scenario] = []
    for scenario in scenarios:
        if scenario.id not in done_ids and scenario.id not in seen:
            pending.append(scenario)
        seen.add(scenario.id)
    return PreparedRun(
        config=config,
        fingerprint=fp,
        environments=env_by_id,
        scenarios=tuple(scenarios),
        pending=tuple(pending),
        done_ids=frozenset(done_ids),
        has_manifest=has_manifest,
        truncate_at=truncate_at,
    )


def _check_settings(config: RunConfig) -> None:
    least_dialogues = 0 if config.branch_from is not None else 1
    if config.dialogues < least_dialogues:
        raise ConfigError(f"dialogues: expected at least {least_dialogues}, got {config.dialogues}")
    if config.concurrency < 1:
        raise ConfigError(f"concurrency: expected at least 1, got {config.concurrency}")
    d = config.dialogue
    if d.transport not in ("inprocess", "stdio", "http"):
        raise ConfigError(f"transport: expected inprocess, stdio or http, got {d.transport!r}")
    if d.max_turns < 1:
        raise ConfigError(f"max turns: expected at least 1, got {d.max_turns}")
    if not 0.0 <= d.agent_mistake_rate <= 1.0:
        raise ConfigError(f"mistake rate: expected a number from 0 to 1, got {d.agent_mistake_rate}")
    if not d.timeout_s > 0:
        raise ConfigError(f"timeout: expected a positive number of seconds, got {d.timeout_s}")
    if config.branch_from is not None:
        if config.domains or config.database is not None:
            raise ConfigError("--branch-from takes its environments from the source dataset; drop --domain/--database")
        if config.at_turn < 1:
            raise ConfigError(f"--at-turn: expected at least 1 with --branch-from, got {config.at_turn}")
        if config.variants < 1:
            raise ConfigError(f"--variants: expected at least 1, got {config.variants}")
        src = config.branch_from
        if not (src / DATASET_FILE).is_file():
            raise ConfigError(f"branch source {src}: not a dataset directory (no {DATASET_FILE} in it)")
        if src.resolve() == config.out_dir.resolve():
            raise ConfigError(f"branch source {src} is also the output directory; choose another --out")


# --------------------------------------------------------------------------- planning


def _default_planner(config: RunConfig) -> tuple[Sequence[Environment], Sequence[Scenario]]:
    if config.branch_from is not None:
        # Branching (simulator.run.branch): continue the dialogues of an existing dataset.
        from simulator.run.branch import branch_scenarios

        branched_envs, branched = branch_scenarios(
            config.branch_from, at_turn=config.at_turn, variants=config.variants, seed=config.seed
        )
        return branched_envs, branched[: config.dialogues] if config.dialogues else branched

    from simulator.domains import domain_names, load_domain
    from simulator.offline.scenarios import build_scenarios

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
        from toolservers.derive import derive_environment

        environments.append(derive_environment(config.database))
    scenarios = build_scenarios(environments, count=config.dialogues, seed=config.seed, mode=config.mode)
    return environments, scenarios


# --------------------------------------------------------------------------- execute


@dataclass
class RunStats:
    """Run-level aggregates, fed by every dialogue's events and every finished record."""

    total: int
    already: int = 0
    done: int = 0
    failed: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    started: float = field(default_factory=time.monotonic)

    def observe(self, event: Event) -> None:
        if isinstance(event, ToolCall):
            self.tool_calls += 1
        elif isinstance(event, ToolResult) and event.is_error:
            self.tool_errors += 1

    def finished(self, record: DialogueRecord) -> None:
        self.done += 1
        if record.error or record.termination in FAILURE_REASONS:
            self.failed += 1

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Dialogues finished per second by this invocation."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0


class _Display:
    """The progress bar on stderr; shown only on a terminal and when asked for."""

    def __init__(self, stats: RunStats, *, enabled: bool) -> None:
        console = Console(stderr=True)
        self._stats = stats
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed [red]{task.fields[failed]}[/]"),
            TextColumn("tool calls {task.fields[tool_calls]} ({task.fields[tool_errors]} err)"),
            TextColumn("{task.fields[rate]:.1f}/s"),
            TimeElapsedColumn(),
            console=console,
            disable=not (enabled and console.is_terminal),
        )
        self._task = self._progress.add_task(
            "dialogues",
            total=stats.already + stats.total,
            completed=stats.already,
            failed=0,
            tool_calls=0,
            tool_errors=0,
            rate=0.0,
        )

    def __enter__(self) -> _Display:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.update()
        self._progress.stop()

    def update(self) -> None:
        s = self._stats
        self._progress.update(
            self._task,
            completed=s.already + s.done,
            failed=s.failed,
            tool_calls=s.tool_calls,
            tool_errors=s.tool_errors,
            rate=s.rate,
        )


def _dialogsim_version() -> str:
    try:
        return importlib.metadata.version("dialogsim")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _set_up_out_dir(prepared: PreparedRun) -> DatasetFile:
    out = prepared.config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    if not prepared.has_manifest:
        manifest = {
            "format": MANIFEST_FORMAT,
            "record_version": RECORD_VERSION,
            "dialogsim_version": _dialogsim_version(),
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "fingerprint": prepared.fingerprint,
        }
        write_atomic(out / MANIFEST_FILE, json.dumps(manifest, indent=2).encode() + b"\n")
    env_dir = out / ENVIRONMENTS_DIR
    env_dir.mkdir(exist_ok=True)
    for env in prepared.environments.values():
        save_environment(env, env_dir / f"{env.id}.json")
    return DatasetFile(out / DATASET_FILE, truncate_at=prepared.truncate_at)


def _broken_record(
    scenario: Scenario,
    events: list[Event],
    reason: TerminationReason,
    exc: BaseException,
    *,
    started_at: float,
    duration_s: float,
) -> DialogueRecord:
    """The record of a dialogue whose function raised: what it published, then the error."""
    if reason is TerminationReason.TIMEOUT:
        error = f"the dialogue did not finish within the run's limit ({exc.__class__.__name__})"
    else:
        error = f"the dialogue function raised {type(exc).__name__}: {exc}"
    seq = max((e.seq for e in events), default=0)
    events = [
        *events,
        ErrorEvent(
            dialogue_id=scenario.id,
            seq=seq + 1,
            where="run",
            error_type=type(exc).__name__,
            message="".join(traceback.format_exception(exc)).rstrip(),
        ),
        DialogueEnded(dialogue_id=scenario.id, seq=seq + 2, reason=reason, detail=error),
    ]
    messages = messages_from_events(events)
    return DialogueRecord(
        id=scenario.id,
        scenario=scenario,
        messages=messages,
        events=events,
        outcomes=[TaskOutcome(task_id=t.id, success=False) for t in scenario.tasks],
        metrics=compute_dialogue_metrics(messages, events, len(scenario.tasks)),
        termination=reason,
        success=False,
        started_at=started_at,
        duration_s=duration_s,
        error=error,
    )


async def _run_one(
    scenario: Scenario,
    environment: Environment,
    config: DialogueConfig,
    dialogue_fn: DialogueFn,
    stats: RunStats,
    display: _Display,
) -> DialogueRecord:
    """The run's one catch-all boundary: whatever ``dialogue_fn`` does, a record comes out."""
    events: list[Event] = []

    async def on_event(event: Event) -> None:
        events.append(event)
        stats.observe(event)
        if isinstance(event, ToolCall):
            display.update()

    sink: EventSink = on_event
    started_at = time.time()
    t0 = time.monotonic()
    try:
        with anyio.fail_after(config.timeout_s + _GUARD_GRACE_S):
            record: DialogueRecord = await dialogue_fn(scenario, environment, config, on_event=sink)
    except TimeoutError as exc:
        return _broken_record(
            scenario,
            events,
            TerminationReason.TIMEOUT,
            exc,
            started_at=started_at,
            duration_s=time.monotonic() - t0,
        )
    except Exception as exc:  # a bug in a dialogue must not end the run
        return _broken_record(
            scenario,
            events,
            TerminationReason.AGENT_FAILURE,
            exc,
            started_at=started_at,
            duration_s=time.monotonic() - t0,
        )
    if not isinstance(record, DialogueRecord) or record.scenario.id != scenario.id:
        got = record.scenario.id if isinstance(record, DialogueRecord) else type(record).__name__
        problem = TypeError(f"expected the DialogueRecord of scenario {scenario.id!r}, got {got!r}")
        return _broken_record(
            scenario,
            events,
            TerminationReason.AGENT_FAILURE,
            problem,
            started_at=started_at,
            duration_s=time.monotonic() - t0,
        )
    return record


async def execute_run(
    prepared: PreparedRun,
    *,
    dialogue_fn: DialogueFn = run_dialogue,
    progress: bool = True,
) -> RunSummary:
    """Run the pending scenarios of ``prepared`` and return the summary of the dataset.

    Writes the manifest (once), the environments and one record per dialogue as it
    finishes; at the end writes ``summary.json``. At most ``concurrency`` dialogues run at
    a time, all in this event loop. A dialogue function that raises produces a failed
    record (termination ``agent_failure``, or ``timeout`` past the run's limit), never an
    aborted run; errors writing the dataset do abort it.
    """
    config = prepared.config
    dataset = _set_up_out_dir(prepared)
    stats = RunStats(total=len(prepared.pending), already=prepared.skipped)
    workers = max(1, min(config.concurrency, len(prepared.pending)))
    send, receive = anyio.create_memory_object_stream[Scenario](max_buffer_size=0)

    async def worker(scenarios: MemoryObjectReceiveStream[Scenario], display: _Display) -> None:
        async with scenarios:
            async for scenario in scenarios:
                env = prepared.environments[scenario.environment_id]
                record = await _run_one(scenario, env, config.dialogue, dialogue_fn, stats, display)
                dataset.append(record)
                stats.finished(record)
                display.update()

    try:
        with _Display(stats, enabled=progress) as display:
            async with anyio.create_task_group() as tg:
                for _ in range(workers):
                    tg.start_soon(worker, receive.clone(), display)
                receive.close()
                async with send:
                    for scenario in prepared.pending:
                        await send.send(scenario)
    finally:
        dataset.close()

    elapsed = stats.elapsed
    summary = RunSummary(
        out_dir=str(config.out_dir),
        requested=len(prepared.scenarios),
        skipped=prepared.skipped,
        generated=stats.done,
        failed=stats.failed,
        elapsed_s=round(elapsed, 3),
        dialogues_per_s=round(stats.rate, 3),
        dataset=summarize(record for _, record in iter_records(config.out_dir)),
    )
    write_atomic(
        config.out_dir / SUMMARY_FILE,
        msgspec.json.format(msgspec.json.encode(summary), indent=2) + b"\n",
    )
    return summary
