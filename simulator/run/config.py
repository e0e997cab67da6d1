"""A run's settings: what to generate and where, and the fingerprint that decides whether
two runs may share a dataset directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from schemas import (
    RECORD_VERSION,
    Mode,
    TerminationReason,
)
from schemas.errors import ConfigError
from simulator.dialogue.runner import DialogueConfig
from simulator.run.dataset import (
    DATASET_FILE,
)

__all__ = ["FAILURE_REASONS", "RunConfig", "check_settings", "fingerprint"]

#: Endings that mean the dialogue broke rather than ran its course (counted as "failed").
FAILURE_REASONS = frozenset(
    {
        TerminationReason.AGENT_FAILURE,
        TerminationReason.USER_FAILURE,
        TerminationReason.TOOL_FAILURE,
        TerminationReason.TIMEOUT,
        TerminationReason.JUDGE_FAILURE,
        TerminationReason.VERIFICATION_FAILURE,
    }
)


#: transport, and every time limit (any field named ``*timeout_s``).
_RUNTIME_ONLY = frozenset({"transport"})


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


def fingerprint(config: RunConfig) -> dict[str, Any]:
    """The settings that decide *what* a run generates, as plain JSON values.

    Two runs with equal fingerprints write the same records for the same scenario ids,
    so they may share a dataset. The number of dialogues, the concurrency, the transport
    and the time limits are left out: they may change between resumes.
    """
    dialogue = msgspec.to_builtins(config.dialogue, enc_hook=str)
    fp: dict[str, Any] = {
        "record_version": RECORD_VERSION,
        "seed": config.seed,
        "mode": config.mode.value,
        "domains": list(dict.fromkeys(config.domains)),
        "database": str(config.database.resolve()) if config.database is not None else None,
        "dialogue": {
            k: v for k, v in sorted(dialogue.items()) if k not in _RUNTIME_ONLY and not k.endswith("timeout_s")
        },
    }
    if config.branch_from is not None:
        fp["branch"] = {
            "from": str(config.branch_from.resolve()),
            "at_turn": config.at_turn,
            "variants": config.variants,
        }
    return fp


def check_settings(config: RunConfig) -> None:
    """Raise ConfigError for a setting out of range or a branch source that cannot be used."""
    least_dialogues = 0 if config.branch_from is not None else 1
    if config.dialogues < least_dialogues:
        raise ConfigError(f"dialogues: expected at least {least_dialogues}, got {config.dialogues}")
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
