"""How long one runaway query stalls the other dialogues of a run, and what the fast path costs.

Many dialogues share one event loop, each with its own in-process tool server. One of
them calls a tool whose SQL never ends (a recursive CTE without a bound); SQLite
interrupts it at the server's deadline. Meanwhile a ticker coroutine measures the longest
gap between its turns on the loop, and the other dialogues keep calling a fast tool.
Measured side by side in one run:

- ``offload``: dialogsim as built, a statement gets ``loop_budget_s`` on the loop, then
  finishes in a worker thread;
- ``on loop``: the same servers with the budget set to the whole deadline, which is how
  every statement ran before (SQLite on the event loop for as long as it takes).

It also times a second session of the runaway's own server (initialize + list_tools,
then a fast call, which waits for the database), and the fast path itself: the median
in-process ``call_tool`` and ``ToolExecutor.acall`` against a thread hop per call.

    python -m bench stall [--dialogues N] [--deadline S] [--calls N] [--trials N] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import mcp

from bench.bench_toolservers import bench_environment
from schemas import Environment, ResultShape, SqlImplementation, ToolSpec
from toolservers import ToolServer, build_tool_server
from toolservers.database import LOOP_BUDGET_S

RUNAWAY_SQL = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) AS n FROM c"
#: How much longer than the loop's own worst gap (no runaway, same machine, same run) a
#: runaway may make it: about the loop budget, plus scheduling noise.
GOAL_STALL_MS = 50.0
#: The largest slowdown of the common fast call it allows.
GOAL_FAST_RATIO = 1.10


def stall_environment() -> Environment:
    """The toolservers bench's shop, plus ``runaway``: a read whose SQL never ends."""
    env = bench_environment()
    runaway = ToolSpec(
        name="runaway",
        description="Count forever.",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        implementation=SqlImplementation(statements=[RUNAWAY_SQL], result=ResultShape.SCALAR),
        category="count",
    )
    return Environment(id=env.id, domain=env.domain, database=env.database, tools=[*env.tools, runaway])


def _ms(values_s: list[float]) -> dict[str, float]:
    values = sorted(v * 1000 for v in values_s)
    p99 = statistics.quantiles(values, n=100, method="inclusive")[-1] if len(values) >= 2 else values[0]
    return {"median_ms": statistics.median(values), "p99_ms": p99, "max_ms": values[-1], "n": len(values)}


async def _ticker(stop: anyio.Event, gaps: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await anyio.lowlevel.checkpoint()
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def _scenario(
    env: Environment, dialogues: int, deadline: float, budget: float, *, runaway: bool
) -> dict[str, Any]:
    """One runaway (or none, for the noise floor) among ``dialogues`` servers on this loop.

    Returns the ticker's gaps and the other dialogues' call latencies while it runs.
    """
    servers: list[ToolServer] = []
    async with AsyncExitStack() as stack:
        for _ in range(dialogues):
            server = build_tool_server(env, call_timeout_s=deadline)
            server.db.loop_budget_s = budget
            stack.callback(server.close)
            servers.append(server)
        clients = [await stack.enter_async_context(mcp.Client(s.server)) for s in servers]
        for client in clients:  # warm-up
            await client.call_tool("get_customer", {"customer_id": 1})
        gaps: list[float] = []
        latencies: list[float] = []
        runaway_s: list[float] = []
        stop = anyio.Event()

        async def run_away() -> None:
            started = time.perf_counter()
            if runaway:
                result = await clients[0].call_tool("runaway", {})
                assert result.is_error, "the runaway query ended on its own"
            else:
                await anyio.sleep(deadline)
            runaway_s.append(time.perf_counter() - started)
            stop.set()

        async def other(client: mcp.Client, offset: int) -> None:
            i = offset
            while not stop.is_set():
                started = time.perf_counter()
                result = await client.call_tool("get_customer", {"customer_id": i % 1000 + 1})
                latencies.append(time.perf_counter() - started)
                assert not result.is_error
                i += 1
                await anyio.sleep(0.002)

        async with anyio.create_task_group() as tg:
            tg.start_soon(_ticker, stop, gaps)
            for k, client in enumerate(clients[1:]):
                tg.start_soon(other, client, k * 37)
            tg.start_soon(run_away)
        return {"gap": _ms(gaps), "other_calls": _ms(latencies), "runaway_s": runaway_s[0]}


async def _trials(
    env: Environment, dialogues: int, deadline: float, budget: float, *, runaway: bool, trials: int
) -> dict[str, Any]:
    """The trial with the median worst gap (a loaded machine adds its own spikes)."""
    runs = [await _scenario(env, dialogues, deadline, budget, runaway=runaway) for _ in range(trials)]
    runs.sort(key=lambda r: r["gap"]["max_ms"])
    median = dict(runs[len(runs) // 2])
    median["trial_max_gaps_ms"] = [r["gap"]["max_ms"] for r in runs]
    return median


async def _other_session(env: Environment, deadline: float) -> dict[str, float]:
    """A second session of the runaway's own server: its handshake, and a call that must wait."""
    server = build_tool_server(env, call_timeout_s=deadline)
    try:
        async with mcp.Client(server.server) as first, anyio.create_task_group() as tg:
            await first.list_tools()
            started_runaway = anyio.Event()

            async def runaway() -> None:
                started_runaway.set()
                await first.call_tool("runaway", {})

            tg.start_soon(runaway)
            await started_runaway.wait()
            await anyio.sleep(0.05)  # the runaway is in its worker thread by now
            t0 = time.perf_counter()
            async with mcp.Client(server.server) as second:
                await second.list_tools()
                handshake = time.perf_counter() - t0
                t1 = time.perf_counter()
                await second.call_tool("get_customer", {"customer_id": 1})
                waited = time.perf_counter() - t1
        return {"handshake_ms": handshake * 1000, "fast_call_waited_ms": waited * 1000}
    finally:
        server.close()


async def _fast_path(env: Environment, calls: int) -> dict[str, Any]:
    """The same get by id four ways, interleaved call by call (in turn) so that the machine's noise is shared."""
    server = build_tool_server(env)
    try:
        executor = server.executor
        async with mcp.Client(server.server) as client:
            ways: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {}

            async def sync_call(args: dict[str, Any]) -> Any:
                return executor.call("get_customer", args)

            async def thread_hop(args: dict[str, Any]) -> Any:
                return await anyio.to_thread.run_sync(executor.call, "get_customer", args)

            async def call_tool(args: dict[str, Any]) -> Any:
                return await client.call_tool("get_customer", args)

            ways["executor.call"] = sync_call
            ways["executor.acall"] = functools.partial(executor.acall, "get_customer")
            ways["thread hop + executor.call"] = thread_hop
            ways["in-process call_tool"] = call_tool
            times: dict[str, list[float]] = {name: [] for name in ways}
            order = list(ways.items())
            for i in range(calls + 50):
                args = {"customer_id": i % 1000 + 1}
                turn = i % len(order)  # each way goes first as often as the others
                for name, way in order[turn:] + order[:turn]:
                    started = time.perf_counter()
                    await way(args)
                    if i >= 50:  # warm-up: first-use costs are not latency
                        times[name].append(time.perf_counter() - started)
        return {name: _ms(values) for name, values in times.items()}
    finally:
        server.close()


async def run(dialogues: int, deadline: float, calls: int, trials: int) -> dict[str, Any]:
    env = stall_environment()
    return {
        "offload": await _trials(env, dialogues, deadline, LOOP_BUDGET_S, runaway=True, trials=trials),
        "no_runaway": await _trials(env, dialogues, deadline, LOOP_BUDGET_S, runaway=False, trials=trials),
        "on_loop": await _scenario(env, dialogues, deadline, deadline, runaway=True),
        "other_session": await _other_session(env, deadline),
        "fast_path": await _fast_path(env, calls),
    }


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "load_average_1m": round(load[0], 2),
        "sqlite": sqlite3.sqlite_version,
    }


def _print(command: str, machine: dict[str, Any], params: dict[str, Any], r: dict[str, Any]) -> bool:
    print(f"command: {command}")
    print(
        f"python {machine['python']}, {machine['platform']}, {machine['cpus']} CPUs, "
        f"load average {machine['load_average_1m']}, sqlite {machine['sqlite']}"
    )
    print(
        f"{params['dialogues']} in-process dialogues on one loop, one runaway query (deadline "
        f"{params['deadline']:g} s), loop budget {LOOP_BUDGET_S * 1000:g} ms"
    )
    print()
    print(f"{'':<12}{'loop gap max':>14}{'p99':>11}{'others call max':>17}{'p99':>11}{'median':>10}{'lasted':>9}")
    rows = (("offload", "offload"), ("no_runaway", "no runaway"), ("on_loop", "on loop"))
    for key, label in rows:
        s = r[key]
        print(
            f"{label:<12}{s['gap']['max_ms']:>11.1f} ms{s['gap']['p99_ms']:>8.2f} ms"
            f"{s['other_calls']['max_ms']:>14.1f} ms{s['other_calls']['p99_ms']:>8.2f} ms"
            f"{s['other_calls']['median_ms']:>7.2f} ms{s['runaway_s']:>7.2f} s"
        )
    print(
        f"(offload and no runaway: the median of {len(r['offload']['trial_max_gaps_ms'])} trials by worst gap; "
        f"worst gaps with a runaway: {', '.join(f'{g:.1f}' for g in r['offload']['trial_max_gaps_ms'])} ms)"
    )
    o = r["other_session"]
    print()
    print(
        f"same server, second session during the runaway: initialize + list_tools "
        f"{o['handshake_ms']:.1f} ms; a fast call waited {o['fast_call_waited_ms']:.0f} ms for the database"
    )
    print()
    print("the fast path (a get by id, medians):")
    for name, value in r["fast_path"].items():
        print(f"  {name:<30}{value['median_ms'] * 1000:>9.1f} µs")
    stall = r["offload"]["gap"]["max_ms"]
    before = r["on_loop"]["gap"]["max_ms"]
    fast = r["fast_path"]
    ratio = fast["executor.acall"]["median_ms"] / fast["executor.call"]["median_ms"]
    hop = fast["thread hop + executor.call"]["median_ms"] / fast["executor.acall"]["median_ms"]
    print()
    print("ratios (same run):")
    print(f"  {'stall on loop / stall with offload':<40}{before / stall:>9.1f}x")
    print(f"  {'executor.acall / executor.call':<40}{ratio:>9.2f}x")
    print(f"  {'thread hop per call / executor.acall':<40}{hop:>9.2f}x")
    floor = r["no_runaway"]["gap"]["max_ms"]
    added = stall - floor
    ok_stall = added <= GOAL_STALL_MS
    ok_fast = ratio <= GOAL_FAST_RATIO
    print()
    print(
        f"goal: one runaway query stalls the other dialogues for at most {GOAL_STALL_MS:g} ms more than "
        "the loop's worst gap without it"
    )
    print(
        f"figure: worst gap {stall:.1f} ms, {added:+.1f} ms over the {floor:.1f} ms without a runaway "
        f"(on the loop, as before: {before:.0f} ms)"
    )
    print(f"verdict: {'met' if ok_stall else 'NOT met'}")
    print(f"goal: the fast call pays no thread hop (acall at most {GOAL_FAST_RATIO:.2f}x the plain call)")
    print(f"figure: {ratio:.2f}x (a thread hop per call would be {hop:.2f}x)")
    print(f"verdict: {'met' if ok_fast else 'NOT met'}")
    return ok_stall and ok_fast


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench stall", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=8, help="in-process dialogues on the loop (default 8)")
    parser.add_argument("--deadline", type=float, default=2.0, help="the servers' call timeout in s (default 2)")
    parser.add_argument("--calls", type=int, default=1000, help="calls to time on the fast path (default 1000)")
    parser.add_argument("--trials", type=int, default=3, help="runaway trials, the median is shown (default 3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    if args.dialogues < 2 or args.calls < 2 or args.trials < 1 or not args.deadline > 0:
        parser.error("--dialogues and --calls need at least 2, --trials 1, --deadline a positive number")
    python = os.path.relpath(sys.executable)
    python = sys.executable if python.startswith("..") else python
    command = " ".join([python, "-m bench stall", *(argv if argv is not None else sys.argv[2:])])
    params = {"dialogues": args.dialogues, "deadline": args.deadline, "calls": args.calls, "trials": args.trials}
    results = anyio.run(run, args.dialogues, args.deadline, args.calls, args.trials)
    machine = _machine()
    _print(command, machine, params, results)
    if args.json is not None:
        payload = {"bench": "stall", "command": command, "machine": machine, "params": params, **results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0
