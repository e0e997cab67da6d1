"""Scenarios planned in a builder process: the same scenarios, in order, none lost when it breaks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from simulator.run import builder as builder_module
from simulator.run import execute as execute_module
from simulator.run.builder import scenario_feed, uses_builder
from simulator.run.config import RunConfig
from simulator.run.dataset import iter_records
from simulator.run.execute import execute_run
from simulator.run.plan import prepare_run
from tests.simulator.run.builder_helpers import Where, slow_here


def _collect(remote: Callable[[int], Any], *, remote_wanted: int, after: int = 0) -> tuple[list[Any], list[int]]:
    """Positions in the order handed out, until ``remote_wanted`` came from the builder process
    (then ``after`` more); the positions ``check`` saw. Nothing here waits on a clock."""
    checked: list[int] = []

    def check(p: int, scenario: Any) -> Any:
        checked.append(p)
        return scenario

    async def main() -> list[Any]:
        out: list[Any] = []
        async with scenario_feed(iter(range(10**6)), slow_here, remote, 10**6, check) as feed:  # type: ignore[arg-type]
            remote_seen, extra = 0, -1
            async for item in feed:
                out.append(item)
                remote_seen += item[1] != os.getpid()
                if extra >= 0:
                    extra += 1
                elif remote_seen >= remote_wanted:
                    extra = 0
                if extra >= after:
                    break
        return out

    return anyio.run(main), checked


@pytest.fixture
def small_runs_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builder_module, "MIN_SCENARIOS", 1)
    monkeypatch.setattr(builder_module.os, "cpu_count", lambda: 2)


def test_the_builder_is_used_only_for_a_plan_it_can_run_on_a_big_enough_run_with_a_core_to_spare(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(builder_module.os, "cpu_count", lambda: 2)
    assert uses_builder(Where(), builder_module.MIN_SCENARIOS)
    assert not uses_builder(Where(), builder_module.MIN_SCENARIOS - 1)
    assert not uses_builder(None, 10**6)
    monkeypatch.setattr(builder_module.os, "cpu_count", lambda: 1)
    assert not uses_builder(Where(), 10**6)


@pytest.mark.slow
@pytest.mark.usefixtures("small_runs_too")
def test_positions_come_in_order_from_both_processes_and_only_the_builders_are_checked() -> None:
    out, checked = _collect(Where(), remote_wanted=50)
    assert [p for p, _ in out] == list(range(len(out)))
    remote = [p for p, pid in out if pid != os.getpid()]
    assert checked == remote
    # Here until the builder was up, there from then on.
    assert remote == list(range(remote[0], len(out)))


@pytest.mark.slow
@pytest.mark.usefixtures("small_runs_too")
def test_a_builder_that_dies_loses_and_repeats_nothing() -> None:
    out, _ = _collect(Where(die_after=20), remote_wanted=20, after=30)
    assert [p for p, _ in out] == list(range(len(out)))
    remote = [i for i, (_, pid) in enumerate(out) if pid != os.getpid()]
    assert len(remote) == 20
    assert all(pid == os.getpid() for _, pid in out[remote[-1] + 1 :])  # planned here once it died


@pytest.mark.slow
@pytest.mark.usefixtures("small_runs_too")
def test_a_planning_error_in_the_builder_reaches_the_run() -> None:
    with pytest.raises(ValueError, match="no scenario"):
        _collect(Where(fail_after=10), remote_wanted=10**6)


def _messages(out: Path) -> dict[str, Any]:
    return {
        r.id: (
            [(m.role, m.content) for m in r.messages],
            r.scenario,
            r.outcomes,
        )
        for _, r in iter_records(out)
    }


@pytest.mark.slow
def test_a_run_planned_in_the_builder_is_the_run_planned_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(out: Path) -> None:
        prepared = prepare_run(RunConfig(dialogues=100, seed=9, out_dir=out))
        summary = anyio.run(lambda: execute_run(prepared, progress=False))
        assert summary.generated == 100

    run(tmp_path / "here")
    monkeypatch.setattr(builder_module, "MIN_SCENARIOS", 1)
    monkeypatch.setattr(builder_module.os, "cpu_count", lambda: 2)
    checked: list[str] = []
    real = execute_module.check_built

    def counting(scenario: Any, environments: Any) -> Any:
        checked.append(scenario.id)
        return real(scenario, environments)

    # Only what the builder process sends is counted (the plan's own builds are checked apart).
    monkeypatch.setattr(execute_module, "build_checked", lambda plan, i, envs: real(plan.build(i), envs))
    monkeypatch.setattr(execute_module, "check_built", counting)
    run(tmp_path / "there")
    assert checked, "the builder process planned nothing"
    assert _messages(tmp_path / "here") == _messages(tmp_path / "there")


@pytest.mark.slow
def test_the_builder_process_exits_when_the_run_is_killed() -> None:
    command = [
        sys.executable,
        "-c",
        "from tests.simulator.run.builder_helpers import hold_after_first_remote as h; h()",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[3]) as run:
        try:
            assert run.stdout is not None
            builder_pid = int(run.stdout.readline())
            assert psutil.pid_exists(builder_pid)
            run.kill()
            run.wait(timeout=10)
            psutil.Process(builder_pid).wait(timeout=10)  # raises TimeoutExpired if it is still there
        finally:
            run.kill()
    assert not psutil.pid_exists(builder_pid)
