"""``native``: the dataset's own records, byte for byte.

Not training data: nothing is masked in it (the records' events say which turns the user
rejected), though ``--rejected-turns drop-dialogue`` still leaves dialogues out.
"""

from __future__ import annotations

from schemas import DialogueRecord, Environment
from simulator.export._formats import ExportFormat, export_format, jsonl_writer

__all__: list[str] = []


def _line(_record: DialogueRecord, _environment: Environment, line: bytes) -> bytes:
    return line


export_format(ExportFormat("native", _line, jsonl_writer, uses_environment=False, training_data=False))
