"""``dialogsim report``: one self-contained HTML file to look at datasets in a browser."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulator.cli._types import positive_int

_EPILOG = """\
The report is one HTML file with everything inline (styles, script, charts as SVG, the data
as JSON): it opens from disk with no network. It shows the summary (the paper's Table 1
metrics, success and error rates, tokens and cost), distributions of turns, steps, tasks,
tool calls per tool, feedback kinds and termination reasons, user-oriented and task-oriented
side by side when both are present, and a browser of the dialogues (search, filter by
domain, mode and success; messages, tool calls with arguments and results, user feedback
and per-task verification).

examples:
  dialogsim report data/ --out report.html
  dialogsim report data/ baseline/ --out compare.html      # both modes side by side
  python -m simulator.report.screenshot report.html report.png
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report of datasets (summary, charts, dialogue browser)",
        description="Write one self-contained HTML file that summarises datasets and lets you browse their dialogues.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "dataset",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="dataset directories made by 'dialogsim generate', or evaluations made by 'dialogsim eval' "
        "(their scores and floors are shown too)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the HTML file to write")
    p.add_argument("--title", default=None, help="the report's title (default: the directory names)")
    p.add_argument(
        "--max-dialogues",
        type=positive_int,
        default=2000,
        metavar="N",
        help="dialogues in the browser, first N by scenario id (default: 2000); the summary and charts count all",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simulator.report import write_report

    info = write_report(args.dataset, args.out, title=args.title, max_dialogues=args.max_dialogues)
    shown = f"{info.shown} of {info.dialogues}" if info.shown < info.dialogues else f"{info.dialogues}"
    print(f"wrote {args.out} ({info.size / 1024:.0f} KiB; {shown} dialogues in the browser)", file=sys.stderr)
    return 0
