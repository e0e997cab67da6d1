"""A hanging model endpoint fails a dialogue in bounded time, with its reason; --retry-failed runs it again.

The endpoint is the loopback provider server (the official OpenAI SDK talks to it over
HTTP) running in a thread of its own, so the real command line can run in this one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.from_thread
import pytest

from schemas import ErrorEvent, TerminationReason
from schemas.errors import TurnTimeout
from simulator.cli import main as cli_main
from simulator.providers.loopback import Received, Reply, openai_completion, serve_loopback
from simulator.run.config import record_failed
from simulator.run.dataset import DATASET_FILE, iter_records
from simulator.run.retry import infrastructure_failure, provider_error_types


@dataclass
class Endpoint:
    url: str
    #: "hang": never answer; "answer": a plain text reply to every request.
    mode: str = "hang"


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint(url="")

    async def handler(request: Received) -> Reply:
        if state.mode == "hang":
            await anyio.Event().wait()  # an endpoint that accepts the request and never answers
        return Reply(body=openai_completion("Sorry, I cannot help with that."))

    with anyio.from_thread.start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(serve_loopback(handler)) as server:
            state.url = server.openai_base_url
            yield state


def _generate(endpoint: Endpoint, out: Path, *flags: str) -> int:
    argv = ["generate", "--dialogues", "2", "--domain", "retail", "--seed", "1", "--base-url", endpoint.url]
    return cli_main([*argv, "--out", str(out), "--no-progress", *flags])


def _lines(out: Path) -> int:
    return len((out / DATASET_FILE).read_bytes().splitlines())


def _errors(record: object) -> list[ErrorEvent]:
    return [e for e in getattr(record, "events", []) if isinstance(e, ErrorEvent)]


def test_a_hanging_agent_endpoint_fails_each_dialogue_at_the_turn_timeout(
    endpoint: Endpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d"
    assert _generate(endpoint, out, "--agent-model", "openai:fake-1", "--turn-timeout", "1") == 0
    records = [r for _, r in iter_records(out)]
    assert len(records) == 2
    for record in records:
        assert record.termination is TerminationReason.AGENT_FAILURE
        assert record.error == "the agent did not answer within 1 s"
        assert [e.error_type for e in _errors(record)] == [TurnTimeout.__name__]
    assert "2 new dialogues (2 failed)" in capsys.readouterr().out

    # A resume leaves failed dialogues failed ...
    assert _generate(endpoint, out, "--agent-model", "openai:fake-1", "--turn-timeout", "1") == 0
    assert "0 new dialogues (0 failed), 2 already present" in capsys.readouterr().out
    assert _lines(out) == 2

    # ... --retry-failed runs them again once the endpoint answers, and appends their new records.
    endpoint.mode = "answer"
    assert _generate(endpoint, out, "--agent-model", "openai:fake-1", "--retry-failed") == 0
    printed = capsys.readouterr()
    assert "2 failed ones to run again" in printed.err
    assert "2 new dialogues (0 failed, 2 of them run again), 0 already present" in printed.out
    assert _lines(out) == 4
    latest = [r for _, r in iter_records(out)]
    assert len(latest) == 2 and not any(record_failed(r) for r in latest)
    # Every reader takes the last record of each dialogue: stats, export, the summary.
    assert cli_main(["stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["samples"] == 2 and "agent_failure" not in stats["terminations"]
    assert cli_main(["export", str(out), "--format", "native", "--out", str(tmp_path / "n.jsonl")]) == 0
    assert len((tmp_path / "n.jsonl").read_bytes().splitlines()) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["samples"] == 2 and summary["retried"] == 2
    # Nothing is left to retry.
    assert _generate(endpoint, out, "--agent-model", "openai:fake-1", "--retry-failed") == 0
    assert "0 new dialogues" in capsys.readouterr().out


def test_a_hanging_user_endpoint_fails_the_dialogue_at_the_turn_timeout(endpoint: Endpoint, tmp_path: Path) -> None:
    out = tmp_path / "u"
    assert _generate(endpoint, out, "--user-model", "openai:fake-1", "--turn-timeout", "1") == 0
    for _, record in iter_records(out):
        assert record.termination is TerminationReason.USER_FAILURE
        assert record.error == "the user did not answer within 1 s"
        assert [e.error_type for e in _errors(record)] == [TurnTimeout.__name__]


def test_generate_has_a_dialogue_timeout(endpoint: Endpoint, tmp_path: Path) -> None:
    out = tmp_path / "t"
    flags = ("--agent-model", "openai:fake-1", "--turn-timeout", "60", "--dialogue-timeout", "1")
    assert _generate(endpoint, out, *flags) == 0
    for _, record in iter_records(out):
        assert record.termination is TerminationReason.TIMEOUT
        assert record.error == "no end after 1 s"


# --------------------------------------------------------------------------- the retry rule


@pytest.mark.parametrize(
    "termination,brains,errors,retried",
    [
        # the infrastructure's side
        ("tool_failure", {"agent": "offline-rules"}, [("tool_failure", "ClosedResourceError")], True),
        ("tool_failure", {"agent": "cmd:./agent"}, [], True),
        ("timeout", {"agent": "llm:openai:gpt-4.1"}, [], True),
        ("agent_failure", {"agent": "llm:openai:gpt-4.1"}, [("agent_failure", "ProviderTimeout")], True),
        ("agent_failure", {"agent": "llm:anthropic:claude"}, [("agent_failure", "RateLimited")], True),
        ("agent_failure", {"agent": "llm:openai:gpt-4.1"}, [("agent_failure", "TurnTimeout")], True),
        ("user_failure", {"user": "llm:openai:gpt-4.1"}, [("user_failure", "StructuredOutputError")], True),
        ("user_failure", {"user": "offline-template"}, [("user_failure", "TurnTimeout")], True),
        ("agent_failure", {"agent": "openai:gpt-4.1"}, [("agent_failure", "ProviderUnavailable")], True),
        ("user_done", {"agent": "cmd:./agent"}, [("judge", "ProviderTimeout")], True),  # no verdicts
        ("user_gave_up", {"agent": "offline-rules"}, [("judge", "TurnTimeout")], True),
        # an outside agent's own result: never retried, whatever it raised
        ("agent_failure", {"agent": "cmd:./agent"}, [("agent_failure", "TurnTimeout")], False),
        ("agent_failure", {"agent": "python:a.py:make"}, [("agent_failure", "ProviderTimeout")], False),
        ("agent_failure", {"agent": "python:a.py:make"}, [("agent_failure", "AgentExited")], False),
        ("timeout", {"agent": "cmd:./agent"}, [], False),
        # a bug or a setting is the same next time
        ("tool_failure", {"agent": "offline-rules"}, [("tool_failure", "InitialStateError")], False),
        ("agent_failure", {"agent": "offline-rules"}, [("agent_failure", "RuntimeError")], False),
        ("agent_failure", {"agent": "llm:openai:gpt-4.1"}, [("agent_failure", "_BrainStartError")], False),
        ("user_done", {"agent": "offline-rules"}, [("judge", "StructuredOutputError"), ("agent", "MessageCut")], True),
        ("user_done", {"agent": "offline-rules"}, [("agent", "MessageCut")], False),
        # ran their course
        ("user_done", {"agent": "llm:openai:gpt-4.1"}, [], False),
        ("max_turns", {}, [("agent_failure", "TurnTimeout")], False),
        ("too_many_tool_errors", {}, [], False),
        ("user_gave_up", {}, [], False),
    ],
)
def test_which_failures_are_retried(
    termination: str, brains: dict[str, str], errors: list[tuple[str, str]], retried: bool
) -> None:
    assert infrastructure_failure(termination, brains, errors) is retried


def test_the_provider_error_types_are_the_provider_error_tree() -> None:
    assert {"ProviderError", "ProviderTimeout", "RateLimited", "ProviderAuthError"} <= provider_error_types()
    assert "ConfigError" not in provider_error_types()
