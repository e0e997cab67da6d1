"""Per-dialogue tool server readiness for outside agents: host mount and stdio pool vs. a cold stdio start.

"Ready" means: from the moment a dialogue asks for its tool server until an MCP client
has connected and knows the tools, as the dialogue runner gets them: listed over MCP by
the first client of an environment, handed to later ones with their checked output
validators (``toolservers._listing``); closing down afterwards is not timed. Timed side
by side in one run, on the retail domain:

- ``host mount``: a private in-memory copy of the database and a ToolServer, mounted on
  an already running ``ToolHost``, reached with the official client over streamable HTTP;
- ``host stdio relay``: the same mount, reached by spawning its stdio relay command (what
  a ``cmd:`` agent that prefers stdio does);
- ``stdio pool``: a file copy of the database handed to a pre-started ``StdioPool`` worker,
  reached over its stdin/stdout (the pool is refilled, untimed, between dialogues);
- ``cold stdio``: ``connect_tool_server(transport="stdio")``, a process start per dialogue;
- ``in process``: the floor, ``connect_tool_server(transport="inprocess")``.

    python -m bench eval [--dialogues N] [--cold N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp
from mcp import StdioServerParameters

from schemas import Environment, ToolEvent
from simulator.domains import load_domain
from toolservers import build_tool_server, connect_tool_server, http_client
from toolservers._listing import client_options, list_tools_once, remember_discover
from toolservers.host import ToolHost
from toolservers.stdio_pool import StdioPool


async def _noop(_event: ToolEvent) -> None:
    return None


def _ms(ns: list[int]) -> dict[str, float]:
    values = sorted(n / 1e6 for n in ns)
    return {"median_ms": statistics.median(values), "min_ms": values[0], "max_ms": values[-1], "n": len(values)}


async def _timed(
    n: int,
    once: Callable[[Callable[[], None]], Awaitable[None]],
    before: Callable[[], Awaitable[None]] | None = None,
) -> list[int]:
    """Run ``once(ready)`` ``n`` times: the time from its start until it calls ``ready()``.

    What a dialogue does after it is ready (its conversation, closing down) is not timed.
    """
    out = []
    for _ in range(n):
        if before is not None:
            await before()
        started = time.perf_counter_ns()

        def ready(started: int = started) -> None:
            out.append(time.perf_counter_ns() - started)

        await once(ready)
    return out


def _untimed() -> None:
    return None


async def run(dialogues: int, cold: int, *, relay: bool = True) -> dict[str, Any]:
    env: Environment = load_domain("retail", seed=1)
    results: dict[str, Any] = {}
    mount_ns: list[int] = []

    async with ToolHost() as host:

        async def host_mount(ready: Callable[[], None] = _untimed) -> None:
            server = build_tool_server(env, on_event=_noop, dialogue_id="bench")
            try:
                started = time.perf_counter_ns()
                async with host.mount(server, name="bench") as mount:
                    mount_ns.append(time.perf_counter_ns() - started)
                    async with http_client(mount.url, mount.token, **client_options(env, "host")) as client:
                        remember_discover(client, env, "host")
                        await list_tools_once(client, env)
                        ready()
            finally:
                server.close()

        async def host_relay(ready: Callable[[], None] = _untimed) -> None:
            server = build_tool_server(env, on_event=_noop, dialogue_id="bench")
            try:
                async with host.mount(server, name="bench") as mount:
                    assert mount.stdio is not None
                    params = StdioServerParameters(command=mount.stdio.command, args=mount.stdio.args)
                    async with mcp.Client(params, **client_options(env, "relay")) as client:
                        remember_discover(client, env, "relay")
                        await list_tools_once(client, env)
                        ready()
            finally:
                server.close()

        await host_mount()  # warm-up: first-use imports are not readiness
        mount_ns.clear()
        results["host mount"] = _ms(await _timed(dialogues, host_mount))
        results["host mount (mount only)"] = _ms(mount_ns)
        if relay:
            await host_relay()
            results["host stdio relay"] = _ms(await _timed(dialogues, host_relay))

    async with StdioPool(1, total=dialogues + 1, environments=[env]) as pool:

        async def pooled(ready: Callable[[], None] = _untimed) -> None:
            async with pool.connect(env, on_event=_noop, dialogue_id="bench") as conn:
                await conn.list_tools()
                ready()
                await conn.finish()

        await pool.wait_warm()
        await pooled()
        results["stdio pool"] = _ms(await _timed(dialogues, pooled, before=pool.wait_warm))

    async def cold_stdio(ready: Callable[[], None] = _untimed) -> None:
        async with connect_tool_server(env, transport="stdio", on_event=_noop, dialogue_id="bench") as conn:
            await conn.list_tools()
            ready()
            await conn.finish()

    if cold:
        results["cold stdio"] = _ms(await _timed(cold, cold_stdio))

    async def in_process(ready: Callable[[], None] = _untimed) -> None:
        async with connect_tool_server(env, transport="inprocess", on_event=_noop, dialogue_id="bench") as conn:
            await conn.list_tools()
            ready()

    await in_process()
    results["in process"] = _ms(await _timed(dialogues, in_process))

    def med(name: str) -> float:
        value: float = results[name]["median_ms"]
        return value

    ratios = {
        "stdio pool / host mount": med("stdio pool") / med("host mount"),
        "host mount / in process": med("host mount") / med("in process"),
    }
    if cold and relay:
        ratios = {
            "cold stdio / host mount": med("cold stdio") / med("host mount"),
            "cold stdio / stdio pool": med("cold stdio") / med("stdio pool"),
            "cold stdio / host stdio relay": med("cold stdio") / med("host stdio relay"),
            **ratios,
        }
    return {"readiness": results, "ratios": ratios}


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "load_average_1m": round(load[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=10, help="dialogues timed per way (default 10)")
    parser.add_argument("--cold", type=int, default=4, help="cold stdio starts timed (a process each; default 4)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    if min(args.dialogues, args.cold) < 1:
        parser.error("--dialogues and --cold need at least 1")
    python = os.path.relpath(sys.executable)
    python = sys.executable if python.startswith("..") else python
    command = " ".join([python, "-m bench eval", *(argv if argv is not None else sys.argv[2:])])
    results = anyio.run(run, args.dialogues, args.cold)
    machine = _machine()
    print(f"command: {command}")
    print(
        f"python {machine['python']}, {machine['platform']}, {machine['cpus']} CPUs, "
        f"load average {machine['load_average_1m']}"
    )
    print(f"retail domain; ready = tool server served + MCP client connected + list_tools; {args.dialogues} dialogues")
    print()
    print(f"{'per dialogue':<26}{'median':>12}{'min':>12}{'max':>12}{'n':>5}")
    for name, r in results["readiness"].items():
        print(f"{name:<26}{r['median_ms']:>9.2f} ms{r['min_ms']:>9.2f} ms{r['max_ms']:>9.2f} ms{r['n']:>5}")
    print()
    print("ratios (medians, same run):")
    for name, value in results["ratios"].items():
        print(f"  {name:<32}{value:>9.1f}x")
    if args.json is not None:
        payload = {
            "bench": "eval",
            "command": command,
            "machine": machine,
            "params": vars(args) | {"json": str(args.json)},
            **results,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
