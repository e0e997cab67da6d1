"""``python -m bench instructions``: reads cachegrind's count, takes the slope of two runs, and its
child (what runs under valgrind) runs the bench's dialogues on either side.

Nothing here runs valgrind (a child takes minutes under it, and a fresh machine has none):
the child is run as valgrind would run it, and the counting around it is fed known counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bench.bench_instructions as instructions

SUMMARY = """==26590== Command: python bench/bench_instructions.py --child full 1
==26590==
==26590== I   refs:      101,269,439
"""


def test_the_count_is_read_from_cachegrinds_summary() -> None:
    assert instructions.instruction_refs(SUMMARY) == 101_269_439
    with pytest.raises(ValueError, match="no 'I refs' line"):
        instructions.instruction_refs("==1== Command: python\n")


def test_a_dialogue_costs_what_the_second_round_added() -> None:
    assert instructions.per_dialogue(23_000_000_000, 33_300_000_000, 300) == pytest.approx(34.333, abs=1e-3)


@pytest.mark.parametrize("side", ["full", "bare"])
def test_the_child_runs_the_bench_dialogues_as_valgrind_starts_it(side: str) -> None:
    """The child is started by this file's path with the counted checkout on PYTHONPATH."""
    root = instructions.ROOT
    done = subprocess.run(
        [sys.executable, str(Path(instructions.__file__)), "--child", side, "1", "--dialogues", "9"],
        cwd=root,
        env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"{side}: 1 round(s) of 9 dialogues after 6 to warm up"


def test_the_figures_and_the_change_against_another_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "old"
    (other / "bench").mkdir(parents=True)
    (other / "bench" / "bench_generate.py").write_text("")
    # Millions of instructions a dialogue by (checkout, side); a round of 100 dialogues.
    cost = {(instructions.ROOT, "full"): 30.0, (instructions.ROOT, "bare"): 15.0, (other, "full"): 40.0}

    def fake(root: Path, side: str, rounds: int, dialogues: int, seed: int, concurrency: int) -> int:
        assert (dialogues, seed, concurrency) == (100, 11, 8)
        per = cost.get((root, side), 16.0)
        return int(5e9 + rounds * dialogues * per * 1e6)

    monkeypatch.setattr(instructions, "_count", fake)
    monkeypatch.setattr(instructions.shutil, "which", lambda name: "/usr/bin/valgrind")
    out = tmp_path / "figures.json"
    assert instructions.main(["--dialogues", "100", "--against", str(other), "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["here"]["full_m"] == 30.0 and figures["here"]["bare_m"] == 15.0
    assert figures["here"]["harness_m"] == 15.0 and figures["here"]["ratio"] == 2.0
    assert figures["against"]["ratio"] == 2.5
    assert figures["change_percent"] == {"full_m": -25.0, "bare_m": -6.25, "harness_m": -37.5}
    printed = capsys.readouterr().out
    assert "change: full pipeline -25.0%, bare brains -6.2%, harness -37.5%" in printed
    assert "| full pipeline / bare brains (instructions) | <= 3x | 2.00x | met |" in printed


def test_without_valgrind_it_says_so(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    assert instructions.main([]) == 2
    assert "valgrind is not on the PATH" in capsys.readouterr().err


def test_against_something_that_is_not_a_checkout_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        instructions.main(["--against", str(tmp_path)])
    assert f"--against {tmp_path}: not a checkout of this project" in capsys.readouterr().err
