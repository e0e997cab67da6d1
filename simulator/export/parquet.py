"""``parquet``: one row per dialogue with nested columns, for pyarrow, DuckDB and ``datasets``.

Masked (``--rejected-turns mask``), every message has a ``weight``: 0 on an assistant message
the user rejected, 1 on the other assistant messages, null on user and tool messages.
Unmasked, the schema has no ``weight`` field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas import DialogueRecord, Environment
from simulator.export._chat import agent_tools, checked_chat, system_text
from simulator.export._formats import ExportFormat, export_format
from simulator.export.selection import scenario_group

__all__ = ["parquet_schema", "to_parquet_row"]


def parquet_schema(*, weights: bool = False) -> Any:
    """The ``pyarrow.Schema`` of a ``parquet`` export, with a per-message ``weight`` when
    ``weights`` (a masked export). pyarrow is imported only when this is called."""
    import pyarrow as pa

    call = pa.struct([("id", pa.string()), ("name", pa.string()), ("arguments", pa.string())])
    fields = [
        ("role", pa.string()),
        ("content", pa.string()),
        ("tool_calls", pa.list_(call)),
        ("tool_call_id", pa.string()),
        ("name", pa.string()),
        ("is_error", pa.bool_()),
    ]
    if weights:
        fields.append(("weight", pa.int64()))
    message = pa.struct(fields)
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


def to_parquet_row(
    record: DialogueRecord, environment: Environment, rejected: frozenset[int] | None = None
) -> dict[str, Any]:
    """One dialogue as a row of :func:`parquet_schema`; with ``rejected`` (indexes into
    ``record.messages``), a row of ``parquet_schema(weights=True)``. Raises InvalidDialogue
    when it is not a valid chat."""
    checked_chat(record)
    m = record.metrics
    messages: list[dict[str, Any]] = [
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
    ]
    if rejected is not None:
        for index, (msg, row) in enumerate(zip(record.messages, messages, strict=True)):
            row["weight"] = (0 if index in rejected else 1) if msg.role == "assistant" else None
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
        "system": system_text(environment),
        "messages": messages,
        "tools": [
            {"name": t.name, "description": t.description, "parameters": json.dumps(t.input_schema, ensure_ascii=False)}
            for t in agent_tools(environment)
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


def _write(path: Path, rows: list[Any], *, weights: bool = False) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows, schema=parquet_schema(weights=weights)), path, compression="zstd")


export_format(
    ExportFormat(
        "parquet",
        lambda record, environment, _line: to_parquet_row(record, environment),
        _write,
        extra="parquet",
        module="pyarrow",
        masked=lambda record, environment, _line, rejected: to_parquet_row(record, environment, rejected),
        write_masked=lambda path, rows: _write(path, rows, weights=True),
    )
)
