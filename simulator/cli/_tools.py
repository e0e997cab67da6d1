"""``dialogsim tools derive|serve``: derive tools from a database, serve an environment over MCP."""

from __future__ import annotations

import argparse

from simulator.cli import _tools_derive, _tools_serve


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tools",
        help="derive tools from an SQLite database, or serve an environment over MCP",
        description="Work with tool environments.",
    )
    tools_sub = p.add_subparsers(dest="tools_command", metavar="SUBCOMMAND", required=True)
    _tools_derive.register(tools_sub)
    _tools_serve.register(tools_sub)
