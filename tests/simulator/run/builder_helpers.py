"""Picklable stand-ins for a plan's build, imported by the builder process (so: nothing heavy here)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

_built_here = 0  # positions this process has built through a Where (the builder process's count)


@dataclass(frozen=True)
class Where:
    """Says which process built each position; in the builder process, it exits (``die_after``) or
    fails (``fail_after``) once it has built that many positions."""

    die_after: int = -1
    fail_after: int = -1
    parent: int = field(default_factory=os.getpid)

    def __call__(self, p: int) -> Any:
        global _built_here
        if os.getpid() != self.parent:
            if _built_here == self.die_after:
                os._exit(3)
            if _built_here == self.fail_after:
                raise ValueError(f"no scenario {p}")
            _built_here += 1
        return (p, os.getpid())


def slow_here(p: int) -> Any:
    """The local build, paced (the builder's answers come as fast as it can plan)."""
    time.sleep(0.02)
    return (p, os.getpid())


def hold_after_first_remote() -> None:
    """Run the builder until it plans a position, print its pid, then wait to be killed."""
    import sys

    import anyio

    from simulator.run import builder

    builder.MIN_SCENARIOS = 1
    builder.os.cpu_count = lambda: 2  # type: ignore[assignment]

    async def main() -> None:
        feed = builder.scenario_feed(iter(range(10**6)), slow_here, Where(), 10**6, lambda p, s: s)
        async with feed as scenarios:
            async for _, pid in scenarios:
                if pid != os.getpid():
                    sys.stdout.write(f"{pid}\n")
                    sys.stdout.close()
                    await anyio.sleep(3600)

    anyio.run(main)
