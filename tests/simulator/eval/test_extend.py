"""Resuming and extending an evaluation in the same ``--out``: what may change between runs, what is refused."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas.errors import ConfigError
from simulator.cli import main as cli_main
from simulator.eval import EvalConfig, run_eval
from simulator.eval.evaluate import EVAL_FILE, RECORDS_DIR, RESULTS_FILE
from simulator.external.spec import ExternalSpec
from simulator.run.dataset import MANIFEST_FILE, iter_records

pytestmark = pytest.mark.anyio

NOTES_SERVER = Path(__file__).resolve().parents[1] / "external" / "notes_server.py"


def _count(out: Path) -> int:
    return sum(1 for _ in iter_records(out / RECORDS_DIR))


def _config(tmp_path: Path, shop_file: Path, **kw: Any) -> EvalConfig:
    return EvalConfig(agent="offline", out_dir=tmp_path / "e", source=str(shop_file), seed=1, progress=False, **kw)


@pytest.mark.parametrize(
    "change,named",
    [
        ({"turn_timeout_s": 0.5}, "turn_timeout: 60.0 there, 0.5 now"),
        ({"timeout_s": 30.0}, "dialogue_timeout: 600.0 there, 30.0 now"),
        ({"max_message_chars": 100}, "max_message_chars: 32000 there, 100 now"),
    ],
)
async def test_more_trials_with_a_setting_that_changes_outcomes_are_refused(
    tmp_path: Path, shop_file: Path, change: dict[str, Any], named: str
) -> None:
    first = _config(tmp_path, shop_file)
    await run_eval(first)
    with pytest.raises(ConfigError) as caught:
        await run_eval(dataclasses.replace(first, trials=2, **change))
    assert named in str(caught.value)
    assert _count(first.out_dir) == 1


async def test_more_trials_with_another_concurrency_or_tool_server_extend_the_evaluation(
    tmp_path: Path, shop_file: Path
) -> None:
    first = _config(tmp_path, shop_file)
    await run_eval(first)
    extended = await run_eval(dataclasses.replace(first, trials=2, concurrency=1, tool_server="pool"))
    assert extended.run.generated == 1 and extended.results.summary.dialogues == 2


def test_the_refusal_names_every_difference_on_one_line(
    tmp_path: Path, shop_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "e"
    argv = ["eval", "--agent", "offline", "--scenarios", str(shop_file), "--seed", "1", "--out", str(out)]
    assert cli_main([*argv, "--trials", "2", "--no-progress"]) == 0
    settings = (out / EVAL_FILE).read_text()
    capsys.readouterr()
    code = cli_main([*argv, "--trials", "3", "--turn-timeout", "0.5", "--max-message-chars", "100", "--no-progress"])
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("dialogsim: error: ")
    assert "max_message_chars: 32000 there, 100 now; turn_timeout: 60.0 there, 0.5 now" in line
    assert (out / EVAL_FILE).read_text() == settings and _count(out) == 2


def test_the_manifest_says_it_holds_the_first_command_and_results_the_trials_scored(
    tmp_path: Path, shop_file: Path
) -> None:
    out = tmp_path / "e"
    argv = ["eval", "--agent", "offline", "--scenarios", str(shop_file), "--seed", "1", "--out", str(out)]
    assert cli_main([*argv, "--trials", "2", "--no-progress"]) == 0
    assert cli_main([*argv, "--trials", "3", "--concurrency", "1", "--no-progress"]) == 0
    config = json.loads((out / RECORDS_DIR / MANIFEST_FILE).read_text())["config"]
    assert config["trials"] == 2
    assert "created" in config["recorded"] and RESULTS_FILE in config["recorded"]
    assert json.loads((out / RESULTS_FILE).read_text())["summary"]["trials"] == 3


async def test_an_evaluation_from_before_the_limits_were_recorded_still_resumes(
    tmp_path: Path, shop_file: Path
) -> None:
    first = _config(tmp_path, shop_file)
    await run_eval(first)
    path = first.out_dir / EVAL_FILE
    older = {
        k: v
        for k, v in json.loads(path.read_text()).items()
        if k not in {"turn_timeout", "dialogue_timeout", "max_message_chars"}
    }
    path.write_text(json.dumps(older))
    extended = await run_eval(dataclasses.replace(first, trials=2, turn_timeout_s=30.0))
    assert extended.run.generated == 1
    assert json.loads(path.read_text())["turn_timeout"] == 30.0  # recorded from now on


@pytest.mark.slow
async def test_more_trials_over_a_server_with_another_call_timeout_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "notes.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (note_id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL)")
        conn.execute("INSERT INTO notes (title, body) VALUES ('Groceries', 'eggs, flour, milk')")
    conn.close()
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(NOTES_SERVER))} {{state}}"
    spec = ExternalSpec(command=command, state_file=db)
    first = EvalConfig(agent="offline", out_dir=tmp_path / "e", limit=1, seed=1, progress=False, external=spec)
    await run_eval(first)
    slower = dataclasses.replace(spec, call_timeout_s=0.5)
    with pytest.raises(ConfigError) as caught:
        await run_eval(dataclasses.replace(first, trials=2, external=slower))
    assert "call_timeout: 60.0 there, 0.5 now" in str(caught.value)
    assert _count(first.out_dir) == 1
