"""``dialogsim eval --server`` scores an agent over a real third-party server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main
from tests.simulator.external.conftest import git_command

SILENT_AGENT = """
class Silent:
    async def reply(self, conversation, session):
        return "Done, all taken care of."


def make_agent(info):
    return Silent()
"""


def _common(git_repo: Path, trials: int) -> list[str]:
    return ["--server", git_command(), "--state-dir", str(git_repo), "--limit", "1", "--trials", str(trials),
            "--seed", "4", "--no-progress", "--concurrency", "2", "--mistake-rate", "0"]  # fmt: skip


@pytest.mark.slow
def test_eval_over_git_scores_the_offline_agent(tmp_path: Path, git_repo: Path) -> None:
    assert main(["eval", "--agent", "offline", *_common(git_repo, 2), "--out", str(tmp_path / "offline")]) == 0
    good = json.loads((tmp_path / "offline" / "results.json").read_text())["summary"]
    settings = json.loads((tmp_path / "offline" / "eval.json").read_text())
    assert settings["external"]["state_kind"] == "dir" and settings["source"] == "external"
    assert good["trials"] == 2 and good["dialogues"] == 2 and good["tool_calls"] > 0
    assert good["task_success"]["value"] == 1.0, good
    assert good["dialogue_pass_hat"]["2"]["value"] == 1.0


@pytest.mark.slow
def test_eval_over_git_fails_a_silent_agent(tmp_path: Path, git_repo: Path) -> None:
    agent_file = tmp_path / "silent_agent.py"
    agent_file.write_text(SILENT_AGENT)
    argv = ["eval", "--agent", f"python:{agent_file}:make_agent", *_common(git_repo, 1), "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    bad = json.loads((tmp_path / "s" / "results.json").read_text())["summary"]
    assert bad["tool_calls"] == 0
    assert bad["task_success"]["value"] == 0.0, bad
