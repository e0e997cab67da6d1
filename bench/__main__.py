"""``python -m bench [NAME [ARGS...]]``: the targets (no name; ``make bench``), one benchmark by name, or ``all``."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Sequence

#: Benchmark name -> (module with a ``main(argv) -> int``, one-line description).
BENCHES: dict[str, tuple[str, str]] = {
    "agent_text": (
        "bench.bench_agent_text",
        "the offline user reading a long agent reply: its reply time now against the old quadratic regex",
    ),
    "targets": (
        "bench.targets",
        "the performance targets side by side, goal / figure / verdict, written to bench/results.json (the default)",
    ),
    "llm": (
        "bench.bench_llm",
        "model-brained dialogues on a fake endpoint: client CPU per request vs the bare SDK, wall vs the schedule",
    ),
    "eval": (
        "bench.bench_eval",
        "per-dialogue tool server readiness for outside agents: HTTP host mount and stdio pool vs a cold stdio start",
    ),
    "providers": (
        "bench.bench_providers",
        "provider layer: harness capacity vs the bare SDK, concurrency efficiency vs the ideal",
    ),
    "fleet": (
        "bench.bench_fleet",
        "endpoint fleets: harness requests/s against two loopback endpoints vs one (per-endpoint cap the bottleneck)",
    ),
    "generate": (
        "bench.bench_generate",
        "offline generation throughput (full pipeline against the bare brains) and memory per dialogue",
    ),
    "instructions": (
        "bench.bench_instructions",
        "instructions per offline dialogue (valgrind), full pipeline and bare brains; --against another checkout",
    ),
    "parts": (
        "bench.bench_parts",
        "where an offline dialogue's time goes: timers around the pipeline's parts, beside the bare brains",
    ),
    "ray": (
        "bench.bench_ray",
        "offline generation on 2 Ray workers vs one process on this machine (goal >= 1.6x dialogues/s)",
    ),
    "verify": (
        "bench.bench_verify",
        "verification: full checks vs the old ones per dialogue, and what the full-state check catches",
    ),
    "toolservers": (
        "bench.bench_toolservers",
        "tool server start and call latency per transport, against sqlite3 and the executor",
    ),
    "stall": (
        "bench.bench_stall",
        "how long one runaway query stalls the other dialogues of a run; the fast call's cost",
    ),
}


def _list() -> None:
    print("benchmarks (python -m bench NAME [--help]):")
    width = max(len(name) for name in BENCHES)
    for name, (_, description) in BENCHES.items():
        print(f"  {name:<{width}}  {description}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in {"list", "-h", "--help"}:
        _list()
        return 0
    if not args or args[0].startswith("-"):
        # `python -m bench [--repeat N ...]` (make bench): the targets, written to bench/results.json.
        targets: int = importlib.import_module("bench.targets").main(args)
        return targets
    if args[0] == "all":
        status = 0
        for name, (module, _) in BENCHES.items():
            if name == "targets":
                continue
            print(f"== {name}")
            if name == "instructions" and shutil.which("valgrind") is None:
                print("skipped: valgrind is not on the PATH")
                continue
            status = max(status, importlib.import_module(module).main([]))
        return status
    name, rest = args[0], args[1:]
    if name not in BENCHES:
        print(f"bench: unknown benchmark {name!r}", file=sys.stderr)
        _list()
        return 2
    result: int = importlib.import_module(BENCHES[name][0]).main(rest)
    return result


if __name__ == "__main__":
    sys.exit(main())
