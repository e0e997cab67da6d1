"""Export a dataset for training or for other tools.

Formats, one example per dialogue:

- ``openai``: Chat Completions fine-tuning JSONL, ``{"messages": [...], "tools": [...]}``.
  The system message is the environment's description and policy; every assistant tool
  call is followed by its tool message, in order; arguments are JSON strings; ``tools``
  are the environment's tools as functions.
- ``anthropic``: Messages API JSONL, ``{"system": ..., "messages": [...], "tools": [...]}``.
  Roles alternate user / assistant: an assistant turn holds its text and ``tool_use``
  blocks, and the next user turn starts with the matching ``tool_result`` blocks, in order
  (``is_error`` set on failed calls); tools carry their ``input_schema``.
- ``sharegpt``: ShareGPT with function calling, as LLaMA-Factory reads it:
  ``{"conversations": [{"from": "human"|"gpt"|"function_call"|"observation", "value": ...}],
  "system": ..., "tools": "<JSON string>"}``. Human / observation and gpt / function_call
  alternate, a ``function_call`` value is ``{"name", "arguments"}`` (a list of them for
  parallel calls) and the next ``observation`` holds the results (a JSON list for several).
  As in LLaMA-Factory's own converter, text the agent says alongside tool calls is not
  kept, and the conversation ends with the last ``gpt`` message (the user's closing words
  have no answer to learn from).
- ``parquet``: one row per dialogue with nested columns (``messages`` is a list of
  structs whose ``tool_calls`` is a list of structs; arguments and tool parameters are
  JSON strings), plus the scenario, mode, domain, success and counts: readable by
  ``pyarrow.parquet``, DuckDB and ``datasets.load_dataset("parquet", ...)``.
- ``native``: the dataset's own records, byte for byte (re-encoded only where
  ``--failed-tool-calls drop`` changed their messages).

Dialogues are written sorted by scenario id, whatever order the run finished them in.
A dialogue whose messages cannot form a valid conversation (a tool call with no result)
is left out of every format but ``native`` and counted. Filters, near-duplicate removal
and splits are described in :mod:`simulator.export.selection`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from schemas import DialogueRecord, Environment, Message
from schemas.errors import ConfigError
from simulator.export.selection import (
    FailedToolCalls,
    NearDuplicates,
    Selection,
    assign_splits,
    drop_failed_tool_calls,
    rejection,
    scenario_group,
    split_path,
)
from simulator.run.dataset import ENVIRONMENTS_DIR, iter_records
from toolservers import load_environment

__all__ = [
    "FORMATS",
    "ExportResult",
    "anthropic_tools",
    "export",
    "openai_tools",
    "parquet_schema",
    "to_anthropic",
    "to_openai",
    "to_parquet_row",
    "to_sharegpt",
]

FORMATS = ("openai", "anthropic", "sharegpt", "parquet", "native")


@dataclass(frozen=True)
class ExportResult:
    """How many dialogues were written, where, and why the others were not."""

    written: int
    #: Left out by ``only_successful``.
    unsuccessful: int = 0
    #: Left out because their messages cannot form a valid chat (a tool call with no answer).
    invalid: int = 0
    invalid_ids: tuple[str, ...] = ()
    #: Left out by the other filters, by reason (``other domain``, ``other mode``, ``too few turns``, ...).
    filtered: dict[str, int] = field(default_factory=dict)
    #: Left out as near duplicates of a dialogue that was kept: ``(dropped id, kept id)``.
    duplicates: tuple[tuple[str, str], ...] = ()
    #: Failed tool calls removed (with their results) by ``failed_tool_calls=drop``.
    dropped_tool_calls: int = 0
    #: Every file written and how many dialogues it holds, by split name ("" without splits).
    files: dict[str, tuple[Path, int]] = field(default_factory=dict)


class _InvalidDialogue(Exception):
    pass


def _system_text(environment: Environment) -> str:
    return "\n\n".join(part for part in (environment.description, environment.policy) if part)


# --------------------------------------------------------------------------- openai


def openai_tools(environment: Environment) -> list[dict[str, Any]]:
    """The environment's tools in the Chat Completions ``tools`` format."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
        }
        for t in environment.tools
    ]


def _openai_message(message: Message) -> dict[str, Any]:
    if message.role in ("user", "system"):
        return {"role": message.role, "content": message.content}
    if message.role == "assistant":
        out: dict[str, Any] = {"role": "assistant"}
        if message.content or not message.tool_calls:
            out["content"] = message.content
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": json.dumps(call.arguments, ensure_ascii=False),
                    },
                }
                for call in message.tool_calls
            ]
        return out
    if message.role == "tool":
        if message.tool_call_id is None:
            raise _InvalidDialogue("a tool message without a tool_call_id")
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    raise _InvalidDialogue(f"a message with role {message.role!r}")


def _check_pairing(messages: list[dict[str, Any]]) -> None:
    """Every tool call is answered right after its message, in order; no tool message is unasked."""
    expected: list[str] = []
    for i, message in enumerate(messages):
        if message["role"] == "tool":
            if not expected or message["tool_call_id"] != expected[0]:
                raise _InvalidDialogue(f"message {i}: tool result {message['tool_call_id']!r} answers no call")
            expected.pop(0)
            continue
        if expected:
            raise _InvalidDialogue(f"message {i}: tool call {expected[0]!r} has no result before it")
        expected = [call["id"] for call in message.get("tool_calls", [])]
    if expected:
        raise _InvalidDialogue(f"tool call {expected[0]!r} has no result")


def _chat(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The messages in the Chat Completions shape, checked for call/result pairing."""
    out = [_openai_message(m) for m in messages]
    _check_pairing(out)
    return out


def to_openai(record: DialogueRecord, environment: Environment) -> dict[str, Any]:
    """One dialogue as a chat fine-tuning example. Raises ValueError when its messages are not a valid chat."""
    messages: list[dict[str, Any]] = []
    system = _system_text(environment)
    if system:
        messages.append({"role": "system", "content": system})
    try:
        messages += _chat(record.messages)
    except _InvalidDialogue as exc:
        raise ValueError(f"dialogue {record.id}: {exc}") from None
    return {"messages": messages, "tools": openai_tools(environment)}


# --------------------------------------------------------------------------- anthropic


def anthropic_tools(environment: Environment) -> list[dict[str, Any]]:
    """The environment's tools in the Messages API ``tools`` format."""
    return [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in environment.tools]


def _anthropic_messages(chat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message in chat:
        role = message["role"]
        if role == "user":
            if message["content"]:
                add("user", [{"type": "text", "text": message["content"]}])
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            if message.get("content"):
                blocks.append({"type": "text", "text": message["content"]})
            blocks += [
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["function"]["name"],
                    "input": json.loads(call["function"]["arguments"]),
                }
                for call in message.get("tool_calls", [])
            ]
            if blocks:
                add("assistant", blocks)
        else:
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message["tool_call_id"],
                "content": message["content"],
            }
            if message.get("is_error"):
                block["is_error"] = True
            add("user", [block])
    if turns and turns[0]["role"] != "user":
        raise _InvalidDialogue("the conversation does not start with a user message")
    for turn in turns:
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]
    return turns


def to_anthropic(record: DialogueRecord, environment: Environment) -> dict[str, Any]:
    """One dialogue as Messages API request fields. Raises ValueError when it is not a valid conversation."""
    try:
        chat = _chat(record.messages)
        errors = {m.tool_call_id for m in record.messages if m.role == "tool" and m.is_error}
        for message in chat:
            if message["role"] == "tool" and message["tool_call_id"] in errors:
                message["is_error"] = True
        messages = _anthropic_messages(chat)
    except _InvalidDialogue as exc:
        raise ValueError(f"dialogue {record.id}: {exc}") from None
    out: dict[str, Any] = {}
    system = _system_text(environment)
    if system:
        out["system"] = system
    out["messages"] = messages
    out["tools"] = anthropic_tools(environment)
    return out


# --------------------------------------------------------------------------- sharegpt

_ODD = ("human", "observation")
_EVEN = ("gpt", "function_call")


def _sharegpt_conversation(chat: list[dict[str, Any]]) -> list[dict[str, str]]:
    turns: list[dict[str, str]] = []
    i = 0
    while i < len(chat):
        message = chat[i]
        role = message["role"]
        if role == "user":
            if turns and turns[-1]["from"] == "human":
                turns[-1]["value"] += "\n\n" + message["content"]
            else:
                turns.append({"from": "human", "value": message["content"]})
            i += 1
        elif role == "assistant" and message.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for c in message["tool_calls"]
            ]
            if turns and turns[-1]["from"] == "gpt":
                turns.pop()  # the text said just before the calls: no place for it between them
            turns.append(
                {
                    "from": "function_call",
                    "value": json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False),
                }
            )
            results = chat[i + 1 : i + 1 + len(calls)]
            value = results[0]["content"] if len(results) == 1 else json.dumps([r["content"] for r in results])
            turns.append({"from": "observation", "value": value})
            i += 1 + len(calls)
        elif role == "assistant":
            if turns and turns[-1]["from"] == "gpt":
                turns[-1]["value"] += "\n\n" + message["content"]
            else:
                turns.append({"from": "gpt", "value": message["content"]})
            i += 1
        else:
            raise _InvalidDialogue(f"message {i}: a tool result that answers no call")
    while turns and turns[-1]["from"] != "gpt":
        turns.pop()
    if not turns:
        raise _InvalidDialogue("no agent reply to learn from")
    for index, turn in enumerate(turns):
        if turn["from"] not in (_ODD, _EVEN)[index % 2]:
            raise _InvalidDialogue(f"turn {index} ({turn['from']}) breaks the human/gpt alternation")
    return turns


def to_sharegpt(record: DialogueRecord, environment: Environment) -> dict[str, Any]:
    """One dialogue in ShareGPT function-calling form. Raises ValueError when it cannot be one."""
    try:
        conversations = _sharegpt_conversation(_chat(record.messages))
    except _InvalidDialogue as exc:
        raise ValueError(f"dialogue {record.id}: {exc}") from None
    tools = [{"name": t.name, "description": t.description, "parameters": t.input_schema} for t in environment.tools]
    return {
        "conversations": conversations,
        "system": _system_text(environment),
        "tools": json.dumps(tools, ensure_ascii=False),
    }


# --------------------------------------------------------------------------- parquet


def parquet_schema() -> Any:
    """The ``pyarrow.Schema`` of a ``parquet`` export (pyarrow is imported only when this is called)."""
    import pyarrow as pa

    call = pa.struct([("id", pa.string()), ("name", pa.string()), ("arguments", pa.string())])
    message = pa.struct(
        [
            ("role", pa.string()),
            ("content", pa.string()),
            ("tool_calls", pa.list_(call)),
            ("tool_call_id", pa.string()),
            ("name", pa.string()),
            ("is_error", pa.bool_()),
        ]
    )
    tool = pa.struct([("name", pa.string()), ("description", pa.string()), ("parameters", pa.string())])
    outcome = pa.struct(
        [
            ("task_id", pa.string()),
            ("success", pa.bool_()),
            ("failed_assertions", pa.list_(pa.string())),
            ("missing_values", pa.list_(pa.string())),
        ]
    )
    feedback = pa.struct([("kind", pa.string()), ("count", pa.int64())])
    return pa.schema(
        [
            ("id", pa.string()),
            ("scenario_id", pa.string()),
            ("scenario_group", pa.string()),
            ("environment_id", pa.string()),
            ("domain", pa.string()),
            ("mode", pa.string()),
            ("success", pa.bool_()),
            ("termination", pa.string()),
            ("turns", pa.int64()),
            ("steps", pa.int64()),
            ("tasks", pa.int64()),
            ("tool_calls_count", pa.int64()),
            ("tool_errors", pa.int64()),
            ("system", pa.string()),
            ("messages", pa.list_(message)),
            ("tools", pa.list_(tool)),
            ("outcomes", pa.list_(outcome)),
            ("feedback", pa.list_(feedback)),
            ("input_tokens", pa.int64()),
            ("output_tokens", pa.int64()),
            ("cost_usd", pa.float64()),
            ("record_version", pa.int64()),
        ]
    )


def to_parquet_row(record: DialogueRecord, environment: Environment) -> dict[str, Any]:
    """One dialogue as a row of :func:`parquet_schema`. Raises ValueError when it is not a valid chat."""
    try:
        _chat(record.messages)
    except _InvalidDialogue as exc:
        raise ValueError(f"dialogue {record.id}: {exc}") from None
    m = record.metrics
    return {
        "id": record.id,
        "scenario_id": record.scenario.id,
        "scenario_group": scenario_group(record.scenario.id),
        "environment_id": record.scenario.environment_id,
        "domain": record.scenario.domain,
        "mode": record.scenario.mode.value,
        "success": record.success,
        "termination": record.termination.value,
        "turns": m.turns,
        "steps": m.steps,
        "tasks": m.tasks,
        "tool_calls_count": m.tool_calls,
        "tool_errors": m.tool_errors,
        "system": _system_text(environment),
        "messages": [
            {
                "role": msg.role,
                "content": msg.content,
                "tool_calls": [
                    {"id": c.id, "name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}
                    for c in msg.tool_calls
                ],
                "tool_call_id": msg.tool_call_id,
                "name": msg.name,
                "is_error": msg.is_error,
            }
            for msg in record.messages
        ],
        "tools": [
            {"name": t.name, "description": t.description, "parameters": json.dumps(t.input_schema, ensure_ascii=False)}
            for t in environment.tools
        ],
        "outcomes": [
            {
                "task_id": o.task_id,
                "success": o.success,
                "failed_assertions": o.failed_assertions,
                "missing_values": o.missing_values,
            }
            for o in record.outcomes
        ],
        "feedback": [{"kind": k, "count": v} for k, v in m.feedback.items()],
        "input_tokens": record.usage.input_tokens,
        "output_tokens": record.usage.output_tokens,
        "cost_usd": record.usage.cost_usd,
        "record_version": record.version,
    }


# --------------------------------------------------------------------------- export

_JSON_FORMATS: dict[str, Callable[[DialogueRecord, Environment], dict[str, Any]]] = {
    "openai": to_openai,
    "anthropic": to_anthropic,
    "sharegpt": to_sharegpt,
}


@dataclass
class _Item:
    sort_key: tuple[str, str, int, str]
    group: str
    record_id: str
    messages: list[Message]
    payload: Any  # bytes for JSONL formats, a row dict for parquet


class _Environments:
    def __init__(self) -> None:
        self._cache: dict[tuple[Path, str], Environment] = {}

    def get(self, dataset_dir: Path, env_id: str) -> Environment:
        key = (dataset_dir, env_id)
        if key not in self._cache:
            self._cache[key] = load_environment(dataset_dir / ENVIRONMENTS_DIR / f"{env_id}.json")
        return self._cache[key]


def _write_atomic(out_path: Path, write: Callable[[Path], None]) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    write(tmp)
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    tmp.replace(out_path)


def _write_file(fmt: str, out_path: Path, payloads: list[Any]) -> None:
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(payloads, schema=parquet_schema())
        _write_atomic(out_path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
        return

    def write_lines(tmp: Path) -> None:
        with tmp.open("wb") as f:
            f.writelines(payloads)

    _write_atomic(out_path, write_lines)


def export(
    dataset_dir: Path | Sequence[Path],
    fmt: str,
    out_path: Path,
    *,
    only_successful: bool = False,
    selection: Selection | None = None,
    splits: Mapping[str, float] | None = None,
    seed: int = 0,
) -> ExportResult:
    """Write the dataset(s) in ``dataset_dir`` to ``out_path`` in format ``fmt``.

    ``selection`` chooses the dialogues (``only_successful`` is a shortcut for its field of
    the same name). With ``splits`` (name to fraction, see
    :func:`simulator.export.selection.parse_splits`) one file per split is written next to
    ``out_path`` (``train.jsonl`` gives ``train-train.jsonl``, ``train-validation.jsonl``),
    whole scenarios to a split, deterministically for ``seed``.

    Raises ConfigError for an unknown format, a directory that holds no dataset, or an
    environment file that is missing or broken.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    selection = selection or Selection()
    if only_successful and not selection.only_successful:
        selection = dataclasses.replace(selection, only_successful=True)
    dirs = [dataset_dir] if isinstance(dataset_dir, Path) else list(dataset_dir)
    environments = _Environments()
    items: list[_Item] = []
    reasons: Counter[str] = Counter()
    invalid: list[str] = []
    dropped_calls = 0
    for index, directory in enumerate(dirs):
        for raw, record in iter_records(directory):
            reason = rejection(record, selection)
            if reason is not None:
                reasons[reason] += 1
                continue
            if selection.failed_tool_calls is FailedToolCalls.DROP:
                messages, dropped = drop_failed_tool_calls(record.messages)
                if dropped:
                    dropped_calls += dropped
                    record = msgspec.structs.replace(record, messages=messages)
                    raw = msgspec.json.encode(record) + b"\n"
            payload: Any
            if fmt == "native":
                payload = raw
            else:
                env = environments.get(directory, record.scenario.environment_id)
                try:
                    if fmt == "parquet":
                        payload = to_parquet_row(record, env)
                    else:
                        payload = json.dumps(_JSON_FORMATS[fmt](record, env), ensure_ascii=False).encode() + b"\n"
                except ValueError:
                    invalid.append(record.id)
                    continue
            key = (record.scenario.id, record.scenario.mode.value, index, record.id)
            messages = record.messages if selection.dedupe is not None else []  # kept only to compare
            items.append(_Item(key, scenario_group(record.scenario.id), record.id, messages, payload))

    items.sort(key=lambda item: item.sort_key)
    duplicates: list[tuple[str, str]] = []
    if selection.dedupe is not None:
        finder = NearDuplicates(selection.dedupe)
        kept: list[_Item] = []
        for item in items:
            original = finder.offer(item.record_id, item.messages)
            if original is None:
                kept.append(item)
            else:
                duplicates.append((item.record_id, original))
        items = kept

    by_file: dict[str, list[_Item]] = {}
    if splits:
        sizes = Counter(item.group for item in items)
        assignment = assign_splits(sizes, splits, seed)
        by_file = {name: [] for name in splits}
        for item in items:
            by_file[assignment[item.group]].append(item)
    else:
        by_file[""] = items
    files: dict[str, tuple[Path, int]] = {}
    for name, chosen in by_file.items():
        path = split_path(out_path, name) if name else out_path
        _write_file(fmt, path, [item.payload for item in chosen])
        files[name] = (path, len(chosen))

    unsuccessful = reasons.pop("unsuccessful", 0)
    return ExportResult(
        written=len(items),
        unsuccessful=unsuccessful,
        invalid=len(invalid),
        invalid_ids=tuple(invalid),
        filtered=dict(sorted(reasons.items())),
        duplicates=tuple(duplicates),
        dropped_tool_calls=dropped_calls,
        files=files,
    )
