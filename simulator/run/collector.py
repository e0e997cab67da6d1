"""The garbage collector's settings for a run: fewer, cheaper collections.

A run allocates millions of short-lived objects (events, messages, rows, coroutines),
and CPython's default collector runs a young-generation pass every 700 net allocations
of containers and, now and then, a full pass over everything alive: the environments,
their tools and schemas, the compiled validators and the imported modules, none of which
a run frees. Measured on 300 offline dialogues (``python -m bench generate``), the
collector took 2-3 ms of a dialogue's CPU time with the defaults.

For the run, :func:`run_collector` moves what is alive when the run starts to the
permanent generation (``gc.freeze``, which the Python documentation describes for this
case: long-lived objects created before the work starts are never collected, so full
passes skip them) and raises the young generation's threshold, so a pass happens once
per ``young`` net allocations instead of 700. Reference counting still frees almost
everything at once; only reference cycles wait for a pass. Both settings are put back
when the run ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_THRESHOLD", "run_collector"]

#: Net container allocations between two young-generation passes during a run.
YOUNG_THRESHOLD = 10_000


@contextmanager
def run_collector(young: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Run the body with what is alive now frozen and the young threshold at ``young``."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(young, before[0]), before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
