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
from collections.abc import Awaitable
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
from schemas.errors import UsageError
from simulator.dialogue.recorder import build_record
from simulator.dialogue.runner import DialogueConfig, EventSink, run_dialogue
from simulator.log import RUN_LOG, bind, get_logger, run_log
from simulator.providers.fleet import EndpointStats
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
from simulator.run.plan import PreparedRun
from simulator.run.progress import RunProgress, RunStats
from simulator.summary import Summary, summarize
from toolservers import save_environment

__all__ = ["DialogueFn", "RunSummary", "execute_run"]

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
    display: RunProgress,
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
            config=config,
        )
    except Exception as exc:  # a bug in a dialogue must not end the run
        return _broken_record(
            scenario,
            events,
            TerminationReason.AGENT_FAILURE,
            exc,
            started_at=started_at,
            duration_s=time.monotonic() - t0,
            config=config,
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


def _endpoint_stats() -> list[EndpointStats]:
    """The figures of the model endpoints of the LLM setup the dialogues ran under, if any."""
    from schemas.errors import ConfigError
    from simulator.llm.setup import current_setup

    try:
        return current_setup().pool.endpoint_stats()
    except ConfigError:  # offline: no setup installed
        return []


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
    dialogue_fn: DialogueFn = run_dialogue,
    progress: bool = True,
    stop_on_signals: bool = False,
    request_cap: int | None = None,
) -> RunSummary:
    """Run the pending scenarios of ``prepared`` and return the summary of the dataset.

    Writes the manifest (once), the environments and one record per dialogue as it
    finishes; at the end writes ``summary.json``. At most ``concurrency`` dialogues run at
    a time, all in this event loop. A dialogue function that raises produces a failed
    record (termination ``agent_failure``, or ``timeout`` past the run's limit), never an
    aborted run; errors writing the dataset do abort it. ``stop_on_signals`` makes SIGINT
    and SIGTERM stop the run cleanly (see the module docstring); it needs the main thread.
    Scenarios are built as the workers reach them (a few ahead). ``request_cap``, when a
    model's requests in flight are capped below ``concurrency``, is shown on the progress line.
    """
    config = prepared.config
    dataset = _set_up_out_dir(prepared)
    with run_log(config.out_dir / RUN_LOG, run_id=prepared.run_id):
        log.info(
            "run_started",
            out_dir=str(config.out_dir),
            pending=prepared.pending_count,
            already_present=prepared.skipped,
            concurrency=config.concurrency,
            fingerprint=prepared.fingerprint,
        )
        summary = await _execute(prepared, dataset, dialogue_fn, progress, stop_on_signals, request_cap)
        log.info(
            "run_finished",
            generated=summary.generated,
            failed=summary.failed,
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
    dialogue_fn: DialogueFn,
    progress: bool,
    stop_on_signals: bool,
    request_cap: int | None,
) -> RunSummary:
    config = prepared.config
    stats = RunStats(total=prepared.pending_count, already=prepared.skipped, request_cap=request_cap)
    workers = max(1, min(config.concurrency, prepared.pending_count))
    # Scenarios are built as the workers take them, a few ahead: memory does not grow with the run.
    send, receive = anyio.create_memory_object_stream[Scenario](max_buffer_size=_LOOK_AHEAD)

    async def worker(scenarios: MemoryObjectReceiveStream[Scenario], display: RunProgress) -> None:
        async with scenarios:
            async for scenario in scenarios:
                env = prepared.environments[scenario.environment_id]
                with bind(dialogue_id=scenario.id):
                    record = await _run_one(scenario, env, config.dialogue, dialogue_fn, stats, display)
                    dataset.append(record)
                    _log_finished(record)
                stats.finished(record, retried=scenario.id in prepared.retried)
                display.update()

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
            async with anyio.create_task_group() as outer:
                if stop_on_signals:
                    outer.start_soon(watch_signals, outer.cancel_scope)
                outer.start_soon(flusher)
                async with anyio.create_task_group() as running:
                    for _ in range(workers):
                        running.start_soon(worker, receive.clone(), display)
                    receive.close()
                    async with send:
                        for i in prepared.pending():
                            scenario = prepared.plan.build(i)
                            if scenario.environment_id not in prepared.environments:
                                raise UsageError(
                                    f"scenario {scenario.id!r} uses environment {scenario.environment_id!r}, "
                                    "which the run does not have"
                                )
                            await send.send(scenario)
                outer.cancel_scope.cancel()  # the work is done: stop watching for signals and flushing
    finally:
        dataset.close()

    elapsed = stats.elapsed
    summary = RunSummary(
        out_dir=str(config.out_dir),
        requested=prepared.requested,
        skipped=prepared.skipped,
        generated=stats.done,
        failed=stats.failed,
        elapsed_s=round(elapsed, 3),
        dialogues_per_s=round(stats.rate, 3),
        dataset=summarize(record for _, record in iter_records(config.out_dir)),
        retried=stats.retried,
        interrupted=stopped_by[0] if stopped_by else None,
        not_run=prepared.pending_count - stats.done,
        endpoints=_endpoint_stats(),
    )
    write_atomic(
        config.out_dir / SUMMARY_FILE,
        msgspec.json.format(msgspec.json.encode(summary), indent=2) + b"\n",
    )
    return summary
