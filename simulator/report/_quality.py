"""The report's quality section: what ``dialogsim stats --quality`` measures, as a table."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

__all__ = ["quality_section"]


def quality_section(dirs: Sequence[Path]) -> str:
    """The quality figures of the datasets in ``dirs`` (grounding, policy, depth, errors, language)."""
    from simulator.quality import measure_quality, quality_rows

    report = measure_quality(dirs)
    body = "".join(
        f"<tr><th scope='row'>{escape(name)}</th><td class='num'>{escape(value)}</td></tr>"
        for name, value in quality_rows(report)
    )
    return (
        '<section aria-labelledby="quality-title"><h2 id="quality-title">Training-data quality</h2>'
        '<div class="card"><p class="muted">Measured from the messages alone, as for any dataset: '
        "arguments no user word or tool result grounds, answers reporting fields nobody asked for, "
        "policy violations found by replaying the writes on the environment's database, depth, tool "
        "errors reported and recovered from, and the language (<code>dialogsim stats --quality</code>).</p>"
        f'<table class="summary" id="quality-table"><thead><tr><th>metric</th><th class="num">value</th></tr>'
        f"</thead><tbody>{body}</tbody></table></div></section>"
    )
