"""A finished dialogue's bus and its events are freed by reference counting alone.

The MCP SDK's in-process connection leaves reference cycles behind (freed only when the
garbage collector runs, which in a long run means a pass over everything alive). What a
dialogue owns must not hang from them: a dialogue that runs its course ends without
cancelling a task (a cancelled task keeps its frames in a cycle), and a closed tool server
lets go of the callbacks that reach the dialogue's bus (and with it every event).
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from schemas import Mode
from simulator.dialogue import runner
from simulator.dialogue.bus import DialogueBus
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.domains import load_domain
from simulator.offline.scenarios import build_scenario


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _watched(monkeypatch: pytest.MonkeyPatch) -> list[weakref.ref[Any]]:
    buses: list[weakref.ref[Any]] = []

    class WatchedBus(DialogueBus):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            buses.append(weakref.ref(self))

    monkeypatch.setattr(runner, "DialogueBus", WatchedBus)
    return buses


@pytest.mark.usefixtures("no_collector")
@pytest.mark.parametrize("domain", ["retail", "clinic"])
def test_a_finished_dialogue_is_freed_without_the_garbage_collector(
    domain: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = load_domain(domain)
    scenarios = [build_scenario(env, index=i, seed=5, mode=Mode.USER_ORIENTED) for i in range(3)]
    buses = _watched(monkeypatch)

    async def run() -> list[int]:
        return [len((await run_dialogue(s, env, DialogueConfig())).events) for s in scenarios]

    lengths = anyio.run(run)
    assert all(n > 5 for n in lengths)  # real dialogues ran
    assert len(buses) == 3
    assert [b() for b in buses] == [None] * 3  # the bus and its events: gone on the spot
