"""``python -m bench parts`` times the parts it names and leaves the pipeline as it found it.

Nothing here is timed: the checks are that every part was reached, that a part is never
bigger than the part it runs inside, that the calls it counted are the dialogues' own
(the records say how many tool calls each made), and that every wrapped function is
the original again afterwards.
"""

from __future__ import annotations

import anyio

import bench.bench_generate as generate
import simulator.dialogue.runner as runner
from bench.bench_parts import PARTS, parts
from simulator.dialogue.runner import DialogueConfig
from simulator.domains import domain_names, load_domain
from simulator.offline.agent import OfflineAgent

DIALOGUES = 6


def test_every_part_is_timed_inside_its_parent_and_the_calls_are_the_dialogues_own() -> None:
    originals = (generate.run_dialogue, runner.connect_tool_server, runner._verify, OfflineAgent.__dict__["respond"])
    result = parts(DIALOGUES, seed=11)
    ms = result["ms_per_dialogue"]
    for part, parent in PARTS:
        assert ms[part] > 0, part
        if parent is not None:
            assert ms[part] <= ms[parent], (part, parent)
    assert result["statements_per_dialogue"]["gold replay"] > 0

    pairs = generate._scenarios([load_domain(name) for name in domain_names()], DIALOGUES, 11)

    async def calls() -> int:
        records = [await runner.run_dialogue(scenario, env, DialogueConfig()) for scenario, env in pairs]
        return sum(record.metrics.tool_calls for record in records)

    assert result["tool_calls_per_dialogue"] == anyio.run(calls) / DIALOGUES
    assert (generate.run_dialogue, runner.connect_tool_server, runner._verify, OfflineAgent.__dict__["respond"]) == (
        originals
    )
