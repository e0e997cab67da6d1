"""A few hundred real offline dialogues for the grounding and policy tests, made once per session.

Four environments: the three built-in packs and the example library database (a schema
no pack knows, rules derived from it alone), 60 user-oriented dialogues each at seed 11
and the default agent mistake rate.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import anyio
import msgspec
import pytest

from schemas import DialogueRecord, Environment
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.domains import load_domain
from simulator.offline.scenarios import build_scenario
from simulator.policy import attach_rules
from toolservers.derive import derive_environment

__all__ = ["ENVIRONMENTS", "PER_ENVIRONMENT", "Sample", "library_environment", "sample"]

ENVIRONMENTS = ("clinic", "retail", "travel", "library")
PER_ENVIRONMENT = 60
SEED = 11
_ROOT = Path(__file__).resolve().parents[3]
_made: dict[str, Sample] = {}


@dataclass(frozen=True)
class Sample:
    environment: Environment
    records: list[DialogueRecord]

    def raw(self) -> list[dict[str, object]]:
        """The records as plain JSON values, the way ``stats --quality`` reads a dataset."""
        return [msgspec.to_builtins(r) for r in self.records]


def library_environment(directory: Path) -> Environment:
    """The example library database (``examples/library_db.py``) as a derived environment with derived rules."""
    spec = importlib.util.spec_from_file_location("library_db", _ROOT / "examples" / "library_db.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = module.build_library(directory / "library.sqlite", seed=0)
    return attach_rules(derive_environment(path))


def sample(factory: pytest.TempPathFactory, name: str) -> Sample:
    if name not in _made:
        env = library_environment(factory.mktemp("library")) if name == "library" else load_domain(name)

        async def main() -> list[DialogueRecord]:
            out = []
            for index in range(PER_ENVIRONMENT):
                scenario = build_scenario(env, index=index, seed=SEED)
                out.append(await run_dialogue(scenario, env, DialogueConfig()))
            return out

        _made[name] = Sample(env, anyio.run(main))
    return _made[name]
