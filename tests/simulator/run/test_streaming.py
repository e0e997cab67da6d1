"""Scenarios streamed into a run with bounded look-ahead; records group-committed; request caps."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

from schemas import DialogueRecord, Environment, Scenario
from simulator.cli._models import llm_setup, request_cap
from simulator.dialogue.runner import DialogueConfig, EventSink
from simulator.run import dataset as dataset_module
from simulator.run import execute as execute_module
from simulator.run.config import RunConfig
from simulator.run.dataset import DATASET_FILE, DatasetFile, iter_records
from simulator.run.plan import ScenarioPlan, prepare_run
from simulator.run.progress import RunProgress, RunStats
from tests.conftest import shop_environment
from tests.simulator.run.test_run import fake_dialogue, make_scenario, run, scenario_ids


def test_a_large_offline_run_builds_only_the_first_scenario_of_each_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import simulator.offline.scenarios as scenarios_module

    built: list[int] = []
    original = scenarios_module.build_scenario

    def counting(environment: Environment, *, index: int, **kwargs: Any) -> Scenario:
        built.append(index)
        return original(environment, index=index, **kwargs)

    monkeypatch.setattr(scenarios_module, "build_scenario", counting)
    prepared = prepare_run(RunConfig(dialogues=5000, seed=2, out_dir=tmp_path / "big"))
    assert (prepared.requested, prepared.pending_count, prepared.skipped) == (5000, 5000, 0)
    assert built == [0, 1, 2]  # one per built-in domain: checks that each yields tasks
    first = [prepared.plan.id_of(i) for i in range(3)]
    assert [prepared.plan.build(i).id for i in range(3)] == first
    assert built == [0, 1, 2]  # the checked ones are handed over, not built again
    assert prepared.plan.build(3).id == prepared.plan.id_of(3) and built[-1] == 3


def _counting_plan(count: int) -> tuple[ScenarioPlan, list[int]]:
    built: list[int] = []

    def build(i: int) -> Scenario:
        built.append(i)
        return make_scenario(i, seed=1)

    return ScenarioPlan(count, lambda i: f"shop-1-{i:04d}", build, unique=True), built


def test_scenarios_are_built_as_the_run_reaches_them(tmp_path: Path) -> None:
    plan, built = _counting_plan(40)
    concurrency = 3
    ahead: list[int] = []
    finished = 0

    async def dialogue(
        scenario: Scenario, environment: Environment, config: DialogueConfig, *, on_event: EventSink | None = None
    ) -> DialogueRecord:
        nonlocal finished
        await anyio.lowlevel.checkpoint()
        ahead.append(len(built) - finished)
        record = await fake_dialogue(scenario, environment, config, on_event=on_event)
        finished += 1
        return record

    prepared = prepare_run(
        RunConfig(dialogues=40, seed=1, concurrency=concurrency, out_dir=tmp_path / "r"),
        planner=lambda _c: ([shop_environment()], plan),
    )
    assert built == []  # preparing builds nothing
    summary = run(prepared, dialogue)
    assert summary.generated == 40 and sorted(built) == list(range(40))
    # Built but not finished: the running ones, the stream's buffer, and the one being handed over.
    assert max(ahead) <= concurrency + execute_module._LOOK_AHEAD + 1


def test_resume_counts_and_skips_what_is_present(tmp_path: Path) -> None:
    out = tmp_path / "r"
    plan, _ = _counting_plan(4)
    run(prepare_run(RunConfig(dialogues=4, seed=1, out_dir=out), planner=lambda _c: ([shop_environment()], plan)))
    plan, built = _counting_plan(6)
    prepared = prepare_run(RunConfig(dialogues=6, seed=1, out_dir=out), planner=lambda _c: ([shop_environment()], plan))
    # A plan of 6 over a dataset holding the first 4.
    assert (prepared.requested, prepared.skipped, prepared.pending_count) == (6, 4, 2)
    assert list(prepared.pending()) == [4, 5]
    summary = run(prepared)
    assert (summary.requested, summary.skipped, summary.generated) == (6, 4, 2)
    assert sorted(built) == [4, 5]
    assert sorted(scenario_ids(out)) == [f"shop-1-{i:04d}" for i in range(6)]


def test_records_are_written_at_once_and_fsynced_in_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    syncs = 0
    real_fsync = os.fsync

    def counting(fd: int) -> None:
        nonlocal syncs
        syncs += 1
        real_fsync(fd)

    path = tmp_path / DATASET_FILE
    record = anyio.run(fake_dialogue, make_scenario(1), shop_environment(), DialogueConfig())
    dataset = DatasetFile(path, truncate_at=None, max_records=10, max_delay_s=3600)
    monkeypatch.setattr(dataset_module.os, "fsync", counting)
    for n in range(25):
        scenario = msgspec.structs.replace(record.scenario, id=f"{record.scenario.id}-{n}")
        dataset.append(msgspec.structs.replace(record, id=scenario.id, scenario=scenario))
    # Every line is in the file (a kill -9 now loses nothing), with two fsyncs for 25 records.
    assert path.read_bytes().count(b"\n") == 25
    assert syncs == 2 and dataset.unsynced == 5
    dataset.close()
    assert syncs == 3
    assert len(list(iter_records(tmp_path))) == 25


def test_a_waiting_record_is_fsynced_after_the_delay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(dataset_module.time, "monotonic", lambda: clock[0])
    record = anyio.run(fake_dialogue, make_scenario(1), shop_environment(), DialogueConfig())
    dataset = DatasetFile(tmp_path / DATASET_FILE, truncate_at=None, max_records=10, max_delay_s=0.02)
    try:
        dataset.append(record)
        dataset.sync_due()
        assert dataset.unsynced == 1
        clock[0] += 0.05
        dataset.sync_due()
        assert dataset.unsynced == 0
    finally:
        dataset.close()


def _model_args(**given: Any) -> argparse.Namespace:
    values: dict[str, Any] = dict(
        api_key=None,
        base_url="http://127.0.0.1:9/v1",
        request_timeout=None,
        max_requests=None,
        rpm=None,
        tpm=None,
        cache_dir=None,
        price_file=None,
        prompts_dir=None,
        concurrency=64,
    )
    return argparse.Namespace(**(values | given))


def test_requests_in_flight_follow_the_concurrency_unless_capped() -> None:
    setup = llm_setup(["openai:m"], _model_args(), env={})
    assert setup is not None and setup.settings["openai:m"].max_concurrency == 64
    assert request_cap(setup, 64) is None
    capped = llm_setup(["openai:m"], _model_args(max_requests=4), env={})
    assert capped is not None and capped.settings["openai:m"].max_concurrency == 4
    assert request_cap(capped, 64) == 4
    assert request_cap(None, 64) is None


def test_a_lower_cap_is_on_the_progress_line() -> None:
    shown = RunProgress(RunStats(total=3, request_cap=4), enabled=False)
    texts = [str(getattr(c, "text_format", "")) for c in shown._progress.columns]
    assert any("4 at a time (--max-requests)" in t for t in texts)
    plain = RunProgress(RunStats(total=3), enabled=False)
    assert not any("--max-requests" in str(getattr(c, "text_format", "")) for c in plain._progress.columns)


def test_a_hidden_bar_is_not_updated_and_a_shown_one_is() -> None:
    # One update per tool call: off a terminal (or with --no-progress) it must cost nothing.
    stats = RunStats(total=3)
    hidden = RunProgress(stats, enabled=False)
    assert not hidden.shown
    stats.done = 2
    hidden.update()
    assert hidden._progress.tasks[0].completed == 0
    hidden.shown = True  # as on a terminal
    hidden.update()
    assert hidden._progress.tasks[0].completed == 2
