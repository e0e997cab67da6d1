"""``dialogsim stats``: print the summary of one or more datasets in the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path

_EPILOG = """\
The summary holds the paper's Table 1 metrics (mean and max steps, turns and tasks per
dialogue, samples), task and dialogue success, tool error and invalid-argument rates,
termination reasons, feedback kinds, and tokens and cost when an LLM was used; with one
column per mode when both user-oriented and task-oriented dialogues are present.

--quality measures what a researcher training on the data cares about, for any dataset
(offline or model-generated; it reads the messages, never the offline dialogue acts):
tool-call arguments that no user word or tool result grounds, answers reporting fields
nobody asked for, policy violations (writes without an explicit yes to a restatement,
rows of another user, forbidden transitions, missed refusals; found by replaying the
writes on the environment's database), steps per request, tasks and turns with
percentiles, tool errors reported and recovered from, repeated sentences, distinct-n
on a matched 8,000-token sample, agent closings, persona lengths and grammar-rule hits.

examples:
  dialogsim stats data/
  dialogsim stats data/ baseline/          # both modes side by side
  dialogsim stats data/ --json > summary.json
  dialogsim stats --quality data/
  dialogsim stats --quality data/ --json > quality.json
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
    p.add_argument(
        "--quality",
        action="store_true",
        help="measure training-data quality instead: grounding, policy, depth, errors, language (see below)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import msgspec
    from rich.console import Console

    from simulator.run.dataset import iter_records
    from simulator.summary import render_summary, summarize

    dirs: list[Path] = args.dataset
    if args.quality:
        from simulator.quality import measure_quality, render_quality

        report = measure_quality(dirs)
        if args.json:
            print(msgspec.json.format(msgspec.json.encode(report), indent=2).decode())
        else:
            Console().print(render_quality(report, title=", ".join(str(d) for d in dirs)))
        return 0
    # Read whole before any output: a directory that holds no dataset fails first.
    summary = summarize(record for directory in dirs for _, record in iter_records(directory))
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(summary), indent=2).decode())
        return 0
    Console().print(render_summary(summary, title=", ".join(str(d) for d in dirs)))
    return 0
