"""``dialogsim generate --server`` over real PyPI servers, offline (no model, no key)."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from schemas import DialogueRecord, Environment, TaskStarted, TerminationReason, ToolCall, ToolResult
from simulator.cli import main
from simulator.external.tree import snapshot
from tests.simulator.external.conftest import git_command, time_command


def _records(out: Path) -> list[DialogueRecord]:
    lines = (out / "dialogues.jsonl").read_bytes().splitlines()
    return [msgspec.json.decode(line, type=DialogueRecord) for line in lines]


def _environment(out: Path) -> Environment:
    (path,) = (out / "environments").glob("*.json")
    return msgspec.json.decode(path.read_bytes(), type=Environment)


@pytest.mark.slow
def test_time_server_dialogues_are_recorded_with_their_tool_calls(tmp_path: Path) -> None:
    out = tmp_path / "time"
    argv = ["generate", "--server", time_command(), "--dialogues", "2", "--seed", "3", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0

    env = _environment(out)
    assert env.kind == "external" and env.server is not None
    assert {t["name"] for t in env.server.tools} == {"get_current_time", "convert_time"}
    assert env.server.tools[0]["inputSchema"]["type"] == "object"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fingerprint"]["external"]["command"] == time_command()

    records = _records(out)
    assert len(records) == 2
    for record in records:
        assert record.termination is TerminationReason.USER_DONE, record.error
        calls = [e for e in record.events if isinstance(e, ToolCall)]
        results = {e.call_id: e for e in record.events if isinstance(e, ToolResult)}
        assert calls and all(c.call_id in results for c in calls)
        assert {c.tool for c in calls} <= {"get_current_time", "convert_time"}
        # The result is what the server answered: its structured content, as JSON text too.
        first = results[calls[0].call_id]
        assert not first.is_error and isinstance(first.structured, dict) and "timezone" in json.dumps(first.structured)
        assert json.loads(first.text) == first.structured
        assert record.metrics.tool_calls == len(calls)
        # Every task was checked by a replay; the current time varies between runs and is reported, not compared.
        assert all(o.success for o in record.outcomes), record.outcomes
        assert [m.role for m in record.messages if m.role == "tool"]
    unchecked = [u for r in records for o in r.outcomes for u in o.unchecked]
    planned_tools = {s.tool for r in records for t in r.scenario.tasks for s in t.chain}
    if "get_current_time" in planned_tools:
        assert any("vary between runs" in u for u in unchecked)

    # A training export offers the tools the server listed, with their input schemas.
    exported = tmp_path / "time.openai.jsonl"
    assert main(["export", "--format", "openai", "--out", str(exported), str(out)]) == 0
    example = json.loads(exported.read_text().splitlines()[0])
    offered = {t["function"]["name"]: t["function"]["parameters"] for t in example["tools"]}
    assert offered == {t["name"]: t["inputSchema"] for t in env.server.tools}

    # Resuming adds what is missing and repeats nothing.
    assert main([*argv[:4], "3", *argv[5:]]) == 0
    assert sorted(r.id for r in _records(out)) == sorted({r.id for r in _records(out)})
    assert len(_records(out)) == 3


@pytest.mark.slow
def test_git_server_over_a_per_dialogue_copy_of_a_repository(tmp_path: Path, git_repo: Path) -> None:
    before = snapshot(git_repo)
    out = tmp_path / "git"
    argv = ["generate", "--server", git_command(), "--state-dir", str(git_repo), "--keep-state", "--dialogues", "2",
            "--seed", "5", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0

    env = _environment(out)
    assert env.server is not None and env.server.state_kind == "dir"
    # What agents are told of the environment names the display path, not the placeholder.
    assert "/workspace/repo" in env.description and "{state}" not in env.description
    assert "git_log" in {t["name"] for t in env.server.tools}
    records = _records(out)
    assert len(records) == 2
    said: list[str] = []
    for record in records:
        assert record.termination is TerminationReason.USER_DONE, record.error
        calls = [e for e in record.events if isinstance(e, ToolCall)]
        assert calls and all(c.tool.startswith("git_") for c in calls)
        # Agents, users and records see the display path of the copy: never its temporary path,
        # and never the command line's {state} placeholder, in any message.
        assert any("repo_path" in c.arguments for c in calls)
        assert all(c.arguments["repo_path"] == "/workspace/repo" for c in calls if "repo_path" in c.arguments)
        text = msgspec.json.encode(record).decode()
        assert str(tmp_path) not in text and "{state}" not in text
        assert all("{state}" not in m.content for m in record.messages if isinstance(m.content, str))
        said += [m.content for m in record.messages if m.role == "user" and isinstance(m.content, str)]
        assert all(o.success for o in record.outcomes), [o for o in record.outcomes if not o.success]
        assert any(isinstance(e, TaskStarted) for e in record.events)
        # Each dialogue had its own copy, kept with --keep-state; the template is untouched.
        kept = out / "state" / record.id / "state"
        assert (kept / ".git").is_dir() and (kept / "README.md").read_text() == "# Demo\n\nA tiny project.\n"
    assert snapshot(git_repo) == before
    # The user tells the agent where the repository is, as a person would.
    assert any("/workspace/repo" in line for line in said), said
    log_text = " ".join(e.text for r in records for e in r.events if isinstance(e, ToolResult))
    assert "Add the app" in log_text or "main" in log_text
