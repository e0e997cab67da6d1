"""``dialogsim stats``: print the summary of one or more datasets in the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path

_EPILOG = """\
The summary holds the paper's Table 1 metrics (mean and max steps, turns and tasks per
dialogue, samples), task and dialogue success, tool error and invalid-argument rates,
termination reasons, feedback kinds, and tokens and cost when an LLM was used; with one
column per mode when both user-oriented and task-oriented dialogues are present.

examples:
  dialogsim stats data/
  dialogsim stats data/ baseline/          # both modes side by side
  dialogsim stats data/ --json > summary.json
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "stats",
        help="print a dataset's summary (Table 1 metrics, success and error rates)",
        description="Print the summary of the dialogues in one or more dataset directories.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "dataset", type=Path, nargs="+", metavar="DIR", help="dataset directories made by 'dialogsim generate'"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import msgspec
    from rich.console import Console

    from simulator.run.dataset import iter_records
    from simulator.summary import render_summary, summarize

    dirs: list[Path] = args.dataset
    # Read whole before any output: a directory that holds no dataset fails first.
    summary = summarize(record for directory in dirs for _, record in iter_records(directory))
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(summary), indent=2).decode())
        return 0
    Console().print(render_summary(summary, title=", ".join(str(d) for d in dirs)))
    return 0
