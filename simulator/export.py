"""Export a dataset for training or for other tools.

Formats:

- ``openai``: chat fine-tuning JSONL, one line per dialogue:
  ``{"messages": [...], "tools": [...]}``. The system message is the environment's
  description and policy; every assistant tool call is followed by its tool message, in
  order; arguments are JSON strings; ``tools`` are the environment's tools as functions.
- ``native``: the dataset's own records, byte for byte (everything kept).

Both write the dialogues sorted by scenario id, whatever order the run finished them in.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import DialogueRecord, Environment, Message
from schemas.errors import ConfigError
from simulator.run import ENVIRONMENTS_DIR, iter_records
from toolservers import load_environment

__all__ = ["FORMATS", "ExportResult", "export", "openai_tools", "to_openai"]

FORMATS = ("openai", "native")


@dataclass(frozen=True)
class ExportResult:
    """How many dialogues were written, and why the others were not."""

    written: int
    #: Left out by ``only_successful``.
    unsuccessful: int = 0
    #: Left out because their messages cannot form a valid chat (a tool call with no answer).
    invalid: int = 0
    invalid_ids: tuple[str, ...] = ()


class _InvalidDialogue(Exception):
    pass


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


def to_openai(record: DialogueRecord, environment: Environment) -> dict[str, Any]:
    """One dialogue as a chat fine-tuning example. Raises ValueError when its messages are not a valid chat."""
    messages: list[dict[str, Any]] = []
    system = "\n\n".join(part for part in (environment.description, environment.policy) if part)
    if system:
        messages.append({"role": "system", "content": system})
    try:
        messages += [_openai_message(m) for m in record.messages]
        _check_pairing(messages)
    except _InvalidDialogue as exc:
        raise ValueError(f"dialogue {record.id}: {exc}") from None
    return {"messages": messages, "tools": openai_tools(environment)}


def export(dataset_dir: Path, fmt: str, out_path: Path, *, only_successful: bool = False) -> ExportResult:
    """Write the dataset in ``dataset_dir`` to ``out_path`` in format ``fmt``.

    Raises ConfigError for an unknown format, a directory that holds no dataset, or an
    environment file that is missing or broken. Dialogues whose messages do not form a
    valid chat are left out of an ``openai`` export and counted in the result.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    environments: dict[str, Environment] = {}
    lines: list[tuple[str, bytes]] = []
    unsuccessful = 0
    invalid: list[str] = []
    for raw, record in iter_records(dataset_dir):
        if only_successful and not record.success:
            unsuccessful += 1
            continue
        if fmt == "native":
            lines.append((record.scenario.id, raw))
            continue
        env_id = record.scenario.environment_id
        if env_id not in environments:
            environments[env_id] = load_environment(dataset_dir / ENVIRONMENTS_DIR / f"{env_id}.json")
        try:
            example = to_openai(record, environments[env_id])
        except ValueError:
            invalid.append(record.id)
            continue
        lines.append((record.scenario.id, json.dumps(example, ensure_ascii=False).encode() + b"\n"))

    lines.sort(key=lambda item: item[0])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with tmp.open("wb") as f:
        f.writelines(line for _, line in lines)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(out_path)
    return ExportResult(written=len(lines), unsuccessful=unsuccessful, invalid=len(invalid), invalid_ids=tuple(invalid))
