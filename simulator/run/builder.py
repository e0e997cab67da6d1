"""Scenarios planned in a second process while this one runs the dialogues.

Planning an offline scenario (a database copy, a planner executing every task's gold calls)
takes a few milliseconds of CPU, in the same event loop that runs the dialogues: a third
of a model-driven run's client CPU beside the SDK's, and on a run that is CPU-bound all
of it is added to the wall time. When the plan can be built elsewhere
(``ScenarioPlan.remote``), the run is big enough to repay a process start
(``MIN_SCENARIOS``) and the machine has a core to spare, one builder process plans the
scenarios in order, a few ahead of the workers, and this process only unpickles them.

Nothing changes in what is run: the same plan builds the same scenario for an index in
either process (a scenario depends only on its environment, the seed and its index), each
id is checked against the plan's, and scenarios are handed out in the plan's order. Until
the builder has started, and if it ever breaks, scenarios are built here as before.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

import anyio

from simulator.log import get_logger

if TYPE_CHECKING:
    from schemas import Scenario

__all__ = ["AHEAD", "MIN_SCENARIOS", "built_scenarios", "uses_builder"]

log = get_logger(__name__)

#: Runs with fewer scenarios to build plan them here: a builder process costs about a
#: second of CPU to start (its imports), what planning ~150 scenarios costs.
MIN_SCENARIOS = 200
#: Scenarios the builder plans ahead of the workers.
AHEAD = 8

_build: Callable[[int], Scenario] | None = None


def _start(build: Callable[[int], Scenario]) -> None:
    global _build
    _build = build
    # Ctrl-C reaches the whole process group: the run stops its builder itself (or the
    # builder sees the run's end of the pipe close), so the builder ignores it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_orphaned, args=(os.getppid(),), name="builder-watchdog", daemon=True).start()


def _orphaned(parent: int) -> None:
    """Exit once the run's process is gone (killed with -9, say): nobody else would stop the builder."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _ready() -> int:
    return os.getpid()


def _build_one(position: int) -> Scenario:
    assert _build is not None, "the builder process was not started with a plan"
    return _build(position)


def uses_builder(remote: object, count: int) -> bool:
    """Whether a run building ``count`` scenarios from ``remote`` plans them in a builder process."""
    return remote is not None and count >= MIN_SCENARIOS and (os.cpu_count() or 1) >= 2


async def built_scenarios(
    positions: Iterator[int],
    build: Callable[[int], Scenario],
    remote: Callable[[int], Scenario] | None,
    count: int,
    check: Callable[[int, Scenario], Scenario],
) -> AsyncGenerator[Scenario, None]:
    """The scenarios of ``positions`` in order: ``build(p)`` here, or ``remote(p)`` in a builder process.

    ``check(p, scenario)`` sees every scenario the builder made (its id against the plan's);
    ``build`` is the plan's own and checks its own. ``count`` is how many positions there are.
    """
    if remote is None or not uses_builder(remote, count):
        for p in positions:
            yield build(p)
        return
    pool = ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_start, initargs=(remote,)
    )
    clean = False
    try:
        ready: Future[int] = pool.submit(_ready)
        ahead: deque[tuple[int, Future[Scenario]]] = deque()
        broken = False
        while True:
            if broken or (not ahead and not ready.done()):
                # Not started yet (or broken): plan here rather than keep the workers waiting.
                for p in positions:
                    yield build(p)
                    if not broken and ready.done():
                        break
                else:
                    break
                if ready.exception() is not None:
                    broken = True
                    log.warning("the scenario builder process did not start (%s); planning here", ready.exception())
                continue
            taken: list[int] = []
            try:
                while len(ahead) < AHEAD:
                    nxt = next(positions, None)
                    if nxt is None:
                        break
                    taken.append(nxt)
                    ahead.append((nxt, pool.submit(_build_one, nxt)))
                    taken.clear()
                if not ahead:
                    break
                p, future = ahead[0]
                scenario = future.result() if future.done() else await _result(future)
            except BrokenProcessPool as exc:
                log.warning("the scenario builder process stopped (%s); planning here", exc)
                broken = True
                positions = _chain([*(q for q, _ in ahead), *taken], positions)
                ahead.clear()
                continue
            ahead.popleft()
            yield check(p, scenario)
        clean = True
    finally:
        if clean:
            await anyio.to_thread.run_sync(pool.shutdown)  # reaped: its CPU is counted as this run's
        else:
            pool.shutdown(wait=False, cancel_futures=True)


async def _result(future: Future[Scenario]) -> Scenario:
    return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)


def _chain(first: list[int], rest: Iterator[int]) -> Iterator[int]:
    yield from first
    yield from rest
