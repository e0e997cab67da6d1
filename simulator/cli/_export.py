"""``dialogsim export``: write a dataset as chat fine-tuning data or as its native records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_EPILOG = """\
formats:
  openai  chat fine-tuning JSONL: {"messages": [...], "tools": [...]} per dialogue, with the
          environment's description and policy as the system message and every tool call
          followed by its result
  native  the dataset's own records, unchanged

examples:
  dialogsim export data/ --format openai --out train.jsonl --only-successful
  dialogsim export data/ --format native --out all.jsonl
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="export a dataset (OpenAI chat fine-tuning format, or native records)",
        description="Export the dialogues of a dataset directory to one JSONL file, sorted by scenario id.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", type=Path, metavar="DIR", help="a dataset directory made by 'dialogsim generate'")
    p.add_argument("--format", choices=["openai", "native"], required=True, dest="fmt", help="output format")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the JSONL file to write")
    p.add_argument(
        "--only-successful",
        action="store_true",
        help="keep only the dialogues recorded as successful (every task verified)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simulator.export import export

    result = export(args.dataset, args.fmt, args.out, only_successful=args.only_successful)
    parts = [f"wrote {result.written} dialogues to {args.out}"]
    if result.unsuccessful:
        parts.append(f"{result.unsuccessful} unsuccessful left out")
    if result.invalid:
        shown = ", ".join(result.invalid_ids[:5]) + (", ..." if result.invalid > 5 else "")
        parts.append(f"{result.invalid} left out whose tool calls lack results ({shown})")
    print("; ".join(parts), file=sys.stderr)
    return 0
