"""Export: every format (OpenAI, Anthropic, ShareGPT, Parquet, native) checked against the libraries that read it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from schemas import DialogueRecord, Message, MessageToolCall
from schemas.errors import ConfigError
from simulator.cli import main
from simulator.domains import load_domain
from simulator.export import FORMATS, RejectedTurns, export
from simulator.export.openai import to_openai
from simulator.export.parquet import parquet_schema
from simulator.run.dataset import DATASET_FILE, iter_records
from tests.conftest import shop_environment
from tests.simulator import _datasets
from tests.simulator.run.test_run import generate

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
        assert set(m) <= {"role", "content", "tool_calls", "weight"}
        assert m.get("weight", 0) == 0, "only a message not to be trained on has a weight"
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


# --------------------------------------------------------------------------- every format, on generated datasets

JSON_FORMATS = ("openai", "anthropic", "sharegpt")


def sorted_records(*dirs: Path) -> list[DialogueRecord]:
    records = [(r.scenario.id, r.scenario.mode.value, i, r) for i, d in enumerate(dirs) for _, r in iter_records(d)]
    return [r for *_, r in sorted(records, key=lambda item: item[:3])]


Exchange = tuple[str, dict[str, Any], str, bool]  # tool, arguments, result text, is_error


def record_exchanges(record: DialogueRecord) -> list[Exchange]:
    """Every tool call of the record's messages with the result that answers it, in order."""
    results = {m.tool_call_id: m for m in record.messages if m.role == "tool"}
    return [
        (c.name, c.arguments, results[c.id].content, results[c.id].is_error)
        for m in record.messages
        for c in m.tool_calls
    ]


def openai_exchanges(example: dict[str, Any]) -> list[Exchange]:
    """Calls and results of an OpenAI example; each call's result must come right after its message, in order."""
    out: list[Exchange] = []
    messages = example["messages"]
    for i, m in enumerate(messages):
        calls = m.get("tool_calls", [])
        answers = messages[i + 1 : i + 1 + len(calls)]
        assert [a.get("tool_call_id") for a in answers] == [c["id"] for c in calls]
        out += [
            (c["function"]["name"], json.loads(c["function"]["arguments"]), a["content"], False)
            for c, a in zip(calls, answers, strict=True)
        ]
    return out


def anthropic_exchanges(example: dict[str, Any]) -> list[Exchange]:
    """Calls and results of an Anthropic example; the next user turn starts with the matching results."""
    out: list[Exchange] = []
    messages = example["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2) + ["user"] * (
        len(messages) % 2
    ), "roles alternate, starting with the user"
    for i, m in enumerate(messages):
        if isinstance(m["content"], str):
            continue
        uses = [b for b in m["content"] if b["type"] == "tool_use"]
        if m["role"] == "user":
            kinds = [b["type"] for b in m["content"]]
            assert kinds == sorted(kinds, key=lambda k: k != "tool_result"), "tool results come first"
            continue
        assert not uses or m["content"][-len(uses) :] == uses, "text before tool_use blocks"
        if not uses:
            continue
        results = [b for b in messages[i + 1]["content"] if b["type"] == "tool_result"]
        assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]
        out += [
            (u["name"], u["input"], r["content"], r.get("is_error", False)) for u, r in zip(uses, results, strict=True)
        ]
    return out


def sharegpt_exchanges(example: dict[str, Any]) -> list[Exchange]:
    """Calls and results of a ShareGPT example; each function_call is followed by its observation."""
    out: list[Exchange] = []
    turns = example["conversations"]
    for i, turn in enumerate(turns):
        if turn["from"] != "function_call":
            continue
        value = json.loads(turn["value"])
        calls = value if isinstance(value, list) else [value]
        observation = turns[i + 1]
        assert observation["from"] == "observation"
        results = json.loads(observation["value"]) if len(calls) > 1 else [observation["value"]]
        out += [(c["name"], c["arguments"], r, False) for c, r in zip(calls, results, strict=True)]
    return out


EXCHANGES = {"openai": openai_exchanges, "anthropic": anthropic_exchanges, "sharegpt": sharegpt_exchanges}


def strip_errors(exchanges: list[Exchange], keep_flag: bool) -> list[Exchange]:
    return [(t, a, r, e if keep_flag else False) for t, a, r, e in exchanges]


@pytest.mark.parametrize("fmt", JSON_FORMATS)
@pytest.mark.parametrize("which", ["user", "task", "errors"])
def test_every_tool_call_stays_paired_with_its_result_in_order(
    fmt: str, which: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = _datasets.dataset(tmp_path_factory, which)
    out = tmp_path / f"x.{fmt}.jsonl"
    result = export(data, fmt, out, rejected_turns=RejectedTurns.KEEP if fmt == "anthropic" else RejectedTurns.MASK)
    records = sorted_records(data)
    assert (result.written, result.invalid) == (len(records), 0)
    examples = read_jsonl(out)
    assert len(examples) == len(records)
    for record, example in zip(records, examples, strict=True):
        expected = record_exchanges(record)
        assert expected, "every generated dialogue calls tools"
        got = EXCHANGES[fmt](example)
        assert got == strip_errors(expected, keep_flag=fmt == "anthropic")


def test_anthropic_example_shape(user_data: Path, errors_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    export(errors_data, "anthropic", out, rejected_turns=RejectedTurns.KEEP)
    first = read_jsonl(out)[0]
    assert set(first) == {"system", "messages", "tools"}
    assert first["system"] == "A tiny shop\n\nBe helpful."
    assert first["tools"][0] == {
        "name": "get_customer",
        "description": shop_environment().tools[0].description,
        "input_schema": shop_environment().tools[0].input_schema,
    }
    assert first["messages"][0] == {"role": "user", "content": "Who is customer 0?"}
    assert first["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": "shop-1-0000-c1",
        "name": "get_customer",
        "input": {"customer_id": "x"},
    }
    assert first["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "shop-1-0000-c1",
        "content": 'customer_id: expected integer, got "x"',
        "is_error": True,
    }
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"] * 5 + ["user"]
    assert first["messages"][5] == {"role": "assistant", "content": "That is Ada."}


def test_sharegpt_follows_the_llama_factory_rules(user_data: Path, task_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    export([user_data, task_data], "sharegpt", out)
    examples = read_jsonl(out)
    environments = {e.id: e for e in (load_domain(name) for name in ("clinic", "retail", "travel"))}
    for record, example in zip(sorted_records(user_data, task_data), examples, strict=True):
        assert set(example) == {"conversations", "system", "tools"}
        env = environments[record.scenario.environment_id]
        assert example["system"] == f"{env.description}\n\n{env.policy}"
        tools = json.loads(example["tools"])
        assert [t["name"] for t in tools] == [t.name for t in env.tools]
        assert all(set(t) == {"name", "description", "parameters"} for t in tools)
        turns = example["conversations"]
        assert len(turns) % 2 == 0 and turns[-1]["from"] == "gpt"
        for i, turn in enumerate(turns):
            assert set(turn) - {"weight"} == {"from", "value"} and isinstance(turn["value"], str)
            assert turn["from"] in (("human", "observation"), ("gpt", "function_call"))[i % 2]
            if "weight" in turn:  # a rejected agent turn, for trainers that read it (LLaMA-Factory does not)
                assert turn["weight"] == 0 and turn["from"] in ("gpt", "function_call")
        humans = [t["value"] for t in turns if t["from"] == "human"]
        users = [m.content for m in record.messages if m.role == "user"]
        assert humans == users[: len(humans)] and len(users) - len(humans) <= 1


def test_sdk_typed_params_accept_openai_and_anthropic_exports(
    user_data: Path, errors_data: Path, tmp_path: Path
) -> None:
    import pydantic
    from anthropic.types import MessageParam, ToolParam
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

    adapters: dict[str, tuple[Any, Any]] = {
        "openai": (
            pydantic.TypeAdapter(list[ChatCompletionMessageParam]),
            pydantic.TypeAdapter(list[ChatCompletionToolParam]),
        ),
        "anthropic": (pydantic.TypeAdapter(list[MessageParam]), pydantic.TypeAdapter(list[ToolParam])),
    }
    for fmt, (messages, tools) in adapters.items():
        for data in (user_data, errors_data):
            out = tmp_path / f"{fmt}-{data.parent.name}.jsonl"
            export(data, fmt, out, rejected_turns=RejectedTurns.KEEP if fmt == "anthropic" else RejectedTurns.MASK)
            for example in read_jsonl(out):
                messages.validate_python(example["messages"], strict=True)
                tools.validate_python(example["tools"], strict=True)


def test_official_sdks_send_exported_conversations_unchanged(user_data: Path, tmp_path: Path) -> None:
    """A real request with each SDK to a loopback server: the body it sends is the exported example."""
    from anthropic import AsyncAnthropic
    from openai import AsyncOpenAI

    from simulator.providers.loopback import Reply, Script, anthropic_message, openai_completion, serve_loopback

    export(user_data, "openai", tmp_path / "o.jsonl")
    export(user_data, "anthropic", tmp_path / "a.jsonl", rejected_turns=RejectedTurns.KEEP)
    chat = max(read_jsonl(tmp_path / "o.jsonl"), key=lambda e: len(e["messages"]))
    messages = max(read_jsonl(tmp_path / "a.jsonl"), key=lambda e: len(e["messages"]))

    async def main() -> None:
        script = Script(Reply(body=openai_completion("ok")), Reply(body=anthropic_message("ok")))
        async with serve_loopback(script) as server:
            async with AsyncOpenAI(api_key="test", base_url=server.openai_base_url, max_retries=0) as openai_client:
                await openai_client.chat.completions.create(model="any", messages=chat["messages"], tools=chat["tools"])
            async with AsyncAnthropic(api_key="test", base_url=server.base_url, max_retries=0) as anthropic_client:
                await anthropic_client.messages.create(
                    model="any",
                    max_tokens=64,
                    system=messages["system"],
                    messages=messages["messages"],
                    tools=messages["tools"],
                )
        sent_chat, sent_messages = (r.json() for r in server.requests)
        assert server.requests[0].path == "/v1/chat/completions"
        assert (sent_chat["messages"], sent_chat["tools"]) == (chat["messages"], chat["tools"])
        assert server.requests[1].path == "/v1/messages"
        assert (sent_messages["system"], sent_messages["messages"], sent_messages["tools"]) == (
            messages["system"],
            messages["messages"],
            messages["tools"],
        )

    anyio.run(main)


def test_parquet_reads_back_with_pyarrow_and_duckdb(user_data: Path, task_data: Path, tmp_path: Path) -> None:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "both.parquet"
    result = export([user_data, task_data], "parquet", out)
    records = sorted_records(user_data, task_data)
    assert result.written == len(records) == 2 * _datasets.DIALOGUES

    table = pq.read_table(out)
    assert table.schema.equals(parquet_schema(weights=True))  # masked, the default
    message_type = table.schema.field("messages").type
    assert pa.types.is_list(message_type) and pa.types.is_struct(message_type.value_type)
    assert pa.types.is_list(message_type.value_type.field("tool_calls").type)
    rows = table.to_pylist()
    for record, row in zip(records, rows, strict=True):
        assert (row["id"], row["mode"], row["success"]) == (record.id, record.scenario.mode.value, record.success)
        assert (row["turns"], row["tasks"]) == (record.metrics.turns, record.metrics.tasks)
        assert [m["role"] for m in row["messages"]] == [m.role for m in record.messages]
        assert [m["content"] for m in row["messages"]] == [m.content for m in record.messages]
        calls = [(c["name"], json.loads(c["arguments"])) for m in row["messages"] for c in m["tool_calls"]]
        assert calls == [(t, a) for t, a, _, _ in record_exchanges(record)]
        assert [o["task_id"] for o in row["outcomes"]] == [o.task_id for o in record.outcomes]

    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM '{out}'").fetchone() == (len(records),)
    everything = con.execute(f"SELECT * FROM '{out}'").fetchall()
    assert len(everything) == len(records)
    per_mode = con.execute(
        f"""SELECT mode, count(*), sum(len(list_filter(messages, lambda m: m.role = 'tool')))
            FROM '{out}' GROUP BY mode ORDER BY mode"""
    ).fetchall()
    tools_by_mode = {
        mode: sum(1 for r in records if r.scenario.mode.value == mode for m in r.messages if m.role == "tool")
        for mode in ("task-oriented", "user-oriented")
    }
    assert per_mode == [(mode, _datasets.DIALOGUES, n) for mode, n in tools_by_mode.items()]
    names = con.execute(
        f"SELECT DISTINCT unnest(m.tool_calls).name AS tool FROM (SELECT unnest(messages) AS m FROM '{out}') "
        "ORDER BY tool"
    ).fetchall()
    assert [n for (n,) in names] == sorted({t for r in records for t, *_ in record_exchanges(r)})


def test_native_export_of_several_datasets_keeps_both_modes(user_data: Path, task_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    assert export([user_data, task_data], "native", out).written == 2 * _datasets.DIALOGUES
    lines = out.read_bytes().splitlines(keepends=True)
    decoded = [msgspec.json.decode(line, type=DialogueRecord) for line in lines]
    assert [(r.scenario.id, r.scenario.mode.value) for r in decoded] == [
        (r.scenario.id, r.scenario.mode.value) for r in sorted_records(user_data, task_data)
    ]
    originals = set((user_data / DATASET_FILE).read_bytes().splitlines(keepends=True))
    originals |= set((task_data / DATASET_FILE).read_bytes().splitlines(keepends=True))
    assert set(lines) == originals


@pytest.mark.parametrize("fmt", ["anthropic", "sharegpt", "parquet"])
def test_new_formats_leave_out_a_dialogue_whose_call_has_no_result(dataset: Path, tmp_path: Path, fmt: str) -> None:
    lines = (dataset / DATASET_FILE).read_bytes().splitlines(keepends=True)
    broken = msgspec.json.decode(lines[0], type=DialogueRecord)
    broken.messages = broken.messages[:2]  # the user's question and a call, with no result
    lines[0] = msgspec.json.encode(broken) + b"\n"
    (dataset / DATASET_FILE).write_bytes(b"".join(lines))
    keep = RejectedTurns.KEEP if fmt == "anthropic" else RejectedTurns.MASK
    result = export(dataset, fmt, tmp_path / "x", rejected_turns=keep)
    assert (result.written, result.invalid_ids) == (N - 1, (broken.id,))


def test_cli_export_every_format(user_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in FORMATS:
        out = tmp_path / f"x.{fmt}"
        keep = ["--rejected-turns", "keep"] if fmt == "anthropic" else []  # it cannot mask
        assert main(["export", str(user_data), "--format", fmt, "--out", str(out), *keep]) == 0
        assert f"wrote {_datasets.DIALOGUES} dialogues to {out}" in capsys.readouterr().err
        assert out.stat().st_size > 0


def test_parquet_without_pyarrow_says_which_extra_to_install(
    user_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    out = tmp_path / "out.parquet"
    with pytest.raises(ConfigError, match=r"dialogsim\[parquet\]"):
        export(user_data, "parquet", out)
    assert not out.exists() and not list(tmp_path.iterdir())
