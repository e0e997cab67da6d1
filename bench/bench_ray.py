"""Offline generation on Ray workers against one process, side by side on this machine.

``python -m bench ray [--dialogues N] [--concurrency C] [--workers W] [--repeat R] [--json PATH]``

One local Ray instance (loopback, this machine's cores) is started once. Then, ``R``
times, the same run (``N`` offline dialogues, the same seed) is generated in one process
(the default executor) and on ``W`` Ray workers (each running ``C`` dialogues at a time,
the driver writing the dataset), alternating so that both see the same machine load.
Two figures per side: the whole run (``execute_run``'s dialogues/s, worker start-up
included) and the steady rate (completions after the first 10 %, over the time they
took: what a long run gets), and this process's CPU per dialogue (all of it in one
process; the driver's share on Ray: how many workers one driver can feed). The machine's
load average is printed with each repeat; other people's work on a shared machine moves
these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from simulator.run.config import RunConfig
from simulator.run.dataset import iter_records
from simulator.run.execute import Executor, RunSummary, execute_run
from simulator.run.plan import prepare_run
from simulator.run.ray_executor import RayExecutor

GOAL = 1.6


def _steady(out: Path) -> float:
    """Dialogues per second after the first 10 % finished (start-up left out)."""
    ends = sorted(r.started_at + r.duration_s for _, r in iter_records(out))
    first = len(ends) // 10
    span = ends[-1] - ends[first]
    return (len(ends) - 1 - first) / span if span > 0 else 0.0


def _generate(out: Path, dialogues: int, seed: int, concurrency: int, executor: Executor | None) -> dict[str, float]:
    prepared = prepare_run(RunConfig(dialogues=dialogues, seed=seed, out_dir=out, concurrency=concurrency))

    async def run() -> RunSummary:
        return await execute_run(prepared, executor=executor, progress=False)

    cpu = time.process_time()
    summary = anyio.run(run)
    cpu = time.process_time() - cpu
    if summary.generated != dialogues or summary.failed:
        print(f"  note: {summary.generated} generated, {summary.failed} failed", file=sys.stderr)
    return {
        "whole_per_s": summary.dialogues_per_s,
        "steady_per_s": _steady(out),
        "elapsed_s": summary.elapsed_s,
        # This process's CPU: every dialogue in process, or the driver's share on Ray.
        "cpu_ms_per_dialogue": 1000.0 * cpu / max(1, summary.generated),
    }


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench ray", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=160, help="dialogues per run (default 160)")
    parser.add_argument("--concurrency", type=int, default=8, help="dialogues at a time per process (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    command = ("python -m bench ray " + " ".join(argv if argv is not None else sys.argv[2:])).strip()
    print(f"command: {command}")
    print(
        f"goal: {args.workers} Ray workers >= {GOAL}x the dialogues/s of one process "
        f"({args.dialogues} offline dialogues per run, concurrency {args.concurrency} per process)"
    )
    print(f"before: {_load()}")

    t0 = time.monotonic()
    cluster = RayExecutor().start()
    started_s = time.monotonic() - t0
    print(f"ray: local instance on {cluster.node_address}, {cluster.cluster_cpus:g} CPUs, started in {started_s:.1f} s")
    rounds: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
            for r in range(args.repeat):
                load = _load()
                one = _generate(Path(tmp) / f"one-{r}", args.dialogues, args.seed, args.concurrency, None)
                ray = _generate(
                    Path(tmp) / f"ray-{r}",
                    args.dialogues,
                    args.seed,
                    args.concurrency,
                    RayExecutor(workers=args.workers),
                )
                rounds.append({"load": load, "one": one, "ray": ray})
                print(
                    f"repeat {r + 1} ({load}):\n"
                    f"  one process:       whole run {one['whole_per_s']:6.2f}/s, steady {one['steady_per_s']:6.2f}/s\n"
                    f"  {args.workers} Ray workers:     whole run {ray['whole_per_s']:6.2f}/s, "
                    f"steady {ray['steady_per_s']:6.2f}/s\n"
                    f"  ratio:             whole run {ray['whole_per_s'] / one['whole_per_s']:6.2f}x, "
                    f"steady {ray['steady_per_s'] / one['steady_per_s']:6.2f}x\n"
                    f"  this process's CPU per dialogue: {one['cpu_ms_per_dialogue']:.1f} ms in process, "
                    f"{ray['cpu_ms_per_dialogue']:.1f} ms as the Ray driver"
                )
    finally:
        cluster.stop()
    steady = statistics.median(r["ray"]["steady_per_s"] / r["one"]["steady_per_s"] for r in rounds)
    whole = statistics.median(r["ray"]["whole_per_s"] / r["one"]["whole_per_s"] for r in rounds)
    print(f"after: {_load()}")
    driver = statistics.median(r["ray"]["cpu_ms_per_dialogue"] for r in rounds)
    print(
        f"figure: median steady ratio {steady:.2f}x (whole run, worker start-up included: {whole:.2f}x); "
        f"driver CPU {driver:.1f} ms per dialogue"
    )
    # Both counted: the steady rate is what a long run approaches, the whole run what this size cost.
    for what, ratio in (("steady", steady), ("whole run", whole)):
        verdict = "met" if ratio >= GOAL else "not met"
        print(f"verdict ({what}): goal {verdict} ({ratio:.2f}x {'>=' if ratio >= GOAL else '<'} {GOAL}x)")
    if args.json:
        result = {
            "command": command,
            "ray_start_s": started_s,
            "rounds": rounds,
            "steady": steady,
            "whole": whole,
            "driver_cpu_ms_per_dialogue": driver,
        }
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
