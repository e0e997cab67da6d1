"""The stress report in the terminal: a progress bar per phase and the summary tables."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulator.stress.report import CheckStatus, Finding, Severity, StressReport

__all__ = ["PhaseProgress", "print_summary", "summary_console"]


# -- progress -----------------------------------------------------------------------------

_REDRAW_S = 0.1


class PhaseProgress:
    """A progress bar per phase on stderr; silent when stderr is not a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._drawn = 0.0

    def start(self, phase: str, total: int) -> None:
        self.stop()
        if not self._console.is_terminal or total <= 0:
            return
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._console,
            transient=True,
            # Redrawn from advance() instead of a refresh thread: one event loop, nothing else.
            auto_refresh=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(phase, total=total)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)
            now = time.monotonic()
            if now - self._drawn >= _REDRAW_S:
                self._drawn = now
                self._progress.refresh()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# -- terminal summary ------------------------------------------------------------------------

_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
_MAX_GROUPS = 30
_MAX_TOOLS_SHOWN = 6
_PIPE_WIDTH = 120


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def summary_console() -> Console:
    """stdout, at least 120 columns wide when it is not a terminal (a log, a CI job)."""
    console = Console(file=sys.stdout)
    if not console.is_terminal:
        console = Console(file=sys.stdout, width=max(console.width, _PIPE_WIDTH))
    return console


def print_summary(report: StressReport, console: Console | None = None, *, report_path: Path | None = None) -> None:
    """Print the per-tool table, the findings (worst first, grouped across tools), the checks and the verdict.

    The tools no valid call succeeded on are named before the verdict; a PASS with none
    that succeeded says that nothing was seen working.
    """
    console = console or summary_console()
    t = report.target
    server = f"; server {t.server_name} {t.server_version or ''}".rstrip() if t.server_name else ""
    console.print(
        f"[bold]dialogsim stress[/bold]: {escape(t.description)} ({t.kind} over {t.transport}{escape(server)})"
    )
    console.print(_tool_table(report))
    _print_findings(report, console)

    s = report.state
    console.print(f"state safety: [bold]{s.status.value}[/bold] - {s.detail}")
    for line in s.differences[:5]:
        console.print(f"  {line}", markup=False)
    ld = report.load
    if ld.status is CheckStatus.SKIPPED:
        console.print(f"load: skipped - {ld.detail}")
    else:
        lat, o = ld.latency, ld.outcomes
        console.print(
            f"load: {ld.calls} calls at concurrency {ld.concurrency} in {ld.duration_s:.1f} s: "
            f"{o.result} ok, {o.tool_error} tool errors (isError), {o.failures} failures, "
            f"p50 {_ms(lat.p50_ms if lat else None)} ms, "
            f"p99 {_ms(lat.p99_ms if lat else None)} ms; server "
            + ("still up" if ld.server_up else "[bold red]DOWN[/bold red]")
            + (f" ({ld.detail})" if ld.detail else "")
        )
    counts = ", ".join(f"{report.count(sev)} {sev.value}" for sev in reversed(Severity))
    console.print(
        f"{len(report.findings)} findings ({counts}) in {report.duration_s:.1f} s"
        + (f"; {report.reconnects} reconnects" if report.reconnects else "")
    )
    called = [t.name for t in report.tools if t.skipped is None]
    untested = report.not_exercised()
    if untested:
        console.print(
            f"[yellow]not exercised[/yellow]: no valid call of {escape(_names(untested))} got a result "
            "(every one was refused with isError, or failed); what they do when they work was not tested",
        )
    failing = report.failing()
    fail_on = report.options.fail_on.value
    if failing:
        verdict = f"[bold red]FAIL[/bold red]: {len(failing)} findings at or above {fail_on}"
    elif report.tools and (not called or len(untested) == len(called)):
        # Nothing wrong was found, but nothing was seen working either: not a plain PASS.
        what = "every tool was skipped" if not called else "no tool answered a valid call with a result"
        verdict = f"[bold yellow]PASS[/bold yellow]: nothing at or above {fail_on}, but {what}: nothing seen working"
    else:
        verdict = f"[bold green]PASS[/bold green]: nothing at or above {fail_on}"
    if untested and (failing or len(untested) < len(called)):
        verdict += f"; {len(untested)} of {len(called)} tools not exercised"
    console.print(verdict + (f"; report in {report_path}" if report_path else ""))


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_TOOLS_SHOWN])
    return shown + (f" and {len(names) - _MAX_TOOLS_SHOWN} more" if len(names) > _MAX_TOOLS_SHOWN else "")


def _tool_table(report: StressReport) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    table.add_column("tool", no_wrap=True)
    table.add_column("valid ok/err", justify="right")
    table.add_column("invalid refused", justify="right")
    table.add_column("accepted", justify="right")
    table.add_column("proto err", justify="right")
    table.add_column("crash", justify="right")
    table.add_column("hang", justify="right")
    table.add_column("load p50/p99 ms", justify="right")
    table.add_column("findings", justify="right")
    per_tool = Counter(f.tool for f in report.findings if f.severity is not Severity.INFO)
    for tr in report.tools:
        if tr.skipped:
            skipped = f"[dim]skipped ({escape(tr.skipped)})[/dim]"
            table.add_row(escape(tr.name), skipped, "", "", "", "", "", "", str(per_tool[tr.name]))
            continue
        v, i = tr.valid, tr.invalid
        load = f"{_ms(tr.load_latency.p50_ms)}/{_ms(tr.load_latency.p99_ms)}" if tr.load_latency else "-"
        table.add_row(
            escape(tr.name),
            f"{v.result}/{v.tool_error}",
            f"{i.tool_error}/{i.total}",
            _flag(i.result),
            _flag(v.protocol_error + i.protocol_error),
            _flag(v.crash + i.crash),
            _flag(v.hang + i.hang),
            load,
            str(per_tool[tr.name]),
        )
    return table


def _print_findings(report: StressReport, console: Console) -> None:
    """Findings above info grouped by (severity, check, message): one entry lists every tool; info as counts."""
    groups: dict[tuple[Severity, str, str, str], list[Finding]] = {}
    info = Counter[str]()
    for f in report.findings:
        if f.severity is Severity.INFO:
            info[f.check] += 1
            continue
        groups.setdefault((f.severity, f.check, f.message, f.fix), []).append(f)
    ordered = sorted(groups.items(), key=lambda kv: (-kv[0][0].rank, kv[0][1], kv[0][2]))
    if ordered:
        console.print("[bold]findings[/bold]")
    for (severity, check, message, fix), members in ordered[:_MAX_GROUPS]:
        tools = sorted({f.tool or "(server)" for f in members})
        console.print(f"[{_STYLE[severity]}]{severity.value:>8}[/] [bold]{check}[/bold] {escape(_names(tools))}")
        console.print(f"         {message}", markup=False)
        example = next((f for f in members if f.evidence), None)
        if example is not None and example.evidence:
            who = f"{example.tool}: " if len(tools) > 1 and example.tool else ""
            console.print(f"         e.g. {who}{_clip(example.evidence)}", markup=False, style="dim")
        console.print(f"         fix: {fix}", markup=False, style="dim")
    if len(ordered) > _MAX_GROUPS:
        console.print(f"... and {len(ordered) - _MAX_GROUPS} more kinds of findings in report.json")
    if info:
        listed = ", ".join(f"{n} {check}" for check, n in sorted(info.items()))
        console.print(f"[dim]    info {listed} (details in report.json)[/dim]")


def _clip(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flag(n: int) -> str:
    return f"[bold red]{n}[/bold red]" if n else "0"
