"""The dataset directory on disk: its manifest, its append-only records, safe against ``kill -9``.

A dataset directory holds::

    manifest.json          format version, record version, the config fingerprint; written once
    environments/<id>.json every environment the scenarios use
    dialogues.jsonl        one DialogueRecord per line, in completion order, append-only
    summary.json           the summary of the whole dataset, rewritten at the end of each run
    run.log                what each run did, as JSON lines (simulator.log), appended by every invocation

Durability: every record is appended with a single ``write`` of the whole line as soon
as its dialogue ends, so once a dialogue is counted it is in the file, and a killed
process (``kill -9``, a crash) loses nothing: the file holds complete records and at
most one partial line at its end, which a resume cuts away. ``fsync`` is grouped (group
commit): the file is synced once ``max_records`` records are waiting, or ``max_delay_s``
after the first of them (the run's flusher checks), and when the file is closed. Only a
crash of the machine itself (power, kernel) can lose records, those of the last
``max_delay_s`` at most; a resume runs those dialogues again, without duplicates.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from schemas import RECORD_VERSION, DialogueRecord
from schemas.errors import ConfigError

__all__ = [
    "DATASET_FILE",
    "ENVIRONMENTS_DIR",
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "SUMMARY_FILE",
    "DatasetFile",
    "check_out_dir",
    "fsync_dir",
    "iter_records",
    "read_manifest",
    "scan_dataset",
    "settings_differences",
    "write_atomic",
]

MANIFEST_FILE = "manifest.json"
DATASET_FILE = "dialogues.jsonl"
SUMMARY_FILE = "summary.json"
ENVIRONMENTS_DIR = "environments"
#: Version of the manifest's own layout (the records carry RECORD_VERSION).
MANIFEST_FORMAT = 1

#: Names a directory may hold before its manifest exists (a run killed while starting).
_OWN_NAMES = frozenset({MANIFEST_FILE, MANIFEST_FILE + ".tmp", ENVIRONMENTS_DIR, DATASET_FILE, "run.log"})


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of the dataset in ``out_dir``, or None when there is none.

    Raises ConfigError when it exists but cannot be read as a manifest.
    """
    path = out_dir / MANIFEST_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); is this a dialogsim dataset?") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("fingerprint"), dict):
        raise ConfigError(f"{path}: not a dialogsim manifest (expected an object with a 'fingerprint')")
    return manifest


def check_out_dir(out: Path, fp: dict[str, Any]) -> bool:
    """Whether ``out`` already holds this run's dataset (True), is new or empty (False)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    if not out.exists():
        return False
    manifest = read_manifest(out)
    if manifest is None:
        foreign = sorted(p.name for p in out.iterdir() if p.name not in _OWN_NAMES)
        if (out / DATASET_FILE).exists():
            raise ConfigError(f"{out}: has {DATASET_FILE} but no {MANIFEST_FILE}; not a dataset this can resume")
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise ConfigError(
                f"{out}: is not empty ({shown}) and holds no dialogsim dataset; choose a new or empty --out"
            )
        return False
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ConfigError(
            f"{out / MANIFEST_FILE}: manifest format {manifest.get('format')!r} is not supported; "
            f"expected {MANIFEST_FORMAT}"
        )
    if manifest.get("record_version") != RECORD_VERSION:
        raise ConfigError(
            f"{out}: holds records of version {manifest.get('record_version')!r}, this dialogsim writes "
            f"version {RECORD_VERSION}; use a new --out directory"
        )
    differences = settings_differences(manifest["fingerprint"], fp)
    if differences:
        raise ConfigError(
            f"{out}: holds a dataset generated with other settings ({differences}); "
            "run with the same settings to resume it, or choose another --out"
        )
    return True


def settings_differences(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    """``key: X there, Y now; ...`` for every setting that differs (empty when none does).

    Used wherever a directory made with some settings is refused for a run with others
    (a dataset's fingerprint, an evaluation's settings, a model-made plan).
    """
    ours = json.loads(json.dumps(wanted))  # compare as JSON values (tuples as lists)
    return "; ".join(
        f"{key}: {json.dumps(stored.get(key))} there, {json.dumps(ours.get(key))} now"
        for key in sorted(set(stored) | set(ours))
        if stored.get(key) != ours.get(key)
    )


class _ScenarioHead(msgspec.Struct):
    id: str


class _RecordHead(msgspec.Struct):
    """The part of a record a resume needs; decoding only this keeps a resume fast."""

    scenario: _ScenarioHead
    version: int


def scan_dataset(path: Path) -> tuple[set[str], int | None]:
    """The scenario ids in the dataset file and where a trailing partial line starts.

    A last line with no newline, or that does not decode, is a write cut off by a kill:
    it is reported for truncation. Any other bad line is damage this will not repair.
    """
    done: set[str] = set()
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return done, None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    decoder = msgspec.json.Decoder(_RecordHead)
    offset = 0
    bad: tuple[int, int, str] | None = None  # (line number, offset, problem) of the last bad line
    with f:
        for number, line in enumerate(f, start=1):
            if bad is not None:
                raise ConfigError(
                    f"{path}: line {bad[0]} is not a dialogue record ({bad[2]}); the dataset is damaged. "
                    "Move that line away, or start a new --out directory"
                )
            if not line.endswith(b"\n"):
                bad = (number, offset, "no final newline")
            else:
                try:
                    head = decoder.decode(line)
                except msgspec.DecodeError as exc:
                    bad = (number, offset, str(exc))
                else:
                    if head.version != RECORD_VERSION:
                        raise ConfigError(
                            f"{path}: line {number} is a record of version {head.version}, this dialogsim "
                            f"writes version {RECORD_VERSION}; use a new --out directory"
                        )
                    done.add(head.scenario.id)
            offset += len(line)
    return done, (bad[1] if bad is not None else None)


def iter_records(dataset_dir: Path) -> Iterator[tuple[bytes, DialogueRecord]]:
    """Yield ``(line, record)`` for every complete record of a dataset, in file order.

    A trailing partial line (a run killed mid-write) is skipped. Raises ConfigError when
    the directory holds no dataset or a line in the middle does not decode.
    """
    path = dataset_dir / DATASET_FILE
    if not path.is_file():
        raise ConfigError(f"{dataset_dir}: not a dataset directory (no {DATASET_FILE} in it)")
    manifest = read_manifest(dataset_dir)
    if manifest is not None and manifest.get("record_version") != RECORD_VERSION:
        raise ConfigError(
            f"{dataset_dir}: holds records of version {manifest.get('record_version')!r}; "
            f"this dialogsim reads version {RECORD_VERSION}"
        )
    decoder = msgspec.json.Decoder(DialogueRecord)
    with path.open("rb") as f:
        pending_error: str | None = None
        for number, line in enumerate(f, start=1):
            if pending_error is not None:
                raise ConfigError(pending_error)
            try:
                if not line.endswith(b"\n"):
                    raise msgspec.DecodeError("no final newline")
                record = decoder.decode(line)
            except msgspec.DecodeError as exc:
                pending_error = f"{path}: line {number} is not a dialogue record ({exc}); the dataset is damaged"
                continue
            yield line, record


class DatasetFile:
    """The append-only dataset file: one ``write`` per record, ``fsync`` grouped (see the module docstring)."""

    def __init__(
        self, path: Path, *, truncate_at: int | None, max_records: int = 32, max_delay_s: float = 0.02
    ) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if truncate_at is not None:
            os.ftruncate(self._fd, truncate_at)
        os.fsync(self._fd)
        fsync_dir(path.parent)
        self.max_records = max_records
        self.max_delay_s = max_delay_s
        #: Records written since the last fsync, and when the first of them was.
        self.unsynced = 0
        self._since = 0.0
        self._encoder = msgspec.json.Encoder()

    def append(self, record: DialogueRecord) -> None:
        """Write the record's line now; fsync when enough records or time have gathered."""
        line = memoryview(self._encoder.encode(record) + b"\n")
        written = os.write(self._fd, line)
        while written < len(line):  # only on a short write (e.g. the disk filling up)
            written += os.write(self._fd, line[written:])
        if self.unsynced == 0:
            self._since = time.monotonic()
        self.unsynced += 1
        if self.unsynced >= self.max_records:
            self.sync()
        else:
            self.sync_due()

    def sync_due(self) -> None:
        """fsync if a waiting record has waited ``max_delay_s``."""
        if self.unsynced and time.monotonic() - self._since >= self.max_delay_s:
            self.sync()

    def sync(self) -> None:
        if self.unsynced:
            os.fsync(self._fd)
            self.unsynced = 0

    def close(self) -> None:
        try:
            self.sync()
        finally:
            os.close(self._fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)
