"""What a report shows, read from datasets in one pass: summary, distributions, dialogues."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from schemas import (
    AgentMessage,
    Check,
    DialogueEnded,
    DialogueRecord,
    ErrorEvent,
    TaskCompleted,
    TaskStarted,
    ToolCall,
    ToolResult,
    UserFeedback,
    UserMessage,
)
from simulator.eval.scoring import EvalResults
from simulator.run.dataset import iter_records, read_manifest
from simulator.summary import Summary, summarize, summary_columns

__all__ = ["DatasetInfo", "Distribution", "EvalInfo", "ReportData", "collect", "dataset_dir", "dialogue_view"]

#: Longest tool result kept in the browser; the rest is cut with a note (the dataset has all of it).
MAX_RESULT_CHARS = 4000


@dataclass
class DatasetInfo:
    """One dataset directory as the report's header lists it."""

    path: str
    dialogues: int = 0
    modes: Counter[str] = field(default_factory=Counter)
    domains: Counter[str] = field(default_factory=Counter)
    brains: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    created_at: str | None = None


@dataclass
class Distribution:
    """Per-dialogue counts of one group of dialogues (a mode, or all of them)."""

    dialogues: int = 0
    turns: Counter[int] = field(default_factory=Counter)
    steps: Counter[int] = field(default_factory=Counter)
    tasks: Counter[int] = field(default_factory=Counter)
    tool_calls: Counter[str] = field(default_factory=Counter)
    tool_errors: Counter[str] = field(default_factory=Counter)
    feedback: Counter[str] = field(default_factory=Counter)
    terminations: Counter[str] = field(default_factory=Counter)

    def add(self, record: DialogueRecord) -> None:
        m = record.metrics
        self.dialogues += 1
        self.turns[m.turns] += 1
        self.steps[m.steps] += 1
        self.tasks[m.tasks] += 1
        for event in record.events:
            if isinstance(event, ToolCall):
                self.tool_calls[event.tool] += 1
            elif isinstance(event, ToolResult) and event.is_error:
                self.tool_errors[event.tool] += 1
        self.feedback.update(m.feedback)
        self.terminations[record.termination.value] += 1


@dataclass
class ReportData:
    datasets: list[DatasetInfo]
    summary: Summary
    #: By mode (in summary order) when both modes are present, else one group named ``all``.
    groups: dict[str, Distribution]
    #: The browser's dialogues (the first ``max_dialogues`` by scenario id), as plain JSON values.
    dialogues: list[dict[str, Any]]
    total: int
    #: The evaluation directories among the inputs, with their scores and floors.
    evals: list[EvalInfo] = field(default_factory=list)


class _Largest:
    """Orders heap entries backwards so a min-heap keeps the smallest keys."""

    __slots__ = ("key", "value")

    def __init__(self, key: tuple[str, str, int], value: dict[str, Any]) -> None:
        self.key = key
        self.value = value

    def __lt__(self, other: _Largest) -> bool:
        return self.key > other.key


def _cut(text: str) -> str:
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return text[:MAX_RESULT_CHARS] + f"\n… ({len(text) - MAX_RESULT_CHARS} more characters in the dataset)"


def dialogue_view(record: DialogueRecord, dataset: int) -> dict[str, Any]:
    """One dialogue as the browser shows it: header fields, tasks, and a timeline from its events.

    User feedback is attached to the user message that expresses it (the next one); each
    tool result is attached to its call.
    """
    scenario = record.scenario
    timeline: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {}
    pending: list[dict[str, Any]] = []
    for event in record.events:
        if isinstance(event, UserMessage):
            item: dict[str, Any] = {"k": "user", "text": event.text}
            if pending:
                item["fb"] = pending
                pending = []
            if event.is_task_complete:
                item["done"] = True
            timeline.append(item)
        elif isinstance(event, AgentMessage):
            timeline.append({"k": "agent", "text": event.text, "seq": event.seq})
        elif isinstance(event, ToolCall):
            call = {"k": "call", "id": event.call_id, "tool": event.tool, "args": event.arguments}
            calls[event.call_id] = call
            timeline.append(call)
        elif isinstance(event, ToolResult):
            result: dict[str, Any] = {"text": _cut(event.text), "error": event.is_error, "seq": event.seq}
            if event.error_code:
                result["code"] = event.error_code
            if event.call_id in calls and "result" not in calls[event.call_id]:
                calls[event.call_id]["result"] = result
            else:
                timeline.append({"k": "call", "id": event.call_id, "tool": event.tool, "args": None, "result": result})
        elif isinstance(event, UserFeedback):
            pending.append({"kind": event.feedback.value, "task": event.task_id, "detail": event.detail})
        elif isinstance(event, TaskStarted):
            timeline.append({"k": "task", "task": event.task_id})
        elif isinstance(event, TaskCompleted):
            timeline.append({"k": "verdict", "task": event.task_id, "ok": event.success, "detail": event.detail})
        elif isinstance(event, ErrorEvent):
            timeline.append({"k": "error", "where": event.where, "type": event.error_type, "text": event.message})
        elif isinstance(event, DialogueEnded):
            timeline.append({"k": "end", "reason": event.reason.value, "detail": event.detail})
    if pending:
        timeline.append({"k": "feedback", "fb": pending})

    outcomes = {o.task_id: o for o in record.outcomes}
    tasks = []
    for task in scenario.tasks:
        outcome = outcomes.get(task.id)
        tasks.append(
            {
                "id": task.id,
                "goal": task.goal,
                "difficulty": task.difficulty.value,
                "ok": outcome.success if outcome else None,
                "failed": outcome.failed_assertions if outcome else [],
                "missing": outcome.missing_values if outcome else [],
                "checks": [_check_view(c) for c in outcome.checks] if outcome else [],
            }
        )
    m = record.metrics
    view: dict[str, Any] = {
        "id": record.id,
        "ds": dataset,
        "domain": scenario.domain,
        "mode": scenario.mode.value,
        "ok": record.success,
        "term": record.termination.value,
        "turns": m.turns,
        "steps": m.steps,
        "tasks": m.tasks,
        "calls": m.tool_calls,
        "errors": m.tool_errors,
        "feedback": m.feedback,
        "persona": scenario.persona.name,
        "brains": record.brains,
        "duration": round(record.duration_s, 3),
        "taskList": tasks,
        "timeline": timeline,
    }
    if record.state is not None:
        view["state"] = {
            "v": record.state.verdict.value,
            "calls": record.state.gold_calls,
            "diff": [d.text for d in record.state.diff],
            "more": record.state.more,
            "detail": record.state.detail,
            "ms": record.state.duration_ms,
        }
    if record.migrated_from is not None:
        view["migratedFrom"] = record.migrated_from
    if scenario.branched_from:
        view["branchedFrom"] = scenario.branched_from
    if record.error:
        view["error"] = record.error
    if record.usage.requests:
        view["usage"] = {
            "in": record.usage.input_tokens,
            "out": record.usage.output_tokens,
            "cost": record.usage.cost_usd,
        }
    return view


def _check_view(check: Check) -> dict[str, Any]:
    view: dict[str, Any] = {"k": check.kind.value, "n": check.name, "v": check.verdict.value}
    if check.detail:
        view["d"] = check.detail
    if check.evidence:
        view["ev"] = [{"m": e.message, "r": e.result, "said": e.said} for e in check.evidence]
    if check.diff:
        view["diff"] = [d.text for d in check.diff]
    return view


@dataclass
class EvalInfo:
    """An evaluation directory (``dialogsim eval --out``): its scores, and its floors' when run."""

    path: str
    results: EvalResults | None


def dataset_dir(directory: Path) -> tuple[Path, Path | None]:
    """Where the records of ``directory`` are, and its evaluation results when it is an
    evaluation directory (``eval.json`` and ``records/``), else None."""
    if (directory / "eval.json").is_file() and (directory / "records").is_dir():
        return directory / "records", directory / "results.json"
    return directory, None


def _read_results(path: Path) -> EvalResults | None:
    try:
        return msgspec.json.decode(path.read_bytes(), type=EvalResults)
    except (OSError, msgspec.DecodeError):
        return None  # not scored yet (a run killed before its end), or from another version


def collect(dirs: Sequence[Path], *, max_dialogues: int) -> ReportData:
    """Read every record of ``dirs`` once. Raises ConfigError when a directory holds no dataset."""
    datasets: list[DatasetInfo] = []
    evals: list[EvalInfo] = []
    sources: list[Path] = []
    for given in dirs:
        directory, results = dataset_dir(given)
        sources.append(directory)
        if results is not None:
            evals.append(EvalInfo(path=str(given), results=_read_results(results)))
        manifest = read_manifest(directory) or {}
        fp = manifest.get("fingerprint") or {}
        datasets.append(DatasetInfo(path=str(given), seed=fp.get("seed"), created_at=manifest.get("created_at")))
    per_mode: dict[str, Distribution] = {}
    total = Distribution()
    heap: list[_Largest] = []

    def walk() -> Iterator[DialogueRecord]:
        for index, directory in enumerate(sources):
            info = datasets[index]
            for _, record in iter_records(directory):
                info.dialogues += 1
                info.modes[record.scenario.mode.value] += 1
                info.domains[record.scenario.domain] += 1
                info.brains = info.brains or dict(record.brains)
                total.add(record)
                per_mode.setdefault(record.scenario.mode.value, Distribution()).add(record)
                key = (record.scenario.id, record.scenario.mode.value, index)
                if len(heap) < max_dialogues:
                    heapq.heappush(heap, _Largest(key, dialogue_view(record, index)))
                elif key < heap[0].key:
                    heapq.heapreplace(heap, _Largest(key, dialogue_view(record, index)))
                yield record

    summary = summarize(walk())
    modes = [name for name, _ in summary_columns(summary)[1:]]
    groups = {mode: per_mode[mode] for mode in modes} if modes else {"all": total}
    dialogues = [entry.value for entry in sorted(heap, key=lambda e: e.key)]
    return ReportData(
        datasets=datasets, summary=summary, groups=groups, dialogues=dialogues, total=total.dialogues, evals=evals
    )
