"""SIGINT and SIGTERM stop ``generate`` and ``eval`` cleanly: whole records, no orphans, a partial summary.

Real subprocesses, real signals: the test waits (polling) for the dataset's first lines,
signals the process, and checks what it left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from schemas import DialogueRecord
from simulator.run.dataset import DATASET_FILE, SUMMARY_FILE, scan_dataset
from tests.simulator.eval.conftest import cmd_test_agent, write_shop_scenarios

ROOT = Path(__file__).resolve().parents[3]
#: A bound on how long anything here may take, so that a regression fails instead of hanging.
PATIENCE_S = 90.0


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "simulator", *args, "--no-progress"]


def _poll(condition: Callable[[], bool], proc: subprocess.Popen[str] | None = None) -> bool:
    """Poll ``condition`` until it holds (True) or the process ends or patience runs out (False)."""
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _records(path: Path) -> list[DialogueRecord]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "a torn last line"
    return [msgspec.json.decode(line, type=DialogueRecord) for line in data.splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_generate_with_whole_records_and_a_partial_summary(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "d"
    dataset = out / DATASET_FILE
    args = ("generate", "--seed", "3", "--concurrency", "2", "--out", str(out))
    proc = subprocess.Popen(
        _cli(*args, "--dialogues", "60"), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        started = _poll(lambda: _lines(dataset) >= 2, proc)
        if started:
            proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=PATIENCE_S)
    finally:
        proc.kill()
    assert started, f"the run ended before it was signalled: {proc.returncode}"
    assert proc.returncode == 128 + sig, stderr
    assert f"interrupted by {sig.name}" in stdout and "not run yet" in stdout
    records = _records(dataset)
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)) >= 2
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["interrupted"] == sig.name
    assert summary["generated"] == len(records) and summary["not_run"] == 60 - len(records)
    assert summary["dataset"]["samples"] == len(records)

    # The same command resumes it: nothing lost, nothing twice.
    more = len(records) + 2
    resumed = subprocess.run(
        _cli(*args, "--dialogues", str(more)), cwd=ROOT, capture_output=True, text=True, timeout=PATIENCE_S
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"2 new dialogues (0 failed), {len(records)} already present" in resumed.stdout
    ids = [r.id for r in _records(dataset)]
    assert len(ids) == len(set(ids)) == more


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_eval_and_its_agents(tmp_path: Path, sig: signal.Signals) -> None:
    """Trial 1 of shop-0 finishes; the agents of the next trials hang until the signal."""
    source = write_shop_scenarios(tmp_path / "s.json", copies=3)
    pids = tmp_path / "pids"
    pids.mkdir()
    out = tmp_path / "e"
    records = out / "records" / DATASET_FILE
    argv = ["eval", "--agent", cmd_test_agent("hang-later"), "--scenarios", str(source), "--seed", "1"]
    argv += ["--concurrency", "2", "--turn-timeout", "300", "--out", str(out)]
    env = {**os.environ, "DIALOGSIM_TEST_PIDS": str(pids)}
    proc = subprocess.Popen(_cli(*argv), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # One record written, and the two hanging agents started.
        started = _poll(lambda: _lines(records) >= 1 and len(list(pids.iterdir())) >= 3, proc)
        if started:
            proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=PATIENCE_S)
    finally:
        proc.kill()
    assert started, f"the evaluation ended early: {proc.returncode}"
    assert proc.returncode == 128 + sig, stderr
    assert f"interrupted by {sig.name}" in stdout
    agents = [int(p.name) for p in pids.iterdir()]
    assert _poll(lambda: not any(_alive(pid) for pid in agents)), "an agent outlived the evaluation"
    (done,) = _records(records)
    assert done.id == "shop-0~t1"
    scan = scan_dataset(records)
    assert scan.done == {"shop-0~t1"} and scan.truncate_at is None
    summary = json.loads((out / "records" / SUMMARY_FILE).read_text())
    assert summary["interrupted"] == sig.name and summary["generated"] == 1 and summary["not_run"] == 2
