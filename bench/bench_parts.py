"""Where an offline dialogue's time goes: timers around the full pipeline's parts, beside the bare brains.

``python -m bench parts [--dialogues N] [--seed S] [--json PATH]``

Runs N offline user-oriented dialogues of the built-in domains one at a time (so a part's
time is its own work and what it awaits, nothing of another dialogue's) through the full
pipeline (``run_dialogue``), with timers around its parts, then the same scenarios on the
bare brains (``bench_generate._direct``: the same brains calling the SQL executor
directly). Prints milliseconds per dialogue for each part, a part indented under the
part it runs inside; "the rest of the runner" is what the dialogue took outside its
top-level parts (turn taking, events, the task group, checking the record's outcome).

Each timer costs a microsecond or two and there are about a hundred per dialogue, so
the totals are a little above an untimed run's; the bench's "full pipeline / bare
brains" row (``python -m bench targets --only offline``) is the untimed figure, at the
concurrency of a run.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import json
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import mcp

import bench.bench_generate as generate
import simulator.dialogue.runner as runner
import toolservers.executor as executor
from simulator.dialogue.bus import DialogueBus
from simulator.domains import domain_names, load_domain
from simulator.offline.agent import OfflineAgent
from simulator.offline.user import OfflineUser
from toolservers.server import ToolServer

#: (part, the part it runs inside or None) in the order printed.
PARTS: tuple[tuple[str, str | None], ...] = (
    ("dialogue", None),
    ("serve + connect", "dialogue"),
    ("agent turns", "dialogue"),
    ("tool calls over MCP", "agent turns"),
    ("our server's handling", "tool calls over MCP"),
    ("SQL of the calls", "our server's handling"),
    ("user turns", "dialogue"),
    ("verification", "dialogue"),
    ("SQL of the gold replay", "verification"),
    ("record", "dialogue"),
    ("close", "dialogue"),
    ("the rest of the runner", "dialogue"),
    ("bus (events published, wherever)", None),
)
_REST = "the rest of the runner"
#: The parts run straight inside the dialogue, measured: the rest is the dialogue less these.
_TOP = tuple(part for part, parent in PARTS if parent == "dialogue" and part != _REST)


class _Timers:
    """Seconds and counts per part, filled by wrappers that ``installed`` puts in place."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.verifying = False

    def clear(self) -> None:
        self.seconds.clear()
        self.counts.clear()

    def _add(self, part: str, started: float) -> None:
        self.seconds[part] += time.perf_counter() - started
        self.counts[part] += 1

    def _wrap(self, func: Callable[..., Any], part: Callable[[], str]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                name, started = part(), time.perf_counter()
                try:
                    return await func(*args, **kwargs)
                finally:
                    self._add(name, started)

            return timed_async

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            name, started = part(), time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self._add(name, started)

        return timed

    def _connect(self, connect: Callable[..., Any]) -> Callable[..., Any]:
        @contextlib.asynccontextmanager
        async def timed_connect(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            started = time.perf_counter()
            manager = connect(*args, **kwargs)
            conn = await manager.__aenter__()
            self._add("serve + connect", started)
            try:
                yield conn
            except BaseException as exc:
                started = time.perf_counter()
                if not await manager.__aexit__(type(exc), exc, exc.__traceback__):
                    raise
            else:
                started = time.perf_counter()
                await manager.__aexit__(None, None, None)
            finally:
                self._add("close", started)

        return timed_connect

    def _verify(self, verify: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(verify)
        async def timed_verify(*args: Any, **kwargs: Any) -> Any:
            started, self.verifying = time.perf_counter(), True
            try:
                return await verify(*args, **kwargs)
            finally:
                self.verifying = False
                self._add("verification", started)

        return timed_verify

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """The timers in place for the block; every wrapped function put back after it."""
        sql = executor._Call.run

        def sql_part() -> str:
            return "SQL of the gold replay" if self.verifying else "SQL of the calls"

        swaps: list[tuple[Any, str, Any]] = [
            (generate, "run_dialogue", self._wrap(generate.run_dialogue, lambda: "dialogue")),
            (runner, "connect_tool_server", self._connect(runner.connect_tool_server)),
            (runner, "_verify", self._verify(runner._verify)),
            (runner, "build_record", self._wrap(runner.build_record, lambda: "record")),
            (OfflineAgent, "respond", self._wrap(OfflineAgent.respond, lambda: "agent turns")),
            (OfflineUser, "respond", self._wrap(OfflineUser.respond, lambda: "user turns")),
            (OfflineUser, "opening", self._wrap(OfflineUser.opening, lambda: "user turns")),
            (mcp.Client, "call_tool", self._wrap(mcp.Client.call_tool, lambda: "tool calls over MCP")),
            (ToolServer, "_execute", self._wrap(ToolServer._execute, lambda: "our server's handling")),
            (executor._Call, "run", self._wrap(sql, sql_part)),
            (DialogueBus, "publish", self._wrap(DialogueBus.publish, lambda: "bus (events published, wherever)")),
        ]
        saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in swaps]
        try:
            for owner, name, wrapper in swaps:
                setattr(owner, name, wrapper)
            yield
        finally:
            for owner, name, original in saved:
                setattr(owner, name, original)


def parts(dialogues: int, seed: int) -> dict[str, Any]:
    """Milliseconds per dialogue by part for the full pipeline, and the bare brains' total."""
    envs = [load_domain(name) for name in domain_names()]
    pairs = generate._scenarios(envs, dialogues, seed)
    timers = _Timers()

    async def run() -> dict[str, Any]:
        await generate._throughput(pairs[:10], 1, direct=False)  # imports, caches, listings
        with timers.installed():
            timers.clear()
            full_rate = await generate._throughput(pairs, 1, direct=False)
            full = dict(timers.seconds)
            counts = dict(timers.counts)
            timers.clear()
            bare_rate = await generate._throughput(pairs, 1, direct=True)
            bare = dict(timers.seconds)
        return {"full": full, "counts": counts, "bare": bare, "full_per_s": full_rate, "bare_per_s": bare_rate}

    measured = anyio.run(run)
    ms = {part: 1000 * seconds / dialogues for part, seconds in measured["full"].items()}
    ms[_REST] = ms.get("dialogue", 0.0) - sum(ms.get(part, 0.0) for part in _TOP)
    return {
        "dialogues": dialogues,
        "seed": seed,
        "ms_per_dialogue": {part: round(ms.get(part, 0.0), 4) for part, _ in PARTS},
        "tool_calls_per_dialogue": measured["counts"].get("tool calls over MCP", 0) / dialogues,
        "statements_per_dialogue": {
            "calls": measured["counts"].get("SQL of the calls", 0) / dialogues,
            "gold replay": measured["counts"].get("SQL of the gold replay", 0) / dialogues,
        },
        "full_ms_per_dialogue": 1000 / measured["full_per_s"],
        "bare": {
            "ms_per_dialogue": 1000 / measured["bare_per_s"],
            "sql_ms_per_dialogue": 1000 * measured["bare"].get("SQL of the calls", 0.0) / dialogues,
            "agent_ms_per_dialogue": 1000 * measured["bare"].get("agent turns", 0.0) / dialogues,
            "user_ms_per_dialogue": 1000 * measured["bare"].get("user turns", 0.0) / dialogues,
        },
    }


def _depth(part: str) -> int:
    parents = dict(PARTS)
    depth, parent = 0, parents[part]
    while parent is not None:
        depth, parent = depth + 1, parents[parent]
    return depth


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench parts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=300, help="dialogues on each side (default 300)")
    parser.add_argument("--seed", type=int, default=11, help="scenario seed (default 11)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.dialogues < 1:
        parser.error("--dialogues must be at least 1")
    result = parts(args.dialogues, args.seed)
    command = "python -m bench parts " + " ".join(argv if argv is not None else sys.argv[2:])
    print(f"command: {command.strip()}")
    print(f"{args.dialogues} offline dialogues one at a time, seed {args.seed}; ms per dialogue")
    print(f"  full pipeline, wall: {result['full_ms_per_dialogue']:.3f}")
    for part, _ in PARTS:
        print(f"  {'  ' * _depth(part)}{part}: {result['ms_per_dialogue'][part]:.3f}")
    statements = result["statements_per_dialogue"]
    print(
        f"  {result['tool_calls_per_dialogue']:.2f} tool calls a dialogue; SQL statements: "
        f"{statements['calls']:.2f} in the calls, {statements['gold replay']:.2f} in the gold replay"
    )
    bare = result["bare"]
    print(
        f"  bare brains, wall: {bare['ms_per_dialogue']:.3f} (agent turns {bare['agent_ms_per_dialogue']:.3f}, "
        f"SQL {bare['sql_ms_per_dialogue']:.3f} of them; user turns {bare['user_ms_per_dialogue']:.3f})"
    )
    if args.json:
        args.json.write_text(json.dumps({"command": command.strip(), **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
