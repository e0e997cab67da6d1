"""The performance targets (issue 14), measured side by side in one run and written to ``bench/results.json``.

``python -m bench`` (``make bench``) runs this; ``python -m bench targets --help`` for the knobs.

Every figure is printed with its goal and a verdict. Ratios are taken inside one run on
the same work (the full pipeline and the bare brains alternate, round by round). Each
measure is repeated (``--repeat``, default 3); the verdict uses the best of the repeats
(the machine is shared: others' load only ever makes a figure worse) and the median is
shown beside it. ``bench/results.json`` keeps figures, goals, verdicts, the command and
the machine (CPU count; the load average and the time of a pure Python loop, before and
after: a shared machine can run at half speed with a load average near zero), so a change
can be compared with the last run.

1. offline user-oriented dialogues/s: the full pipeline (``run_dialogue``: database copy,
   MCP server and client in process, bus, verification, record) at concurrency 8.
2. full pipeline / bare brains: the same scenarios and brains (made by the same factories,
   same seeds, same initial state and turn rules), tool calls made straight on the SQL
   executor (``bench_generate._direct``); time ratio. Both sides must have held the same
   dialogues (messages and tool calls per scenario), or the verdict is a fail.
3. client CPU per model request / bare SDK loop: model brains for user and agent against
   a fake OpenAI-compatible endpoint in a subprocess (``bench_llm``), process CPU per
   request; against the bare SDK loop of ``bench_providers`` (one short prompt, the
   issue's baseline) and, shown beside it, the bare SDK replaying the run's own bodies.
4. dialogue ready (median): in process, HTTP host (mount + connect), stdio pool
   (``bench_eval``: served + connected + the tools known, as the runner gets them).
5. memory per live dialogue, 1,000 alive at once (``bench_generate._memory``).
6. peak RSS of a run asking for 5,000 against one asking for 100 dialogues, both stopped
   after the same number of records (fresh processes), and when the first dialogue starts
   (from the start of planning, imports done). The 5,000 run plans its scenarios in a
   builder process (``simulator.run.builder``): a fixed size, shown beside the figure.
7. wall / zero-overhead schedule: 2,000 model-brained dialogues, endpoint latency 500 ms,
   concurrency 200 (``bench_llm.schedule``); beside it, the bare SDK's floor: the SDK calls
   alone in the same schedule on the same endpoint.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

RESULTS = Path(__file__).with_name("results.json")


#: Steps of the pure Python loop that tells how fast the machine is right now (``_speed``).
SPEED_STEPS = 5_000_000


def _speed(rounds: int = 3) -> float:
    """Seconds the fastest of ``rounds`` runs of a ``SPEED_STEPS``-step pure Python loop took.

    The same commit runs at half speed on some days of a shared machine with a load average
    near zero (another tenant's work does not show in it); this figure, taken before and
    after the measures, tells a slow machine from a slow commit.
    """
    best = math.inf
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for i in range(SPEED_STEPS):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def _machine() -> dict[str, Any]:
    load = os.getloadavg()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in load],
        "sqlite": sqlite3.sqlite_version,
        "commit": commit.stdout.strip() or None,
        "python_loop_s": _speed(),
    }


def _summary(values: Sequence[float], *, best: Callable[[Sequence[float]], float]) -> dict[str, Any]:
    return {"best": best(values), "median": statistics.median(values), "runs": list(values)}


# --------------------------------------------------------------------------- the measures


def offline(repeat: int, dialogues: int, concurrency: int) -> dict[str, Any]:
    """Rates and their ratio; beside them, what the MCP SDK alone costs per call (``sdk_floor``).

    ``floor_ratio``: the full/bare ratio a pipeline would have if the only thing it added
    to the bare brains were the SDK's own in-process round trip per tool call (its
    per-call cost times the run's tool calls per dialogue, over the bare dialogue's time).
    """
    from bench.bench_generate import _scenarios, _throughput, sdk_floor
    from simulator.domains import domain_names, load_domain

    envs = [load_domain(name) for name in domain_names()]
    pairs = _scenarios(envs, dialogues, 11)
    tally: list[int] = []
    # Each side's (messages, tool calls) per scenario: the ratio compares the same dialogues.
    shapes: tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]] = ({}, {})

    async def run() -> tuple[list[float], list[float], dict[str, float]]:
        await _throughput(pairs[:6], concurrency, direct=True)  # warm both sides
        await _throughput(pairs[:6], concurrency, direct=False)
        full: list[float] = []
        direct: list[float] = []
        for i in range(repeat):
            bare_shapes, full_shapes, full_tally = shapes[1], shapes[0], tally
            if i:
                bare_shapes, full_shapes, full_tally = {}, {}, []
            direct.append(await _throughput(pairs, concurrency, direct=True, shapes=bare_shapes))
            full.append(await _throughput(pairs, concurrency, direct=False, tally=full_tally, shapes=full_shapes))
        return full, direct, await sdk_floor(pairs)

    full, direct, floor = anyio.run(run)
    ratios = [d / f for f, d in zip(full, direct, strict=True)]
    calls = statistics.fmean(tally) if tally else 0.0
    bare_ms = 1000 / max(direct)
    sdk_ms = floor["sdk"] * calls / 1000
    return {
        "dialogues": dialogues,
        "concurrency": concurrency,
        "full_per_s": _summary(full, best=max),
        "direct_per_s": _summary(direct, best=max),
        "ratio_full_over_direct": _summary(ratios, best=min),
        "tool_calls_per_dialogue": calls,
        "per_read_call_us": {k: floor[k] for k in ("sdk", "mcp", "direct")},
        "sdk_ms_per_dialogue": sdk_ms,
        "floor_ratio": (bare_ms + sdk_ms) / bare_ms,
        "same_dialogues": sum(1 for k, v in shapes[0].items() if shapes[1].get(k) == v),
    }


def model_cpu(repeat: int, dialogues: int, concurrency: int) -> dict[str, Any]:
    from bench.bench_llm import cpu_per_request
    from bench.bench_providers import _bare, _server

    result = anyio.run(cpu_per_request, dialogues, concurrency, 21, repeat)

    async def short_prompt() -> list[float]:
        out = []
        async with _server(0.0) as server:
            await _bare(server.base_url, 100, concurrency)
            for _ in range(repeat):
                cpu = time.process_time()
                await _bare(server.base_url, 500, concurrency)
                out.append((time.process_time() - cpu) / 500 * 1000)
        return out

    bare_short = anyio.run(short_prompt)
    harness = result["harness_cpu_ms"]
    return {
        "dialogues": dialogues,
        "concurrency": concurrency,
        "requests_per_round": result["requests_per_round"],
        "harness_cpu_ms": _summary(harness, best=min),
        "bare_short_prompt_cpu_ms": _summary(bare_short, best=min),
        "bare_same_bodies_cpu_ms": _summary(result["bare_cpu_ms"], best=min),
        "ratio_vs_short_prompt": min(harness) / min(bare_short),
        "ratio_vs_same_bodies": min(harness) / min(result["bare_cpu_ms"]),
    }


def readiness(repeat: int, dialogues: int) -> dict[str, Any]:
    from bench.bench_eval import run

    rounds = [anyio.run(lambda: run(dialogues, 0, relay=False))["readiness"] for _ in range(repeat)]
    out: dict[str, Any] = {"dialogues_per_round": dialogues}
    for name in ("in process", "host mount", "stdio pool"):
        out[name] = _summary([r[name]["median_ms"] for r in rounds], best=min)
    return out


def memory(repeat: int, live: int) -> dict[str, Any]:
    code = (
        "import anyio, json\n"
        "from bench.bench_generate import _scenarios, _memory, _throughput\n"
        "from simulator.domains import domain_names, load_domain\n"
        "envs = [load_domain(n) for n in domain_names()]\n"
        "pairs = _scenarios(envs, 30, 11)\n"
        "anyio.run(_throughput, pairs[:6], 4, False)\n"
        f"print(json.dumps(anyio.run(_memory, pairs, {live})))\n"
    )
    values = []
    for _ in range(repeat):  # a fresh process each: memory freed by one round would serve the next
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=900)
        per_dialogue, alive = json.loads(out.stdout.strip().splitlines()[-1])
        assert alive == live, (alive, live)
        values.append(per_dialogue / 1024)
    return {"live": live, "kib_per_dialogue": _summary(values, best=min)}


def peak_rss(repeat: int, large: int, small: int, stop_after: int) -> dict[str, Any]:
    from bench.bench_generate import rss_child

    growth, first, builder = [], [], []
    for _ in range(repeat):
        big = rss_child(large, stop_after)
        little = rss_child(small, stop_after)
        growth.append((big["peak_rss"] - little["peak_rss"]) / 1e6)
        first.append(big["first_dialogue_s"])
        builder.append((big["builder_rss"] - little["builder_rss"]) / 1e6)
    return {
        "requested": [large, small],
        "stopped_after": stop_after,
        "growth_mb": _summary(growth, best=min),
        # The run process's growth is the measure; a run of MIN_SCENARIOS or more also has a
        # scenario builder process (simulator.run.builder), of a fixed size, shown beside it.
        "builder_mb": _summary(builder, best=min),
        "first_dialogue_s": _summary(first, best=min),
    }


def schedule_ratio(repeat: int, dialogues: int, concurrency: int, latency_ms: float) -> dict[str, Any]:
    from bench.bench_llm import schedule

    runs = [anyio.run(schedule, dialogues, concurrency, latency_ms / 1000, 300 + i) for i in range(repeat)]
    return {
        "dialogues": dialogues,
        "concurrency": concurrency,
        "latency_ms": latency_ms,
        "ratio": _summary([r["ratio"] for r in runs], best=min),
        "floor_ratio": _summary([r["bare_sdk"][0]["ratio"] for r in runs], best=min),
        "runs": runs,
    }


# --------------------------------------------------------------------------- the table


def _rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(measure: str, goal: str, figure: str, ok: bool, median: str = "") -> None:
        rows.append({"measure": measure, "goal": goal, "figure": figure, "median": median, "verdict": ok})

    o = r.get("offline")
    if o:
        row(
            "offline user-oriented dialogues/s per process",
            ">= 150",
            f"{o['full_per_s']['best']:.0f}",
            o["full_per_s"]["best"] >= 150,
            f"{o['full_per_s']['median']:.0f}",
        )
        row(
            "full pipeline / bare brains (time)",
            "<= 3x",
            f"{o['ratio_full_over_direct']['best']:.2f}x",
            o["ratio_full_over_direct"]["best"] <= 3 and o["same_dialogues"] == o["dialogues"],
            f"{o['ratio_full_over_direct']['median']:.2f}x; MCP SDK calls alone: {o['floor_ratio']:.2f}x "
            f"({o['tool_calls_per_dialogue']:.1f} calls x {o['per_read_call_us']['sdk']:.0f} us); "
            f"same dialogues on both sides: {o['same_dialogues']}/{o['dialogues']}",
        )
    m = r.get("model_cpu")
    if m:
        row(
            "client CPU per model request / bare SDK loop",
            "<= 2x",
            f"{m['ratio_vs_short_prompt']:.2f}x ({m['harness_cpu_ms']['best']:.2f} / "
            f"{m['bare_short_prompt_cpu_ms']['best']:.2f} ms)",
            m["ratio_vs_short_prompt"] <= 2,
            f"vs same bodies: {m['ratio_vs_same_bodies']:.2f}x ({m['bare_same_bodies_cpu_ms']['best']:.2f} ms)",
        )
    d = r.get("readiness")
    if d:
        goals = {"in process": 1.0, "host mount": 5.0, "stdio pool": 20.0}
        row(
            "dialogue ready: in-process / HTTP host / stdio pool (median)",
            "<= 1 / 5 / 20 ms",
            " / ".join(f"{d[k]['best']:.1f}" for k in goals) + " ms",
            all(d[k]["best"] <= g for k, g in goals.items()),
            " / ".join(f"{d[k]['median']:.1f}" for k in goals) + " ms",
        )
    mem = r.get("memory")
    if mem:
        row(
            f"memory per live dialogue at {mem['live']:,} concurrent",
            "<= 250 KiB",
            f"{mem['kib_per_dialogue']['best']:.0f} KiB",
            mem["kib_per_dialogue"]["best"] <= 250,
            f"{mem['kib_per_dialogue']['median']:.0f} KiB",
        )
    p = r.get("peak_rss")
    if p:
        row(
            f"peak RSS, {p['requested'][0]:,} vs {p['requested'][1]:,} requested dialogues; first dialogue starts",
            "<= +20 MB; <= 1 s",
            f"{p['growth_mb']['best']:+.1f} MB; {p['first_dialogue_s']['best']:.2f} s",
            p["growth_mb"]["best"] <= 20 and p["first_dialogue_s"]["best"] <= 1.0,
            f"{p['growth_mb']['median']:+.1f} MB; {p['first_dialogue_s']['median']:.2f} s"
            + (f"; + builder process {p['builder_mb']['median']:.0f} MB" if p.get("builder_mb") else ""),
        )
    s = r.get("schedule")
    if s:
        row(
            f"wall / zero-overhead schedule, {s['dialogues']:,} dialogues, {s['latency_ms']:g} ms endpoint, "
            f"concurrency {s['concurrency']}",
            "<= 1.10",
            f"{s['ratio']['best']:.3f}",
            s["ratio"]["best"] <= 1.10,
            f"{s['ratio']['median']:.3f}"
            + (f"; bare-SDK floor, same schedule: {s['floor_ratio']['best']:.3f}" if "floor_ratio" in s else ""),
        )
    return rows


def _print(command: str, machine: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    print(f"command: {command}")
    print(
        f"python {machine['python']}, {machine['platform']}, {machine['cpus']} CPUs, "
        f"load average {machine['load_average']} -> {machine.get('load_average_after')}, "
        f"{SPEED_STEPS:,}-step Python loop {machine.get('python_loop_s')} -> {machine.get('python_loop_s_after')} s, "
        f"commit {machine['commit']}"
    )
    print()
    print("| measure | goal | figure (best) | median | verdict |")
    print("|---|---|---|---|---|")
    for row in rows:
        verdict = "met" if row["verdict"] else "NOT met"
        print(f"| {row['measure']} | {row['goal']} | {row['figure']} | {row['median']} | {verdict} |")


MEASURES = ("offline", "model_cpu", "readiness", "memory", "peak_rss", "schedule")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench targets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="repeats of each measure (default 3)")
    parser.add_argument("--only", action="append", choices=MEASURES, help="run only these measures (repeatable)")
    parser.add_argument("--dialogues", type=int, default=300, help="offline dialogues per round (default 300)")
    parser.add_argument("--llm-dialogues", type=int, default=60, help="model-brained dialogues a round for CPU")
    parser.add_argument("--ready", type=int, default=10, help="dialogues timed per way for readiness (default 10)")
    parser.add_argument("--live", type=int, default=1000, help="dialogues alive at once for memory (default 1000)")
    parser.add_argument("--schedule-dialogues", type=int, default=2000)
    parser.add_argument("--schedule-concurrency", type=int, default=200)
    parser.add_argument("--schedule-repeat", type=int, default=1, help="repeats of the schedule run (default 1)")
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where to write the results (default {RESULTS})")
    args = parser.parse_args(argv)
    given = list(argv if argv is not None else sys.argv[1:])
    command = " ".join(["python -m bench", *given]).strip()
    chosen = args.only or list(MEASURES)
    machine = _machine()
    results: dict[str, Any] = {}
    started = time.perf_counter()
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "offline": lambda: offline(args.repeat, args.dialogues, 8),
        "model_cpu": lambda: model_cpu(args.repeat, args.llm_dialogues, 16),
        "readiness": lambda: readiness(args.repeat, args.ready),
        "memory": lambda: memory(args.repeat, args.live),
        "peak_rss": lambda: peak_rss(args.repeat, 5000, 100, 100),
        "schedule": lambda: schedule_ratio(
            args.schedule_repeat, args.schedule_dialogues, args.schedule_concurrency, args.latency_ms
        ),
    }
    for name in MEASURES:
        if name in chosen:
            t = time.perf_counter()
            print(f"== {name} ...", file=sys.stderr, flush=True)
            results[name] = steps[name]()
            print(f"   {name}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    machine["python_loop_s_after"] = _speed()
    rows = _rows(results)
    _print(command, machine, rows)
    if "schedule" in results:
        from bench.bench_llm import floor_lines, schedule_cpu_line

        print("\nwall / zero-overhead schedule, each run:")
        for run in results["schedule"]["runs"]:
            print(f"  ratio {run['ratio']:.3f}: wall {run['wall_s']:.2f} s, ideal {run['ideal_s']:.2f} s")
            print(schedule_cpu_line(run))
            for line in floor_lines(run):
                print(line)
    payload = {
        "bench": "targets",
        "command": command,
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "machine": machine,
        "repeat": args.repeat,
        "table": rows,
        "results": results,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
