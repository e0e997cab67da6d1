"""``dialogsim export``: write datasets as training data (OpenAI, Anthropic, ShareGPT, Parquet) or native records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulator.cli._types import non_negative_int

_FORMATS = ("openai", "anthropic", "sharegpt", "parquet", "native")
_MODES = ("user-oriented", "task-oriented")

_EPILOG = """\
formats (one example per dialogue, sorted by scenario id):
  openai     Chat Completions fine-tuning JSONL: {"messages", "tools"}; every tool call is
             followed by its "tool" message
  anthropic  Messages API JSONL: {"system", "messages", "tools"}; tool_use blocks answered by
             tool_result blocks (is_error on failed calls) in the next user turn
  sharegpt   ShareGPT function calling (LLaMA-Factory): {"conversations": [{"from": human | gpt |
             function_call | observation, "value"}], "system", "tools": "<JSON string>"}
  parquet    one row per dialogue, nested columns (messages: list of structs with tool_calls);
             reads with pyarrow, DuckDB and datasets.load_dataset("parquet", ...)
  native     the dataset's own records

The agent messages the simulated user rejected (the whole agent turn answered by a
correction or a "that is missing") are masked by default: "weight": 0 on them in openai
(OpenAI's fine-tuning skips an assistant message of weight 0) and in sharegpt (axolotl reads
it with message_field_training: weight; LLaMA-Factory ignores it, so use
--rejected-turns drop-dialogue for it), a weight column in parquet's messages (0 rejected,
1 other assistant messages). anthropic cannot carry a mark: its dialogues with a rejected
turn are left out by default (drop-dialogue) and counted; --rejected-turns keep writes them.
The user's change of values after a tool refusal its scenario planned (a detour) is not a
rejection: the agent was right to report the refusal. native records are written unchanged.

With --split, one file per split is written next to --out: --out chat.jsonl --split
train=0.9,validation=0.1 writes chat-train.jsonl and chat-validation.jsonl. Whole scenarios
go to one split (branches with their scenario), the same for the same --seed.
An existing output file is not overwritten without --force; every file is written whole
(through a .tmp file beside it) or not at all.

examples:
  dialogsim export data/ --format openai --out train.jsonl --only-successful
  dialogsim export data/ --format sharegpt --out sft.json --min-turns 10 --dedupe --split train=0.9,validation=0.1
  dialogsim export data/ baseline/ --format parquet --out both.parquet --failed-tool-calls drop
  dialogsim export data/ --format anthropic --out claude.jsonl --rejected-turns drop-dialogue
  dialogsim export data/ --format native --out all.jsonl
"""


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a similarity above 0 and at most 1, got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a similarity above 0 and at most 1, got {value}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="export datasets as training data (OpenAI, Anthropic, ShareGPT, Parquet) or native records",
        description=(
            "Export the dialogues of one or more dataset directories to one file (or one per split), "
            "choosing, de-duplicating and splitting them on the way."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "dataset", type=Path, nargs="+", metavar="DIR", help="dataset directories made by 'dialogsim generate'"
    )
    p.add_argument("--format", choices=_FORMATS, required=True, dest="fmt", help="output format")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the file to write")
    p.add_argument("--force", action="store_true", help="overwrite --out (and split files) if they exist")

    keep = p.add_argument_group("which dialogues")
    keep.add_argument(
        "--only-successful",
        action="store_true",
        help="keep only the dialogues recorded as successful (every task verified)",
    )
    keep.add_argument("--min-turns", type=non_negative_int, default=0, metavar="N", help="at least N turns")
    keep.add_argument("--min-tasks", type=non_negative_int, default=0, metavar="N", help="at least N tasks")
    keep.add_argument(
        "--min-steps",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="at least N sequential tool calls for some request",
    )
    keep.add_argument(
        "--domain", action="append", default=[], metavar="NAME", help="only this domain; repeat for several"
    )
    keep.add_argument("--mode", action="append", choices=_MODES, default=[], help="only this mode; repeat for both")
    keep.add_argument(
        "--failed-tool-calls",
        choices=("keep", "drop"),
        default="keep",
        help="keep failed tool calls with their error results as negative examples (default), or drop the "
        "dialogues that have one (the agent's words about a failure stay meaningful only beside it)",
    )
    keep.add_argument(
        "--rejected-turns",
        choices=("mask", "drop-dialogue", "keep"),
        default=None,
        help="what to do with the agent messages the user then rejected (a correction or a 'that is missing'): "
        "mask marks them not to be trained on (openai, sharegpt, parquet), drop-dialogue leaves out the "
        "dialogues that have one, keep writes them as targets like any other (default: mask where the format "
        "can mark a message, else drop-dialogue)",
    )
    keep.add_argument(
        "--dedupe",
        nargs="?",
        type=_threshold,
        const=0.9,
        default=None,
        metavar="SIMILARITY",
        help=(
            "drop near-identical dialogues (word 5-gram Jaccard similarity, default 0.9), keeping the first "
            "by scenario id; give it after DIR"
        ),
    )
    split = p.add_argument_group("splits")
    split.add_argument(
        "--split",
        metavar="NAME=FRACTION,...",
        help="write one file per split, whole scenarios to one split, e.g. train=0.9,validation=0.1",
    )
    split.add_argument("--seed", type=int, default=0, help="seed of the split assignment (default: 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simulator.export import RejectedTurns, export
    from simulator.export.selection import FailedToolCalls, Selection, parse_splits

    selection = Selection(
        only_successful=args.only_successful,
        min_turns=args.min_turns,
        min_tasks=args.min_tasks,
        min_steps=args.min_steps,
        domains=tuple(args.domain),
        modes=tuple(args.mode),
        failed_tool_calls=FailedToolCalls(args.failed_tool_calls),
        dedupe=args.dedupe,
    )
    splits = parse_splits(args.split) if args.split else None
    result = export(
        args.dataset,
        args.fmt,
        args.out,
        selection=selection,
        splits=splits,
        seed=args.seed,
        force=args.force,
        rejected_turns=RejectedTurns(args.rejected_turns) if args.rejected_turns else None,
    )

    if splits:
        shown = ", ".join(f"{name} {n} -> {path}" for name, (path, n) in result.files.items())
        parts = [f"wrote {result.written} dialogues ({shown})"]
    else:
        parts = [f"wrote {result.written} dialogues to {args.out}"]
    if result.unsuccessful:
        parts.append(f"{result.unsuccessful} unsuccessful left out")
    parts += [f"{n} left out ({reason})" for reason, n in result.filtered.items()]
    if result.duplicates:
        parts.append(f"{len(result.duplicates)} near duplicates left out")
    if result.masking:
        parts.append(
            f"{result.masked_messages} agent messages the user rejected masked, in {result.masked_dialogues} dialogues"
        )
    if result.invalid:
        shown = ", ".join(result.invalid_ids[:5]) + (", ..." if result.invalid > 5 else "")
        parts.append(f"{result.invalid} left out whose tool calls lack results ({shown})")
    print("; ".join(parts), file=sys.stderr)
    return 0
