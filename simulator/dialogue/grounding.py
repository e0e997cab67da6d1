"""Grounded communication: a value counts only when the agent said it, in its task's part of
the dialogue, after a tool result that contained it.

**A task's part.** The conversation is read one user turn at a time (a user message and
the agent's replies until the next user message). A user turn *opens* the tasks whose
``TaskStarted`` event came just before it (the runner publishes it with the message that
begins the task) and the tasks its user feedback brings back (a correction, a missing
write, a refinement, a change of mind, a request to double-check, on a task started
earlier); a confirmation opens nothing. The agent messages of a user turn belong to the
tasks it opened, or, when it opened none, to the same tasks as the turn before. So a
task's part begins where the task starts and ends where the next task begins or the
dialogue ends, and it includes the later turns that go back to it. Agent messages
before the first task starts (a recorded history prefix) belong to no task. A dialogue
without any ``TaskStarted`` event (a user brain that does not mark tasks) is one part
shared by every task.

**Saying a value.** Numbers match as numbers, as whole tokens of the message
(``37.62`` = ``37.620000000000005``; ``1,234.5`` = ``1234.5``; a number said with two or more
decimals matches the value rounded to them; the ``4`` in ``2026-04-09`` or ``ORD-4`` is not a
number); dates match in common formats (``2026-04-09``, ``2026/04/09``, ``April 9, 2026``,
``9 April 2026``, ``Apr 9th 2026``, ``04/09/2026`` and ``09/04/2026``, ``09.04.2026``) and a
timestamp also needs its time of day when that is not midnight; strings match ignoring
case, surrounding punctuation, repeated whitespace and underscores (``in_transit`` =
``In transit``).

**Grounded.** The message must come after a successful tool result of the same dialogue
(a recorded history prefix included) that showed the value. Which results show it is
anchored in the gold replay (``simulator.dialogue.statediff``), which ran the task's step
too: a value that is a field of a row shows in a result holding that field, with that
value, in a row that is the same row as the gold one (they share another field, and
every field they share agrees); a count shows in the result of the same call as the
gold step (same tool, the gold arguments), or in a result listing the same rows. So a
number that merely occurs in some unrelated result (an id, a quantity) does not ground
a count. Without a gold result to anchor to, any result that contains the value (as a
field, or as its number of rows) shows it. A value said before anything was looked up
does not count.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas import (
    AgentMessage,
    Event,
    Evidence,
    FeedbackKind,
    TaskStarted,
    ToolCall,
    ToolResult,
    UserFeedback,
    UserMessage,
)

__all__ = [
    "Anchor",
    "Grounding",
    "contains",
    "find_row",
    "mentions",
    "result_rows",
    "shows_row",
    "supports",
    "task_parts",
]


# --------------------------------------------------------------------------- parts


def task_parts(
    events: Sequence[Event], task_ids: Sequence[str], *, kind: type[Event] = AgentMessage
) -> dict[str, list[int]]:
    """For each task, the indexes (``seq``) of the agent messages in its part (see the module
    docstring); with ``kind=ToolResult``, of the tool results in it."""
    parts: dict[str, list[int]] = {t: [] for t in task_ids}
    if not any(isinstance(e, TaskStarted) for e in events):
        every = [i for i, e in enumerate(events) if isinstance(e, kind)]
        return {t: list(every) for t in task_ids}
    opened: list[str] = []
    focus: list[str] = []
    for i, event in enumerate(events):
        if isinstance(event, TaskStarted):
            opened.append(event.task_id)
        elif isinstance(event, UserFeedback) and event.feedback is not FeedbackKind.CONFIRM:
            opened.append(event.task_id)
        elif isinstance(event, UserMessage):
            if opened:
                focus = list(dict.fromkeys(opened))
            opened = []
        elif isinstance(event, kind):
            for task_id in focus:
                if task_id in parts:
                    parts[task_id].append(i)
    return parts


# --------------------------------------------------------------------------- saying a value

_NUMBER = re.compile(r"(?<![\w.\-/:$€£])([-−]?)[$€£]?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w\-/:]|[.,]\d)")
_MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_DATE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)(\d{4})/(\d{1,2})/(\d{1,2})(?!\d)"), "ymd"),
    (re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4})(?!\d)"), "mdy|dmy"),
    (re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{4})(?!\d)"), "dmy"),
    (re.compile(r"(?i)\b" + _MONTH + r"\s+" + _DAY + r",?\s+(\d{4})\b"), "Mdy"),
    (re.compile(r"(?i)\b" + _DAY + r"\s+(?:of\s+)?" + _MONTH + r",?\s+(\d{4})\b"), "dMy"),
]
_ISO_VALUE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?\s*$"
)
_TIME = re.compile(r"(?i)(?<!\d)(\d{1,2}):(\d{2})(?::\d{2})?\s*(am|pm|a\.m\.|p\.m\.)?(?!\d)")
_NONE_WORDS = re.compile(r"(?i)\b(none|null|n/a|not set|no value|empty)\b")


def _normal(text: str) -> str:
    # Values (short, and compared again and again) are kept; messages are not.
    return _normal_value(text) if len(text) <= 80 else _normalized(text)


def _normalized(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("_", " ")
    return " ".join(text.split())


_normal_value = functools.lru_cache(maxsize=8192)(_normalized)


def _numbers(text: str) -> Iterator[tuple[float, int, str]]:
    """(value, decimals, the words) of every number token in ``text``."""
    for m in _NUMBER.finditer(text):
        sign, whole, frac = m.group(1), m.group(2).replace(",", ""), m.group(3) or ""
        try:
            value = float(whole + frac)
        except ValueError:
            continue
        yield (-value if sign else value), max(0, len(frac) - 1), m.group(0)


def _dates(text: str) -> Iterator[tuple[dt.date, str]]:
    for pattern, order in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            groups = m.groups()
            for form in order.split("|"):
                try:
                    if form == "ymd":
                        y, mo, d = int(groups[0]), int(groups[1]), int(groups[2])
                    elif form == "mdy":
                        mo, d, y = int(groups[0]), int(groups[1]), int(groups[2])
                    elif form == "dmy":
                        d, mo, y = int(groups[0]), int(groups[1]), int(groups[2])
                    elif form == "Mdy":
                        mo, d, y = _MONTHS[groups[0].lower()], int(groups[1]), int(groups[2])
                    else:  # dMy
                        d, mo, y = int(groups[0]), _MONTHS[groups[1].lower()], int(groups[2])
                    yield dt.date(y, mo, d), m.group(0)
                except (ValueError, KeyError):
                    continue


def _as_datetime(value: str) -> tuple[dt.date, tuple[int, int] | None] | None:
    """A date (and time of day, when it is not midnight) from an ISO-like string value."""
    m = _ISO_VALUE.match(value)
    if m is None:
        return None
    try:
        date = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None
    if m.group(4) is None:
        return date, None
    hour, minute, second = int(m.group(4)), int(m.group(5)), int(m.group(6) or 0)
    return date, None if (hour, minute, second) == (0, 0, 0) else (hour, minute)


def _times(text: str) -> Iterator[tuple[int, int]]:
    for m in _TIME.finditer(text):
        hour, minute, half = int(m.group(1)), int(m.group(2)), (m.group(3) or "").lower().replace(".", "")
        if half == "pm" and hour < 12:
            hour += 12
        elif half == "am" and hour == 12:
            hour = 0
        yield hour, minute


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_matches(said: float, decimals: int, value: float) -> bool:
    if math.isclose(said, value, rel_tol=1e-9, abs_tol=1e-9):
        return True
    # A number said with two or more decimals stands for the value rounded to them.
    return decimals >= 2 and abs(said - value) <= 0.5 * 10.0**-decimals + 1e-9


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
#: Phrases whose yes/no word answers nothing ("No problem — ...").
_IDIOMS = re.compile(r"(?i)\b(no problem|no worries|no rush|no need|not at all|yes,? of course)\b")
#: A count of nothing in words: "no lost loans", "none", "zero", "I don't see any".
_NO_COUNT = re.compile(r"(?i)\b(?:no|zero)\s+(?=[a-z0-9])|\bnone\b|\bnot any\b|n't\s+(?:[a-z]+\s+)?any\b")
_LABEL_SKIP = frozenset({"is", "has", "the", "flag", "id", "of", "a", "an"})


def _flag_words(value: Any) -> re.Pattern[str]:
    if value is None:
        return _NONE_WORDS
    return re.compile(r"(?i)\b(yes|true)\b" if value else r"(?i)\b(no|false|not)\b|n't\b")


def _said_of(text: str, value: Any, name: str) -> str | None:
    """A yes/no/none said of the field ``name``: in a sentence that names the field (or in the
    answer right after a question that does), not anywhere in the message."""
    label = [w for w in re.split(r"[_\W]+", name.lower()) if len(w) > 1 and w not in _LABEL_SKIP]
    if not label:
        return None
    names = re.compile(r"(?i)\b(" + "|".join(re.escape(w) for w in label) + r")")
    answers = _flag_words(value)
    sentences = [_IDIOMS.sub(" ", s) for s in _SENTENCE_END.split(text) if s.strip()]
    for i, sentence in enumerate(sentences):
        if not names.search(sentence):
            continue
        scope = (
            [sentence, sentences[i + 1]] if sentence.rstrip().endswith("?") and i + 1 < len(sentences) else [sentence]
        )
        for part in scope:
            m = answers.search(part)
            if m:
                return m.group(0)
    return None


def mentions(text: str, value: Any, name: str | None = None) -> str | None:
    """The words of ``text`` that say ``value``, or None (see the module docstring).

    A yes/no or none (a bool or None value) says nothing alone: with ``name`` (the field it
    is the value of) it counts only when said of that field; without, any such word counts.
    """
    if value is None or isinstance(value, bool):
        if name is not None:
            return _said_of(text, value, name)
        if value is None:
            m = _NONE_WORDS.search(text)
            return m.group(0) if m else None
        answers = ("yes", "true") if value else ("no", "false")
        m = re.search(r"(?i)\b(" + "|".join(answers) + r")\b", text)
        return m.group(0) if m else None
    if _is_number(value):
        number = float(value)
        if number == 0 and name == "count":
            # "You have no lost loans", "none of them": a count of nothing, said as people say it.
            m = _NO_COUNT.search(_IDIOMS.sub(" ", text))
            if m:
                return m.group(0)
        for amount, decimals, number_words in _numbers(text):
            if _number_matches(amount, decimals, number):
                return number_words
        return None
    if not isinstance(value, str):
        value = json.dumps(value, default=str)
    when = _as_datetime(value)
    if when is not None:
        date, time_of_day = when
        for day, date_words in _dates(text):
            if day == date and (time_of_day is None or time_of_day in set(_times(text))):
                return date_words
        return None
    wanted = _normal(value).strip(" .,;:!?'\"")
    if not wanted:
        return None
    return _find_whole(wanted, _normal(text))


_WORD_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")


def _find_whole(wanted: str, haystack: str) -> str | None:
    """The first ``wanted`` in ``haystack`` not inside a longer word or number, or None.

    Bounded like ``(?<![0-9a-z])wanted(?![0-9a-z])`` (each side only where ``wanted``
    starts or ends with a letter or digit), found with ``str.find``: a regular expression
    per value would be compiled anew for nearly every value a run checks.
    """
    lead, tail = wanted[0].isalnum(), wanted[-1].isalnum()
    start = haystack.find(wanted)
    while start >= 0:
        end = start + len(wanted)
        if (not lead or start == 0 or haystack[start - 1] not in _WORD_CHARS) and (
            not tail or end == len(haystack) or haystack[end] not in _WORD_CHARS
        ):
            return haystack[start:end]
        start = haystack.find(wanted, start + 1)
    return None


# --------------------------------------------------------------------------- tool results


def _leaves(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    elif isinstance(node, list):
        yield len(node)
        for value in node:
            yield from _leaves(value)
    else:
        yield node


def _leaf_matches(leaf: Any, value: Any) -> bool:
    if value is None:
        return leaf is None
    if _is_number(value):
        if _is_number(leaf):
            return math.isclose(float(leaf), float(value), rel_tol=1e-9, abs_tol=1e-9)
        if isinstance(leaf, str):
            try:
                return math.isclose(float(leaf), float(value), rel_tol=1e-9, abs_tol=1e-9)
            except ValueError:
                return False
        return False
    if isinstance(value, str):
        if isinstance(leaf, str):
            if leaf == value or _normal(leaf) == _normal(value):
                return True
            a, b = _as_datetime(leaf), _as_datetime(value)
            return a is not None and a == b
        if _is_number(leaf):
            return _leaf_matches(value, leaf)
        return False
    return bool(leaf == value)


def contains(result: ToolResult, value: Any) -> bool:
    """Whether a tool result holds ``value``: as one of its fields, or as its number of rows."""
    structured = result.structured
    if structured is None:
        try:
            structured = json.loads(result.text)
        except ValueError:
            return mentions(result.text, value) is not None
    return any(_leaf_matches(leaf, value) for leaf in _leaves(structured))


# --------------------------------------------------------------------------- grounding


@dataclass(frozen=True, slots=True)
class Anchor:
    """What a value is about, from the gold replay: the call of its step and that call's result."""

    tool: str
    arguments: dict[str, Any]
    result: Any
    #: Generated-key columns (and the largest key before the dialogue, None: none): a key the
    #: gold replay generated for a new row may be another number in the dialogue, so a field
    #: of that name holding a new key is not compared.
    new_keys: dict[str, int | None] = field(default_factory=dict)


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def _rows(result: Any) -> list[dict[str, Any]]:
    if isinstance(result, dict):
        if isinstance(result.get("rows"), list):
            return [r for r in result["rows"] if isinstance(r, dict)]
        if "row" in result and len(result) == 1:
            return [result["row"]] if isinstance(result["row"], dict) else []
        return [result]
    return []


def _consistent(
    candidate: dict[str, Any], row: dict[str, Any], name: str, new_keys: dict[str, int | None] | None = None
) -> bool:
    """Whether ``candidate`` is the same row as ``row``: it shares a field besides ``name``, and
    every field they share agrees (but a generated key of a new row, see ``Anchor.new_keys``)."""
    loose = new_keys or {}
    shared = [k for k in candidate if k in row and k != name]
    return bool(shared) and all(_leaf_matches(candidate[k], row[k]) for k in shared if not _new_key(k, row[k], loose))


def _structured(result: ToolResult) -> Any:
    if result.structured is not None:
        return result.structured
    try:
        return json.loads(result.text)
    except ValueError:
        return None


def result_rows(result: Any) -> list[dict[str, Any]]:
    """The rows of a (gold) result: its ``rows``, its ``row``, or the result itself."""
    return _rows(result)


def find_row(result: Any, name: str, value: Any) -> dict[str, Any] | None:
    """The first row of a (gold) result whose field ``name`` holds ``value``, or None."""
    return next((r for r in _rows(result) if name in r and _leaf_matches(r[name], value)), None)


def shows_row(
    result: ToolResult, row: dict[str, Any], name: str, new_keys: dict[str, int | None] | None = None
) -> bool:
    """Whether ``result`` shows the gold ``row``: an object with the row's field ``name`` whose
    other fields shared with the row all agree (at least one besides ``name``)."""
    return any(
        name in o and _leaf_matches(o[name], row[name]) and _consistent(o, row, name, new_keys)
        for o in _objects(_structured(result))
    )


def supports(result: ToolResult, call: Any, value: Any, name: str | None, anchor: Anchor | None) -> bool:
    """Whether ``result`` (of ``call``, a ToolCall or None) shows ``value``.

    Without an anchor: it contains the value. With one (see the module docstring): a field
    ``name`` of a row consistent with the gold row it comes from; or, for a count, the
    result of the same call as the gold step's, or the same rows.
    """
    if anchor is None or name is None:
        return contains(result, value)
    gold_rows = _rows(anchor.result)
    row = None
    if name != "count":
        row = next((r for r in gold_rows if name in r and _leaf_matches(r[name], value)), None)
    structured = _structured(result)
    if row is not None:
        return any(
            name in o and _leaf_matches(o[name], value) and _consistent(o, row, name, anchor.new_keys)
            for o in _objects(structured)
        )
    same_call = (
        call is not None
        and getattr(call, "tool", None) == anchor.tool
        and all(_leaf_matches(call.arguments.get(k), v) for k, v in anchor.arguments.items())
    )
    if same_call and contains(result, value):
        return True
    rows = structured.get("rows") if isinstance(structured, dict) else None
    if isinstance(rows, list) and _is_number(value) and len(rows) == value == len(gold_rows) and gold_rows:
        found = [r for r in rows if isinstance(r, dict)]
        return all(any(_consistent(r, g, "", anchor.new_keys) for r in found) for g in gold_rows)
    return False


@dataclass(frozen=True, slots=True)
class Grounding:
    """A dialogue's events, read once, for grounding any number of values."""

    events: Sequence[Event]
    parts: dict[str, list[int]]
    results: list[int]
    calls: dict[str, Any]
    #: Per task, the tool results in its part.
    result_parts: dict[str, list[int]]

    @classmethod
    def of(cls, events: Sequence[Event], task_ids: Sequence[str]) -> Grounding:
        results = [i for i, e in enumerate(events) if isinstance(e, ToolResult) and not e.is_error]
        calls = {e.call_id: e for e in events if isinstance(e, ToolCall)}
        return cls(
            events=events,
            parts=task_parts(events, task_ids),
            results=results,
            calls=calls,
            result_parts=task_parts(events, task_ids, kind=ToolResult),
        )

    def write_made(
        self, task_id: str, tool: str, arguments: dict[str, Any], new_keys: dict[str, int | None]
    ) -> int | None:
        """The tool result, in ``task_id``'s part, of a successful call of ``tool`` that changed a
        row and agrees with ``arguments`` (but generated keys of new rows), or None."""
        for index in self.result_parts.get(task_id, []):
            result = self.events[index]
            assert isinstance(result, ToolResult)
            if result.is_error or result.tool != tool or result.affected < 1:
                continue
            call = self.calls.get(result.call_id)
            if call is None:
                continue
            if _agrees(call.arguments, arguments, new_keys):
                return index
        return None

    def find(self, task_id: str, value: Any, name: str | None = None, anchor: Anchor | None = None) -> Evidence | None:
        """Where the agent first said ``value`` in ``task_id``'s part after a tool result that showed it."""
        for index in self.parts.get(task_id, []):
            message = self.events[index]
            assert isinstance(message, AgentMessage)
            said = mentions(message.text, value, name)
            if said is None:
                continue
            for source in reversed(self.results):
                if source < index:
                    result = self.events[source]
                    assert isinstance(result, ToolResult)
                    if supports(result, self.calls.get(result.call_id), value, name, anchor):
                        return Evidence(message=index, result=source, said=said)
        return None

    def said_anywhere(self, value: Any) -> int | None:
        """The first agent message that says ``value``, wherever it is (to explain a failure)."""
        for i, event in enumerate(self.events):
            if isinstance(event, AgentMessage) and mentions(event.text, value) is not None:
                return i
        return None


def _new_key(name: str, value: Any, new_keys: dict[str, int | None]) -> bool:
    if name not in new_keys or not isinstance(value, int) or isinstance(value, bool):
        return False
    before = new_keys[name]
    return before is None or value > before


def _agrees(called: dict[str, Any], gold: dict[str, Any], new_keys: dict[str, int | None]) -> bool:
    """Every gold argument was passed with its value (a missing one counts as null), but a
    generated key of a row the dialogue created, which may have another number there."""
    for name, value in gold.items():
        if _new_key(name, value, new_keys):
            continue
        if not _leaf_matches(called.get(name), value):
            return False
    return True
