"""Real datasets for the export, filter and report tests, generated once per test session.

``user`` and ``task`` are the same twelve scenarios (seed 3, all built-in domains) run by the
offline brains in the two modes, with a high agent mistake rate (the user corrects the
agent) and a turn limit (60) below the one the scenarios were planned for (the default),
as when scenarios planned elsewhere run under a tighter cap: some dialogues run out of
turns and fail. ``errors`` is the scripted
dataset of ``tests.simulator.run.test_run`` (every dialogue has a failed tool call; every
third is unsuccessful). ``branched`` continues two dialogues of ``user`` from turn 6 in two
variants each (scenario ids ``<id>-b6-v0``, ``<id>-b6-v1``). Tests must not change these
directories: copy them first.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio
import pytest

from schemas import Mode
from simulator.dialogue.runner import DialogueConfig
from simulator.run.config import RunConfig
from simulator.run.execute import execute_run
from simulator.run.plan import prepare_run
from tests.simulator.run.test_run import generate as generate_scripted

__all__ = ["DIALOGUES", "dataset"]

DIALOGUES = 12
_made: dict[str, Path] = {}


def _generate(out: Path, mode: Mode, *, branch_from: Path | None = None) -> None:
    config = RunConfig(
        dialogues=4 if branch_from else DIALOGUES,
        seed=3,
        out_dir=out,
        concurrency=6,
        mode=mode,
        dialogue=DialogueConfig(agent_mistake_rate=0.5),
        branch_from=branch_from,
        at_turn=6,
        variants=2,
    )
    prepared = prepare_run(config)  # planned for the default turn limit
    capped = dataclasses.replace(config, dialogue=DialogueConfig(agent_mistake_rate=0.5, max_turns=60))
    prepared = dataclasses.replace(prepared, config=capped)

    async def main() -> None:
        await execute_run(prepared, progress=False)

    anyio.run(main)


def dataset(factory: pytest.TempPathFactory, name: str) -> Path:
    """The session's dataset ``name`` (``user``, ``task``, ``branched`` or ``errors``), made on first use."""
    if name not in _made:
        out = factory.mktemp(f"data-{name}") / "data"
        if name == "errors":
            generate_scripted(out)
        elif name == "branched":
            _generate(out, Mode.USER_ORIENTED, branch_from=dataset(factory, "user"))
        else:
            _generate(out, Mode.USER_ORIENTED if name == "user" else Mode.TASK_ORIENTED)
        _made[name] = out
    return _made[name]
