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
- ``native``: the dataset's own records, byte for byte.

Dialogues are written sorted by scenario id, whatever order the run finished them in.
A dialogue whose messages cannot form a valid conversation (a tool call with no result)
is left out of every format but ``native`` and counted. Filters, near-duplicate removal
and splits are described in :mod:`simulator.export.selection`.

The agent messages the simulated user then rejected (a correction or a "that is missing";
see :mod:`simulator.export.rejected`) are by default masked: ``"weight": 0`` in ``openai``
and ``sharegpt``, a ``weight`` of 0 in ``parquet``'s messages; ``anthropic`` has no field
for it, so by default its dialogues are left out (``drop-dialogue``, counted); ``keep``
writes the messages as targets like any other.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas import DatabaseSpec, Environment, Message
from schemas.errors import ConfigError
from simulator.export._chat import InvalidDialogue
from simulator.export._formats import FORMATS, ExportFormat
from simulator.export.rejected import RejectedTurns, rejected_messages
from simulator.export.selection import (
    NearDuplicates,
    Selection,
    assign_splits,
    rejection,
    scenario_group,
    split_path,
)
from simulator.run.dataset import ENVIRONMENTS_DIR, iter_records, read_manifest
from simulator.run.merge import run_fingerprint
from toolservers import load_environment

__all__ = [
    "FORMATS",
    "ExportFormat",
    "ExportResult",
    "RejectedTurns",
    "check_out_file",
    "export",
    "write_file_atomic",
]

#: What formats that do not use the environment (``native``) are given instead of one.
_NONE = Environment(id="", domain="", database=DatabaseSpec(ddl=""), tools=[])


@dataclass(frozen=True)
class ExportResult:
    """How many dialogues were written, where, and why the others were not."""

    written: int
    #: Left out by ``only_successful``.
    unsuccessful: int = 0
    #: Left out because their messages cannot form a valid chat (a tool call with no answer).
    invalid: int = 0
    invalid_ids: tuple[str, ...] = ()
    #: Left out by the other filters, by reason (``other domain``, ``other mode``, ``too few turns``,
    #: ``rejected turns`` with ``RejectedTurns.DROP_DIALOGUE``, ...).
    filtered: dict[str, int] = field(default_factory=dict)
    #: Left out as near duplicates of a dialogue that was kept: ``(dropped id, kept id)``.
    duplicates: tuple[tuple[str, str], ...] = ()
    #: Every file written and how many dialogues it holds, by split name ("" without splits).
    files: dict[str, tuple[Path, int]] = field(default_factory=dict)
    #: Whether the agent messages the user rejected were marked not to be trained on (``RejectedTurns.MASK``
    #: with a format of training data), and how many were, in how many of the dialogues written.
    masking: bool = False
    masked_messages: int = 0
    masked_dialogues: int = 0


@dataclass
class _Item:
    sort_key: tuple[str, str, int, str]
    group: str
    record_id: str
    messages: list[Message]
    payload: Any  # bytes for JSONL formats, a row dict for parquet
    masked: int  # agent messages marked not to be trained on


class _Environments:
    def __init__(self) -> None:
        self._cache: dict[tuple[Path, str], Environment] = {}

    def get(self, dataset_dir: Path, env_id: str) -> Environment:
        key = (dataset_dir, env_id)
        if key not in self._cache:
            self._cache[key] = load_environment(dataset_dir / ENVIRONMENTS_DIR / f"{env_id}.json")
        return self._cache[key]


#: What the files of a dataset or an evaluation end with: records, manifests, summaries, logs.
_DATASET_SUFFIXES = frozenset({".json", ".jsonl", ".log"})


def check_out_file(out_path: Path, *, force: bool = True, flag: str = "--out", inputs: Sequence[Path] = ()) -> None:
    """Refuse, before any work, an output path that cannot be written as a file.

    Raises ConfigError when ``out_path`` is a directory, sits under something that is not
    a directory, or (unless ``force``) already exists; and, even with ``force``, when it is
    an existing JSON, JSON Lines or log file inside one of the ``inputs`` directories (the
    records, manifest or summary of a dataset the command reads).
    """
    if out_path.is_dir():
        raise ConfigError(f"{flag} {out_path}: is a directory; expected a file name (e.g. {out_path / 'out.jsonl'})")
    for parent in out_path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {out_path}: {parent} is not a directory")
            break
    if not out_path.exists():
        return
    inside = next((d for d in inputs if out_path.resolve().is_relative_to(d.resolve())), None)
    if inside is not None and out_path.suffix in _DATASET_SUFFIXES:
        raise ConfigError(f"{flag} {out_path}: is a file of {inside}, which this command reads; write elsewhere")
    if not force:
        raise ConfigError(f"{flag} {out_path}: already exists; pass --force to overwrite it")


def _run_key(directory: Path) -> str | None:
    """The fingerprint of the run a dataset belongs to (without its shard), as text; None without a manifest."""
    manifest = read_manifest(directory)
    return None if manifest is None else json.dumps(run_fingerprint(manifest), sort_keys=True)


def write_file_atomic(out_path: Path, write: Callable[[Path], None]) -> None:
    """Write ``out_path`` whole or not at all: ``write`` fills a ``.tmp`` file beside it, renamed into place.

    On any failure the ``.tmp`` file is removed; an OSError becomes a one-line ConfigError.
    """
    tmp = out_path.with_name(out_path.name + ".tmp")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(out_path)
    except BaseException as exc:
        if tmp.is_file():
            tmp.unlink()
        if isinstance(exc, OSError):
            raise ConfigError(f"--out {out_path}: cannot be written: {exc.strerror or exc}") from exc
        raise


def _write_atomic(out_path: Path, write: Callable[[Path, list[Any]], None], payloads: list[Any]) -> None:
    write_file_atomic(out_path, lambda tmp: write(tmp, payloads))


def export(
    dataset_dir: Path | Sequence[Path],
    fmt: str,
    out_path: Path,
    *,
    only_successful: bool = False,
    selection: Selection | None = None,
    splits: Mapping[str, float] | None = None,
    seed: int = 0,
    force: bool = False,
    rejected_turns: RejectedTurns | None = None,
) -> ExportResult:
    """Write the dataset(s) in ``dataset_dir`` to ``out_path`` in format ``fmt``.

    ``selection`` chooses the dialogues (``only_successful`` is a shortcut for its field of
    the same name). With ``splits`` (name to fraction, see
    :func:`simulator.export.selection.parse_splits`) one file per split is written next to
    ``out_path`` (``train.jsonl`` gives ``train-train.jsonl``, ``train-validation.jsonl``),
    whole scenarios to a split, deterministically for ``seed``. Each file is written
    whole or not at all; an existing one is overwritten only with ``force``.
    ``rejected_turns`` says what becomes of the agent messages the user rejected (see
    :class:`simulator.export.rejected.RejectedTurns`); None: masked where the format can mark
    a message, else (``anthropic``) their dialogues left out.

    Raises ConfigError, before any work, for an unknown format, an output path that is a
    directory, (without ``force``) an existing file, or a file of a dataset it reads, and
    for ``RejectedTurns.MASK`` with a format that cannot mark a message (``anthropic``); and
    for a directory that holds no dataset, a record of an unknown version, or an environment
    file that is missing or broken.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format: expected one of {', '.join(FORMATS.names())}, got {fmt!r}")
    inputs = [dataset_dir] if isinstance(dataset_dir, Path) else list(dataset_dir)
    check_out_file(out_path, force=force or bool(splits), inputs=inputs)  # with splits, it names where they go
    for name in splits or ():
        check_out_file(split_path(out_path, name), force=force, inputs=inputs)
    writer = FORMATS.get(fmt)
    if writer.module is not None and importlib.util.find_spec(writer.module) is None:
        raise ConfigError(
            f"--format {fmt} needs {writer.module}, which is not installed: pip install 'dialogsim[{writer.extra}]'"
        )
    if rejected_turns is None:
        can_mark = writer.masked is not None or not writer.training_data
        rejected_turns = RejectedTurns.MASK if can_mark else RejectedTurns.DROP_DIALOGUE
    masking = rejected_turns is RejectedTurns.MASK and writer.training_data
    if masking and writer.masked is None:
        error = ConfigError(
            f"--rejected-turns mask: the {fmt} format has no field to mark a message not to be trained on; "
            "pass --rejected-turns drop-dialogue to leave out the dialogues where the user rejected an agent "
            "turn, or --rejected-turns keep to write those messages as targets like any other"
        )
        error.field = "--rejected-turns"
        raise error
    convert = writer.masked if masking and writer.masked is not None else None
    selection = selection or Selection()
    if only_successful and not selection.only_successful:
        selection = dataclasses.replace(selection, only_successful=True)
    dirs = [dataset_dir] if isinstance(dataset_dir, Path) else list(dataset_dir)
    environments = _Environments()
    items: list[_Item] = []
    reasons: Counter[str] = Counter()
    invalid: list[str] = []
    domains: set[str] = set()
    # A dialogue of the same run twice (a shard and the merge of the shards, one directory
    # given twice): the same run fingerprint and record id. Only its first copy is kept.
    taken: set[tuple[str, str]] = set()
    for index, directory in enumerate(dirs):
        if directory.resolve() in {d.resolve() for d in dirs[:index]}:
            raise ConfigError(f"{directory}: given twice; each dataset is read once")
        run = _run_key(directory)
        for raw, record in iter_records(directory):
            domains.add(record.scenario.domain)
            if run is not None and (run, record.id) in taken:
                reasons["the same dialogue of the same run, in an earlier input"] += 1
                continue
            if run is not None:
                taken.add((run, record.id))
            reason = rejection(record, selection)
            if reason is not None:
                reasons[reason] += 1
                continue
            try:
                wanted = convert is not None or rejected_turns is RejectedTurns.DROP_DIALOGUE
                rejected = rejected_messages(record) if wanted else frozenset()
                if rejected and rejected_turns is RejectedTurns.DROP_DIALOGUE:
                    reasons["rejected turns"] += 1
                    continue
                env = environments.get(directory, record.scenario.environment_id) if writer.uses_environment else _NONE
                payload = (
                    convert(record, env, raw, rejected) if convert is not None else writer.convert(record, env, raw)
                )
            except InvalidDialogue:
                invalid.append(record.id)
                continue
            key = (record.scenario.id, record.scenario.mode.value, index, record.id)
            messages = record.messages if selection.dedupe is not None else []  # kept only to compare
            items.append(_Item(key, scenario_group(record.scenario.id), record.id, messages, payload, len(rejected)))

    unknown = [d for d in selection.domains if d not in domains]
    if unknown:  # a typo would write an empty file
        error = ConfigError(
            f"--domain {', '.join(unknown)}: no dialogue of that domain in {', '.join(map(str, dirs))} "
            f"(its domains: {', '.join(sorted(domains)) or 'none'})"
        )
        error.field = "--domain"
        raise error
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
    write = writer.write_masked if convert is not None and writer.write_masked is not None else writer.write
    files: dict[str, tuple[Path, int]] = {}
    for name, chosen in by_file.items():
        path = split_path(out_path, name) if name else out_path
        _write_atomic(path, write, [item.payload for item in chosen])
        files[name] = (path, len(chosen))

    unsuccessful = reasons.pop("unsuccessful", 0)
    return ExportResult(
        written=len(items),
        unsuccessful=unsuccessful,
        invalid=len(invalid),
        invalid_ids=tuple(invalid),
        filtered=dict(sorted(reasons.items())),
        duplicates=tuple(duplicates),
        files=files,
        masking=masking,
        masked_messages=sum(item.masked for item in items),
        masked_dialogues=sum(1 for item in items if item.masked),
    )
