"""Export: OpenAI chat fine-tuning JSONL and native records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas import DialogueRecord, Message, MessageToolCall
from schemas.errors import ConfigError
from simulator.cli import main
from simulator.export import export, to_openai
from simulator.run import DATASET_FILE
from tests.conftest import shop_environment
from tests.simulator.test_run import generate

N = 6  # fake_dialogue marks every third dialogue (index % 3 == 0) unsuccessful


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    out = tmp_path / "data"
    generate(out, dialogues=N)
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_chat(example: dict[str, Any]) -> None:
    """The structure the Chat Completions fine-tuning format asks for."""
    assert set(example) == {"messages", "tools"}
    messages = example["messages"]
    assert messages[0]["role"] == "system" and isinstance(messages[0]["content"], str)
    i = 1
    while i < len(messages):
        m = messages[i]
        assert m["role"] in ("user", "assistant"), m
        if m["role"] == "user":
            assert set(m) == {"role", "content"} and isinstance(m["content"], str)
            i += 1
            continue
        calls = m.get("tool_calls", [])
        assert set(m) <= {"role", "content", "tool_calls"}
        assert "content" in m or calls
        for c in calls:
            assert set(c) == {"id", "type", "function"} and c["type"] == "function"
            assert set(c["function"]) == {"name", "arguments"}
            assert isinstance(c["function"]["arguments"], str)
            assert isinstance(json.loads(c["function"]["arguments"]), dict)
        answers = messages[i + 1 : i + 1 + len(calls)]
        assert [a["role"] for a in answers] == ["tool"] * len(calls)
        assert [a["tool_call_id"] for a in answers] == [c["id"] for c in calls]
        for a in answers:
            assert set(a) == {"role", "tool_call_id", "content"} and isinstance(a["content"], str)
        i += 1 + len(calls)
    for tool in example["tools"]:
        assert tool["type"] == "function"
        assert set(tool["function"]) == {"name", "description", "parameters"}
        assert tool["function"]["parameters"]["type"] == "object"


def test_openai_export_pairs_calls_with_results_in_order(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "train.jsonl"
    result = export(dataset, "openai", out)
    assert (result.written, result.unsuccessful, result.invalid) == (N, 0, 0)
    examples = read_jsonl(out)
    assert len(examples) == N
    for example in examples:
        check_chat(example)

    first = examples[0]
    env = shop_environment()
    assert first["messages"][0]["content"] == "A tiny shop\n\nBe helpful."
    assert [t["function"]["name"] for t in first["tools"]] == [t.name for t in env.tools]
    assert first["tools"][0]["function"]["parameters"] == env.tools[0].input_schema
    roles = [m["role"] for m in first["messages"]]
    assert roles == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    call = first["messages"][2]["tool_calls"][0]
    assert call["function"] == {"name": "get_customer", "arguments": '{"customer_id": "x"}'}
    assert first["messages"][3]["content"] == 'customer_id: expected integer, got "x"'
    # Sorted by scenario id, whatever order the run finished in.
    users = [e["messages"][1]["content"] for e in examples]
    assert users == [f"Who is customer {i}?" for i in range(N)]


def test_only_successful(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "ok.jsonl"
    result = export(dataset, "openai", out, only_successful=True)
    assert (result.written, result.unsuccessful) == (4, 2)
    assert len(read_jsonl(out)) == 4


def test_native_export_copies_records_unchanged(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    result = export(dataset, "native", out)
    assert result.written == N
    exported = out.read_bytes().splitlines(keepends=True)
    assert sorted(exported) == sorted((dataset / DATASET_FILE).read_bytes().splitlines(keepends=True))
    ids = [json.loads(line)["scenario"]["id"] for line in exported]
    assert ids == sorted(ids)


def test_export_skips_a_trailing_partial_line(dataset: Path, tmp_path: Path) -> None:
    with (dataset / DATASET_FILE).open("ab") as f:
        f.write(b'{"id": "half')
    assert export(dataset, "native", tmp_path / "x.jsonl").written == N


def test_unknown_format_and_missing_dataset_are_config_errors(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="format"):
        export(dataset, "csv", tmp_path / "x")
    with pytest.raises(ConfigError, match="not a dataset"):
        export(tmp_path / "nowhere", "openai", tmp_path / "x")
    (dataset / "environments" / "shop.json").unlink()
    with pytest.raises(ConfigError, match="shop.json"):
        export(dataset, "openai", tmp_path / "x")


def test_a_dialogue_whose_call_has_no_result_is_left_out(dataset: Path, tmp_path: Path) -> None:
    lines = (dataset / DATASET_FILE).read_bytes().splitlines(keepends=True)
    broken = msgspec.json.decode(lines[0], type=DialogueRecord)
    broken.messages = [
        Message(role="user", content="hi"),
        Message(role="assistant", tool_calls=[MessageToolCall(id="a", name="get_customer", arguments={})]),
        Message(role="assistant", content="done"),
    ]
    with pytest.raises(ValueError, match="'a' has no result"):
        to_openai(broken, shop_environment())
    lines[0] = msgspec.json.encode(broken) + b"\n"
    (dataset / DATASET_FILE).write_bytes(b"".join(lines))
    result = export(dataset, "openai", tmp_path / "x.jsonl")
    assert (result.written, result.invalid, result.invalid_ids) == (N - 1, 1, (broken.id,))


def test_cli_export(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "train.jsonl"
    code = main(["export", str(dataset), "--format", "openai", "--out", str(out), "--only-successful"])
    assert code == 0
    assert len(read_jsonl(out)) == 4
    assert "wrote 4 dialogues" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nowhere"), "--format", "native", "--out", str(out)]) == 2


def test_shapes_match_the_openai_sdk_types(dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("openai")
    pydantic = pytest.importorskip("pydantic")
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

    out = tmp_path / "train.jsonl"
    export(dataset, "openai", out)
    messages = pydantic.TypeAdapter(list[ChatCompletionMessageParam])
    tools = pydantic.TypeAdapter(list[ChatCompletionToolParam])
    for example in read_jsonl(out):
        messages.validate_python(example["messages"], strict=True)
        tools.validate_python(example["tools"], strict=True)
