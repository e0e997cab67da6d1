"""Choosing and splitting the dialogues of an export.

- :class:`Selection` says which dialogues to keep (verified-successful only, minimum
  turns / tasks / steps, domains, modes) and what to do with failed tool calls: ``keep``
  them, paired with their error results, as negative examples the model learns to recover
  from, or ``drop`` the dialogues that have one (removing only the calls would leave the
  agent's words about them — the error it reported, the retry — with nothing behind them).
- :class:`NearDuplicates` removes near-identical dialogues: two dialogues are near
  duplicates when the Jaccard similarity of their word 5-gram shingles (the normalised text
  of the user and assistant messages plus the tool calls) is at least the threshold.
  Candidates are found with MinHash banding and then compared exactly; the first dialogue
  in scenario-id order is kept, so the result does not depend on the order a run finished.
- :func:`assign_splits` puts whole scenarios into splits (``train=0.9,validation=0.1``):
  the branches of one scenario (``<id>-b8-v0``, ...) form one group with it, so no
  scenario leaks across splits. Groups are ordered by a hash of the seed and the group
  key and cut at the requested fractions of dialogues, so the same seed gives the same
  splits, and the same scenario lands in the same split in a user-oriented and a
  task-oriented dataset made with the same generation seed.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from schemas import DialogueRecord, ErrorEvent, Message
from schemas.errors import ConfigError
from simulator.dialogue.runner import MESSAGE_CUT

__all__ = [
    "DEFAULT_DEDUPE_THRESHOLD",
    "FailedToolCalls",
    "NearDuplicates",
    "Selection",
    "assign_splits",
    "jaccard",
    "parse_splits",
    "rejection",
    "scenario_group",
    "shingles",
    "split_path",
]

DEFAULT_DEDUPE_THRESHOLD = 0.9


class FailedToolCalls(enum.StrEnum):
    """What an export does with tool calls that came back as errors."""

    KEEP = "keep"  # keep them with their error results: negative examples, and the recovery after them
    # Leave out the dialogues that have one. Removing only the calls and their results left
    # the agent's report of each failure ("I tried, but it was refused") with nothing behind it.
    DROP = "drop"


@dataclass(frozen=True, kw_only=True)
class Selection:
    """Which dialogues an export keeps. Empty ``domains`` / ``modes`` mean all of them.

    ``min_steps`` compares with the dialogue's longest run of tool calls for one request
    (``DialogueMetrics.steps``); ``dedupe`` is a Jaccard threshold (0 < t <= 1) or None.
    """

    only_successful: bool = False
    min_turns: int = 0
    min_tasks: int = 0
    min_steps: int = 0
    domains: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    failed_tool_calls: FailedToolCalls = FailedToolCalls.KEEP
    dedupe: float | None = None

    def __post_init__(self) -> None:
        if self.dedupe is not None and not 0.0 < self.dedupe <= 1.0:
            raise ConfigError(f"dedupe threshold: expected a number above 0 and at most 1, got {self.dedupe}")
        for name in ("min_turns", "min_tasks", "min_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: expected 0 or more, got {getattr(self, name)}")


def rejection(record: DialogueRecord, selection: Selection) -> str | None:
    """Why ``selection`` leaves ``record`` out (a short reason key), or None to keep it.

    A dialogue with an agent message cut at ``max_message_chars`` is always left out: the
    message holds what the user was shown, the first characters and dialogsim's note
    ``[dialogsim: message cut here; ...]``, which is not what the agent said and would teach
    a model to stop mid-sentence and write the note.
    """
    metrics = record.metrics
    if selection.only_successful and not record.success:
        return "unsuccessful"
    if any(isinstance(e, ErrorEvent) and e.error_type == MESSAGE_CUT for e in record.events):
        return "agent message cut"
    if selection.domains and record.scenario.domain not in selection.domains:
        return "other domain"
    if selection.modes and record.scenario.mode.value not in selection.modes:
        return "other mode"
    if metrics.turns < selection.min_turns:
        return "too few turns"
    if metrics.tasks < selection.min_tasks:
        return "too few tasks"
    if metrics.steps < selection.min_steps:
        return "too few steps"
    if selection.failed_tool_calls is FailedToolCalls.DROP and any(
        m.role == "tool" and m.is_error for m in record.messages
    ):
        return "failed tool calls"
    return None


# --------------------------------------------------------------------------- near duplicates

_SHINGLE = 5
_BANDS = 16
_ROWS = 8
_BUCKETS = _BANDS * _ROWS
_WORD = re.compile(r"\w+")


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def shingles(messages: Iterable[Message]) -> frozenset[int]:
    """The hashed word 5-grams of a dialogue's user and assistant text and its tool calls.

    Text is lowercased and cut into words (punctuation and spacing do not count); a tool
    call counts as its name followed by its arguments in key order.
    """
    words: list[str] = []
    for message in messages:
        if message.role not in ("user", "assistant"):
            continue
        words.append(f"<{message.role}>")
        words += _WORD.findall(message.content.lower())
        for call in message.tool_calls:
            words.append(f"<call:{call.name}>")
            for key in sorted(call.arguments):
                words.append(key.lower())
                words += _WORD.findall(str(call.arguments[key]).lower())
    if len(words) <= _SHINGLE:
        return frozenset({_hash64(" ".join(words).encode())})
    return frozenset(_hash64(" ".join(words[i : i + _SHINGLE]).encode()) for i in range(len(words) - _SHINGLE + 1))


def _signature(items: frozenset[int]) -> list[int]:
    # One-permutation MinHash: the shingle hashes are already uniform, so the smallest per
    # bucket (hash mod buckets) estimates the Jaccard similarity like independent permutations.
    mins = [-1] * _BUCKETS
    for h in items:
        bucket, value = h % _BUCKETS, h // _BUCKETS
        if mins[bucket] < 0 or value < mins[bucket]:
            mins[bucket] = value
    return mins


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    """The Jaccard similarity of two shingle sets (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


class NearDuplicates:
    """Offer dialogues one at a time; each is kept unless it is a near duplicate of a kept one.

    Candidates come from 16 bands of 8 MinHash rows (a pair at similarity 0.9 shares a band
    with probability > 0.9999, at 0.8 about 0.95) and are confirmed with the exact Jaccard
    similarity, so nothing below the threshold is ever removed.
    """

    def __init__(self, threshold: float = DEFAULT_DEDUPE_THRESHOLD) -> None:
        self.threshold = threshold
        self._kept: list[frozenset[int]] = []
        self._ids: list[str] = []
        self._bands: dict[tuple[int, tuple[int, ...]], list[int]] = {}

    def offer(self, dialogue_id: str, messages: Iterable[Message]) -> str | None:
        """None when the dialogue is kept; else the id of the kept dialogue it duplicates."""
        items = shingles(messages)
        signature = _signature(items)
        keys = [(band, tuple(signature[band * _ROWS : (band + 1) * _ROWS])) for band in range(_BANDS)]
        seen: set[int] = set()
        for key in keys:
            for index in self._bands.get(key, ()):
                if index in seen:
                    continue
                seen.add(index)
                if jaccard(items, self._kept[index]) >= self.threshold:
                    return self._ids[index]
        index = len(self._kept)
        self._kept.append(items)
        self._ids.append(dialogue_id)
        for key in keys:
            self._bands.setdefault(key, []).append(index)
        return None


# --------------------------------------------------------------------------- splits

_BRANCH_SUFFIX = re.compile(r"(?:-b\d+-v\d+)+$")
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


def scenario_group(scenario_id: str) -> str:
    """The scenario a dialogue belongs to: its scenario id without branch suffixes (``-b8-v1``)."""
    return _BRANCH_SUFFIX.sub("", scenario_id)


def parse_splits(text: str) -> dict[str, float]:
    """Parse ``train=0.9,validation=0.1``. Raises ConfigError unless the fractions add up to 1."""
    splits: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        if not sep or not _SPLIT_NAME.match(name):
            raise ConfigError(f"--split: expected NAME=FRACTION pairs like train=0.9,validation=0.1, got {part!r}")
        if name in splits:
            raise ConfigError(f"--split: {name!r} is given twice")
        try:
            fraction = float(value)
        except ValueError:
            raise ConfigError(f"--split: {name}: expected a fraction from 0 to 1, got {value.strip()!r}") from None
        if not 0.0 <= fraction <= 1.0:
            raise ConfigError(f"--split: {name}: expected a fraction from 0 to 1, got {fraction}")
        splits[name] = fraction
    total = sum(splits.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"--split: the fractions must add up to 1, got {total:g} ({text})")
    return splits


def assign_splits(group_sizes: Mapping[str, int], splits: Mapping[str, float], seed: int) -> dict[str, str]:
    """Map every group to a split so each split holds about its fraction of the dialogues.

    ``group_sizes`` maps a group key (:func:`scenario_group`) to its number of dialogues.
    Groups are shuffled by a hash of ``seed`` and their key (so adding or removing a group
    moves no other group across the ordering), then split names are given to consecutive
    stretches; a group goes where its middle dialogue falls.
    """
    names = list(splits)
    order = sorted(group_sizes, key=lambda g: (hashlib.blake2b(f"{seed}\0{g}".encode(), digest_size=8).digest(), g))
    total = sum(group_sizes.values())
    bounds: list[float] = []
    cumulative = 0.0
    for name in names:
        cumulative += splits[name]
        bounds.append(cumulative * total)
    out: dict[str, str] = {}
    position = 0
    for group in order:
        size = group_sizes[group]
        middle = position + size / 2
        index = next((i for i, bound in enumerate(bounds) if middle < bound), len(names) - 1)
        out[group] = names[index]
        position += size
    return out


def split_path(out_path: Path, name: str) -> Path:
    """Where split ``name`` of an export to ``out_path`` goes: ``train.jsonl`` -> ``train-validation.jsonl``."""
    return out_path.with_name(f"{out_path.stem}-{name}{out_path.suffix}")
