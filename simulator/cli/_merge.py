"""``dialogsim merge``: join the shards of a run (``generate --shard I/N``) into one dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

_EPILOG = """\
The inputs must be shards of the same run: generated with the same settings (seed, mode,
domains, database, dialogue settings), whatever --shard, --dialogues or --concurrency each
had. Records are deduplicated by scenario id (the last one wins: inputs in the order given,
each in file order). Nothing is written when an input does not fit; the output appears
whole. It is an ordinary dataset: stats, export and report read it, and generate with the
run's settings (without --shard) resumes it, running only the dialogues no shard made.

examples:
  dialogsim merge shards/0 shards/1 shards/2 shards/3 --out data/
  dialogsim merge shards/* --out data/
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "merge",
        help="merge the shards of a run (generate --shard) into one dataset",
        description="Merge dataset directories made by 'dialogsim generate --shard I/N' into one dataset.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("datasets", type=Path, nargs="+", metavar="DIR", help="shard directories of one run")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="the merged dataset (a new directory)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from simulator.run.merge import merge_datasets
    from simulator.summary import render_summary

    summary = merge_datasets(args.datasets, args.out)
    console = Console()
    console.print(render_summary(summary.dataset, title=f"{args.out}"))
    shards = ", ".join(f"{i.dir} ({i.shard or 'whole'}: {i.records})" for i in summary.inputs)
    console.print(
        f"merged {len(summary.inputs)} directories, {summary.records} dialogues "
        f"({summary.duplicates} duplicates dropped) into {args.out}: {shards}",
        highlight=False,
    )
    return 0
