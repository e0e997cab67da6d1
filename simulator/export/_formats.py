"""The export formats by name: each format is one module that registers itself here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import DialogueRecord, Environment
from simulator.registry import Registry

__all__ = ["FORMATS", "ExportFormat", "export_format", "jsonl_writer"]


@dataclass(frozen=True, slots=True)
class ExportFormat:
    """How one format turns a record into a payload and writes the payloads to a file.

    ``convert(record, environment, line)`` gets the record, its environment and the
    record's line in the dataset file; it raises InvalidDialogue for a dialogue the format
    cannot hold. ``write(path, payloads)`` writes the file (``path`` is a temporary file
    renamed into place afterwards).
    """

    name: str
    convert: Callable[[DialogueRecord, Environment, bytes], Any]
    write: Callable[[Path, list[Any]], None]
    #: The pip extra the format needs and the module it brings, if any: ``export`` checks the
    #: module is importable first and says which extra to install when it is not.
    extra: str | None = None
    module: str | None = None
    #: Whether ``convert`` reads the environment (loaded from the dataset's ``environments/``).
    uses_environment: bool = True
    #: ``convert`` with the agent messages the user rejected marked not to be trained on:
    #: ``masked(record, environment, line, rejected)``, ``rejected`` being their indexes into
    #: ``record.messages`` (see :mod:`simulator.export.rejected`). None for a format that has
    #: no per-message field for it: ``--rejected-turns mask`` is refused for it.
    masked: Callable[[DialogueRecord, Environment, bytes, frozenset[int]], Any] | None = None
    #: How the payloads of ``masked`` are written, when ``write`` cannot (a column more); None: ``write``.
    write_masked: Callable[[Path, list[Any]], None] | None = None
    #: False for a format that is the records themselves (``native``): their events already say
    #: which turns were rejected, so nothing is masked (``drop-dialogue`` still leaves dialogues out).
    training_data: bool = True


FORMATS: Registry[ExportFormat] = Registry(
    "export format",
    builtin={
        "openai": "simulator.export.openai",
        "anthropic": "simulator.export.anthropic",
        "sharegpt": "simulator.export.sharegpt",
        "parquet": "simulator.export.parquet",
        "native": "simulator.export.native",
    },
    group="dialogsim.export_formats",
)


def export_format(fmt: ExportFormat) -> ExportFormat:
    """Register ``fmt`` under its name (called by each format module)."""
    return FORMATS.register(fmt.name, fmt, owner=fmt.convert.__module__)


def jsonl_writer(path: Path, payloads: list[Any]) -> None:
    """Write payloads that are already JSON lines (bytes ending in a newline)."""
    with path.open("wb") as f:
        f.writelines(payloads)
