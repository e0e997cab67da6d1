"""The bench's bare-brains side holds the very dialogue the full pipeline holds.

``make bench`` divides the full pipeline's time by the bare brains' time on the same
scenarios (issue 14's "full pipeline / bare brains"); the ratio means something only if
both sides ran the same conversation. The bare side builds its brains with the runner's
factories, seeds, initial state and turn rules; this checks, without timing anything,
that it ends with as many messages and tool calls as ``run_dialogue`` records, and that
those figures differ from one dialogue to the next.
"""

from __future__ import annotations

import anyio
import pytest

from bench.bench_generate import _direct, _scenarios, _shape
from schemas import Environment, Scenario
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.domains import domain_names, load_domain


def _pairs(count: int) -> list[tuple[Scenario, Environment]]:
    return _scenarios([load_domain(name) for name in domain_names()], count, seed=11)


@pytest.mark.parametrize("index", range(6))
def test_the_bare_side_holds_the_dialogue_the_runner_records(index: int) -> None:
    scenario, env = _pairs(6)[index]
    config = DialogueConfig()

    async def both() -> tuple[tuple[int, int], tuple[int, int]]:
        record = await run_dialogue(scenario, env, config)
        return _shape(record), await _direct(scenario, env, config)

    full, bare = anyio.run(both)
    assert full[0] >= 3 and full[1] >= 1, full  # a real conversation with tool calls
    assert bare == full


def test_the_shapes_tell_dialogues_apart() -> None:
    """Messages and tool calls differ from one scenario to the next: equal shapes above say something."""
    config = DialogueConfig()

    async def shapes() -> set[tuple[int, int]]:
        return {await _direct(scenario, env, config) for scenario, env in _pairs(6)}

    assert len(anyio.run(shapes)) >= 3
