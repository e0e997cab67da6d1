"""Instructions per offline dialogue, full pipeline and bare brains, counted by valgrind.

``python -m bench instructions [--dialogues N] [--seed S] [--concurrency C] [--against DIR] [--json PATH]``

Times on a shared machine move by a fifth from one run to the next (two runs of the same
commit, a few minutes apart, gave 92 and 75 offline dialogues a second); the number of
instructions a dialogue executes does not. Each side runs in a child Python under
``valgrind --tool=cachegrind --cache-sim=no`` with ``PYTHONHASHSEED=0``: the bench's N
scenarios (``bench_generate._scenarios``), a warm-up on 6 of them, then one round and, in
another child, two rounds of ``bench_generate._throughput`` at concurrency C. The figure is
the difference between the two counts divided by N, so importing, building the scenarios
and warming up fall out. Three runs of the same checkout have agreed to within 0.03 million
instructions a dialogue (0.1%).

``--against DIR`` counts a second checkout of the project (a ``git worktree`` of an older
commit, say) the same way, beside this one, and prints the change.

Needs ``valgrind`` on the PATH (Debian: ``apt-get install valgrind``); each child takes a
minute or two.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

#: The project's root: what the children import from unless ``--against`` names another.
ROOT = Path(__file__).resolve().parent.parent
#: The goal the time ratio of ``python -m bench targets`` has (issue 14), here in instructions.
RATIO_GOAL = 3.0
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")
_WARM = 6


def instruction_refs(valgrind_output: str) -> int:
    """The ``I refs`` count of a cachegrind run's summary. Raises ValueError when there is none."""
    found = _REFS.search(valgrind_output)
    if found is None:
        raise ValueError(f"no 'I refs' line in valgrind's output: {valgrind_output[-500:]!r}")
    return int(found.group(1).replace(",", ""))


def per_dialogue(one_round: int, two_rounds: int, dialogues: int) -> float:
    """Millions of instructions a dialogue: what the second round added, per dialogue."""
    return (two_rounds - one_round) / dialogues / 1e6


def _count(root: Path, side: str, rounds: int, dialogues: int, seed: int, concurrency: int) -> int:
    with tempfile.TemporaryDirectory(prefix="dialogsim-cg-") as tmp:
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--cachegrind-out-file={Path(tmp) / 'out'}",
            sys.executable,
            # This file, whichever checkout is counted: the child imports the rest from ``root``.
            str(Path(__file__).resolve()),
            "--child",
            side,
            str(rounds),
            "--dialogues",
            str(dialogues),
            "--seed",
            str(seed),
            "--concurrency",
            str(concurrency),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(root)}
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {side} child ({root}) failed with exit code {done.returncode}: {done.stderr[-2000:]}")
    return instruction_refs(done.stderr)


def count(root: Path, dialogues: int, seed: int, concurrency: int) -> dict[str, Any]:
    """Both sides of one checkout: millions of instructions a dialogue and their ratio.

    The four children run two at a time (one per core of the machine this was made on).
    """
    jobs = [(side, rounds) for side in ("full", "bare") for rounds in (1, 2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        refs = dict(
            zip(
                jobs,
                pool.map(lambda job: _count(root, job[0], job[1], dialogues, seed, concurrency), jobs),
                strict=True,
            )
        )
    full = per_dialogue(refs["full", 1], refs["full", 2], dialogues)
    bare = per_dialogue(refs["bare", 1], refs["bare", 2], dialogues)
    return {
        "root": str(root),
        "full_m": round(full, 2),
        "bare_m": round(bare, 2),
        "harness_m": round(full - bare, 2),
        "ratio": round(full / bare, 3),
        "refs": {f"{side}x{rounds}": n for (side, rounds), n in refs.items()},
    }


def _child(side: str, rounds: int, dialogues: int, seed: int, concurrency: int) -> None:
    """What runs under valgrind: the scenarios, the warm-up, then ``rounds`` rounds of one side."""
    import anyio

    from bench.bench_generate import _scenarios, _throughput
    from simulator.domains import domain_names, load_domain

    envs = [load_domain(name) for name in domain_names()]
    pairs = _scenarios(envs, dialogues, seed)

    async def run() -> None:
        await _throughput(pairs[:_WARM], concurrency, direct=side == "bare")
        for _ in range(rounds):
            await _throughput(pairs, concurrency, direct=side == "bare")

    anyio.run(run)
    # On stdout (valgrind's summary goes to stderr): what was run, for whoever reads it.
    print(f"{side}: {rounds} round(s) of {len(pairs)} dialogues after {_WARM} to warm up")


def _row(label: str, result: dict[str, Any]) -> str:
    return (
        f"  {label}: full pipeline {result['full_m']:.2f}, bare brains {result['bare_m']:.2f}, "
        f"harness {result['harness_m']:.2f} (millions a dialogue); ratio {result['ratio']:.2f}x"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=300, help="dialogues a round (default 300)")
    parser.add_argument("--seed", type=int, default=11, help="scenario seed (default 11)")
    parser.add_argument("--concurrency", type=int, default=8, help="dialogues at once (default 8)")
    parser.add_argument("--against", type=Path, help="another checkout of the project, counted beside this one")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "ROUNDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dialogues <= _WARM:
        parser.error(f"--dialogues must be more than {_WARM} (the warm-up)")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.child:
        side, rounds = args.child
        if side not in {"full", "bare"} or not rounds.isdigit():
            parser.error("--child takes full|bare and a number of rounds")
        _child(side, int(rounds), args.dialogues, args.seed, args.concurrency)
        return 0
    if args.against is not None and not (args.against / "bench" / "bench_generate.py").is_file():
        parser.error(f"--against {args.against}: not a checkout of this project (no bench/bench_generate.py)")
    if shutil.which("valgrind") is None:
        print("valgrind is not on the PATH (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    command = "python -m bench instructions " + " ".join(argv if argv is not None else sys.argv[2:])
    print(f"command: {command.strip()}")
    print(
        f"{args.dialogues} offline dialogues a round, seed {args.seed}, concurrency {args.concurrency}; "
        "valgrind cachegrind, PYTHONHASHSEED=0"
    )
    here = count(ROOT, args.dialogues, args.seed, args.concurrency)
    out: dict[str, Any] = {"command": command.strip(), "here": here}
    if args.against is None:
        print(_row("here", here))
    else:
        there = out["against"] = count(args.against.resolve(), args.dialogues, args.seed, args.concurrency)
        change = {k: (here[k] - there[k]) / there[k] * 100 for k in ("full_m", "bare_m", "harness_m")}
        out["change_percent"] = {k: round(v, 2) for k, v in change.items()}
        print(_row(f"against ({args.against})", there))
        print(_row("here", here))
        print(
            f"  change: full pipeline {change['full_m']:+.1f}%, bare brains {change['bare_m']:+.1f}%, "
            f"harness {change['harness_m']:+.1f}%"
        )
    verdict = "met" if here["ratio"] <= RATIO_GOAL else "NOT met"
    print(f"| full pipeline / bare brains (instructions) | <= {RATIO_GOAL:g}x | {here['ratio']:.2f}x | {verdict} |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
