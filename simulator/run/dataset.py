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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import msgspec

from schemas import READABLE_RECORD_VERSIONS, RECORD_VERSION, Check, CheckKind, DialogueRecord, Verdict
from schemas.errors import ConfigError
from simulator.log import get_logger

__all__ = [
    "DATASET_FILE",
    "ENVIRONMENTS_DIR",
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "SUMMARY_FILE",
    "DatasetFile",
    "DatasetScan",
    "RetryRule",
    "check_out_dir",
    "fsync_dir",
    "iter_records",
    "migrate_record",
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

log = get_logger(__name__)


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


class _EventHead(msgspec.Struct):
    kind: str
    where: str = ""
    error_type: str = ""


class _FailureHead(msgspec.Struct):
    """What deciding a retry needs (``--retry-failed``): how the dialogue ended and why."""

    scenario: _ScenarioHead
    version: int
    termination: str
    brains: dict[str, str] = {}
    events: list[_EventHead] = []


#: Decides whether a recorded dialogue is to be run again (``--retry-failed``): given its
#: termination, the brains that played it and the ``(where, error_type)`` of its error events.
RetryRule = Callable[[str, dict[str, str], list[tuple[str, str]]], bool]


def _readable() -> str:
    return ", ".join(map(str, sorted(READABLE_RECORD_VERSIONS)))


def _check_version(path: Path, number: int, version: int) -> None:
    """Refuse a record this dialogsim cannot read (one place, for every reader); older readable
    versions are migrated as they are read (:func:`migrate_record`)."""
    if version not in READABLE_RECORD_VERSIONS:
        raise ConfigError(
            f"{path}: line {number} is a record of version {version}, this dialogsim reads versions "
            f"{_readable()}; use the dialogsim that wrote it, or a new --out directory"
        )


def _scan(
    path: Path, f: IO[bytes], decoder: msgspec.json.Decoder[Any], *, repairing: bool = False
) -> Iterator[tuple[int, int, bytes, Any]]:
    """``(line number, offset, line, head)`` of every complete line, checking versions.

    A last line with no newline, or that does not decode, is a write cut off by a kill:
    it is not yielded, and a warning names it (an info line when a resume is ``repairing``
    it). Any other bad line is damage: ConfigError.
    """
    offset = 0
    bad: tuple[int, str] | None = None  # (line number, problem) of the last bad line
    for number, line in enumerate(f, start=1):
        if bad is not None:
            raise ConfigError(
                f"{path}: line {bad[0]} is not a dialogue record ({bad[1]}); the dataset is damaged. "
                "Move that line away, or start a new --out directory"
            )
        if not line.endswith(b"\n"):
            bad = (number, "no final newline")
        else:
            try:
                head = decoder.decode(line)
            except msgspec.DecodeError as exc:
                bad = (number, str(exc))
            else:
                _check_version(path, number, head.version)
                yield number, offset, line, head
        offset += len(line)
    if bad is not None and repairing:
        log.info("partial_last_record_cut", path=str(path), line=bad[0], problem=bad[1])
    elif bad is not None:
        log.warning(
            "partial_last_record_skipped",
            path=str(path),
            line=bad[0],
            problem=bad[1],
            hint="a run was cut off while writing it; resuming that run repairs the file",
        )


class DatasetScan(NamedTuple):
    """What a resume needs to know about a dataset file."""

    #: Scenario ids with a record that stands (not to be run again).
    done: set[str]
    #: Where a trailing partial line starts (to cut it away), or None.
    truncate_at: int | None
    #: Scenario ids whose last record the retry rule sends back to run again.
    retry: set[str]


def scan_dataset(path: Path, *, retry: RetryRule | None = None) -> DatasetScan:
    """The scenario ids in the dataset file and where a trailing partial line starts.

    A last line with no newline, or that does not decode, is a write cut off by a kill:
    it is reported for truncation. Any other bad line is damage this will not repair.
    With ``retry``, an id whose last record ``retry`` accepts is not done but to retry.
    """
    last: dict[str, bool] = {}  # scenario id -> whether its last record is to be retried
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return DatasetScan(set(), None, set())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_RecordHead if retry is None else _FailureHead)
    size = 0
    with f:
        for _, offset, line, head in _scan(path, f, decoder, repairing=True):
            size = offset + len(line)
            again = False
            if retry is not None:
                errors = [(e.where, e.error_type) for e in head.events if e.kind == "error"]
                again = retry(head.termination, head.brains, errors)
            last[head.scenario.id] = again
        end = f.seek(0, os.SEEK_END)
    return DatasetScan(
        done={sid for sid, again in last.items() if not again},
        truncate_at=size if end > size else None,
        retry={sid for sid, again in last.items() if again},
    )


def iter_records(dataset_dir: Path) -> Iterator[tuple[bytes, DialogueRecord]]:
    """Yield ``(line, record)`` for the last record of every dialogue of a dataset, in file order.

    A dialogue run again (``--retry-failed``) has several records; only its last one counts,
    here, for every reader. A trailing partial line (a run killed mid-write) is skipped
    with a warning naming it. Records of an older readable version are migrated as they are
    read (:func:`migrate_record`); ``line`` stays the line as stored. Raises ConfigError when
    the directory holds no dataset, a line in the middle does not decode, or a record is of
    a version this cannot read.
    """
    path = dataset_dir / DATASET_FILE
    if not path.is_file():
        raise ConfigError(f"{dataset_dir}: not a dataset directory (no {DATASET_FILE} in it)")
    manifest = read_manifest(dataset_dir)
    if manifest is not None and manifest.get("record_version") not in READABLE_RECORD_VERSIONS:
        raise ConfigError(
            f"{dataset_dir}: holds records of version {manifest.get('record_version')!r}; "
            f"this dialogsim reads versions {_readable()}"
        )
    with path.open("rb") as f:
        # First pass, heads only: where each dialogue's last record is, and how far the file is whole.
        last: dict[str, int] = {}
        complete = 0
        for number, _, _, head in _scan(path, f, msgspec.json.Decoder(_RecordHead)):
            last[head.scenario.id] = number
            complete = number
        keep = set(last.values())
        f.seek(0)
        decoder = msgspec.json.Decoder(DialogueRecord)
        for number, line in enumerate(f, start=1):
            if number > complete:
                break  # the partial last line, or lines appended since the first pass
            if number not in keep:
                continue
            try:
                record = decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise ConfigError(
                    f"{path}: line {number} is not a dialogue record ({exc}); the dataset is damaged"
                ) from None
            yield line, migrate_record(record)


def migrate_record(record: DialogueRecord) -> DialogueRecord:
    """A record of an older version in the current shape (a current one is returned as it is).

    Version 2 had no per-task checks and no full-state check: each task's ``checks`` are
    rebuilt from its failed assertions and missing values (its other assertions and
    values passed; no grounding evidence was recorded), ``state`` stays None (not
    checked) and ``migrated_from`` says 2.
    """
    if record.version == RECORD_VERSION:
        return record
    tasks = {t.id: t for t in record.scenario.tasks}
    outcomes = []
    for outcome in record.outcomes:
        task = tasks.get(outcome.task_id)
        checks: list[Check] = []
        if task is not None:
            failed = set(outcome.failed_assertions)
            missing = set(outcome.missing_values)
            checks += [
                Check(
                    kind=CheckKind.ASSERTION,
                    name=a.description,
                    verdict=Verdict.FAIL if a.description in failed else Verdict.PASS,
                    expected=a.expected,
                )
                for a in task.expected.assertions
            ]
            values = [*task.expected.values, *(task.refinement.values if task.refinement else [])]
            for v in values:
                name = f"{v.step}:{v.name}={v.value!r}"
                verdict = Verdict.FAIL if name in missing else Verdict.PASS
                detail = "" if verdict is Verdict.FAIL else "said somewhere in the dialogue (version 2: not grounded)"
                checks.append(Check(kind=CheckKind.VALUE, name=name, verdict=verdict, expected=v.value, detail=detail))
        if outcome.judgment is not None:
            verdict = {"valid": Verdict.PASS, "invalid": Verdict.FAIL}.get(outcome.judgment, Verdict.ERROR)
            checks.append(
                Check(kind=CheckKind.JUDGE, name="rubric judge", verdict=verdict, detail=outcome.reasoning or "")
            )
        outcomes.append(msgspec.structs.replace(outcome, checks=checks))
    return msgspec.structs.replace(record, outcomes=outcomes, migrated_from=record.version, version=RECORD_VERSION)


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
