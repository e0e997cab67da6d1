"""Bad input is one line on stderr and exit code 2, before any work (no output directory made)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from schemas.errors import ExternalServerError
from simulator.cli import main
from simulator.external.spec import ExternalSpec
from tests.simulator.external.conftest import notes_command, time_command


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("dialogsim: error: ")
    return lines[0]


def test_a_state_placeholder_without_a_state_dir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, err = _run(capsys, "generate", "--server", "mcp-server-git --repository {state}", "--dialogues", "1",
                     "--seed", "1", "--out", str(out))  # fmt: skip
    assert code == 2
    assert "{state}" in _one_line_error(err)
    assert not out.exists()
    with pytest.raises(ExternalServerError) as caught:
        ExternalSpec(command="srv --repository {state}").check()
    assert caught.value.code == "external_server" and caught.value.field == "--server"


def test_a_command_that_is_not_an_mcp_server_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    command = f"{shlex.quote(sys.executable)} -c \"print('hello, I am not a server')\""
    code, err = _run(capsys, "generate", "--server", command, "--dialogues", "1", "--seed", "1", "--out", str(out))
    assert code == 2
    assert "not an MCP server" in _one_line_error(err)
    assert not out.exists()


def test_a_missing_program_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "generate", "--server", "no-such-mcp-server-here", "--dialogues", "1", "--seed", "1",
                     "--out", str(tmp_path / "out"))  # fmt: skip
    assert code == 2
    _one_line_error(err)


def test_a_server_that_lists_no_tools_is_refused(
    tmp_path: Path, notes_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, err = _run(capsys, "generate", "--server", notes_command("--no-tools"), "--state-file", str(notes_db),
                     "--dialogues", "1", "--seed", "1", "--out", str(out))  # fmt: skip
    assert code == 2
    assert "lists no tools" in _one_line_error(err)
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--state-dir", "."], "--state-dir"),  # without --server
        (["--url", "ftp://example.invalid/mcp"], "--url"),
        (["--url", "http://127.0.0.1:9/mcp", "--state-dir", "."], "--state-dir"),
        (["--server", "srv {state}", "--state-dir", ".", "--state-file", "x"], "--state-file"),
        (["--server", "srv", "--state-dir", "."], "--state-dir"),  # a state copy nothing would use
        (["--server", "srv", "--header", "A: b"], "--header"),
    ],
)
def test_flags_that_do_not_go_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    out = tmp_path / "out"
    code, err = _run(capsys, "generate", *argv, "--dialogues", "1", "--seed", "1", "--out", str(out))
    assert code == 2
    assert flag in _one_line_error(err)
    assert not out.exists()


def test_eval_refuses_the_same_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "eval", "--agent", "offline", "--server", time_command() + " {state}", "--seed", "1",
                     "--out", str(tmp_path / "ev"))  # fmt: skip
    assert code == 2
    assert "{state}" in _one_line_error(err)
