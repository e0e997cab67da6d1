"""Merging the shards of a run (``generate --shard I/N``) into one dataset directory.

Every input must be a dataset directory (``manifest.json`` and ``dialogues.jsonl``) of
the same run: equal manifest fingerprints once the shard is left out, and equal
environments wherever two inputs have one of the same id. Records are deduplicated by
scenario id, the key a resume uses: the last record of an id wins, inputs taken in the
order given and each in file order (so overlapping shards, or a dataset with a retried
dialogue, keep the newest record). A trailing partial line (a shard killed mid-write)
is left out, as a resume would cut it.

Everything is checked before anything is written; the output is built in a hidden
directory beside ``out`` and renamed into place at the end, so a failure leaves no
partial dataset. The result is an ordinary dataset whose fingerprint is the whole run's:
``stats``, ``export`` and ``report`` read it, and ``generate`` with the run's settings
(without ``--shard``) resumes it, generating only what no shard did.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from schemas import RECORD_VERSION, DialogueRecord, Environment
from schemas.errors import ConfigError
from simulator.run.config import SHARD_KEY
from simulator.run.dataset import (
    DATASET_FILE,
    ENVIRONMENTS_DIR,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    SUMMARY_FILE,
    fsync_dir,
    read_manifest,
    write_atomic,
)
from simulator.summary import Summary, summarize
from toolservers.loader import load_environment, save_environment

__all__ = ["MergeError", "MergeSummary", "MergedInput", "merge_datasets", "run_fingerprint"]


class MergeError(ConfigError):
    """Directories that cannot be merged: not datasets, damaged, of different runs, or a bad ``--out``.

    ``field`` names what differs where it applies: the fingerprint key (``seed``), the
    environment file, or ``--out``.
    """

    code = "merge"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class MergedInput(msgspec.Struct, kw_only=True):
    """One input directory: its shard (None for a whole run) and the records read from it."""

    dir: str
    shard: str | None
    records: int


class MergeSummary(msgspec.Struct, kw_only=True):
    """What a merge wrote: ``records`` unique records; ``duplicates`` were replaced by a later one."""

    out_dir: str
    inputs: list[MergedInput]
    records: int
    duplicates: int
    dataset: Summary


class _Scenario(msgspec.Struct):
    id: str
    environment_id: str


class _Head(msgspec.Struct):
    """The part of a record the first pass needs."""

    scenario: _Scenario
    version: int


def run_fingerprint(manifest: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint of the whole run a dataset belongs to: its own, without the shard."""
    return {k: v for k, v in manifest["fingerprint"].items() if k != SHARD_KEY}


@dataclass
class _Input:
    path: Path
    manifest: dict[str, Any]
    records: int = 0


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of every complete line; a trailing partial line is left out."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if line.endswith(b"\n"):
                yield number, line


def _read_input(path: Path) -> _Input:
    if not path.is_dir():
        raise MergeError(f"{path}: not a dataset directory")
    manifest = read_manifest(path)
    if manifest is None or not (path / DATASET_FILE).is_file():
        missing = MANIFEST_FILE if manifest is None else DATASET_FILE
        raise MergeError(f"{path}: not a dataset directory (no {missing} in it)")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise MergeError(f"{path / MANIFEST_FILE}: manifest format {manifest.get('format')!r} is not supported")
    if manifest.get("record_version") != RECORD_VERSION:
        raise MergeError(
            f"{path}: holds records of version {manifest.get('record_version')!r}; "
            f"this dialogsim merges version {RECORD_VERSION}"
        )
    return _Input(path, manifest)


def _check_same_run(inputs: list[_Input]) -> dict[str, Any]:
    first = inputs[0]
    ours = run_fingerprint(first.manifest)
    for other in inputs[1:]:
        theirs = run_fingerprint(other.manifest)
        if theirs != ours:
            diffs = [
                f"{key}: {json.dumps(ours.get(key))} vs {json.dumps(theirs.get(key))}"
                for key in sorted(set(ours) | set(theirs))
                if ours.get(key) != theirs.get(key)
            ]
            differing = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
            raise MergeError(
                f"{other.path}: not a shard of the same run as {first.path} ({'; '.join(diffs)}); "
                "only shards generated with the same settings can be merged",
                field=differing[0],
            )
    return ours


def _environments(inputs: list[_Input]) -> dict[str, Environment]:
    found: dict[str, tuple[Environment, Path]] = {}
    for item in inputs:
        env_dir = item.path / ENVIRONMENTS_DIR
        for file in sorted(env_dir.glob("*.json")) if env_dir.is_dir() else []:
            env = load_environment(file)
            seen = found.get(env.id)
            if seen is None:
                found[env.id] = (env, file)
            elif seen[0] != env:
                raise MergeError(
                    f"{file}: environment {env.id!r} differs from the one in {seen[1]}; not the same run",
                    field=f"{ENVIRONMENTS_DIR}/{file.name}",
                )
    return {env_id: env for env_id, (env, _) in found.items()}


def _last_records(inputs: list[_Input], environments: dict[str, Environment]) -> tuple[dict[str, tuple[int, int]], int]:
    """Where the last record of each scenario id is, ``(input, line)``, and how many lines were read."""
    decoder = msgspec.json.Decoder(_Head)
    last: dict[str, tuple[int, int]] = {}
    total = 0
    for index, item in enumerate(inputs):
        path = item.path / DATASET_FILE
        for number, line in _lines(path):
            try:
                head = decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise MergeError(
                    f"{path}: line {number} is not a dialogue record ({exc}); the dataset is damaged"
                ) from None
            if head.version != RECORD_VERSION:
                raise MergeError(f"{path}: line {number} is a record of version {head.version}")
            if head.scenario.environment_id not in environments:
                raise MergeError(
                    f"{path}: line {number} uses environment {head.scenario.environment_id!r}, which no input has"
                )
            last[head.scenario.id] = (index, number)
            item.records += 1
            total += 1
    return last, total


def _check_out(out: Path, inputs: list[_Input]) -> None:
    target = out.resolve()
    for item in inputs:
        source = item.path.resolve()
        if target == source or source in target.parents:
            raise MergeError(f"--out {out}: is (inside) the input {item.path}; choose a new directory", field="--out")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeError(f"--out {out}: exists and is not an empty directory; choose a new one", field="--out")


def _version() -> str:
    try:
        return importlib.metadata.version("dialogsim")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def merge_datasets(dirs: Sequence[Path], out: Path) -> MergeSummary:
    """Merge the dataset directories ``dirs`` (shards of one run) into a new dataset ``out``.

    Raises MergeError (a ConfigError) — with nothing written — when no input is given, an input is not
    a dataset directory or is damaged, the inputs belong to different runs (fingerprints
    differ beyond the shard, or an environment of the same id differs), or ``out`` is an
    input or a directory that is not empty.
    """
    if not dirs:
        raise MergeError("merge: give at least one dataset directory")
    inputs = [_read_input(Path(d)) for d in dirs]
    fingerprint = _check_same_run(inputs)
    _check_out(out, inputs)
    environments = _environments(inputs)
    last, total = _last_records(inputs, environments)

    stage = out.parent / f".{out.name}.merging"
    if stage.exists():
        shutil.rmtree(stage)  # left by a merge that was killed
    try:
        (stage / ENVIRONMENTS_DIR).mkdir(parents=True)
        for env in environments.values():
            save_environment(env, stage / ENVIRONMENTS_DIR / f"{env.id}.json")
        dataset = _write_records(inputs, last, stage / DATASET_FILE)
        summary = MergeSummary(
            out_dir=str(out),
            inputs=[
                MergedInput(dir=str(i.path), shard=i.manifest["fingerprint"].get(SHARD_KEY), records=i.records)
                for i in inputs
            ],
            records=len(last),
            duplicates=total - len(last),
            dataset=dataset,
        )
        write_atomic(stage / SUMMARY_FILE, msgspec.json.format(msgspec.json.encode(summary), indent=2) + b"\n")
        config = {k: v for k, v in inputs[0].manifest.get("config", {}).items() if k not in {"shard", "out"}}
        manifest = {
            **inputs[0].manifest,
            **({"config": config} if config else {}),
            "dialogsim_version": _version(),
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "fingerprint": fingerprint,
            "merged_from": msgspec.to_builtins(summary.inputs),
        }
        write_atomic(stage / MANIFEST_FILE, json.dumps(manifest, indent=2).encode() + b"\n")
        if out.exists():
            out.rmdir()  # checked empty above
        out.parent.mkdir(parents=True, exist_ok=True)
        stage.rename(out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return summary


def _write_records(inputs: list[_Input], last: dict[str, tuple[int, int]], target: Path) -> Summary:
    """Copy the last record of every id, decoding each fully on the way; the dataset's summary."""
    decoder = msgspec.json.Decoder(DialogueRecord)
    keep = set(last.values())

    def kept() -> Iterator[DialogueRecord]:
        with target.open("wb") as f:
            for index, item in enumerate(inputs):
                path = item.path / DATASET_FILE
                for number, line in _lines(path):
                    if (index, number) not in keep:
                        continue
                    try:
                        record = decoder.decode(line)
                    except msgspec.DecodeError as exc:
                        raise MergeError(
                            f"{path}: line {number} is not a dialogue record ({exc}); the dataset is damaged"
                        ) from None
                    f.write(line)
                    yield record
            f.flush()
            os.fsync(f.fileno())

    return summarize(kept())
