"""``--config FILE.toml``: keys mirror the long flags; defaults → file → flags; unknown keys are errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import build_parser, main
from simulator.cli._config import apply_config


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _parse(argv: list[str]) -> object:
    parser = build_parser()
    apply_config(parser, argv, ("generate", "eval", "stress"))
    return parser.parse_args(argv)


def test_the_file_fills_flags_and_the_command_line_wins(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        'dialogues = 5\nseed = 3\ndomain = ["retail", "clinic"]\nmax-turns = 90\nno_progress = true\n'
        '[models]\nuser = "openai:gpt-4.1"\n',
    )
    args = _parse(["generate", "--config", str(path), "--out", str(tmp_path / "d"), "--seed", "9"])
    assert (args.dialogues, args.seed, args.domains, args.max_turns, args.no_progress) == (  # type: ignore[attr-defined]
        5,
        9,
        ["retail", "clinic"],
        90,
        True,
    )
    assert args.user_model == "openai:gpt-4.1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("dialogs = 3\n", "'dialogs'"),
        ("concurrency = 'many'\n", "concurrency"),
        ("mode = 'chatty'\n", "mode"),
        ("[models]\nwizard = 'openai:x'\n", "wizard"),
        ("no-progress = 1\n", "no-progress"),
        ("seed = [1, 2]\n", "seed"),
        ("dialogues = \n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, named: str
) -> None:
    path = _toml(tmp_path, text)
    assert main(["generate", "--config", str(path), "--seed", "1", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and named in err
    assert not (tmp_path / "d").exists()


def test_the_merged_configuration_is_kept_in_the_manifest_without_secrets(tmp_path: Path) -> None:
    path = _toml(
        tmp_path, 'dialogues = 2\nseed = 4\ndomain = ["travel"]\nno-progress = true\napi-key = "sk-nope-123"\n'
    )
    out = tmp_path / "data"
    assert main(["generate", "--config", str(path), "--out", str(out), "--concurrency", "3"]) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    config = manifest["config"]
    assert (config["dialogues"], config["seed"], config["domains"], config["concurrency"]) == (2, 4, ["travel"], 3)
    assert "api_key" not in config and "sk-nope-123" not in json.dumps(manifest)


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--config", str(tmp_path / "nope.toml"), "--agent", "offline", "--seed", "1"]) == 2
    assert "no such file" in capsys.readouterr().err
