"""``dialogsim eval --server`` scores an agent over a real third-party server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from schemas import ToolCall, ToolResult
from simulator.cli import main
from simulator.run.dataset import iter_records
from tests.simulator.external.conftest import git_command

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

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
def test_the_user_answers_a_request_for_what_its_request_means(tmp_path: Path, git_repo: Path) -> None:
    """The offline agent asks, in words, for the repository path and the branch type at once
    ("before I go ahead, could you share ..."): the user, which reads only the words, gives
    both, the path being what its request means and no fact of its own."""
    argv = ["eval", "--agent", "offline", "--server", git_command(), "--state-dir", str(git_repo), "--limit", "2",
            "--trials", "2", "--seed", "1", "--no-progress", "--out", str(tmp_path / "e")]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((tmp_path / "e" / "results.json").read_text())["summary"]
    assert summary["task_success"]["value"] == 1.0, summary


@pytest.mark.slow
def test_eval_over_git_fails_a_silent_agent(tmp_path: Path, git_repo: Path) -> None:
    agent_file = tmp_path / "silent_agent.py"
    agent_file.write_text(SILENT_AGENT)
    argv = ["eval", "--agent", f"python:{agent_file}:make_agent", *_common(git_repo, 1), "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    bad = json.loads((tmp_path / "s" / "results.json").read_text())["summary"]
    assert bad["tool_calls"] == 0
    assert bad["task_success"]["value"] == 0.0, bad


@pytest.mark.slow
def test_eval_over_git_scores_an_outside_cmd_agent(tmp_path: Path, git_repo: Path) -> None:
    # The example agent reaches the dialogue's tools over HTTP with its own MCP client: the
    # recording proxy in front of the server is mounted on the evaluation host for it.
    agent = f"cmd:{sys.executable} {EXAMPLES / 'jsonl_agent.py'}"
    out = tmp_path / "cmd"
    assert main(["eval", "--agent", agent, *_common(git_repo, 1), "--out", str(out)]) == 0
    summary = json.loads((out / "results.json").read_text())["summary"]
    (record,) = list(iter_records(out / "records"))
    calls = [e for e in record[1].events if isinstance(e, ToolCall)]
    results = {e.call_id: e for e in record[1].events if isinstance(e, ToolResult)}
    # Every call the outside process made went through the proxy and was recorded with its answer.
    assert calls and all(c.tool.startswith("git_") and c.call_id in results for c in calls)
    assert summary["tool_calls"] == len(calls)
    # It was scored by the replay like any agent: a task it did not finish says what was missing.
    outcomes = record[1].outcomes
    assert len(outcomes) == len(record[1].scenario.tasks)
    assert all(o.success or o.missing_values or o.failed_assertions for o in outcomes)
    assert summary["task_success"]["value"] == sum(o.success for o in outcomes) / len(outcomes)
