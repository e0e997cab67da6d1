"""A run's settings: what to generate and where, and the fingerprint that decides whether
two runs may share a dataset directory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from schemas import RECORD_VERSION, DialogueRecord, Mode
from schemas.errors import ConfigError
from simulator.dialogue.runner import FAILURE_REASONS, DialogueConfig
from simulator.run.dataset import (
    DATASET_FILE,
)

__all__ = ["FAILURE_REASONS", "SHARD_KEY", "RunConfig", "Shard", "check_settings", "fingerprint", "record_failed"]


def record_failed(record: DialogueRecord) -> bool:
    """Whether the dialogue broke rather than ran its course: the one definition of "failed".

    Exactly the records whose termination is in FAILURE_REASONS; their ``error`` says why
    (see ``DialogueRecord.error``).
    """
    return record.termination in FAILURE_REASONS


#: transport and every time limit (any field named ``*timeout_s``): they may change between
#: resumes, like the number of dialogues. The message cap changes what a record holds (the
#: text the user was shown): it is in the fingerprint under its own key, when it is not the
#: default (``MESSAGE_CAP_KEY``), so datasets made at the default keep their fingerprint.
_RUNTIME_ONLY = frozenset({"transport", "max_message_chars"})

#: The fingerprint's key for a message cap other than the default.
MESSAGE_CAP_KEY = "max_message_chars"
_DEFAULT_CAP = DialogueConfig().max_message_chars

#: The fingerprint's key for the shard of a sharded run (absent when the run is whole).
SHARD_KEY = "shard"


def _shard_error(message: str) -> ConfigError:
    error = ConfigError(message)
    error.field = "--shard"
    return error


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (0-based) of ``count`` disjoint slices of a run, for batch schedulers.

    The slice is by scenario index: shard ``i/N`` runs the scenarios whose index ``k``
    has ``k % N == i``. Scenario ids do not depend on the shard, so the shards of one
    run together are exactly the whole run (``dialogsim merge`` puts them together).
    Raises ConfigError unless ``0 <= index < count``.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise _shard_error(f"--shard {self.index}/{self.count}: expected I/N with 0 <= I < N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"``, e.g. ``"0/4"`` (``$SLURM_ARRAY_TASK_ID/4``); raises ConfigError otherwise."""
        index, slash, count = text.strip().partition("/")
        try:
            if not slash:
                raise ValueError(text)
            return cls(int(index), int(count))
        except ValueError:
            raise _shard_error(f"--shard {text!r}: expected I/N, e.g. 0/4 for the first of four shards") from None

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """What to generate and where.

    ``domains`` empty means every built-in domain, unless ``database`` is given (then only
    the environment derived from it). ``branch_from`` (with ``at_turn`` and ``variants``)
    continues the dialogues of an existing dataset instead; then ``dialogues`` caps the
    number of branched scenarios (0: all of them).
    """

    dialogues: int
    seed: int
    out_dir: Path
    concurrency: int = 8
    mode: Mode = Mode.USER_ORIENTED
    domains: tuple[str, ...] = ()
    database: Path | None = None
    dialogue: DialogueConfig = field(default_factory=DialogueConfig)
    branch_from: Path | None = None
    at_turn: int = 0
    variants: int = 1
    #: An external MCP server as environment (``simulator.external``): what decides what is
    #: generated over it (command or URL, state template, shared state); None for SQL.
    external: dict[str, Any] | None = None
    #: Run again the dialogues whose last record failed on the infrastructure's side
    #: (``simulator.run.retry``), appending their new record.
    retry_failed: bool = False
    #: Generate only this slice of the run (None: all of it).
    shard: Shard | None = None
    #: The command's merged settings (defaults, ``--config`` file, flags), kept in the manifest.
    settings: dict[str, Any] = field(default_factory=dict, compare=False)

    def scenario_indexes(self, *, start: int = 0, stop: int | None = None) -> range:
        """The scenario indexes this run (or its shard) generates, from ``start`` up to ``stop``.

        ``stop`` defaults to ``dialogues``. Every planner enumerates its scenarios through
        this, so a shard is one predicate over indexes, applied before anything is built.
        """
        end = self.dialogues if stop is None else stop
        if self.shard is None:
            return range(start, end)
        first = start + (self.shard.index - start) % self.shard.count
        return range(first, end, self.shard.count)


def fingerprint(config: RunConfig) -> dict[str, Any]:
    """The settings that decide *what* a run generates, as plain JSON values.

    Two runs with equal fingerprints write the same records for the same scenario ids,
    so they may share a dataset. The number of dialogues, the concurrency, the transport
    and the time limits are left out: they may change between resumes. With ``--database``, the
    file's content is in (``database_sha256``), not only its path. A message cap other
    than the default is in (``MESSAGE_CAP_KEY``): it cuts what records hold. A sharded run adds
    its shard (``SHARD_KEY``), so a directory holds one shard; ``dialogsim merge``
    compares fingerprints without it.
    """
    dialogue = msgspec.to_builtins(config.dialogue, enc_hook=str)
    fp: dict[str, Any] = {
        "record_version": RECORD_VERSION,
        "seed": config.seed,
        "mode": config.mode.value,
        "domains": list(dict.fromkeys(config.domains)),
        "database": str(config.database.resolve()) if config.database is not None else None,
        # The path alone let a resume or a merge mix dialogues over two versions of the file.
        **({"database_sha256": _digest(config.database)} if config.database is not None else {}),
        "dialogue": {
            k: v for k, v in sorted(dialogue.items()) if k not in _RUNTIME_ONLY and not k.endswith("timeout_s")
        },
    }
    if config.dialogue.max_message_chars != _DEFAULT_CAP:
        fp[MESSAGE_CAP_KEY] = config.dialogue.max_message_chars
    if config.external is not None:
        fp["external"] = config.external
    if config.branch_from is not None:
        fp["branch"] = {
            "from": str(config.branch_from.resolve()),
            "at_turn": config.at_turn,
            "variants": config.variants,
        }
    if config.shard is not None:
        fp[SHARD_KEY] = str(config.shard)
    return fp


def _digest(path: Path) -> str | None:
    """The SHA-256 of a database file's content (None when it cannot be read: the run says why later)."""
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def check_settings(config: RunConfig) -> None:
    """Raise ConfigError for a setting out of range or a branch source that cannot be used."""
    least_dialogues = 0 if config.branch_from is not None else 1
    if config.dialogues < least_dialogues:
        also = " (0 only with --branch-from)" if least_dialogues else ""
        raise ConfigError(f"dialogues: expected at least {least_dialogues}{also}, got {config.dialogues}")
    if config.concurrency < 1:
        raise ConfigError(f"concurrency: expected at least 1, got {config.concurrency}")
    d = config.dialogue
    if d.transport not in ("inprocess", "stdio", "http"):
        raise ConfigError(f"transport: expected inprocess, stdio or http, got {d.transport!r}")
    if d.max_turns < 1:
        raise ConfigError(f"max turns: expected at least 1, got {d.max_turns}")
    if not 0.0 <= d.agent_mistake_rate <= 1.0:
        raise ConfigError(f"mistake rate: expected a number from 0 to 1, got {d.agent_mistake_rate}")
    if not d.timeout_s > 0:
        raise ConfigError(f"timeout: expected a positive number of seconds, got {d.timeout_s}")
    if not d.turn_timeout_s > 0:
        raise ConfigError(f"turn timeout: expected a positive number of seconds, got {d.turn_timeout_s}")
    if d.max_message_chars < 1:
        raise ConfigError(f"max message chars: expected at least 1, got {d.max_message_chars}")
    if config.branch_from is not None:
        if config.domains or config.database is not None:
            raise ConfigError("--branch-from takes its environments from the source dataset; drop --domain/--database")
        if config.at_turn < 1:
            raise ConfigError(f"--at-turn: expected at least 1 with --branch-from, got {config.at_turn}")
        if config.variants < 1:
            raise ConfigError(f"--variants: expected at least 1, got {config.variants}")
        src = config.branch_from
        if not (src / DATASET_FILE).is_file():
            raise ConfigError(f"branch source {src}: not a dataset directory (no {DATASET_FILE} in it)")
        if src.resolve() == config.out_dir.resolve():
            raise ConfigError(f"branch source {src} is also the output directory; choose another --out")
