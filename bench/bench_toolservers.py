"""Tool servers per transport: start-up and call latency, against sqlite3 and the executor.

For each transport (in process, streamable HTTP on loopback, stdio subprocess) it times
start + connect + ``list_tools`` and the median ``call_tool`` of a ``get_*`` read; the
same query is also timed through plain sqlite3, ``ToolExecutor.call`` and
``ToolServer.call`` (no MCP), all in one run, so the ratios compare like with like.

    python -m bench toolservers [--starts N] [--stdio-starts N] [--calls N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from schemas import DatabaseSpec, Effect, Environment, ResultShape, SqlImplementation, ToolEvent, ToolSpec
from toolservers import TRANSPORTS, TransportName, build_tool_server, connect_tool_server

GET_SQL = "SELECT * FROM customers WHERE customer_id = :customer_id"
ROWS = 1000


def bench_environment(rows: int = ROWS) -> Environment:
    """A customers table with ``rows`` rows, one ``get_*`` read and one write."""
    row_schema = {
        "type": "object",
        "properties": {
            "customer_id": {"type": "integer"},
            "name": {"type": "string"},
            "email": {"type": "string"},
            "tier": {"type": "string"},
        },
    }
    return Environment(
        id="bench-shop",
        domain="shop",
        database=DatabaseSpec(
            ddl=(
                "CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "email TEXT NOT NULL UNIQUE, tier TEXT NOT NULL);"
            ),
            seed={
                "customers": [
                    {
                        "customer_id": i,
                        "name": f"Customer {i}",
                        "email": f"c{i}@example.com",
                        "tier": "gold" if i % 7 == 0 else "basic",
                    }
                    for i in range(1, rows + 1)
                ]
            },
        ),
        tools=[
            ToolSpec(
                name="get_customer",
                description="Get one customer by id.",
                input_schema={
                    "type": "object",
                    "properties": {"customer_id": {"type": "integer"}},
                    "required": ["customer_id"],
                    "additionalProperties": False,
                },
                output_schema=row_schema,
                implementation=SqlImplementation(statements=[GET_SQL], result=ResultShape.ROW),
                table="customers",
                category="get",
            ),
            ToolSpec(
                name="set_tier",
                description="Set a customer's tier.",
                effect=Effect.WRITE,
                input_schema={
                    "type": "object",
                    "properties": {"customer_id": {"type": "integer"}, "tier": {"type": "string"}},
                    "required": ["customer_id", "tier"],
                    "additionalProperties": False,
                },
                implementation=SqlImplementation(
                    statements=["UPDATE customers SET tier = :tier WHERE customer_id = :customer_id"],
                    result=ResultShape.AFFECTED,
                ),
                table="customers",
                category="update",
            ),
        ],
    )


def _ms(ns: list[int]) -> dict[str, float]:
    values = sorted(n / 1e6 for n in ns)
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else values[0]
    return {"median_ms": statistics.median(values), "p90_ms": p90, "n": len(values)}


def _args_for(i: int) -> dict[str, Any]:
    return {"customer_id": i % ROWS + 1}


async def _noop(_event: ToolEvent) -> None:
    return None


async def _time_calls(call: Callable[[dict[str, Any]], Awaitable[Any]], calls: int) -> list[int]:
    for i in range(min(20, calls)):  # warm-up: first-use costs are not latency
        await call(_args_for(i))
    out = []
    for i in range(calls):
        args = _args_for(i)
        started = time.perf_counter_ns()
        await call(args)
        out.append(time.perf_counter_ns() - started)
    return out


def _time_sync(call: Callable[[dict[str, Any]], Any], calls: int) -> list[int]:
    for i in range(min(20, calls)):
        call(_args_for(i))
    out = []
    for i in range(calls):
        args = _args_for(i)
        started = time.perf_counter_ns()
        call(args)
        out.append(time.perf_counter_ns() - started)
    return out


async def _transport(env: Environment, transport: TransportName, starts: int, calls: int) -> dict[str, Any]:
    start_ns: list[int] = []
    close_ns: list[int] = []
    for _ in range(starts):
        started = time.perf_counter_ns()
        async with connect_tool_server(env, transport=transport, on_event=_noop) as conn:
            await conn.client.list_tools()
            start_ns.append(time.perf_counter_ns() - started)
            closing = time.perf_counter_ns()
            await conn.finish()
            close_ns.append(time.perf_counter_ns() - closing)
    async with connect_tool_server(env, transport=transport, on_event=_noop) as conn:
        await conn.client.list_tools()

        async def call(args: dict[str, Any]) -> None:
            result = await conn.client.call_tool("get_customer", args)
            assert not result.is_error, result

        call_ns = await _time_calls(call, calls)
    return {"start": _ms(start_ns), "close": _ms(close_ns), "call_tool": _ms(call_ns)}


async def _baselines(env: Environment, calls: int) -> dict[str, Any]:
    tool_server = build_tool_server(env, on_event=_noop)
    plain = sqlite3.connect(":memory:")
    try:
        tool_server.db.conn.backup(plain)

        def direct(args: dict[str, Any]) -> None:
            rows = plain.execute(GET_SQL, args).fetchall()
            assert rows

        def executor(args: dict[str, Any]) -> None:
            tool_server.executor.call("get_customer", args)

        counter = iter(range(10**9))

        async def server_call(args: dict[str, Any]) -> None:
            result = await tool_server.call(f"call_{next(counter)}", "get_customer", args)
            assert not result.is_error

        return {
            "sqlite3": _ms(_time_sync(direct, calls)),
            "executor": _ms(_time_sync(executor, calls)),
            "tool_server_call": _ms(await _time_calls(server_call, calls)),
        }
    finally:
        plain.close()
        tool_server.close()


async def run(starts: int, stdio_starts: int, calls: int) -> dict[str, Any]:
    env = bench_environment()
    results: dict[str, Any] = {"baselines": await _baselines(env, calls), "transports": {}}
    for transport in TRANSPORTS:
        n = stdio_starts if transport == "stdio" else starts
        results["transports"][transport] = await _transport(env, transport, n, calls)
    t = results["transports"]
    b = results["baselines"]

    def median(d: dict[str, Any]) -> float:
        value: float = d["median_ms"]
        return value

    inproc = median(t["inprocess"]["call_tool"])
    results["ratios"] = {
        "inprocess_call_tool / sqlite3": inproc / median(b["sqlite3"]),
        "inprocess_call_tool / executor": inproc / median(b["executor"]),
        "executor / sqlite3": median(b["executor"]) / median(b["sqlite3"]),
        "http_call_tool / inprocess_call_tool": median(t["http"]["call_tool"]) / inproc,
        "stdio_call_tool / inprocess_call_tool": median(t["stdio"]["call_tool"]) / inproc,
        "http_start / inprocess_start": median(t["http"]["start"]) / median(t["inprocess"]["start"]),
        "stdio_start / inprocess_start": median(t["stdio"]["start"]) / median(t["inprocess"]["start"]),
    }
    return results


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "load_average_1m": round(load[0], 2),
        "sqlite": sqlite3.sqlite_version,
    }


def _print(command: str, machine: dict[str, Any], params: dict[str, Any], results: dict[str, Any]) -> None:
    print(f"command: {command}")
    print(
        f"python {machine['python']}, {machine['platform']}, {machine['cpus']} CPUs, "
        f"load average {machine['load_average_1m']}, sqlite {machine['sqlite']}"
    )
    print(
        f"{params['rows']} rows; get_customer by id; medians of {params['calls']} calls, "
        f"{params['starts']} starts ({params['stdio_starts']} for stdio)"
    )
    print()
    print(f"{'transport':<11}{'start+connect+list':>20}{'close':>10}{'call_tool':>12}{'call p90':>11}")
    for name, r in results["transports"].items():
        print(
            f"{name:<11}{r['start']['median_ms']:>17.2f} ms{r['close']['median_ms']:>7.2f} ms"
            f"{r['call_tool']['median_ms'] * 1000:>9.0f} µs{r['call_tool']['p90_ms'] * 1000:>8.0f} µs"
        )
    print()
    print("the same query without MCP:")
    labels = {
        "sqlite3": "sqlite3 execute + fetchall",
        "executor": "ToolExecutor.call",
        "tool_server_call": "ToolServer.call (no MCP)",
    }
    for key, label in labels.items():
        print(f"  {label:<28}{results['baselines'][key]['median_ms'] * 1000:>9.1f} µs")
    print()
    print("ratios (medians, same run):")
    for key, value in results["ratios"].items():
        print(f"  {key:<40}{value:>9.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench toolservers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=10, help="server starts to time per transport (default 10)")
    parser.add_argument(
        "--stdio-starts", type=int, default=4, help="server starts to time for stdio, a subprocess each (default 4)"
    )
    parser.add_argument("--calls", type=int, default=300, help="call_tool calls to time per transport (default 300)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    if min(args.starts, args.stdio_starts, args.calls) < 2:
        parser.error("--starts, --stdio-starts and --calls need at least 2 (a median and a p90)")
    python = os.path.relpath(sys.executable)
    python = sys.executable if python.startswith("..") else python
    command = " ".join([python, "-m bench toolservers", *(argv if argv is not None else sys.argv[2:])])
    params = {"rows": ROWS, "starts": args.starts, "stdio_starts": args.stdio_starts, "calls": args.calls}
    results = anyio.run(run, args.starts, args.stdio_starts, args.calls)
    machine = _machine()
    _print(command, machine, params, results)
    if args.json is not None:
        payload = {"bench": "toolservers", "command": command, "machine": machine, "params": params, **results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0
