"""Structured logs: a run's DIR/run.log, context bound per dialogue, secrets redacted, stderr formats."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import anyio
import msgspec
import pytest

from simulator import log
from simulator.cli import main
from simulator.run.config import RunConfig
from simulator.run.dataset import iter_records
from simulator.run.execute import execute_run
from simulator.run.plan import prepare_run


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_run_writes_its_log_as_json_lines_with_run_and_dialogue_ids(tmp_path: Path) -> None:
    out = tmp_path / "data"
    prepared = prepare_run(RunConfig(dialogues=3, seed=5, out_dir=out, domains=("retail",)))
    anyio.run(lambda: execute_run(prepared, progress=False))
    lines = _lines(out / log.RUN_LOG)
    assert {line["run_id"] for line in lines} == {prepared.run_id}
    events = [line["event"] for line in lines]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    finished = {line["dialogue_id"] for line in lines if line["event"] in {"dialogue_finished", "dialogue_failed"}}
    assert finished == {record.id for _, record in iter_records(out)}

    again = prepare_run(RunConfig(dialogues=4, seed=5, out_dir=out, domains=("retail",)))
    anyio.run(lambda: execute_run(again, progress=False))
    lines = _lines(out / log.RUN_LOG)  # appended: both invocations are there, told apart by run id
    assert {line["run_id"] for line in lines} == {prepared.run_id, again.run_id}


def test_secrets_never_reach_a_log(tmp_path: Path) -> None:
    secret = "sk-canary-0123456789"
    log.add_secret(secret)
    path = tmp_path / "run.log"
    with log.run_log(path, run_id="r"):
        log.get_logger("simulator.test").warning("calling", api_key="whatever", url=f"https://x/?key={secret}")
        logging.getLogger("dialogsim.providers").warning("retrying with %s", secret)
    text = path.read_text(encoding="utf-8")
    assert secret not in text and "whatever" not in text
    (first, second) = _lines(path)
    assert first["api_key"] == "[redacted]" and "[redacted]" in str(first["url"])
    assert second["event"] == "retrying with [redacted]"


def test_bound_context_reaches_every_line_of_the_block(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    with log.run_log(path, run_id="r1"), log.bind(dialogue_id="d7"):
        log.get_logger("simulator.test").info("inside")
    log.get_logger("simulator.test").info("outside")  # no run log open: written nowhere
    (line,) = _lines(path)
    assert (line["event"], line["run_id"], line["dialogue_id"]) == ("inside", "r1", "d7")


def test_log_format_json_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["generate", "--dialogues", "1", "--seed", "2", "--domain", "clinic", "--out", str(tmp_path / "d")]
        + ["--no-progress", "--log-level", "info", "--log-format", "json"]
    )
    assert code == 0
    stderr = [line for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert stderr and all("event" in json.loads(line) for line in stderr)
    log.configure("warning", "console", stream=io.StringIO())  # back to the default for other tests


def test_a_key_echoed_by_an_error_is_redacted_in_logs_and_records(tmp_path: Path) -> None:
    from schemas import ErrorEvent, TerminationReason
    from simulator.dialogue.recorder import build_record
    from simulator.providers.settings import Secret
    from tests.simulator.run.test_run import make_scenario

    key = "sk-proj-echoed-0123456789"
    Secret(key)  # a key the run holds: registered where it is made, in any process
    echoed = f"401 Unauthorized: Incorrect API key provided: {key}"
    record = build_record(
        make_scenario(1),
        [ErrorEvent(where="agent", error_type="AuthenticationError", message=echoed)],
        [],
        TerminationReason.AGENT_FAILURE,
        success=False,
        error=echoed,
    )
    assert record.error is not None and "Incorrect API key" in record.error
    assert key not in json.dumps(msgspec.to_builtins(record))
    with log.run_log(tmp_path / log.RUN_LOG, run_id="r"):
        log.get_logger("dialogsim.test").warning("dialogue_failed", error=echoed)
    assert key not in (tmp_path / log.RUN_LOG).read_text()
