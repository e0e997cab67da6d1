"""Reading what an agent says: the offline user's reply time to a long comma-separated list, now and before.

An agent under evaluation can answer with anything. The offline user reads the reply to
find the questions in it (sentences ending in '?'); the regex it used,
``re.findall(r"[^.!?]*\\?", text)``, backtracks quadratically over a long run with no '.',
'!' or '?'. This times the user's whole reply to such a text (the parse is now one linear
pass) and, side by side in the same run, the old regex alone on the same texts.

Goal: reading a reply is linear in its length; a megabyte reply costs the user well under a second.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable

import anyio

from simulator.offline.user import OfflineUser
from tests.conftest import shop_environment
from tests.simulator.conftest import make_user, shop_scenario
from toolservers.database import open_database

_OLD = re.compile(r"[^.!?]*\?")


def _text(chars: int) -> str:
    items: list[str] = []
    size = 0
    i = 0
    while size < chars:
        items.append(f"item {i}")
        size += len(items[-1]) + 2
        i += 1
    return ", ".join(items)[:chars]


def _time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _user_reply(user: OfflineUser, text: str) -> Callable[[], object]:
    def run() -> object:
        return anyio.run(user.respond, text, [])

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench agent_text", description=__doc__.split("\n\n")[0])
    parser.add_argument("--old-max", type=int, default=40_000, help="longest text given to the old regex (chars)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per size (median; default 3)")
    args = parser.parse_args(argv)
    command = " ".join(["python -m bench agent_text", *(argv if argv is not None else sys.argv[2:])])
    env = shop_environment()
    db = open_database(env.database)
    try:
        user = make_user(shop_scenario(), env, db.query)
        anyio.run(user.opening)
        sizes = [10_000, 20_000, 40_000, 1_000_000]
        rows = []
        for size in sizes:
            text = _text(size)
            now = _time(_user_reply(user, text), args.repeat)
            old = _time(lambda text=text: _OLD.findall(text), 1) if size <= args.old_max else None
            rows.append((size, now, old))
    finally:
        db.close()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(f"command: {command}")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load:.2f}")
    print("text: one comma-separated list ('item 0, item 1, ...'), no '.', '!' or '?'")
    print()
    print(f"{'chars':>10}{'user reply now':>18}{'old regex alone':>18}")
    for size, now, old in rows:
        shown = f"{old:>15.3f} s" if old is not None else f"{'-':>17}"
        print(f"{size:>10}{now * 1000:>15.2f} ms{shown}")
    print()
    doubled = [(a, b) for a, b in zip(rows, rows[1:], strict=False) if b[0] == 2 * a[0]]
    print("growth when the text doubles (same run):")
    for a, b in doubled:
        old = f"{b[2] / a[2]:.1f}x" if a[2] and b[2] else "-"
        print(f"  {a[0]:>7} -> {b[0]:>7} chars: now {b[1] / a[1]:.1f}x, old regex {old}")
    megabyte = rows[-1][1]
    verdict = "met" if megabyte < 1.0 else "NOT met"
    print(f"\ngoal: a 1,000,000-character reply read in under 1 s -> {megabyte * 1000:.0f} ms: {verdict}")
    return 0 if megabyte < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
