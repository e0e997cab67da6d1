"""A run: many scenarios under one config, written to a dataset that survives ``kill -9``.

The dataset directory and its files belong to ``simulator.run.dataset``. Running the same
command again cuts a partial last line away, skips the scenarios whose records are
present and runs the others: nothing is lost or duplicated.
Asking for more dialogues on a later run extends the dataset; changing anything that
decides *what* is generated (seed, mode, domains, database, dialogue settings) is refused.

With ``stop_on_signals`` (the command line), SIGINT and SIGTERM stop the run within a few
seconds: the dialogues in flight are cancelled (their agents and tool servers shut down)
and leave no record, to be run by the next resume; every record already appended is
whole (each is one ``write``); ``summary.json`` and the returned summary say the run was
interrupted and what it did. A second signal while stopping acts as usual (it kills).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import signal
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream

from schemas import (
    RECORD_VERSION,
    DialogueEnded,
    DialogueRecord,
    Environment,
    ErrorEvent,
    Event,
    Scenario,
    TaskOutcome,
    TerminationReason,
    ToolCall,
)
from schemas.errors import ConfigError, UsageError
from simulator.dialogue.recorder import build_record
from simulator.dialogue.runner import DialogueConfig, EventSink, run_dialogue
from simulator.log import RUN_LOG, bind, get_logger, run_log
from simulator.providers.fleet import EndpointStats, EndpointTally
from simulator.run.builder import scenario_feed
from simulator.run.collector import run_collector
from simulator.run.config import record_failed
from simulator.run.dataset import (
    DATASET_FILE,
    ENVIRONMENTS_DIR,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    SUMMARY_FILE,
    DatasetFile,
    iter_records,
    write_atomic,
)
from simulator.run.plan import PreparedRun, ScenarioPlan
from simulator.run.progress import RunProgress, RunStats
from simulator.summary import Summary, summarize
from toolservers import save_environment

__all__ = [
    "DialogueFactory",
    "DialogueFn",
    "Executor",
    "InProcess",
    "RecordSink",
    "RunSummary",
    "Work",
    "build_checked",
    "execute_run",
    "plain_dialogues",
]

log = get_logger(__name__)

#: Extra time the run gives a dialogue beyond its own timeout before cutting it off.
_GUARD_GRACE_S = 60.0
#: Scenarios built ahead of the workers.
_LOOK_AHEAD = 4


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


class DialogueFactory(Protocol):
    """Opens what a process needs to run dialogues (a tool host, a stdio pool) and yields the function.

    Called once per process that runs dialogues: the driver in process, every Ray worker
    on Ray (so it must pickle: a module-level function or an instance of a module-level
    class). ``total`` is how many dialogues that process will run at most (None: unknown).
    """

    def __call__(
        self, environments: Sequence[Environment], total: int | None
    ) -> AbstractAsyncContextManager[DialogueFn]: ...


@asynccontextmanager
async def plain_dialogues(environments: Sequence[Environment], total: int | None) -> AsyncIterator[DialogueFn]:
    """The default: :func:`run_dialogue`, each dialogue serving its own tool server."""
    yield run_dialogue


def _given(dialogue_fn: DialogueFn) -> DialogueFactory:
    @asynccontextmanager
    async def given(environments: Sequence[Environment], total: int | None) -> AsyncIterator[DialogueFn]:
        yield dialogue_fn

    return given


class Display(Protocol):
    def update(self) -> None: ...


#: Takes each finished record, in the driver: appends it to the dataset, logs and counts it.
RecordSink = Callable[[DialogueRecord], None]


@dataclass(frozen=True, eq=False)
class Work:
    """What an executor runs: the pending scenarios (consumed lazily, each once) and how."""

    #: The run's scenarios, built on demand (``plan.build(i)``; see :meth:`build`).
    plan: ScenarioPlan
    #: The indexes into ``plan`` still to run, in order, each once (consumed lazily).
    pending: Iterator[int]
    environments: Mapping[str, Environment]
    config: DialogueConfig
    #: Dialogues at a time in each process that runs them.
    concurrency: int
    #: How many scenarios ``scenarios`` yields.
    total: int
    dialogues: DialogueFactory
    stats: RunStats
    display: Display
    #: Model endpoint figures of the processes that ran dialogues elsewhere (filled by the executor).
    endpoints: list[EndpointTally] = field(default_factory=list)

    def build(self, index: int) -> Scenario:
        """Scenario ``index`` of the plan, refused (UsageError) if its environment is not the run's."""
        return build_checked(self.plan, index, self.environments)


def build_checked(plan: ScenarioPlan, index: int, environments: Mapping[str, Environment]) -> Scenario:
    """``plan.build(index)``, refused (UsageError) if the scenario's environment is not in ``environments``."""
    return check_built(plan.build(index), environments)


def check_built(scenario: Scenario, environments: Mapping[str, Environment]) -> Scenario:
    """``scenario``, refused (UsageError) if its environment is not in ``environments``."""
    if scenario.environment_id not in environments:
        raise UsageError(
            f"scenario {scenario.id!r} uses environment {scenario.environment_id!r}, which the run does not have"
        )
    return scenario


class Executor(Protocol):
    """Where a run's dialogues run: :class:`InProcess` (the default) or ``simulator.run.ray_executor``.

    ``run`` hands every record to ``sink`` as it finishes, in the driver's event loop; the
    sink alone writes the dataset. It returns when every scenario of ``work`` has a
    record, and raises if it cannot get them all (what was written stays written).
    """

    name: str

    def run(self, work: Work, sink: RecordSink) -> Awaitable[None]: ...


def _feed(work: Work) -> AbstractAsyncContextManager[AsyncIterator[Scenario]]:
    """The pending scenarios in order, planned in a builder process when the run is big enough."""
    plan = work.plan

    def check(index: int, scenario: Scenario) -> Scenario:
        if scenario.id != plan.id_of(index):
            raise AssertionError(f"scenario {index} has id {scenario.id!r}, its plan says {plan.id_of(index)!r}")
        return check_built(scenario, work.environments)

    return scenario_feed(work.pending, work.build, plan.remote, work.total, check)


class InProcess:
    """Every dialogue in this event loop, at most ``concurrency`` at a time."""

    name = "inprocess"

    async def run(self, work: Work, sink: RecordSink) -> None:
        workers = max(1, min(work.concurrency, work.total))
        # Scenarios are built as the workers take them, a few ahead: memory does not grow with the run.
        send, receive = anyio.create_memory_object_stream[Scenario](max_buffer_size=_LOOK_AHEAD)

        async def worker(scenarios: MemoryObjectReceiveStream[Scenario], dialogue_fn: DialogueFn) -> None:
            async with scenarios:
                async for scenario in scenarios:
                    env = work.environments[scenario.environment_id]
                    with bind(dialogue_id=scenario.id):
                        record = await _run_one(scenario, env, work.config, dialogue_fn, work.stats, work.display)
                    sink(record)

        async with work.dialogues(list(work.environments.values()), work.total) as dialogue_fn:
            async with anyio.create_task_group() as tg:
                for _ in range(workers):
                    tg.start_soon(worker, receive.clone(), dialogue_fn)
                receive.close()
                async with send, _feed(work) as scenarios:
                    async for scenario in scenarios:
                        await send.send(scenario)


class RunSummary(msgspec.Struct, kw_only=True):
    """What one invocation did, and the summary of the whole dataset after it."""

    out_dir: str
    #: Scenarios this invocation asked for, and how many of them already had a record.
    requested: int
    skipped: int
    generated: int
    failed: int
    #: Tool calls (and those that failed) seen by this invocation, over all its workers.
    tool_calls: int = 0
    tool_errors: int = 0
    elapsed_s: float
    dialogues_per_s: float
    dataset: Summary
    #: Dialogues with a failed record that this invocation ran again (``--retry-failed``).
    retried: int = 0
    #: The signal that stopped this invocation (``SIGINT``, ``SIGTERM``), or None.
    interrupted: str | None = None
    #: Scenarios asked for that still have no record (left for the next resume).
    not_run: int = 0
    #: Requests, errors and latency of each model endpoint this invocation used (none offline).
    endpoints: list[EndpointStats] = []


def _dialogsim_version() -> str:
    try:
        return importlib.metadata.version("dialogsim")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _set_up_out_dir(prepared: PreparedRun) -> DatasetFile:
    """The run's dataset file, in an output directory set up with its manifest and environments.

    Raises ConfigError, naming the directory and why, when it cannot be written (read-only,
    no space, no permission)."""
    try:
        return _write_out_dir(prepared)
    except OSError as exc:
        error = ConfigError(f"--out {prepared.config.out_dir}: cannot be written: {exc.strerror or exc}")
        error.field = "--out"
        raise error from exc


def _write_out_dir(prepared: PreparedRun) -> DatasetFile:
    out = prepared.config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    if not prepared.has_manifest:
        manifest = {
            "format": MANIFEST_FORMAT,
            "record_version": RECORD_VERSION,
            "dialogsim_version": _dialogsim_version(),
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "fingerprint": prepared.fingerprint,
            "config": prepared.config.settings,
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
    config: DialogueConfig,
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
    return build_record(
        scenario,
        events,
        [TaskOutcome(task_id=t.id, success=False) for t in scenario.tasks],
        reason,
        success=False,
        brains={"user": config.user, "agent": config.agent},
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
    display: Display,
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
    except Exception as exc:  # a timeout, or a bug in a dialogue: neither may end the run
        reason = TerminationReason.TIMEOUT if isinstance(exc, TimeoutError) else TerminationReason.AGENT_FAILURE
        return _broken_record(
            scenario, events, reason, exc, started_at=started_at, duration_s=time.monotonic() - t0, config=config
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
            config=config,
        )
    return record


def _endpoint_stats(remote: Sequence[EndpointTally] = ()) -> list[EndpointStats]:
    """The figures of the model endpoints the dialogues used: this process's, plus ``remote``
    (what Ray workers reported), added up per model and endpoint."""
    from simulator.llm.setup import current_setup

    try:
        local = current_setup().pool.endpoint_tallies()
    except ConfigError:  # offline: no setup installed
        local = []
    if not remote:
        return [t.stats() for t in local]
    merged: dict[tuple[str, str], EndpointTally] = {}
    for tally in [*local, *remote]:
        key = (tally.model, tally.endpoint)
        if key not in merged:
            merged[key] = EndpointTally(tally.model, tally.endpoint)
        merged[key].merge(tally)
    return [t.stats() for t in merged.values()]


def _log_finished(record: DialogueRecord) -> None:
    fields = {
        "termination": record.termination.value,
        "success": record.success,
        "turns": record.metrics.turns,
        "tool_calls": record.metrics.tool_calls,
        "duration_s": round(record.duration_s, 3),
    }
    if record_failed(record):
        log.warning("dialogue_failed", error=record.error, **fields)
    elif record.error:
        log.warning("dialogue_check_failed", error=record.error, **fields)
    else:
        log.info("dialogue_finished", **fields)


async def execute_run(
    prepared: PreparedRun,
    *,
    dialogue_fn: DialogueFn | None = None,
    dialogues: DialogueFactory | None = None,
    executor: Executor | None = None,
    progress: bool = True,
    stop_on_signals: bool = False,
    request_cap: int | None = None,
) -> RunSummary:
    """Run the pending scenarios of ``prepared`` and return the summary of the dataset.

    Writes the manifest (once), the environments and one record per dialogue as it
    finishes; at the end writes ``summary.json``. At most ``concurrency`` dialogues run at
    a time in each process that runs them: by default all in this event loop
    (:class:`InProcess`); ``executor`` runs them elsewhere (``simulator.run.ray_executor``)
    while this process alone writes the dataset. A dialogue function that raises
    produces a failed record (termination ``agent_failure``, or ``timeout`` past the
    run's limit), never an aborted run; errors writing the dataset do abort it.
    ``dialogues`` opens the dialogue function in each process (default: plain
    :func:`run_dialogue`); ``dialogue_fn`` gives one directly (in process only).
    ``stop_on_signals`` makes SIGINT and SIGTERM stop the run cleanly (see the module
    docstring); it needs the main thread. Scenarios are built as the executor takes them (a
    few ahead). ``request_cap``, when a model's requests in flight are capped below
    ``concurrency``, is shown on the progress line.
    """
    if dialogue_fn is not None:
        if dialogues is not None:
            raise UsageError("give dialogue_fn or dialogues, not both")
        dialogues = _given(dialogue_fn)
    executor = executor or InProcess()
    config = prepared.config
    dataset = _set_up_out_dir(prepared)
    with run_log(config.out_dir / RUN_LOG, run_id=prepared.run_id):
        log.info(
            "run_started",
            out_dir=str(config.out_dir),
            pending=prepared.pending_count,
            already_present=prepared.skipped,
            concurrency=config.concurrency,
            executor=executor.name,
            fingerprint=prepared.fingerprint,
        )
        with run_collector():
            summary = await _execute(
                prepared, dataset, dialogues or plain_dialogues, executor, progress, stop_on_signals, request_cap
            )
        log.info(
            "run_finished",
            generated=summary.generated,
            failed=summary.failed,
            tool_calls=summary.tool_calls,
            tool_errors=summary.tool_errors,
            retried=summary.retried,
            interrupted=summary.interrupted,
            not_run=summary.not_run,
            elapsed_s=summary.elapsed_s,
            dialogues_per_s=summary.dialogues_per_s,
        )
        for endpoint in summary.endpoints:
            latency = msgspec.to_builtins(endpoint.latency_ms) if endpoint.latency_ms else {}
            log.info(
                "endpoint_stats",
                model=endpoint.model,
                endpoint=endpoint.endpoint,
                requests=endpoint.requests,
                errors=endpoint.errors,
                ejections=endpoint.ejections,
                **{f"{k}_ms": v for k, v in latency.items()},
            )
    return summary


async def _execute(
    prepared: PreparedRun,
    dataset: DatasetFile,
    dialogues: DialogueFactory,
    executor: Executor,
    progress: bool,
    stop_on_signals: bool,
    request_cap: int | None,
) -> RunSummary:
    config = prepared.config
    stats = RunStats(total=prepared.pending_count, already=prepared.skipped, request_cap=request_cap)
    written: set[str] = set()
    remote: list[EndpointTally] = []  # endpoint figures of the processes that ran dialogues elsewhere
    stopped_by: list[str] = []

    async def watch_signals(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                stopped_by.append(signal.Signals(signum).name)
                log.warning(
                    "run_interrupted",
                    signal=stopped_by[0],
                    done=stats.done,
                    hint="stopping: dialogues in flight are dropped; run the same command to resume",
                )
                scope.cancel()
                return

    async def flusher() -> None:
        while True:
            await anyio.sleep(dataset.max_delay_s)
            dataset.sync_due()

    try:
        with RunProgress(stats, enabled=progress) as display:

            def sink(record: DialogueRecord) -> None:
                sid = record.scenario.id
                with bind(dialogue_id=sid):
                    if sid in written:  # an executor that re-ran a dialogue it had lost
                        log.warning("duplicate_record_dropped")
                        return
                    dataset.append(record)
                    written.add(sid)
                    _log_finished(record)
                stats.finished(record, retried=sid in prepared.retried)
                display.update()

            work = Work(
                plan=prepared.plan,
                pending=prepared.pending(),
                environments=prepared.environments,
                config=config.dialogue,
                concurrency=config.concurrency,
                total=prepared.pending_count,
                dialogues=dialogues,
                stats=stats,
                display=display,
                endpoints=remote,
            )
            try:
                async with anyio.create_task_group() as outer:
                    if stop_on_signals:
                        outer.start_soon(watch_signals, outer.cancel_scope)
                    outer.start_soon(flusher)
                    await executor.run(work, sink)
                    outer.cancel_scope.cancel()  # the work is done: stop watching for signals and flushing
            except BaseExceptionGroup as group:  # the executor's own error, not wrapped by the signal watch
                if len(group.exceptions) == 1 and not isinstance(group.exceptions[0], BaseExceptionGroup):
                    raise group.exceptions[0] from None
                raise
    finally:
        dataset.close()

    elapsed = stats.elapsed
    summary = RunSummary(
        out_dir=str(config.out_dir),
        requested=prepared.requested,
        skipped=prepared.skipped,
        generated=stats.done,
        failed=stats.failed,
        tool_calls=stats.tool_calls,
        tool_errors=stats.tool_errors,
        elapsed_s=round(elapsed, 3),
        dialogues_per_s=round(stats.rate, 3),
        dataset=summarize(record for _, record in iter_records(config.out_dir)),
        retried=stats.retried,
        interrupted=stopped_by[0] if stopped_by else None,
        not_run=prepared.pending_count - stats.done,
        endpoints=_endpoint_stats(remote),
    )
    write_atomic(
        config.out_dir / SUMMARY_FILE,
        msgspec.json.format(msgspec.json.encode(summary), indent=2) + b"\n",
    )
    return summary
