"""The ``dialogsim`` command line.

Each command lives in its own module with a ``register(subparsers)`` function; the
module is imported only when the command list is built. ConfigError (bad user input)
exits with code 2 and one readable line; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from schemas.errors import ConfigError
from simulator.cli._config import add_config_option, apply_config

__all__ = ["main"]

# Command modules, in the order ``--help`` lists them.
_COMMANDS = ("_generate", "_merge", "_eval", "_export", "_report", "_stats", "_tools", "_stress", "_schema")

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialogsim",
        description=(
            "Generate and evaluate long, multi-turn, tool-using dialogues. Tools are real MCP servers "
            "over a per-dialogue SQLite database; works offline by default."
        ),
    )
    _add_logging_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        module = importlib.import_module(f"simulator.cli.{name}")
        module.register(sub)
    for name, command in sub.choices.items():
        _add_logging_options(command, suppress=True)
        if name in _CONFIGURABLE:
            add_config_option(command)
    return parser


#: Commands that take ``--config FILE.toml`` (keys mirror their long flags).
_CONFIGURABLE = ("generate", "eval", "stress")


_LOG_LEVELS = ("debug", "info", "warning", "error")


def _add_logging_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """``--log-level`` and ``--log-format``, accepted before or after the command name."""
    group = parser.add_argument_group("logging (stderr; a run also writes DIR/run.log as JSON lines)")
    group.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default=argparse.SUPPRESS if suppress else "warning",
        help="least severe messages shown on stderr (default: warning)",
    )
    group.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=argparse.SUPPRESS if suppress else "console",
        help="console: one readable line per event; json: one JSON object per line (default: console)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        apply_config(parser, sys.argv[1:] if argv is None else list(argv), _CONFIGURABLE)
    except ConfigError as exc:
        print(f"dialogsim: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    from simulator.log import configure

    configure(args.log_level, args.log_format)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"dialogsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dialogsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (``dialogsim stats --json | head``): stop quietly, as
        # other command-line tools do; point stdout at /dev/null so the exit flush cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
