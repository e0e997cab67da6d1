"""Shards and merge: ``--shard I/N`` slices a run by scenario index, ``merge`` puts the slices
back together, and the records do not depend on the shards or on the order dialogues finish.

The determinism tests run the real offline pipeline (MCP servers, SQLite copies, the
offline brains) and compare records field by field, leaving out only timestamps and
durations.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from schemas import DialogueRecord, Environment, Mode, Scenario
from schemas.errors import ConfigError
from simulator.cli import main
from simulator.dialogue.runner import DialogueConfig
from simulator.export import export
from simulator.llm import LLMSetup
from simulator.offline.scenarios import build_scenario
from simulator.run import plan as plan_module
from simulator.run.config import SHARD_KEY, RunConfig, Shard, fingerprint
from simulator.run.dataset import DATASET_FILE, MANIFEST_FILE, SUMMARY_FILE, iter_records
from simulator.run.execute import RunSummary, execute_run
from simulator.run.merge import MergeError, MergeSummary, merge_datasets, run_fingerprint
from simulator.run.plan import default_planner, model_planner, prepare_run
from tests.conftest import shop_environment
from tests.simulator.run.test_run import fake_dialogue, make_scenario

#: Fields that say when or how long, not what: left out when records are compared.
TIMING = frozenset({"ts", "started_at", "duration_s", "duration_ms", "latency_ms"})


def timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


def records_by_id(out: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for _, record in iter_records(out):
        found[record.scenario.id] = timeless(msgspec.to_builtins(record))
    return found


def offline(out: Path, *, dialogues: int = 12, seed: int = 5, concurrency: int = 4, **changes: Any) -> RunSummary:
    config = RunConfig(
        dialogues=dialogues,
        seed=seed,
        out_dir=out,
        concurrency=concurrency,
        dialogue=DialogueConfig(agent_mistake_rate=0.3, max_turns=40),
        **changes,
    )

    async def main() -> RunSummary:
        return await execute_run(prepare_run(config), progress=False)

    return anyio.run(main)


def sharded_planner(config: RunConfig) -> tuple[Sequence[Environment], Sequence[Scenario]]:
    """The scripted planner of the run tests, enumerating its scenarios as every planner must."""
    return [shop_environment()], [make_scenario(i, seed=config.seed) for i in config.scenario_indexes()]


def scripted(out: Path, *, dialogues: int = 6, seed: int = 1, shard: Shard | None = None) -> RunSummary:
    config = RunConfig(dialogues=dialogues, seed=seed, out_dir=out, concurrency=3, shard=shard)

    async def main() -> RunSummary:
        return await execute_run(
            prepare_run(config, planner=sharded_planner), dialogue_fn=fake_dialogue, progress=False
        )

    return anyio.run(main)


# --------------------------------------------------------------------------- the slice


@pytest.mark.parametrize(
    ("shard", "start", "expected"),
    [
        (None, 0, list(range(10))),
        (Shard(0, 1), 0, list(range(10))),
        (Shard(0, 3), 0, [0, 3, 6, 9]),
        (Shard(1, 3), 0, [1, 4, 7]),
        (Shard(2, 3), 0, [2, 5, 8]),
        (Shard(1, 3), 5, [7]),
        (Shard(2, 3), 5, [5, 8]),
        (Shard(3, 4), 0, [3, 7]),
    ],
)
def test_a_shard_is_every_nth_scenario_index(shard: Shard | None, start: int, expected: list[int]) -> None:
    config = RunConfig(dialogues=10, seed=0, out_dir=Path("unused"), shard=shard)
    assert list(config.scenario_indexes(start=start)) == expected


@pytest.mark.parametrize(("text", "shard"), [("0/1", Shard(0, 1)), ("3/4", Shard(3, 4)), (" 1/2 ", Shard(1, 2))])
def test_shards_are_parsed(text: str, shard: Shard) -> None:
    assert Shard.parse(text) == shard
    assert str(shard) == text.strip()


@pytest.mark.parametrize("text", ["", "1", "2/2", "-1/2", "0/0", "a/b", "1/2/3", "1.5/3"])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Shard.parse(text)
    assert caught.value.field == "--shard"


@pytest.mark.slow
@pytest.mark.parametrize("count", [2, 3])
def test_the_shards_of_a_run_are_disjoint_and_make_the_whole_run(count: int) -> None:
    base = RunConfig(dialogues=11, seed=9, out_dir=Path("unused"), mode=Mode.USER_ORIENTED)
    _, whole = default_planner(base)
    parts = [default_planner(dataclasses.replace(base, shard=Shard(i, count)))[1] for i in range(count)]
    ids = [s.id for part in parts for s in part]
    assert len(ids) == len(set(ids)) == len(whole)
    by_id = {s.id: s for s in whole}
    assert all(by_id[s.id] == s for part in parts for s in part)  # the same scenario, whichever shard built it


def test_the_shard_is_part_of_the_fingerprint_but_not_of_the_run(tmp_path: Path) -> None:
    config = RunConfig(dialogues=4, seed=1, out_dir=tmp_path)
    sharded = dataclasses.replace(config, shard=Shard(1, 2))
    assert SHARD_KEY not in fingerprint(config)
    assert fingerprint(sharded)[SHARD_KEY] == "1/2"
    assert run_fingerprint({"fingerprint": fingerprint(sharded)}) == fingerprint(config)


def test_a_shard_directory_records_its_shard_and_refuses_another(tmp_path: Path) -> None:
    out = tmp_path / "s1"
    summary = scripted(out, shard=Shard(1, 2))
    assert summary.generated == 3
    assert sorted(r.scenario.id for _, r in iter_records(out)) == ["shop-1-0001", "shop-1-0003", "shop-1-0005"]
    assert json.loads((out / MANIFEST_FILE).read_text())["fingerprint"][SHARD_KEY] == "1/2"
    assert scripted(out, shard=Shard(1, 2)).skipped == 3  # resumes as any run
    for other in (Shard(0, 2), None):
        with pytest.raises(ConfigError):
            scripted(out, shard=other)


@pytest.mark.slow
def test_a_branched_run_is_sharded_by_position(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.simulator._datasets import dataset

    source = dataset(tmp_path_factory, "user")
    base = RunConfig(dialogues=0, seed=3, out_dir=tmp_path, branch_from=source, at_turn=6, variants=2)
    _, whole = default_planner(base)
    halves = [default_planner(dataclasses.replace(base, shard=Shard(i, 2)))[1] for i in range(2)]
    assert [s.id for s in halves[0]] == [s.id for s in whole[0::2]]
    assert [s.id for s in halves[1]] == [s.id for s in whole[1::2]]


def test_a_model_planned_shard_plans_only_its_own_scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[int]] = []

    async def plan(setup: Any, model: Any, config: Any, environments: Any, indexes: range) -> list[Scenario]:
        asked.append(list(indexes))
        return [build_scenario(environments[i % len(environments)], index=i, seed=config.seed) for i in indexes]

    monkeypatch.setattr(plan_module, "_plan_scenarios", plan)
    config = RunConfig(dialogues=7, seed=2, out_dir=tmp_path, domains=("retail",), shard=Shard(1, 3))
    setup = LLMSetup(settings={})
    _, first = model_planner(config, designs=[], env_model=None, tasks_model="openai:m", setup=setup)
    assert asked == [[1, 4]] and [s.id for s in first] == ["retail-2-00001", "retail-2-00004"]
    more = dataclasses.replace(config, dialogues=12)
    _, second = model_planner(more, designs=[], env_model=None, tasks_model="openai:m", setup=setup)
    assert asked == [[1, 4], [7, 10]]  # extended: only the shard's new indexes
    assert [s.id for s in second] == [f"retail-2-{i:05d}" for i in (1, 4, 7, 10)]


# --------------------------------------------------------------------------- merge


def test_merge_deduplicates_by_id_keeping_the_last_record(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    scripted(a, shard=Shard(0, 2))
    scripted(b, shard=Shard(1, 2))
    # b also holds a newer record of one of a's dialogues (as a retried dialogue would).
    line = (a / DATASET_FILE).read_bytes().splitlines()[0]
    newer = msgspec.structs.replace(msgspec.json.decode(line, type=DialogueRecord), error="retried")
    with (b / DATASET_FILE).open("ab") as f:
        f.write(msgspec.json.encode(newer) + b"\n")
        f.write(b'{"id": "cut off mid-wr')  # and a partial last line, as a killed shard leaves
    out = tmp_path / "merged"
    summary = merge_datasets([a, b], out)
    assert (summary.records, summary.duplicates) == (6, 1)
    assert [(i.shard, i.records) for i in summary.inputs] == [("0/2", 3), ("1/2", 4)]
    merged = {r.scenario.id: r for _, r in iter_records(out)}
    assert sorted(merged) == [f"shop-1-{i:04d}" for i in range(6)]
    assert merged[newer.scenario.id].error == "retried"
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert SHARD_KEY not in manifest["fingerprint"]
    assert [m["shard"] for m in manifest["merged_from"]] == ["0/2", "1/2"]
    written = msgspec.json.decode((out / SUMMARY_FILE).read_bytes(), type=MergeSummary)
    assert written.dataset.samples == 6
    assert (out / "environments" / "shop.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "merged"]  # no staging left behind


def test_a_merged_dataset_resumes_as_the_whole_run(tmp_path: Path) -> None:
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    scripted(a, dialogues=6, shard=Shard(0, 2))
    scripted(b, dialogues=4, shard=Shard(1, 2))  # this shard stopped early: 1 and 3 only
    merge_datasets([a, b], out)
    summary = scripted(out, dialogues=8)
    assert (summary.skipped, summary.generated) == (5, 3)  # 5 (the missing shard's), 6 and 7 (the larger run's)
    assert sorted(r.scenario.id for _, r in iter_records(out)) == [f"shop-1-{i:04d}" for i in range(8)]


def _two_shards(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    scripted(a, shard=Shard(0, 2))
    scripted(b, shard=Shard(1, 2))
    return a, b


def _assert_nothing_written(tmp_path: Path, before: set[str]) -> None:
    assert {p.name for p in tmp_path.iterdir()} == before


def test_merge_refuses_shards_of_different_runs(tmp_path: Path) -> None:
    a, _ = _two_shards(tmp_path)
    other = tmp_path / "other"
    scripted(other, seed=2, shard=Shard(1, 2))  # overlapping slice, another seed
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(MergeError) as caught:
        merge_datasets([a, other], tmp_path / "merged")
    assert (caught.value.code, caught.value.field) == ("merge", "seed")
    assert "\n" not in str(caught.value)
    _assert_nothing_written(tmp_path, before)


def test_merge_refuses_a_directory_that_is_not_a_dataset(tmp_path: Path) -> None:
    a, b = _two_shards(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    no_manifest = tmp_path / "no-manifest"
    no_manifest.mkdir()
    shutil.copy(b / DATASET_FILE, no_manifest / DATASET_FILE)
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a dataset")
    before = {p.name for p in tmp_path.iterdir()}
    for bad in (empty, no_manifest, a_file, tmp_path / "missing"):
        with pytest.raises(MergeError):
            merge_datasets([a, bad], tmp_path / "merged")
    _assert_nothing_written(tmp_path, before)


def test_merge_refuses_damage_and_conflicting_environments(tmp_path: Path) -> None:
    a, b = _two_shards(tmp_path)
    damaged = tmp_path / "damaged"
    shutil.copytree(b, damaged)
    lines = (damaged / DATASET_FILE).read_bytes().splitlines(keepends=True)
    (damaged / DATASET_FILE).write_bytes(lines[0] + b"{not json}\n" + b"".join(lines[1:]))
    changed = tmp_path / "changed"
    shutil.copytree(b, changed)
    env = json.loads((changed / "environments" / "shop.json").read_text())
    env["description"] = "another shop"
    (changed / "environments" / "shop.json").write_text(json.dumps(env))
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(MergeError):
        merge_datasets([a, damaged], tmp_path / "merged")
    with pytest.raises(MergeError) as caught:
        merge_datasets([a, changed], tmp_path / "merged")
    assert caught.value.field == "environments/shop.json"
    _assert_nothing_written(tmp_path, before)


def test_merge_refuses_an_output_that_is_an_input_or_not_empty(tmp_path: Path) -> None:
    a, b = _two_shards(tmp_path)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    for out in (a, a / "inside", full):
        with pytest.raises(MergeError) as caught:
            merge_datasets([a, b], out)
        assert caught.value.field == "--out"
    assert (full / "keep.txt").read_text() == "mine" and not (a / "inside").exists()
    (tmp_path / "empty").mkdir()
    assert merge_datasets([a, b], tmp_path / "empty").records == 6  # an empty directory is fine


def test_cli_merge_and_shard_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _two_shards(tmp_path)
    other = tmp_path / "other"
    scripted(other, seed=2)
    capsys.readouterr()
    assert main(["merge", str(a), str(other), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dialogsim: error:") and err.count("\n") == 1
    assert not (tmp_path / "m").exists()
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 0
    assert "6 dialogues" in capsys.readouterr().out
    for argv in (["--shard", "2/2"], ["--shard", "half"], ["--shard", "0/2", "--design", "a shop", "--model", "x:y"]):
        code = main(["generate", "--dialogues", "4", "--seed", "1", "--out", str(tmp_path / "g"), *argv])
        assert code == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "g").exists()


# --------------------------------------------------------------------------- determinism


@pytest.mark.slow
def test_shards_merged_equal_the_unsharded_run_record_by_record(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    offline(whole, concurrency=4)
    shards = []
    for i, concurrency in enumerate((3, 1)):
        shards.append(tmp_path / f"shard{i}")
        offline(shards[-1], concurrency=concurrency, shard=Shard(i, 2))
    merged = tmp_path / "merged"
    merge_datasets(list(reversed(shards)), merged)
    expected, got = records_by_id(whole), records_by_id(merged)
    assert len(expected) == 12 and sorted(got) == sorted(expected)
    for scenario_id, record in expected.items():
        assert got[scenario_id] == record, scenario_id
    # The line order differs; an export, sorted by id, does not.
    for name, directory in (("whole", whole), ("merged", merged)):
        export(directory, "sharegpt", tmp_path / f"{name}.jsonl")
    assert (tmp_path / "whole.jsonl").read_bytes() == (tmp_path / "merged.jsonl").read_bytes()
    assert (whole / DATASET_FILE).read_bytes() != (merged / DATASET_FILE).read_bytes()


@pytest.mark.slow
def test_the_same_seed_gives_the_same_records_at_any_concurrency(tmp_path: Path) -> None:
    offline(tmp_path / "c1", concurrency=1)
    offline(tmp_path / "c8", concurrency=8)
    one, eight = records_by_id(tmp_path / "c1"), records_by_id(tmp_path / "c8")
    assert len(one) == 12 and one.keys() == eight.keys()
    for scenario_id, record in one.items():
        assert eight[scenario_id] == record, scenario_id
    # At concurrency 8 the dialogues finish in another order than they were started.
    order = [r.scenario.id for _, r in iter_records(tmp_path / "c8")]
    assert order != sorted(order)
