"""Fixtures for the evaluation tests: a scenarios file over the shop of ``tests/conftest.py``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from schemas import Scenario
from tests.conftest import shop_environment
from tests.simulator.conftest import shop_scenario

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
EXAMPLES = REPO / "examples"
#: The python agents the tests evaluate (idle, corrupting, flaky, raising).
TEST_AGENTS = HERE / "agents_for_tests.py"
#: A standard-library-only cmd agent that crashes, hangs or breaks the protocol on demand.
CMD_AGENTS = HERE / "cmd_agents.py"

PYTHON_EXAMPLE = f"python:{EXAMPLES / 'python_agent.py'}:make_agent"


def cmd_example(*flags: str) -> str:
    return "cmd:" + " ".join([sys.executable, str(EXAMPLES / "jsonl_agent.py"), *flags])


def cmd_test_agent(mode: str) -> str:
    return f"cmd:{sys.executable} {CMD_AGENTS} {mode}"


def python_test_agent(name: str) -> str:
    return f"python:{TEST_AGENTS}:{name}"


def write_shop_scenarios(path: Path, copies: int = 1) -> Path:
    """A scenarios file: the shop environment and ``copies`` of the three-task shop scenario."""
    base = shop_scenario()
    scenarios: list[Scenario] = [msgspec.structs.replace(base, id=f"shop-{i}", seed=i) for i in range(copies)]
    path.write_bytes(msgspec.json.encode({"environments": [shop_environment()], "scenarios": scenarios}))
    return path


@pytest.fixture
def shop_file(tmp_path: Path) -> Path:
    return write_shop_scenarios(tmp_path / "shop-scenarios.json")


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """Evaluating a python: agent deletes secret-looking variables from os.environ: put them back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
