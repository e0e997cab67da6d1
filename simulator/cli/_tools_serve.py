"""``dialogsim tools serve``: serve an environment's tools over MCP (stdio or streamable HTTP)."""

from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from schemas.errors import ConfigError

if TYPE_CHECKING:
    from toolservers.transports import HttpEndpoint

_EPILOG = """\
examples:
  dialogsim tools serve --environment shop.json
      MCP over stdin/stdout, on a private in-memory copy of the database
  dialogsim tools serve --environment shop.json --transport http --port 8765
      streamable HTTP at http://127.0.0.1:8765/mcp; a random token is printed to stderr
  dialogsim tools serve --environment shop.json --database shop.sqlite --in-place
      serve another database file and write changes back to it

Limits: a call's SQL is interrupted after --call-timeout (10 s) and answered with an
isError result whose code is "timeout". Over HTTP at most --max-sessions (256) MCP
sessions are open at once (503 with Retry-After beyond), and a session without a
request for --session-idle-timeout (300 s) is ended. SIGINT or SIGTERM stops the server
within a few seconds, interrupting a running statement.

Logs go to stderr only; with --transport stdio, stdout carries nothing but MCP messages.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="serve an environment's tools as an MCP server (stdio or HTTP)",
        description=(
            "Serve the tools of an environment file as an MCP server. Tools run parameterised SQL\n"
            "on a private copy of the environment's database (the source file is never modified\n"
            "unless --in-place is given); arguments are validated against each tool's input schema."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--environment", required=True, type=Path, metavar="FILE", help="the environment JSON file to serve")
    p.add_argument(
        "--database",
        type=Path,
        metavar="FILE",
        help="serve this SQLite file instead of the environment's own database",
    )
    p.add_argument(
        "--in-place",
        action="store_true",
        help="change the database file itself instead of a private in-memory copy",
    )
    p.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio: MCP over stdin/stdout (default); http: streamable HTTP at http://HOST:PORT/mcp",
    )
    p.add_argument(
        "--call-timeout",
        type=float,
        metavar="S",
        help="interrupt a call's SQL after S seconds and answer it with a timeout error (default: 10)",
    )
    http = p.add_argument_group("HTTP options")
    http.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback only)")
    http.add_argument(
        "--port", type=int, default=0, help="port to listen on; 0 (default) picks a free one and prints it"
    )
    http.add_argument(
        "--token",
        metavar="TOKEN",
        help="require 'Authorization: Bearer TOKEN' (default: a random token, printed once to stderr)",
    )
    http.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that other machines can reach (the token is then the only protection)",
    )
    http.add_argument(
        "--max-sessions",
        type=int,
        metavar="N",
        help="open MCP sessions at most; more get 503 with Retry-After (default: 256)",
    )
    http.add_argument(
        "--session-idle-timeout",
        type=float,
        metavar="S",
        help="end a session after S seconds without a request (default: 300)",
    )
    stdio = p.add_argument_group("stdio options")
    stdio.add_argument(
        "--events",
        metavar="unix:PATH",
        help="connect to this unix socket and write every tool call and result to it as a JSON line",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from toolservers import build_tool_server, load_environment
    from toolservers.transports import new_token, serve_http, serve_stdio

    events = _events_path(args.events, args.transport)
    _check_limits(args)
    env_path: Path = args.environment
    environment = load_environment(env_path)
    tool_server = build_tool_server(
        environment,
        base_dir=env_path.parent,
        database=args.database,
        in_place=args.in_place,
        source=str(env_path),
        call_timeout_s=args.call_timeout,
    )
    try:
        if args.transport == "stdio":
            anyio.run(functools.partial(serve_stdio, tool_server, events=events))
        else:
            token = args.token or new_token()
            on_ready = functools.partial(_announce, show_token=args.token is None)
            anyio.run(
                functools.partial(
                    serve_http,
                    tool_server,
                    token=token,
                    host=args.host,
                    port=args.port,
                    allow_remote=args.allow_remote,
                    on_ready=on_ready,
                    max_sessions=args.max_sessions,
                    session_idle_timeout_s=args.session_idle_timeout,
                )
            )
    finally:
        tool_server.close()
    return 0


def _check_limits(args: argparse.Namespace) -> None:
    """Fill in the library's defaults (imported here: the parser is built without toolservers); check."""
    from toolservers._sessions import DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_IDLE_TIMEOUT_S
    from toolservers.database import DEFAULT_CALL_TIMEOUT_S
    from toolservers.transports import check_token

    if args.call_timeout is None:
        args.call_timeout = DEFAULT_CALL_TIMEOUT_S
    if args.max_sessions is None:
        args.max_sessions = DEFAULT_MAX_SESSIONS
    if args.session_idle_timeout is None:
        args.session_idle_timeout = DEFAULT_SESSION_IDLE_TIMEOUT_S
    if not (math.isfinite(args.call_timeout) and args.call_timeout > 0):
        raise ConfigError(f"--call-timeout: expected seconds > 0, got {args.call_timeout:g}")
    if args.transport != "http":
        return
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port: expected 0..65535, got {args.port}")
    check_token(args.token)
    if args.max_sessions < 1:
        raise ConfigError(f"--max-sessions: expected at least 1, got {args.max_sessions}")
    if not (math.isfinite(args.session_idle_timeout) and args.session_idle_timeout > 0):
        raise ConfigError(f"--session-idle-timeout: expected seconds > 0, got {args.session_idle_timeout:g}")


def _events_path(spec: str | None, transport: str) -> Path | None:
    if spec is None:
        return None
    if transport != "stdio":
        raise ConfigError("--events goes with --transport stdio (HTTP servers report nothing back)")
    scheme, sep, path = spec.partition(":")
    if scheme != "unix" or not sep or not path:
        raise ConfigError(f"--events: expected unix:PATH, got {spec!r}")
    return Path(path)


def _announce(endpoint: HttpEndpoint, *, show_token: bool) -> None:
    print(f"dialogsim: serving MCP tools at {endpoint.url}", file=sys.stderr)
    if show_token:
        print(f"dialogsim: token: {endpoint.token}", file=sys.stderr)
    sys.stderr.flush()
