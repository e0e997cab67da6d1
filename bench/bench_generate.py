"""Offline generation: full-pipeline throughput against the bare brains, and memory per dialogue.

``python -m bench generate [--dialogues N] [--concurrency C] [--live 1000] [--json PATH]``

1. Throughput, side by side in one run on the same scenarios: the full pipeline
   (``run_dialogue``: database copy, MCP server and client in process, event bus,
   verification and record) against the same offline user and agent (same factories,
   seeds, initial state and turn rules) talking directly, with tool calls made straight
   on the SQL executor: no MCP, no bus, no recorder. Both sides' dialogues are compared
   (messages and tool calls per scenario): a ratio of different dialogues means nothing.
2. Memory per concurrent dialogue: ``--live`` dialogues are started together and held
   once each has its server up and its first user message out, so all are alive at
   once; resident memory is read then, against the baseline before they started.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import msgspec
import psutil

from schemas import (
    AgentMessage,
    DialogueRecord,
    Environment,
    Event,
    Mode,
    Scenario,
    ToolCall,
    ToolResult,
    UserMessage,
)
from schemas.errors import ToolError
from simulator.dialogue.roles import AgentContext, UserContext
from simulator.dialogue.runner import DialogueConfig, cap_message, run_dialogue
from simulator.domains import domain_names, load_domain
from simulator.offline.acts import decode_acts, encode_acts
from simulator.offline.agent import offline_agent_brain
from simulator.offline.scenarios import build_scenario
from simulator.offline.user import offline_user_brain
from simulator.run.collector import run_collector
from toolservers.database import open_database
from toolservers.executor import ToolExecutor
from toolservers.server import _mcp_tool


def _scenarios(envs: list[Environment], count: int, seed: int) -> list[tuple[Scenario, Environment]]:
    return [
        (build_scenario(envs[i % len(envs)], index=i, seed=seed, mode=Mode.USER_ORIENTED), envs[i % len(envs)])
        for i in range(count)
    ]


class _DirectClient:
    """The agent's MCP client, taken away: ``call_tool`` runs the SQL executor and answers the
    ``CallToolResult`` the server would; it counts the calls."""

    def __init__(self, executor: ToolExecutor) -> None:
        self.executor = executor
        self.calls = 0

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        self.calls += 1
        try:
            outcome = self.executor.call(name, arguments)
        except ToolError as exc:
            return types.CallToolResult(content=[types.TextContent(type="text", text=str(exc))], is_error=True)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=outcome.text)], structured_content=outcome.structured
        )


_TOOLS: dict[int, tuple[Environment, list[types.Tool]]] = {}


def _tools(env: Environment) -> list[types.Tool]:
    """The environment's tools as MCP lists them, made once per environment (the pipeline's
    client too lists them once per environment: ``toolservers._listing``)."""
    hit = _TOOLS.get(id(env))
    if hit is None or hit[0] is not env:
        hit = _TOOLS[id(env)] = (env, [_mcp_tool(t) for t in env.tools])
    return list(hit[1])


async def _direct(scenario: Scenario, env: Environment, config: DialogueConfig) -> tuple[int, int]:
    """The same brains, made by the same factories with the same seeds as in ``run_dialogue``, on
    the same initial state, taking turns by the same rules, but calling the SQL executor directly.

    Returns the dialogue's (messages, tool calls), to check that both sides held the same dialogue.
    """
    db = open_database(env.database)
    try:
        client = _DirectClient(ToolExecutor(env, db))
        for action in scenario.initial_state.db_actions:
            await client.call_tool(action.tool, action.arguments)
        client.calls = 0  # initial actions are not the conversation's calls
        rng = random.Random(f"dialogue:{scenario.seed}:{scenario.id}")
        user_seed, agent_seed = rng.random(), rng.random()
        history = [msgspec.convert(raw, type=Event) for raw in scenario.initial_state.history]

        async def publish(event: Event) -> Event:
            return event

        user = await offline_user_brain("")(
            UserContext(
                scenario=scenario, environment=env, query=db.query, rng=random.Random(user_seed), publish=publish
            )
        )
        agent = await offline_agent_brain("")(
            AgentContext(
                dialogue_id=scenario.id,
                client=client,  # type: ignore[arg-type]  # what the brain calls: call_tool
                tools=_tools(env),
                policy=env.policy,
                description=env.description,
                rng=random.Random(agent_seed),
                mistake_rate=config.agent_mistake_rate,
                history=history,
                publish=publish,
                call_timeout_s=config.turn_timeout_s,
                rules=env.rules,
            )
        )
        # The history prefix is on the runner's bus too, and counts toward its turn limit.
        before = sum(1 for e in history if isinstance(e, UserMessage | AgentMessage | ToolCall | ToolResult))
        turn = await user.opening()
        messages = 1
        while True:
            acts = decode_acts(encode_acts(turn.acts)) if config.agent_sees_acts else []
            reply = await agent.respond(turn.text, acts)
            text, _ = cap_message(reply.text, config.max_message_chars)
            messages += 1
            # The runner's ending rules (simulator.dialogue.runner._talk): after the agent's reply.
            if turn.complete or turn.gave_up or before + messages + 2 * client.calls >= config.max_turns:
                break
            turn = await user.respond(text, decode_acts(encode_acts(reply.acts)))
            messages += 1
        return messages, client.calls
    finally:
        db.close()


def _shape(record: DialogueRecord) -> tuple[int, int]:
    """A record's (messages, tool calls): what ``_direct`` returns for the same dialogue."""
    messages = sum(1 for e in record.events if isinstance(e, UserMessage | AgentMessage))
    return messages, sum(1 for e in record.events if isinstance(e, ToolCall))


async def _throughput(
    pairs: list[tuple[Scenario, Environment]],
    concurrency: int,
    direct: bool,
    tally: list[int] | None = None,
    shapes: dict[str, tuple[int, int]] | None = None,
) -> float:
    """Dialogues per second, under the collector settings a ``generate`` run uses (both sides).

    ``tally`` (full pipeline only) gets each dialogue's number of tool calls appended;
    ``shapes`` each dialogue's (messages, tool calls), by scenario id.
    """
    with run_collector():
        return await _timed(pairs, concurrency, direct, tally, shapes)


async def _timed(
    pairs: list[tuple[Scenario, Environment]],
    concurrency: int,
    direct: bool,
    tally: list[int] | None,
    shapes: dict[str, tuple[int, int]] | None,
) -> float:
    limiter = anyio.CapacityLimiter(concurrency)
    config = DialogueConfig()

    async def one(scenario: Scenario, env: Environment) -> None:
        async with limiter:
            if direct:
                shape = await _direct(scenario, env, config)
            else:
                record = await run_dialogue(scenario, env, config)
                shape = _shape(record)
                if tally is not None:
                    tally.append(record.metrics.tool_calls)
                if not record.success:
                    print(f"  note: {record.id} ended {record.termination}", file=sys.stderr)
            if shapes is not None:
                shapes[scenario.id] = shape

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for scenario, env in pairs:
            tg.start_soon(one, scenario, env)
    return len(pairs) / (time.perf_counter() - started)


async def sdk_floor(pairs: list[tuple[Scenario, Environment]], rounds: int = 5) -> dict[str, float]:
    """Microseconds per read call three ways, on the reads of the scenarios' gold calls.

    - ``mcp``: our tool server over the MCP SDK in process (``connect_tool_server``);
    - ``sdk``: the MCP SDK alone: a bare low-level ``Server`` listing the same tools and
      answering each call with the same (precomputed) result, through ``mcp.Client``
      (its session given the same shared output validators ours get);
    - ``direct``: ``ToolExecutor.call`` on the database, no MCP.

    ``sdk`` is the floor any real MCP path in process pays per call: with it and the tool
    calls per dialogue, the least a dialogue's MCP traffic can cost is known.
    Connections stay open, so statements are prepared once (warm on every side).
    """
    import mcp
    from mcp.server.lowlevel import Server

    from simulator.dialogue.statediff import gold_calls
    from toolservers._listing import _session_maps
    from toolservers.server import _listing
    from toolservers.transports import connect_tool_server
    from toolservers.validation import output_validator

    env = pairs[0][1]
    reads = [
        (g.call.tool, dict(g.call.arguments))
        for scenario, e in pairs
        if e is env
        for g in gold_calls(scenario, e)
        if not g.write
    ]
    db = open_database(env.database)
    executor = ToolExecutor(env, db)
    outcomes: dict[str, tuple[str, Any]] = {}
    calls: list[tuple[str, dict[str, Any]]] = []
    for name, args in reads:
        try:
            outcome = executor.call(name, args)
        except ToolError:
            continue
        outcomes[json.dumps([name, args], sort_keys=True, default=str)] = (outcome.text, outcome.structured)
        calls.append((name, args))
    listed = _listing(env)

    async def on_list(_ctx: Any, _params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def on_call(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        text, structured = outcomes[json.dumps([params.name, params.arguments or {}], sort_keys=True, default=str)]
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content=structured, is_error=False
        )

    bare = Server("bench-floor", version="1", on_list_tools=on_list, on_call_tool=on_call)
    bare.middleware = [m for m in bare.middleware if type(m).__name__ != "OpenTelemetryMiddleware"]

    async def timed(call: Callable[[str, dict[str, Any]], Any]) -> float:
        best = math.inf
        for _ in range(rounds):
            started = time.perf_counter()
            for name, args in calls:
                await call(name, args)
            best = min(best, (time.perf_counter() - started) / len(calls))
        return best * 1e6

    async def direct(name: str, args: dict[str, Any]) -> Any:
        return executor.call(name, args)

    async def no_event(_event: Any) -> None:
        return None

    out: dict[str, float] = {"calls": float(len(calls))}
    async with mcp.Client(bare, cache=None) as client:
        await client.list_tools()
        # The same client-side validation our sessions get (toolservers._listing): the
        # shared, already checked output validators, so both sides validate alike.
        maps = _session_maps(client.session)
        if maps is not None:
            for tool in listed:
                if tool.output_schema is not None and (checked := output_validator(tool.output_schema)) is not None:
                    maps[1][tool.name] = checked
        out["sdk"] = await timed(client.call_tool)
    async with connect_tool_server(env, on_event=no_event) as conn:
        await conn.list_tools()
        out["mcp"] = await timed(conn.client.call_tool)
    out["direct"] = await timed(direct)
    db.close()
    return out


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _memory(pairs: list[tuple[Scenario, Environment]], live: int) -> tuple[float, int]:
    """Bytes of resident memory per concurrently live dialogue, and how many were live."""
    gc.collect()
    before = _rss()
    gate = anyio.Event()
    alive = 0
    peak = 0

    async def sink(event: Event) -> None:
        nonlocal alive, peak
        if isinstance(event, UserMessage) and event.seq <= 2 and not gate.is_set():
            alive += 1
            if alive == live:
                gc.collect()
                peak = _rss()
                gate.set()
            await gate.wait()

    config = DialogueConfig(timeout_s=600, turn_timeout_s=600)
    async with anyio.create_task_group() as tg:
        for i in range(live):
            scenario, env = pairs[i % len(pairs)]
            tg.start_soon(lambda s=scenario, e=env: run_dialogue(s, e, config, on_event=sink))
    return (peak - before) / live, alive


def _vm_hwm(pid: int | None = None) -> int:
    """Peak resident memory of this process (or ``pid``) so far, in bytes."""
    try:
        with open(f"/proc/{pid or os.getpid()}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def _children_hwm() -> int:
    """Peak resident memory of this process's live children (a run's scenario builder), summed."""
    return sum(_vm_hwm(child.pid) for child in psutil.Process().children(recursive=True))


async def _rss_child(requested: int, stop_after: int, concurrency: int) -> dict[str, Any]:
    """A ``generate`` run of ``requested`` dialogues, stopped once ``stop_after`` are recorded."""
    import tempfile

    from simulator.run.config import RunConfig
    from simulator.run.execute import execute_run
    from simulator.run.plan import prepare_run

    started = time.perf_counter()
    first: list[float] = []
    children: list[int] = []
    done = 0
    stop = anyio.Event()

    async def dialogue(scenario: Scenario, environment: Environment, config: DialogueConfig, **kw: Any) -> Any:
        nonlocal done
        if not first:
            first.append(time.perf_counter() - started)
        record = await run_dialogue(scenario, environment, config, **kw)
        done += 1
        if done >= stop_after and not stop.is_set():
            children.append(_children_hwm())  # the builder process, if the run has one
            stop.set()
        return record

    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        config = RunConfig(dialogues=requested, seed=3, concurrency=concurrency, out_dir=Path(tmp) / "run")
        with anyio.CancelScope() as scope:

            async def stopper() -> None:
                await stop.wait()
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(stopper)
                await execute_run(prepare_run(config), dialogue_fn=dialogue, progress=False)
                tg.cancel_scope.cancel()
    return {
        "requested": requested,
        "recorded": done,
        "peak_rss": _vm_hwm(),
        "builder_rss": sum(children),
        "first_dialogue_s": first[0],
    }


def rss_child(requested: int, stop_after: int, concurrency: int = 8) -> dict[str, Any]:
    """Run :func:`_rss_child` in a fresh process; its JSON result."""
    import subprocess

    command = [sys.executable, "-m", "bench.bench_generate", "--rss-child", str(requested), str(stop_after)]
    command += ["--concurrency", str(concurrency)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=60, help="dialogues per side for throughput (default 60)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent dialogues (default 8)")
    parser.add_argument("--live", type=int, default=1000, help="concurrent dialogues for memory (default 1000)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--rss-child", nargs=2, type=int, metavar=("REQUESTED", "STOP"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        print(json.dumps(anyio.run(_rss_child, *args.rss_child, args.concurrency)))
        return 0

    envs = [load_domain(name) for name in domain_names()]
    pairs = _scenarios(envs, max(args.dialogues, 30), args.seed)[: args.dialogues]

    async def run() -> dict[str, Any]:
        # Warm both sides once (caches, imports) so neither pays first-use costs in the timing.
        await _throughput(pairs[:3], args.concurrency, direct=True)
        await _throughput(pairs[:3], args.concurrency, direct=False)
        shapes: tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]] = ({}, {})
        direct = await _throughput(pairs, args.concurrency, direct=True, shapes=shapes[1])
        full = await _throughput(pairs, args.concurrency, direct=False, shapes=shapes[0])
        same = sum(1 for k, v in shapes[0].items() if shapes[1].get(k) == v)
        per_dialogue, alive = await _memory(pairs, args.live)
        return {
            "full_per_s": full,
            "direct_per_s": direct,
            "same_dialogues": same,
            "memory_bytes": per_dialogue,
            "live": alive,
        }

    result = anyio.run(run)
    command = "python -m bench generate " + " ".join(argv if argv is not None else sys.argv[2:])
    print(f"command: {command.strip()}")
    print(f"dialogues: {args.dialogues} per side, concurrency {args.concurrency}, seed {args.seed}, one process")
    print(f"  full pipeline (MCP in process, bus, recorder): {result['full_per_s']:8.1f} dialogues/s")
    print(f"  brains calling SQL directly:                   {result['direct_per_s']:8.1f} dialogues/s")
    print(f"  full / direct, time:                           {result['direct_per_s'] / result['full_per_s']:8.2f}x")
    print(f"  same dialogues on both sides:                  {result['same_dialogues']:5d} of {args.dialogues}")
    print(
        f"memory: {result['live']} dialogues alive at once: "
        f"{result['memory_bytes'] / 1024:8.1f} KiB resident per dialogue"
    )
    if args.json:
        args.json.write_text(json.dumps({"command": command.strip(), **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
