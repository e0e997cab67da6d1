"""Where ``export`` and ``report`` write: a directory or an existing file is refused cleanly, nothing is left behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simulator.cli import main as cli_main


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize(
    "command",
    [
        ["export", "--format", "openai"],
        ["export", "--format", "parquet"],
        ["export", "--format", "native", "--split", "train=0.5,validation=0.5"],
        ["report"],
    ],
)
def test_out_naming_a_directory_is_one_line_and_leaves_nothing(
    user_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    target = tmp_path / "somewhere"
    target.mkdir()
    assert cli_main([command[0], str(user_data), *command[1:], "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(target) in err
    assert _names(tmp_path) == ["somewhere"] and _names(target) == []


def test_out_under_a_file_is_refused(user_data: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    for argv in (
        ["export", str(user_data), "--format", "openai", "--out", str(tmp_path / "a-file" / "x.jsonl")],
        ["report", str(user_data), "--out", str(tmp_path / "a-file" / "r.html")],
    ):
        assert cli_main(argv) == 2
    assert _names(tmp_path) == ["a-file"]


def test_export_does_not_overwrite_without_force(
    user_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "train.jsonl"
    out.write_text("precious\n")
    argv = ["export", str(user_data), "--format", "openai", "--out", str(out)]
    assert cli_main(argv) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "precious\n" and _names(tmp_path) == ["train.jsonl"]
    assert cli_main([*argv, "--force"]) == 0
    assert out.read_text() != "precious\n" and _names(tmp_path) == ["train.jsonl"]


def test_a_split_file_that_exists_is_not_overwritten_without_force(user_data: Path, tmp_path: Path) -> None:
    (tmp_path / "chat-validation.jsonl").write_text("precious\n")
    argv = ["export", str(user_data), "--format", "openai", "--out", str(tmp_path / "chat.jsonl")]
    assert cli_main([*argv, "--split", "train=0.5,validation=0.5"]) == 2
    assert _names(tmp_path) == ["chat-validation.jsonl"]
    assert cli_main([*argv, "--split", "train=0.5,validation=0.5", "--force"]) == 0
    assert _names(tmp_path) == ["chat-train.jsonl", "chat-validation.jsonl"]


def test_report_replaces_its_own_file(user_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert cli_main(["report", str(user_data), "--out", str(out)]) == 0
    assert cli_main(["report", str(user_data), "--out", str(out)]) == 0
    assert _names(tmp_path) == ["r.html"]


@pytest.mark.parametrize(
    "command",
    [["report"], ["export", "--format", "openai", "--force"], ["export", "--format", "native", "--force"]],
)
def test_a_file_of_a_dataset_being_read_is_never_overwritten(
    user_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Not even with --force: ``report data --out data/dialogues.jsonl`` replaced the records with HTML."""
    data = tmp_path / "data"
    shutil.copytree(user_data, data)
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    for name in ("dialogues.jsonl", "manifest.json", "environments/clinic.json"):
        target = data / name
        if not target.exists():
            continue
        assert cli_main([command[0], str(data), *command[1:], "--out", str(target)]) == 2
        err = capsys.readouterr().err
        assert "which this command reads" in err and str(target) in err
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before
    # A report beside the records is fine, and so is replacing it.
    assert cli_main(["report", str(data), "--out", str(data / "report.html")]) == 0
    assert cli_main(["report", str(data), "--out", str(data / "report.html")]) == 0
