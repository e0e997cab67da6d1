"""Assemble the report: static sections and charts in Python, the browser's data as JSON, one file."""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.resources
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from simulator.eval.scoring import Interval
from simulator.report._charts import category_bars, histogram, series_color
from simulator.report._data import Distribution, EvalInfo, ReportData, collect, dataset_dir
from simulator.report._quality import quality_section
from simulator.summary import Summary, summary_columns, summary_rows

__all__ = ["PAPER_TABLE_1", "ReportInfo", "build_report", "embed_json", "write_report"]

#: Table 1 of the paper (mean per trajectory, max in parentheses), for reference next to ours.
PAPER_TABLE_1 = (
    ("task-oriented", "Nemotron", "3.95 (89)", "12.84 (178)", "1.63 (18)", "161,608"),
    ("user-oriented", "Nemotron", "3.45 (121)", "21.79 (596)", "2.48 (20)", "177,375"),
    ("user-oriented", "τ²", "3.05 (63)", "36.16 (780)", "3.02 (20)", "4,138"),
    ("user-oriented + execution", "τ²", "2.43 (23)", "17.15 (294)", "1.6 (10)", "2,174"),
    ("user-oriented + execution", "SQL", "3.74 (322)", "30.85 (680)", "1.86 (11)", "16,618"),
)

_MARKER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class ReportInfo:
    """What ``write_report`` wrote."""

    path: Path
    size: int
    dialogues: int
    #: Dialogues in the browser (at most ``max_dialogues``).
    shown: int


def embed_json(value: Any) -> str:
    """``value`` as JSON that is safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` are written as ``\\u`` escapes, so no text in the data can close
    the script element (``</script>``) or open a comment; JSON.parse reads them back unchanged.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def _asset(name: str) -> str:
    return importlib.resources.files("simulator.report").joinpath(name).read_text(encoding="utf-8")


def _version() -> str:
    try:
        return importlib.metadata.version("dialogsim")
    except importlib.metadata.PackageNotFoundError:
        return "(development)"


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


# --------------------------------------------------------------------------- sections


def _datasets_section(report: ReportData) -> str:
    rows = []
    for info in report.datasets:
        modes = ", ".join(f"{m} {n}" for m, n in sorted(info.modes.items())) or "–"
        domains = ", ".join(f"{d} {n}" for d, n in sorted(info.domains.items())) or "–"
        brains = ", ".join(f"{role}: {name}" for role, name in info.brains.items()) or "–"
        rows.append(
            "<tr>"
            f"<td><code>{escape(info.path)}</code></td><td class='num'>{info.dialogues}</td>"
            f"<td>{escape(modes)}</td><td>{escape(domains)}</td>"
            f"<td class='num'>{'' if info.seed is None else info.seed}</td><td>{escape(brains)}</td>"
            f"<td>{escape(info.created_at or '')}</td>"
            "</tr>"
        )
    return (
        '<section aria-labelledby="ds-title"><h2 id="ds-title">Datasets</h2><div class="card">'
        '<table class="datasets"><thead><tr><th>directory</th><th class="num">dialogues</th><th>modes</th>'
        "<th>domains</th><th class='num'>seed</th><th>brains</th><th>created</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div></section>"
    )


def _kpi(value: str, label: str) -> str:
    return f'<div class="kpi"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _glance_section(summary: Summary) -> str:
    groups = summary_columns(summary)[1:] or [("all", summary)]
    cards = []
    for index, (name, s) in enumerate(groups):
        cards.append(
            f'<div class="card kpi-group" style="--accent:{series_color(name, index)}">'
            f"<h3><span>{escape(name)}</span><span class='muted'>{s.samples} dialogues</span></h3>"
            '<div class="kpi-row">'
            + _kpi(f"{s.turns.mean:.2f}", f"mean turns · max {s.turns.max:g}")
            + _kpi(f"{s.steps.mean:.2f}", f"mean steps · max {s.steps.max:g}")
            + _kpi(f"{s.tasks.mean:.2f}", f"mean tasks · max {s.tasks.max:g}")
            + _kpi(_pct(s.dialogue_success_rate), "dialogue success")
            + _kpi(_pct(s.task_success_rate), "task success")
            + _kpi(_pct(s.tool_error_rate), "tool error rate")
            + _kpi(str(s.tool_calls), "tool calls")
            + _kpi(f"${s.cost_usd:.2f}" if s.input_tokens or s.output_tokens else "–", "LLM cost")
            + "</div></div>"
        )
    title = "User-oriented vs task-oriented" if summary.by_mode else "At a glance"
    return (
        f'<section aria-labelledby="glance-title"><h2 id="glance-title">{title}</h2>'
        f'<div class="kpis">{"".join(cards)}</div></section>'
    )


def _summary_section(summary: Summary) -> str:
    columns = summary_columns(summary)
    head = "".join(f"<th class='num'>{escape(name)}</th>" for name, _ in columns)
    body = "".join(
        f"<tr><th scope='row'>{escape(label)}</th>"
        + "".join(f"<td class='num'>{escape(cell)}</td>" for cell in cells)
        + "</tr>"
        for label, cells in summary_rows(summary)
    )
    if summary.input_tokens or summary.output_tokens:
        usage = ""
    else:
        usage = (
            "<p class='muted'>No LLM usage recorded: every role was played by an offline brain "
            "(template language), so there are no tokens and no cost.</p>"
        )
    paper = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in PAPER_TABLE_1)
    return (
        '<section aria-labelledby="summary-title"><h2 id="summary-title">Summary</h2>'
        '<div class="summary-grid"><div class="card">'
        f'<table class="summary" id="summary-table"><thead><tr><th>metric</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>{usage}</div>"
        '<div class="card"><h3>How it is counted</h3><p class="muted">As the paper counts (Appendix B): a '
        "<b>turn</b> is every user, assistant, tool-call and tool-output message; <b>steps</b> are the "
        "sequential tool calls made for one user request (mean over requests that used tools, max over "
        "the dataset); a <b>task</b> is one goal of the dialogue. A dialogue succeeds when the user ended it "
        "done, its whole final database equals a replay of the tasks' gold calls, and every task's "
        "checks passed (its SQL assertions, and each value the agent had to tell the user, said in that "
        "task's part of the dialogue after a tool result that showed it).</p>"
        '<details class="paper"><summary>The paper\'s Table 1 for reference (arXiv 2601.08225)</summary>'
        "<table><thead><tr><th>pipeline</th><th>source</th><th>steps</th><th>turns</th><th>tasks</th>"
        f"<th>samples</th></tr></thead><tbody>{paper}</tbody></table></details>"
        "</div></div></section>"
    )


def _ci(interval: Interval | None) -> str:
    if interval is None:
        return "–"
    return f"{interval.value:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _eval_section(evals: list[EvalInfo]) -> str:
    """Each evaluation's score with its interval, and every sanity floor in a column beside it."""
    cards = []
    for info in evals:
        if info.results is None:
            cards.append(
                f"<div class='card'><h3><code>{escape(info.path)}</code></h3>"
                "<p class='muted'>Not scored yet (no results.json): run the same <code>dialogsim eval</code> "
                "command again to finish it.</p></div>"
            )
            continue
        main = info.results.summary
        columns = [(main.agent, main), *info.results.floors.items()]
        head = "".join(
            f"<th class='num'>{escape(name if i == 0 else 'floor ' + name.partition(':')[2])}</th>"
            for i, (name, _) in enumerate(columns)
        )
        rows: list[tuple[str, list[str]]] = [
            (f"dialogue pass^{k}", [_ci(s.dialogue_pass_hat.get(k)) for _, s in columns])
            for k in main.dialogue_pass_hat
        ]
        if main.trials > 1:
            top = str(main.trials)
            rows.append((f"dialogue pass@{top}", [_ci(s.dialogue_pass_at.get(top)) for _, s in columns]))
        rows += [(f"task pass^{k}", [_ci(s.task_pass_hat.get(k)) for _, s in columns]) for k in main.task_pass_hat]
        rows.append(("task success, all trials", [_ci(s.task_success) for _, s in columns]))
        rows.append(("terminations", ["\n".join(f"{k} {v}" for k, v in s.terminations.items()) for _, s in columns]))
        rows.append(("user_done, failed verification", [str(s.done_but_failed) for _, s in columns]))
        body = "".join(
            f"<tr><th scope='row'>{escape(label)}</th>"
            + "".join(f"<td class='num'>{escape(cell)}</td>" for cell in cells)
            + "</tr>"
            for label, cells in rows
        )
        note = (
            "Sanity floors: agents that should fail (silent; guessing without tools; random tool calls). "
            "A score is worth as much as its distance from them."
            if info.results.floors
            else "No floors in this evaluation: run it with <code>--floors</code> to see them beside the score."
        )
        cards.append(
            f"<div class='card'><h3><code>{escape(info.path)}</code> · {main.scenarios} scenarios × "
            f"{main.trials} trials</h3><table class='summary eval'><thead><tr><th>metric "
            f"({main.confidence * 100:g}% interval)</th>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<p class='muted'>{note}</p></div>"
        )
    return (
        '<section aria-labelledby="eval-title" id="evaluation"><h2 id="eval-title">Evaluation</h2>'
        + "".join(cards)
        + "</section>"
    )


def _figure(title: str, note: str, svg: str, chart_id: str) -> str:
    return (
        f'<figure class="card chart-card" id="{chart_id}"><figcaption>{escape(title)}</figcaption>'
        f'<div class="note">{escape(note)}</div>{svg}</figure>'
    )


def _charts_section(groups: dict[str, Distribution]) -> str:
    def pick(attr: str) -> dict[str, Any]:
        return {name: getattr(dist, attr) for name, dist in groups.items()}

    figures = [
        _figure(
            "Turns per dialogue",
            "every user, assistant, tool-call and tool-output message",
            histogram(pick("turns"), label="turns per dialogue", unit="turns"),
            "chart-turns",
        ),
        _figure(
            "Steps per dialogue",
            "the longest run of sequential tool calls for one user request",
            histogram(pick("steps"), label="steps per dialogue", unit="steps"),
            "chart-steps",
        ),
        _figure(
            "Tasks per dialogue",
            "goals chained in one conversation",
            histogram(pick("tasks"), label="tasks per dialogue", unit="tasks"),
            "chart-tasks",
        ),
        _figure(
            "Tool calls per tool",
            "how often each tool was called, most called first",
            category_bars(pick("tool_calls"), label="tool calls per tool", unit="calls", limit=20),
            "chart-tools",
        ),
        _figure(
            "User feedback",
            "what the simulated user said about the agent's answers",
            category_bars(pick("feedback"), label="feedback kinds", unit="times"),
            "chart-feedback",
        ),
        _figure(
            "Termination reasons",
            "why each dialogue ended",
            category_bars(pick("terminations"), label="termination reasons", unit="dialogues"),
            "chart-terminations",
        ),
    ]
    if any(dist.tool_errors for dist in groups.values()):
        figures.append(
            _figure(
                "Tool errors per tool",
                "calls answered with an error (bad arguments, not found, refused)",
                category_bars(pick("tool_errors"), label="tool errors per tool", unit="errors"),
                "chart-tool-errors",
            )
        )
    return (
        '<section aria-labelledby="charts-title"><h2 id="charts-title">Distributions</h2>'
        f'<div class="charts">{"".join(figures)}</div></section>'
    )


# --------------------------------------------------------------------------- the page


def build_report(
    dirs: Sequence[Path], *, title: str | None = None, max_dialogues: int = 2000
) -> tuple[str, ReportData]:
    """The report's HTML for the datasets in ``dirs``, and the data it shows.

    Raises ConfigError when a directory holds no dataset.
    """
    report = collect(dirs, max_dialogues=max_dialogues)
    summary = report.summary
    title = title or "dialogsim report: " + ", ".join(Path(d).name or str(d) for d in dirs)
    modes = " vs ".join(report.groups)
    subtitle = f"{report.total} dialogues from {len(dirs)} dataset{'s' if len(dirs) != 1 else ''}"
    if summary.by_mode:
        subtitle += f" · {modes}"
    note = (
        f"Showing the first {len(report.dialogues)} of {report.total} dialogues by scenario id "
        "(the summary and charts count all of them)."
        if len(report.dialogues) < report.total
        else "Search matches messages, tool names, arguments, results and ids; press / to search."
    )
    payload = {
        "datasets": [{"path": info.path} for info in report.datasets],
        "total": report.total,
        "dialogues": report.dialogues,
    }
    body = "\n".join(
        [
            *([_eval_section(report.evals)] if report.evals else []),
            _glance_section(summary),
            _summary_section(summary),
            _charts_section(report.groups),
            quality_section([dataset_dir(d)[0] for d in dirs]),  # an evaluation's records too
            _datasets_section(report),
        ]
    )
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    parts = {
        "title": escape(title),
        "subtitle": escape(subtitle),
        "version": escape(_version()),
        "generated": escape(now),
        "style": _asset("report.css"),
        "body": body,
        "browser_note": escape(note),
        "data": embed_json(payload),
        "script": _asset("report.js"),
    }
    html = _MARKER.sub(lambda m: parts[m.group(1)], _asset("template.html"))
    return html, report


def write_report(
    dirs: Sequence[Path], out_path: Path, *, title: str | None = None, max_dialogues: int = 2000
) -> ReportInfo:
    """Write the report of ``dirs`` to ``out_path`` (atomically; an existing file is replaced,
    but never a file of one of ``dirs``: see ``check_out_file``).

    Raises ConfigError, before any work, when ``out_path`` is a directory or a dataset's file;
    and for a bad dataset directory.
    """
    from simulator.export import check_out_file, write_file_atomic

    check_out_file(out_path, inputs=dirs)
    html, report = build_report(dirs, title=title, max_dialogues=max_dialogues)
    data = html.encode("utf-8")

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    write_file_atomic(out_path, write)
    return ReportInfo(path=out_path, size=len(data), dialogues=report.total, shown=len(report.dialogues))
