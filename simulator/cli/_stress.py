"""``dialogsim stress``: point at any MCP server and report what breaks."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from rich.console import Console

if TYPE_CHECKING:
    from simulator.stress.target import TargetSpec

_EPILOG = """\
targets (exactly one):
  --environment FILE       an environment file, served from this process (or --transport stdio|http)
  --domain NAME            a built-in domain (clinic, retail, travel), served like --environment
  --server "COMMAND ARGS"  any stdio MCP server, started with only PATH, HOME, LANG (+ --env K=V)
  --url URL                any streamable HTTP MCP server (+ --header 'Name: value')

exit codes: 0 no finding at or above --fail-on; 1 some; 2 bad input or unreachable target.

examples:
  dialogsim stress --environment shop.json --out stress-out/
  dialogsim stress --domain retail --transport stdio --calls 5
  dialogsim stress --server "npx -y @modelcontextprotocol/server-everything" --no-writes --fail-on critical
  dialogsim stress --url http://127.0.0.1:8765/mcp --header "Authorization: Bearer $TOKEN"
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "stress",
        help="stress-test an MCP server's tools: schema lint, bad arguments, crashes, hangs, load, state",
        description=(
            "Lint every tool's schema, call each tool with generated valid and invalid arguments, check the\n"
            "database of an environment changed only as the valid writes say, put the server under\n"
            "concurrent load, and report every finding with a severity and a fix."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = p.add_argument_group("target")
    target.add_argument("--environment", type=Path, metavar="FILE", help="an environment JSON file")
    target.add_argument("--domain", metavar="NAME", help="a built-in domain, e.g. retail")
    target.add_argument(
        "--transport",
        choices=["inprocess", "stdio", "http"],
        default="inprocess",
        help="how to reach an environment's server (default: inprocess)",
    )
    target.add_argument("--server", metavar='"COMMAND ARGS"', help="start this stdio MCP server")
    target.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="an environment variable for --server"
    )
    target.add_argument("--url", metavar="URL", help="a streamable HTTP MCP endpoint")
    target.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="an HTTP header for --url"
    )
    run = p.add_argument_group("run")
    run.add_argument("--calls", type=int, default=20, metavar="N", help="valid calls per tool (default: 20)")
    run.add_argument(
        "--load-calls", type=int, default=100, metavar="N", help="calls in the load phase; 0 skips it (default: 100)"
    )
    run.add_argument("--concurrency", type=int, default=8, metavar="C", help="calls in flight under load (default: 8)")
    run.add_argument(
        "--call-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="per-call timeout; an --environment/--domain server interrupts a call's SQL half a second "
        "before it and answers with a timeout error (default: 5 s)",
    )
    run.add_argument(
        "--connect-timeout", type=float, default=30.0, metavar="S", help="time to connect and list (default: 30 s)"
    )
    run.add_argument("--seed", type=int, default=0, help="seed of the generated arguments (default: 0)")
    run.add_argument("--no-writes", action="store_true", help="skip tools that declare or look like writes")
    run.add_argument(
        "--fail-on",
        default="high",
        metavar="SEVERITY",
        help="exit 1 when a finding is at or above: info, low, medium, high, critical (default: high)",
    )
    run.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write report.json, run.log (JSON lines) and a --server's stderr (server-stderr.log) here",
    )
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from simulator.log import RUN_LOG, run_log
    from simulator.stress.campaign import StressOptions, run_stress
    from simulator.stress.render import PhaseProgress, print_summary
    from simulator.stress.report import Severity, StressReport, write_report

    # The SDK logs every exception a tool raises; under stress those are the findings, reported below.
    logging.getLogger("mcp").setLevel(logging.CRITICAL)
    spec = _spec(args)
    options = StressOptions(
        calls=args.calls,
        load_calls=args.load_calls,
        concurrency=args.concurrency,
        call_timeout=args.call_timeout,
        connect_timeout=args.connect_timeout,
        seed=args.seed,
        no_writes=args.no_writes,
        fail_on=Severity.parse(args.fail_on),
    )
    progress = PhaseProgress(Console(stderr=True))
    run = functools.partial(run_stress, spec, options, progress=progress, workdir=args.out)
    with contextlib.ExitStack() as stack:
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            stack.enter_context(run_log(args.out / RUN_LOG, command="stress"))
        report: StressReport = anyio.run(run)
    path = write_report(report, args.out) if args.out is not None else None
    print_summary(report, report_path=path)
    return 0 if report.passed else 1


def _spec(args: argparse.Namespace) -> TargetSpec:
    from simulator.stress.target import TargetSpec, parse_env_pairs, parse_headers

    environment_object = None
    if args.domain is not None:
        from simulator.domains import load_domain

        environment_object = load_domain(args.domain)
    return TargetSpec(
        environment=args.environment,
        environment_object=environment_object,
        transport=args.transport,
        server=args.server,
        url=args.url,
        headers=parse_headers(args.header),
        env=parse_env_pairs(args.env),
    )
