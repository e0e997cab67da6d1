"""Every reader of a dataset: the last record per id, unknown record versions refused, a cut last line warned about,
one rule for ``error`` and one count of failed dialogues."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio
import pytest

from schemas import RECORD_VERSION, DialogueEnded, TerminationReason
from schemas.errors import ConfigError
from simulator.cli import main as cli_main
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.eval import EvalConfig, run_eval
from simulator.run.config import RunConfig, record_failed
from simulator.run.dataset import DATASET_FILE, iter_records, scan_dataset
from simulator.run.execute import execute_run
from simulator.run.plan import prepare_run
from tests.conftest import shop_environment
from tests.simulator.conftest import shop_scenario
from tests.simulator.eval.conftest import cmd_test_agent, write_shop_scenarios

_made: dict[str, Path] = {}


@pytest.fixture
def data(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A copy (for this test to change) of a small generated dataset: 3 retail dialogues."""
    if "d" not in _made:
        out = tmp_path_factory.mktemp("readers") / "d"
        config = RunConfig(dialogues=3, domains=("retail",), seed=2, out_dir=out)

        async def main() -> None:
            await execute_run(prepare_run(config), progress=False)

        anyio.run(main)
        _made["d"] = out
    copy = tmp_path / "data"
    shutil.copytree(_made["d"], copy)
    return copy


def _rewrite_line(dataset: Path, number: int, **changes: object) -> None:
    path = dataset / DATASET_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    record = json.loads(lines[number - 1])
    record.update(changes)
    lines[number - 1] = json.dumps(record).encode() + b"\n"
    path.write_bytes(b"".join(lines))


# --------------------------------------------------------------------------- record versions


def test_a_record_of_an_unknown_version_is_refused_by_every_reader(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _rewrite_line(data, 2, version=999)
    with pytest.raises(ConfigError):
        list(iter_records(data))
    where = f"{data / DATASET_FILE}: line 2"
    commands = {
        "stats": ["stats", str(data)],
        "export": ["export", str(data), "--format", "openai", "--out", str(tmp_path / "x.jsonl")],
        "report": ["report", str(data), "--out", str(tmp_path / "r.html")],
        "eval": ["eval", "--agent", "offline", "--scenarios", str(data), "--seed", "1", "--out", str(tmp_path / "e")],
        "branch": [
            "generate",
            "--branch-from",
            str(data),
            "--at-turn",
            "4",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "b"),
        ],
        "resume": ["generate", "--dialogues", "3", "--domain", "retail", "--seed", "2", "--out", str(data)],
    }
    for name, argv in commands.items():
        capsys.readouterr()
        assert cli_main([*argv, "--no-progress"] if name in {"eval", "branch", "resume"} else argv) == 2, name
        err = capsys.readouterr().err
        assert where in err and "999" in err, (name, err)
        assert len(err.strip().splitlines()) == 1, (name, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing was written anywhere


def test_records_of_this_version_are_read(data: Path) -> None:
    assert [r.version for _, r in iter_records(data)] == [RECORD_VERSION] * 3


# --------------------------------------------------------------------------- a cut last line


def test_a_cut_last_line_is_skipped_with_a_warning_naming_file_and_line(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = data / DATASET_FILE
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines()[0][:100])  # a write cut off by a kill
    for argv in (
        ["stats", str(data), "--json"],
        ["export", str(data), "--format", "native", "--out", str(tmp_path / "n.jsonl")],
    ):
        assert cli_main(argv) == 0
        err = capsys.readouterr().err
        assert "partial_last_record_skipped" in err and str(path) in err and "line=4" in err, err
    assert sorted((tmp_path / "n.jsonl").read_bytes().splitlines()) == sorted(whole.splitlines())
    # A resume cuts it away (and says so only in the run's log).
    scan = scan_dataset(path)
    assert scan.truncate_at == len(whole) and len(scan.done) == 3


def test_a_bad_line_in_the_middle_is_damage(data: Path) -> None:
    path = data / DATASET_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"{not json\n" + b"".join(lines[1:]))
    with pytest.raises(ConfigError):
        list(iter_records(data))


# --------------------------------------------------------------------------- the last record per id


def test_every_reader_takes_the_last_record_of_each_id(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = data / DATASET_FILE
    first = json.loads(path.read_bytes().splitlines()[0])
    first["brains"] = {**first["brains"], "marker": "newer"}
    first["success"] = False
    with path.open("ab") as f:
        f.write(json.dumps(first).encode() + b"\n")
    records = [r for _, r in iter_records(data)]
    assert len(records) == 3 and len({r.id for r in records}) == 3
    assert records[-1].id == first["id"] and records[-1].brains["marker"] == "newer"
    assert cli_main(["stats", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 3


# --------------------------------------------------------------------------- error and failed


@pytest.mark.anyio
async def test_error_is_set_for_every_failure_and_not_when_a_dialogue_ran_its_course(tmp_path: Path) -> None:
    env = shop_environment()
    ran_out = await run_dialogue(shop_scenario(), env, DialogueConfig(max_turns=2))
    assert ran_out.termination is TerminationReason.MAX_TURNS and ran_out.error is None
    (ended,) = [e for e in ran_out.events if isinstance(e, DialogueEnded)]
    assert ended.detail == "2 turns"  # what the ending was is kept in the event
    done = await run_dialogue(shop_scenario(), env, DialogueConfig())
    assert done.termination is TerminationReason.USER_DONE and done.error is None
    source = write_shop_scenarios(tmp_path / "s.json")
    await run_eval(
        EvalConfig(agent=cmd_test_agent("crash"), out_dir=tmp_path / "c", source=str(source), progress=False)
    )
    (crashed,) = [r for _, r in iter_records(tmp_path / "c" / "records")]
    assert record_failed(crashed) and crashed.error and "exited (code 3)" in crashed.error
    for record in (ran_out, done, crashed):
        assert (record.error is not None) == record_failed(record)
        assert record.error != ""


@pytest.mark.anyio
async def test_the_run_and_the_scores_count_the_same_failed_dialogues(tmp_path: Path) -> None:
    """Dialogues cut at the turn limit ran their course: failed in neither count."""
    outcome = await run_eval(EvalConfig(agent="offline", out_dir=tmp_path / "e", source="retail", limit=2, max_turns=3))
    terminations = outcome.results.summary.terminations
    assert terminations.get("max_turns") == 2
    assert outcome.run.failed == outcome.results.summary.failed == 0
