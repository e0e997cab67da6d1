"""Summarising a dataset the way the paper does.

Each record's own counts come from :mod:`simulator.dialogue.recorder`. Per dataset
(``summarize``): the paper's Table 1 — mean and max of steps, turns and tasks
per dialogue, and the number of samples — plus success, tool-error and invalid-argument
rates, termination reasons and feedback kinds, split by mode when both modes are present.
A run that used models also shows its model endpoints (``render_endpoints``): requests,
errors, times taken out of service and latency percentiles of each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

import msgspec
from rich.table import Table

from schemas import (
    DialogueRecord,
    TerminationReason,
)
from simulator.dialogue.verify import dialogue_succeeded

if TYPE_CHECKING:
    from simulator.providers.fleet import EndpointStats

__all__ = [
    "Stat",
    "done_but_failed",
    "Summary",
    "render_endpoints",
    "render_summary",
    "summary_columns",
    "summary_rows",
    "summarize",
]

# --------------------------------------------------------------------------- per dataset


class Stat(msgspec.Struct, frozen=True):
    """Mean and max of a per-dialogue count (Table 1 writes ``mean (max)``)."""

    mean: float
    max: float


class Summary(msgspec.Struct, kw_only=True):
    """The summary of a dataset.

    ``steps.mean`` is the mean over dialogues that used tools of their mean steps per
    request, ``steps.max`` the longest run of tool calls for one request in the dataset;
    ``turns`` and ``tasks`` are per dialogue. Rates are fractions (0..1); a rate whose
    denominator is zero is 0. A dialogue succeeds by the rule the evaluation uses too
    (``dialogue_succeeded``: the user was done, every task passed, the state matched);
    ``done_but_failed`` counts the dialogues the user ended done that still failed
    verification (the checks ran: a judge or verification error is in ``error``), so
    ``terminations`` and the success rate read together.
    """

    samples: int
    steps: Stat
    turns: Stat
    tasks: Stat
    task_success_rate: float
    dialogue_success_rate: float
    tool_calls: int
    tool_error_rate: float
    invalid_argument_rate: float
    terminations: dict[str, int]
    feedback: dict[str, int]
    done_but_failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    #: The same summary per mode, present only when the dataset has both modes.
    by_mode: dict[str, Summary] = {}


class _Acc:
    """Running sums, so a dataset of any size is summarised in one pass.

    Float sums are kept exact (``Fraction`` of each float), so the summary does not depend
    on the order the records come in: one process and several workers agree to the bit.
    """

    def __init__(self) -> None:
        self.samples = 0
        self.mean_steps_sum = Fraction(0)
        self.with_tools = 0
        self.steps_max = 0
        self.turns_sum = 0
        self.turns_max = 0
        self.tasks_sum = 0
        self.tasks_max = 0
        self.outcomes = 0
        self.outcomes_ok = 0
        self.dialogues_ok = 0
        self.done_but_failed = 0
        self.tool_calls = 0
        self.tool_errors = 0
        self.invalid = 0
        self.terminations: Counter[str] = Counter()
        self.feedback: Counter[str] = Counter()
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = Fraction(0)

    def add(self, record: DialogueRecord) -> None:
        m = record.metrics
        self.samples += 1
        if m.mean_steps > 0:
            self.mean_steps_sum += Fraction(m.mean_steps)
            self.with_tools += 1
        self.steps_max = max(self.steps_max, m.steps)
        self.turns_sum += m.turns
        self.turns_max = max(self.turns_max, m.turns)
        self.tasks_sum += m.tasks
        self.tasks_max = max(self.tasks_max, m.tasks)
        self.outcomes += len(record.outcomes)
        self.outcomes_ok += sum(1 for o in record.outcomes if o.success)
        ok = dialogue_succeeded(record.termination, record.outcomes, record.state)
        self.dialogues_ok += ok
        self.done_but_failed += done_but_failed(record, ok)
        self.tool_calls += m.tool_calls
        self.tool_errors += m.tool_errors
        self.invalid += m.invalid_arguments
        self.terminations[record.termination.value] += 1
        self.feedback.update(m.feedback)
        self.input_tokens += record.usage.input_tokens
        self.output_tokens += record.usage.output_tokens
        self.cost += Fraction(record.usage.cost_usd)

    def summary(self) -> Summary:
        n = self.samples
        return Summary(
            samples=n,
            steps=Stat(mean=_ratio(self.mean_steps_sum, self.with_tools), max=self.steps_max),
            turns=Stat(mean=_ratio(self.turns_sum, n), max=self.turns_max),
            tasks=Stat(mean=_ratio(self.tasks_sum, n), max=self.tasks_max),
            task_success_rate=_ratio(self.outcomes_ok, self.outcomes),
            dialogue_success_rate=_ratio(self.dialogues_ok, n),
            tool_calls=self.tool_calls,
            tool_error_rate=_ratio(self.tool_errors, self.tool_calls),
            invalid_argument_rate=_ratio(self.invalid, self.tool_calls),
            terminations=dict(sorted(self.terminations.items())),
            feedback=dict(sorted(self.feedback.items())),
            done_but_failed=self.done_but_failed,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=round(float(self.cost), 6),
        )


def done_but_failed(record: DialogueRecord, ok: bool) -> bool:
    """The user ended it done, its checks ran (no judge or verification error), and it failed them."""
    return record.termination is TerminationReason.USER_DONE and not ok and not record.error


def _ratio(num: float | Fraction, den: float) -> float:
    return float(num / den) if den else 0.0


def summarize(records: Iterable[DialogueRecord]) -> Summary:
    """Summarise ``records`` (any iterable, consumed once)."""
    total = _Acc()
    per_mode: dict[str, _Acc] = {}
    for record in records:
        total.add(record)
        per_mode.setdefault(record.scenario.mode.value, _Acc()).add(record)
    summary = total.summary()
    if len(per_mode) > 1:
        summary.by_mode = {mode: acc.summary() for mode, acc in sorted(per_mode.items())}
    return summary


# --------------------------------------------------------------------------- display


def _mean_max(stat: Stat) -> str:
    return f"{stat.mean:.2f} ({stat.max:g})"


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _histogram(counts: dict[str, int]) -> str:
    return "\n".join(f"{k} {v}" for k, v in counts.items()) or "-"


#: The order modes are shown in: the paper's contribution first, then its baseline.
_MODE_ORDER = {"user-oriented": 0, "task-oriented": 1}


def summary_columns(summary: Summary) -> list[tuple[str, Summary]]:
    """The columns a summary is shown in: ``all``, then one per mode (user-oriented first) when it has both."""
    modes = sorted(summary.by_mode.items(), key=lambda item: (_MODE_ORDER.get(item[0], len(_MODE_ORDER)), item[0]))
    return [("all", summary), *modes]


def summary_rows(summary: Summary) -> list[tuple[str, list[str]]]:
    """The rows of the summary as text, one cell per column of :func:`summary_columns`.

    Histogram cells (terminations, feedback) hold one ``name count`` per line. Token and
    cost rows appear only when some dialogue used an LLM. The terminal table and the HTML
    report both show these rows.
    """
    columns = summary_columns(summary)
    rows: list[tuple[str, list[str]]] = [
        ("samples", [str(s.samples) for _, s in columns]),
        ("steps, mean (max)", [_mean_max(s.steps) for _, s in columns]),
        ("turns, mean (max)", [_mean_max(s.turns) for _, s in columns]),
        ("tasks, mean (max)", [_mean_max(s.tasks) for _, s in columns]),
        ("task success", [_pct(s.task_success_rate) for _, s in columns]),
        ("dialogue success", [_pct(s.dialogue_success_rate) for _, s in columns]),
        ("tool calls", [str(s.tool_calls) for _, s in columns]),
        ("tool error rate", [_pct(s.tool_error_rate) for _, s in columns]),
        ("invalid-argument rate", [_pct(s.invalid_argument_rate) for _, s in columns]),
        ("terminations", [_histogram(s.terminations) for _, s in columns]),
        ("user_done, failed verification", [str(s.done_but_failed) for _, s in columns]),
        ("feedback", [_histogram(s.feedback) for _, s in columns]),
    ]
    if summary.input_tokens or summary.output_tokens:
        rows.append(("tokens in / out", [f"{s.input_tokens} / {s.output_tokens}" for _, s in columns]))
        rows.append(("cost (USD)", [f"{s.cost_usd:.4f}" for _, s in columns]))
    return rows


def render_summary(summary: Summary, *, title: str = "Dataset summary") -> Table:
    """A rich table of ``summary``: one column for all dialogues, one per mode when split."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for name, _ in summary_columns(summary):
        table.add_column(name, justify="right")
    for label, cells in summary_rows(summary):
        table.add_row(label, *cells)
    return table


def render_endpoints(stats: Sequence[EndpointStats], *, title: str = "Model endpoints") -> Table:
    """A rich table of the run's model endpoints: one row per model and base URL."""
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    table.add_column("endpoint")
    for name in ("requests", "errors", "taken out", "p50 ms", "p90 ms", "p99 ms"):
        table.add_column(name, justify="right")
    for s in stats:
        latency = [f"{v:.1f}" for v in (s.latency_ms.p50, s.latency_ms.p90, s.latency_ms.p99)] if s.latency_ms else []
        table.add_row(s.model, s.endpoint, str(s.requests), str(s.errors), str(s.ejections), *(latency or ["-"] * 3))
    return table
