"""Filters, failed tool calls, near-duplicate removal and splits, on generated datasets."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas import DialogueRecord, Message
from schemas.errors import ConfigError
from simulator.cli import main
from simulator.export import RejectedTurns, export
from simulator.export.selection import (
    FailedToolCalls,
    NearDuplicates,
    Selection,
    assign_splits,
    jaccard,
    parse_splits,
    scenario_group,
    shingles,
    split_path,
)
from simulator.run.dataset import DATASET_FILE, iter_records
from tests.simulator import _datasets
from tests.simulator.export.test_export import read_jsonl


def records(*dirs: Path) -> list[DialogueRecord]:
    return [r for d in dirs for _, r in iter_records(d)]


def native_ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def exported_ids(data: Path | list[Path], tmp_path: Path, **kwargs: Any) -> list[str]:
    out = tmp_path / "selected.jsonl"
    export(data, "native", out, **kwargs)
    return native_ids(out)


# --------------------------------------------------------------------------- which dialogues


def test_only_successful_keeps_the_verified_dialogues(user_data: Path, tmp_path: Path) -> None:
    all_records = records(user_data)
    ok = sorted(r.id for r in all_records if r.success)
    assert 0 < len(ok) < len(all_records), "the session's dataset has failed dialogues"
    result = export(user_data, "native", tmp_path / "ok.jsonl", selection=Selection(only_successful=True))
    assert (result.written, result.unsuccessful) == (len(ok), len(all_records) - len(ok))
    assert sorted(native_ids(tmp_path / "ok.jsonl")) == ok
    for line in (tmp_path / "ok.jsonl").read_text().splitlines():
        record = msgspec.json.decode(line, type=DialogueRecord)
        assert record.success and all(o.success for o in record.outcomes)


@pytest.mark.parametrize(("field", "metric"), [("min_turns", "turns"), ("min_tasks", "tasks"), ("min_steps", "steps")])
def test_minimum_turns_tasks_and_steps(
    user_data: Path, task_data: Path, tmp_path: Path, field: str, metric: str
) -> None:
    all_records = records(user_data, task_data)
    values = sorted(getattr(r.metrics, metric) for r in all_records)
    threshold = values[len(values) // 2]  # the median: some dialogues go, some stay
    expected = sorted((r.scenario.id, r.id) for r in all_records if getattr(r.metrics, metric) >= threshold)
    assert 0 < len(expected) < len(all_records)
    result = export([user_data, task_data], "native", tmp_path / "x.jsonl", selection=Selection(**{field: threshold}))
    assert result.written == len(expected)
    assert sum(result.filtered.values()) == len(all_records) - len(expected)
    kept = [msgspec.json.decode(line, type=DialogueRecord) for line in (tmp_path / "x.jsonl").read_bytes().splitlines()]
    assert all(getattr(r.metrics, metric) >= threshold for r in kept)


def test_by_domain_and_by_mode(user_data: Path, task_data: Path, tmp_path: Path) -> None:
    all_records = records(user_data, task_data)
    retail_user = sorted(
        r.id for r in all_records if r.scenario.domain == "retail" and r.scenario.mode.value == "user-oriented"
    )
    assert retail_user
    selection = Selection(domains=("retail",), modes=("user-oriented",))
    result = export([user_data, task_data], "native", tmp_path / "x.jsonl", selection=selection)
    assert sorted(native_ids(tmp_path / "x.jsonl")) == retail_user
    assert result.filtered == {
        "other domain": sum(r.scenario.domain != "retail" for r in all_records),
        "other mode": sum(
            r.scenario.domain == "retail" and r.scenario.mode.value != "user-oriented" for r in all_records
        ),
    }
    task_only = exported_ids([user_data, task_data], tmp_path, selection=Selection(modes=("task-oriented",)))
    assert sorted(task_only) == sorted(r.id for r in records(task_data))


def test_a_domain_no_dialogue_has_is_refused_not_an_empty_file(user_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    with pytest.raises(ConfigError, match=r"--domain retial: no dialogue of that domain .*its domains: .*retail"):
        export(user_data, "openai", out, selection=Selection(domains=("retail", "retial")))
    assert not out.exists()


def test_bad_selection_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="dedupe"):
        Selection(dedupe=1.5)
    with pytest.raises(ConfigError, match="min_turns"):
        Selection(min_turns=-1)


# --------------------------------------------------------------------------- failed tool calls


def test_failed_tool_calls_kept_as_negative_examples_by_default(errors_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "keep.jsonl"
    result = export(errors_data, "anthropic", out, rejected_turns=RejectedTurns.KEEP)
    assert result.written == 6 and not result.filtered
    for example in read_jsonl(out):
        results = [b for m in example["messages"] if isinstance(m["content"], list) for b in m["content"]]
        failed = [b for b in results if b.get("is_error")]
        assert len(failed) == 1 and failed[0]["content"].startswith("customer_id: expected integer")


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "sharegpt", "parquet", "native"])
def test_drop_leaves_out_the_dialogues_with_a_failed_tool_call(
    errors_data: Path, user_data: Path, tmp_path: Path, fmt: str
) -> None:
    """Not only the calls: with them gone, the agent's report of the failure ("I tried, but it
    was refused") and the user's answer to it would stay, with nothing behind them."""

    def failed(record: DialogueRecord) -> bool:
        return any(m.role == "tool" and m.is_error for m in record.messages)

    assert all(failed(r) for _, r in iter_records(errors_data))  # 6 dialogues, one failed call each
    clean = [r.id for _, r in iter_records(user_data) if not failed(r)]
    selection = Selection(failed_tool_calls=FailedToolCalls.DROP)
    out = tmp_path / f"drop.{fmt}"
    keep = RejectedTurns.KEEP  # the rejected turns are another test's concern
    result = export([errors_data, user_data], fmt, out, selection=selection, rejected_turns=keep)
    assert clean and result.written == len(clean)
    assert result.filtered == {"failed tool calls": 6 + sum(1 for _, r in iter_records(user_data) if failed(r))}
    if fmt == "native":
        written = [msgspec.json.decode(line, type=DialogueRecord) for line in out.read_bytes().splitlines()]
        assert sorted(r.id for r in written) == sorted(clean)
        assert not any(m.is_error for r in written for m in r.messages)


# --------------------------------------------------------------------------- near duplicates


def with_duplicates(source: Path, out: Path) -> dict[str, str]:
    """A copy of ``source`` with near copies of some dialogues (new ids), lines shuffled; copy id -> original id."""
    shutil.copytree(source, out)
    lines = (out / DATASET_FILE).read_bytes().splitlines(keepends=True)
    originals = [msgspec.json.decode(line, type=DialogueRecord) for line in lines]
    copies: dict[str, str] = {}
    for index, record in enumerate(sorted(originals, key=lambda r: r.id)[:3]):
        copy = msgspec.structs.replace(record, id=f"zz-copy-{index}")
        copy.scenario = msgspec.structs.replace(record.scenario, id=f"zz-copy-{index}")
        if index == 1:  # a near copy: one word of one message changed, punctuation and case too
            messages = list(copy.messages)
            first = messages[0]
            messages[0] = msgspec.structs.replace(first, content=first.content.upper().replace(",", " ;") + " please")
            copy.messages = messages
        copies[copy.id] = record.id
        lines.append(msgspec.json.encode(copy) + b"\n")
    random.Random(5).shuffle(lines)
    (out / DATASET_FILE).write_bytes(b"".join(lines))
    return copies


def test_dedupe_drops_near_identical_dialogues_and_keeps_the_first(user_data: Path, tmp_path: Path) -> None:
    copies = with_duplicates(user_data, tmp_path / "dup")
    result = export(tmp_path / "dup", "native", tmp_path / "x.jsonl", selection=Selection(dedupe=0.9))
    assert dict(result.duplicates) == copies
    assert sorted(native_ids(tmp_path / "x.jsonl")) == sorted(r.id for r in records(user_data))
    # Without --dedupe every copy stays.
    assert export(tmp_path / "dup", "native", tmp_path / "y.jsonl").written == _datasets.DIALOGUES + len(copies)


def test_dedupe_never_drops_distinct_dialogues(user_data: Path, task_data: Path, tmp_path: Path) -> None:
    all_records = records(user_data, task_data)
    result = export([user_data, task_data], "native", tmp_path / "x.jsonl", selection=Selection(dedupe=0.5))
    assert result.duplicates == ()
    assert result.written == len(all_records)
    finder = NearDuplicates(0.9)
    sets = [shingles(r.messages) for r in all_records]
    assert max(jaccard(a, b) for i, a in enumerate(sets) for b in sets[i + 1 :]) < 0.5
    assert all(finder.offer(r.id, r.messages) is None for r in all_records)


def test_near_duplicates_is_exact_at_its_threshold() -> None:
    words = [f"w{i}" for i in range(200)]
    base = [Message(role="user", content=" ".join(words))]
    changed = [Message(role="user", content=" ".join(words[:190] + ["x"] * 10))]
    similarity = jaccard(shingles(base), shingles(changed))
    assert 0.8 < similarity < 0.95
    strict = NearDuplicates(similarity + 0.001)
    assert strict.offer("a", base) is None and strict.offer("b", changed) is None
    loose = NearDuplicates(similarity - 0.001)
    assert loose.offer("a", base) is None and loose.offer("b", changed) == "a"


# --------------------------------------------------------------------------- splits


def test_parse_splits() -> None:
    assert parse_splits("train=0.9,validation=0.1") == {"train": 0.9, "validation": 0.1}
    assert parse_splits(" train = 0.8 , dev=0.1,test=0.1") == {"train": 0.8, "dev": 0.1, "test": 0.1}
    for bad in ("train=0.9", "train=0.9,train=0.1", "train", "train=x,b=1", "a/b=1", "train=1.5,b=-0.5"):
        with pytest.raises(ConfigError, match="--split"):
            parse_splits(bad)


def test_scenario_group_strips_branch_suffixes() -> None:
    assert scenario_group("retail-3-00001") == "retail-3-00001"
    assert scenario_group("retail-3-00001-b8-v2") == "retail-3-00001"
    assert scenario_group("retail-3-00001-b8-v2-b12-v0") == "retail-3-00001"
    assert scenario_group("shop-b2") == "shop-b2"


def test_assign_splits_is_deterministic_and_proportional() -> None:
    groups = {f"g{i:03d}": 1 + i % 3 for i in range(300)}
    splits = {"train": 0.8, "validation": 0.1, "test": 0.1}
    first = assign_splits(groups, splits, seed=1)
    assert first == assign_splits(dict(reversed(list(groups.items()))), splits, seed=1)
    assert first != assign_splits(groups, splits, seed=2)
    total = sum(groups.values())
    for name, fraction in splits.items():
        share = sum(n for g, n in groups.items() if first[g] == name) / total
        assert share == pytest.approx(fraction, abs=0.02)
    # Removing a group moves no other group.
    fewer = dict(groups)
    del fewer["g000"]
    moved = [g for g, name in assign_splits(fewer, splits, seed=1).items() if name != first[g]]
    assert len(moved) <= 3


def test_split_keeps_every_scenario_and_its_branches_in_one_split(
    user_data: Path, branched_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "chat.jsonl"
    splits = parse_splits("train=0.5,validation=0.5")
    result = export([user_data, branched_data], "openai", out, splits=splits, seed=7)
    total = len(records(user_data, branched_data))
    assert {name: n for name, (_, n) in result.files.items()} == {
        "train": len(read_jsonl(tmp_path / "chat-train.jsonl")),
        "validation": len(read_jsonl(tmp_path / "chat-validation.jsonl")),
    }
    assert result.written == total and not out.exists()
    assert result.files["train"][0] == split_path(out, "train") == tmp_path / "chat-train.jsonl"

    native = tmp_path / "n.jsonl"
    export([user_data, branched_data], "native", native, splits=splits, seed=7)
    split_of: dict[str, str] = {}
    for name in splits:
        for line in split_path(native, name).read_text().splitlines():
            scenario = json.loads(line)["scenario"]["id"]
            group = scenario_group(scenario)
            assert split_of.setdefault(group, name) == name, f"{group} is in two splits"
    branched = {r.scenario.id for r in records(branched_data)}
    assert all(s != scenario_group(s) and scenario_group(s) in split_of for s in branched)
    # The same seed gives the same files; other seeds other assignments.
    again = tmp_path / "again.jsonl"
    export([user_data, branched_data], "native", again, splits=splits, seed=7)
    for name in splits:
        assert split_path(again, name).read_bytes() == split_path(native, name).read_bytes()
    others = []
    for seed in (8, 9, 10):
        export([user_data, branched_data], "native", again, splits=splits, seed=seed, force=True)
        others.append(split_path(again, "train").read_bytes())
    assert any(other != split_path(native, "train").read_bytes() for other in others)


def test_same_scenario_same_split_in_both_modes(user_data: Path, task_data: Path, tmp_path: Path) -> None:
    splits = {"train": 0.75, "validation": 0.25}
    for data, name in ((user_data, "u.jsonl"), (task_data, "t.jsonl")):
        export(data, "native", tmp_path / name, splits=splits, seed=3)
    for split in splits:
        user_ids = [
            json.loads(x)["scenario"]["id"] for x in split_path(tmp_path / "u.jsonl", split).read_text().splitlines()
        ]
        task_ids = [
            json.loads(x)["scenario"]["id"] for x in split_path(tmp_path / "t.jsonl", split).read_text().splitlines()
        ]
        assert user_ids == task_ids and user_ids
    assert len(split_path(tmp_path / "u.jsonl", "validation").read_text().splitlines()) == 3


def test_cli_filters_and_splits(
    user_data: Path, task_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sft.json"
    args = ["export", str(user_data), str(task_data), "--format", "sharegpt", "--out", str(out)]
    args += ["--only-successful", "--mode", "user-oriented", "--min-tasks", "2", "--failed-tool-calls", "drop"]
    args += ["--dedupe", "--split", "train=0.75,validation=0.25", "--seed", "1"]
    assert main(args) == 0
    err = capsys.readouterr().err
    ok = [r for r in records(user_data) if r.success and r.metrics.tasks >= 2]
    train = read_jsonl(tmp_path / "sft-train.json")
    validation = read_jsonl(tmp_path / "sft-validation.json")
    assert len(train) + len(validation) == len(ok)
    assert f"wrote {len(ok)} dialogues (train {len(train)} -> " in err
    # Unsuccessful dialogues are left out first; the task-oriented ones that succeeded go for their mode.
    other_mode = sum(1 for r in records(task_data) if r.success)
    assert f"{other_mode} left out (other mode)" in err
    assert main(["export", str(user_data), "--format", "openai", "--out", str(out), "--split", "train=2"]) == 2
    assert "--split" in capsys.readouterr().err


def test_a_dialogue_with_a_cut_agent_message_is_left_out_of_every_export(tmp_path: Path) -> None:
    """Its recorded message is what the user was shown (the first characters and dialogsim's
    note), not what the agent said: as a training target it teaches the note."""
    out = tmp_path / "data"
    assert main(["generate", "--dialogues", "6", "--seed", "3", "--max-message-chars", "200", "--out", str(out)]) == 0
    cut = [
        r.id
        for _, r in iter_records(out)
        if any("[dialogsim: message cut here" in (m.content or "") for m in r.messages)
    ]
    assert cut  # some replies are longer than 200 characters
    for fmt in ("openai", "native"):
        target = tmp_path / f"out.{fmt}"
        result = export(out, fmt, target)
        assert result.filtered == {"agent message cut": len(cut)}
        assert b"message cut here" not in target.read_bytes()


def test_a_dialogue_of_the_same_run_in_two_inputs_is_written_once(tmp_path: Path) -> None:
    """A shard beside the merge of the shards held each of its dialogues twice."""
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    for i, shard in enumerate(shards):
        argv = ["generate", "--dialogues", "4", "--seed", "3", "--shard", f"{i}/2", "--out", str(shard)]
        assert main(argv) == 0
    merged = tmp_path / "merged"
    assert main(["merge", *map(str, shards), "--out", str(merged)]) == 0
    result = export([merged, shards[0]], "native", tmp_path / "x.jsonl")
    assert sorted(native_ids(tmp_path / "x.jsonl")) == sorted(r.id for r in records(merged))
    assert result.filtered == {"the same dialogue of the same run, in an earlier input": len(records(shards[0]))}
    with pytest.raises(ConfigError, match="given twice"):
        export([merged, tmp_path / "merged"], "native", tmp_path / "y.jsonl")
    # Another run with the same ids (another mistake rate) holds other dialogues: both are written.
    other = tmp_path / "other"
    assert main(["generate", "--dialogues", "2", "--seed", "3", "--mistake-rate", "0.5", "--out", str(other)]) == 0
    assert {r.id for r in records(other)} <= {r.id for r in records(merged)}
    assert export([merged, other], "native", tmp_path / "z.jsonl").written == 6
