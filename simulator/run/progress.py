"""The run's progress bar on stderr."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

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
    DialogueRecord,
    Event,
    ToolCall,
    ToolResult,
)
from simulator.run.config import record_failed

__all__ = ["RunProgress", "RunStats"]


@dataclass
class RunStats:
    """Run-level aggregates, fed by every dialogue's events and every finished record."""

    total: int
    already: int = 0
    done: int = 0
    failed: int = 0
    retried: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    started: float = field(default_factory=time.monotonic)
    #: A cap on a model's requests in flight below the run's concurrency (shown on the progress line).
    request_cap: int | None = None

    def observe(self, event: Event) -> None:
        if isinstance(event, ToolCall):
            self.tool_calls += 1
        elif isinstance(event, ToolResult) and event.is_error:
            self.tool_errors += 1

    def finished(self, record: DialogueRecord, *, retried: bool = False) -> None:
        self.done += 1
        self.retried += retried
        if record_failed(record):
            self.failed += 1

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Dialogues finished per second by this invocation."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0


class RunProgress:
    """The progress bar on stderr; shown only on a terminal and when asked for."""

    def __init__(self, stats: RunStats, *, enabled: bool) -> None:
        console = Console(stderr=True)
        self._stats = stats
        #: Whether the bar is drawn; when not, updates (one per tool call) cost nothing.
        self.shown = enabled and console.is_terminal
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed [red]{task.fields[failed]}[/]"),
            TextColumn("tool calls {task.fields[tool_calls]} ({task.fields[tool_errors]} err)"),
            TextColumn("{task.fields[rate]:.1f}/s"),
            *(
                [TextColumn(f"[yellow]model requests \u2264 {stats.request_cap} at a time (--max-requests)[/]")]
                if stats.request_cap is not None
                else []
            ),
            TimeElapsedColumn(),
            console=console,
            disable=not self.shown,
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

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.update()
        self._progress.stop()

    def update(self) -> None:
        if not self.shown:
            return
        s = self._stats
        self._progress.update(
            self._task,
            completed=s.already + s.done,
            failed=s.failed,
            tool_calls=s.tool_calls,
            tool_errors=s.tool_errors,
            rate=s.rate,
        )
