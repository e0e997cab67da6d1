"""The flags of an external MCP server as environment, shared by ``generate`` and ``eval``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.cli._types import non_negative_int, seconds

if TYPE_CHECKING:
    from simulator.external.spec import ExternalSpec

EXTERNAL_HELP = """\
external MCP server (instead of the built-in SQL environments):
  --server "COMMAND ARGS"   a stdio server, started fresh for every dialogue with only PATH, HOME,
                            LANG (+ --env K=V); {state} in the command is the dialogue's copy of
                            --state-dir DIR or --state-file FILE (removed afterwards unless --keep-state)
  --url URL                 an already running streamable HTTP server (+ --header 'Name: value');
                            every dialogue shares its state (said in the manifest)
  --user-server "COMMAND"   tools for the simulated user (an LLM user may call them)
"""


def add_external_arguments(parser: argparse.ArgumentParser, *, user_server: bool = True) -> None:
    g = parser.add_argument_group("external MCP server (instead of the built-in SQL environments)")
    g.add_argument("--server", metavar='"COMMAND ARGS"', help="a stdio MCP server started per dialogue")
    g.add_argument("--url", metavar="URL", help="an already running streamable HTTP MCP server (shared state)")
    g.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'", help="an HTTP header for --url")
    g.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="an environment variable for --server"
    )
    g.add_argument(
        "--state-dir", type=Path, metavar="DIR", help="copied per dialogue; its path replaces {state} in the command"
    )
    g.add_argument("--state-file", type=Path, metavar="FILE", help="one file copied per dialogue, as --state-dir")
    g.add_argument("--keep-state", action="store_true", help="keep each dialogue's state copy in DIR/state/")
    g.add_argument(
        "--server-pool",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="N pre-started processes reused across dialogues, their state restored in place (servers that "
        "re-read their state on every call)",
    )
    g.add_argument(
        "--server-timeout",
        type=seconds,
        default=30.0,
        metavar="S",
        help="seconds for a server to start and list its tools (default: 30)",
    )
    g.add_argument(
        "--call-timeout", type=seconds, default=60.0, metavar="S", help="seconds per tool call (default: 60)"
    )
    g.add_argument("--server-description", metavar="TEXT", help="what the server is for, as the agent is told")
    if user_server:
        g.add_argument(
            "--user-server", metavar='"COMMAND ARGS"', help="a stdio MCP server whose tools the simulated user has"
        )


def external_spec(args: argparse.Namespace) -> ExternalSpec | None:
    """The external server the flags describe (None for none), checked; raises ConfigError."""
    from schemas.errors import ExternalServerError
    from simulator.external.spec import ExternalSpec
    from simulator.stress.target import parse_env_pairs, parse_headers

    given = args.server is not None or args.url is not None
    if not given:
        for flag, value in (
            ("--state-dir", args.state_dir),
            ("--state-file", args.state_file),
            ("--header", args.header),
            ("--env", args.env),
            ("--keep-state", args.keep_state),
            ("--server-pool", args.server_pool),
        ):
            if value:
                raise ExternalServerError(flag, "goes with --server 'COMMAND' or --url URL")
        return None
    spec = ExternalSpec(
        command=args.server,
        url=args.url,
        headers=parse_headers(args.header),
        env=parse_env_pairs(args.env),
        state_dir=args.state_dir,
        state_file=args.state_file,
        keep_state=args.keep_state,
        pool=args.server_pool,
        description=args.server_description or "",
        connect_timeout_s=args.server_timeout,
        call_timeout_s=args.call_timeout,
    )
    spec.check()
    if spec.shared_state:
        print(
            f"dialogsim: warning: {spec.url} is one running server: every dialogue shares its state, so dialogues "
            "are not isolated and the state cannot be replayed (the manifest says shared_state)",
            file=sys.stderr,
        )
    return spec
