"""The ``dialogsim`` command line.

Each command lives in its own module with a ``register(subparsers)`` function; the
module is imported only when the command list is built. ConfigError (bad user input)
exits with code 2 and one readable line; anything else is a bug and shows a traceback.
Warnings logged through ``simulator.log`` (a skipped partial record, an interrupted run)
are shown on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TextIO, cast

from schemas.errors import ConfigError

__all__ = ["main"]

# Command modules, in the order ``--help`` lists them.
_COMMANDS = ("_generate", "_eval", "_export", "_report", "_stats", "_tools", "_stress", "_schema")

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialogsim",
        description=(
            "Generate and evaluate long, multi-turn, tool-using dialogues. Tools are real MCP servers "
            "over a per-dialogue SQLite database; works offline by default."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        module = importlib.import_module(f"simulator.cli.{name}")
        module.register(sub)
    return parser


class _Stderr:
    """Whatever ``sys.stderr`` is at the time of writing (tests swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    from simulator.log import configure

    parser = build_parser()
    args = parser.parse_args(argv)
    configure(stream=cast(TextIO, _Stderr()))  # write and flush are all logging needs
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"dialogsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dialogsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
