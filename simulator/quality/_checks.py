"""Per-dialogue checks on the words and the calls: grounding, asked-for fields, depth, errors.

- **Grounded arguments**: every argument value of a tool call must have been said by the
  user or returned by an earlier tool (or stated in the rules the agent was given).
  Control arguments (limits, sorting, flags) are how to ask, not what, and are not checked.
- **Asked-for fields**: a field the agent reports after a read (a value of a result row
  that appears in its answer and not in the user's words) must have been asked for in
  the user's words of that task, by its name, a word for it ("when", "how much"), or be
  what names the thing found (a name, a title, a number).
- **Steps** of a request: the tool calls between a user message and the next.
- **Tool errors**: an error result must be reported accurately in the agent's next
  words (a cause-specific phrase) and followed by a recovery (a later successful call
  of the same tool, or a suggested next step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.quality._text import (
    Evidence,
    contains,
    forms_of,
    label_words,
    mentions,
    number_tokens,
    remove,
    stem,
    word_tokens,
)
from simulator.quality._view import DialogueView, Msg

__all__ = ["CONTROL_ARGUMENTS", "DialogueChecks", "check_dialogue"]

#: Arguments that say how to query, not what: never checked for grounding.
CONTROL_ARGUMENTS = frozenset(
    {
        "limit",
        "offset",
        "order_by",
        "descending",
        "ascending",
        "group_by",
        "sort",
        "page",
        "include_cancelled",
        "only_free",
        "min_seats",
    }
)

_NAMING = ("name", "title", "number", "reference", "code", "sku", "isbn", "barcode", "medication", "label")
#: Words that ask for a kind of field without naming it: trigger words -> stems of column words.
_ALIASES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("when", "date", "day", "time", "until", "since", "schedul", "long"),
        (
            "date",
            "time",
            "day",
            "deliver",
            "ship",
            "plac",
            "place",
            "book",
            "borrow",
            "due",
            "return",
            "issu",
            "join",
            "start",
            "end",
            "register",
            "request",
            "resolv",
            "departure",
            "arrival",
            "check",
            "paid",
            "open",
            "clos",
            "birth",
            "check_in",
            "check_out",
        ),
    ),
    (
        (
            "price",
            "cost",
            "much",
            "total",
            "amount",
            "pay",
            "paid",
            "charge",
            "spent",
            "spend",
            "refund",
            "fee",
            "fine",
            "owe",
            "expens",
            "cheap",
            "rate",
        ),
        ("price", "total", "amount", "cost", "fee", "rate", "refund", "nightly"),
    ),
    (
        ("where", "address", "locat", "room", "floor", "which"),
        (
            "city",
            "street",
            "address",
            "room",
            "floor",
            "country",
            "postal",
            "shelf",
            "branch",
            "origin",
            "destination",
            "label",
        ),
    ),
    (
        ("status", "state", "happen", "going", "stand", "progress", "still", "activ", "cancel", "deliver", "ship"),
        ("status", "state"),
    ),
    (
        ("many", "count", "number", "left", "remain", "stock", "seat", "availab", "how"),
        (
            "count",
            "stock",
            "seat",
            "refill",
            "renewal",
            "quantity",
            "unit",
            "line",
            "page",
            "available",
            "remain",
            "total",
        ),
    ),
    (("who", "doctor", "author", "airline", "name"), ("name", "author", "airline", "doctor", "specialty")),
)
_EVERYTHING = ("detail", "everyth", "all the info", "tell me about", "full", "summar", "overview", "what's on")

_FAILURE = (
    "sorry",
    "unfortunately",
    "couldn't",
    "could not",
    "can't",
    "cannot",
    "unable",
    "failed",
    "error",
    "didn't work",
    "refused",
    "not possible",
    "isn't possible",
    "wasn't",
    "didn't go",
    "no ",
    "not ",
)
_CAUSES: dict[str, tuple[str, ...]] = {
    "not_found": (
        "couldn't find",
        "could not find",
        "can't find",
        "cannot find",
        "no ",
        "not found",
        "doesn't exist",
        "does not exist",
        "unknown",
        "not on file",
        "isn't",
        "not on your",
        "can't be",
        "cannot be",
        "isn't eligible",
        "not eligible",
        "no longer",
    ),
    "unique": ("already", "taken", "booked", "exists", "duplicate", "in use"),
    "check": (
        "enough",
        "only",
        "limit",
        "maximum",
        "not allowed",
        "no more",
        "left",
        "exceed",
        "too many",
        "rule",
        "at least",
        "at most",
        "must",
    ),
    "invalid": (
        "at most",
        "at least",
        "isn't possible",
        "not possible",
        "valid",
        "format",
        "doesn't look",
        "does not look",
        "should be",
        "must",
        "expected",
        "isn't a",
        "not a ",
        "digits",
        "pattern",
        "needs",
    ),
}
_NEXT_STEP = ("?", "instead", "another", "would you like", "could you", "can you", "shall i", "try", "alternatively")


@dataclass(slots=True)
class DialogueChecks:
    """What the checks found in one dialogue."""

    calls: int = 0
    ungrounded_calls: int = 0
    arguments: int = 0
    ungrounded_arguments: int = 0
    ungrounded_examples: list[str] = field(default_factory=list)
    read_answers: int = 0
    answers_with_unasked: int = 0
    unasked_fields: int = 0
    unasked_examples: list[str] = field(default_factory=list)
    #: Tool calls per tool-using user request.
    steps: list[int] = field(default_factory=list)
    turns: int = 0
    tool_errors: int = 0
    errors_reported: int = 0
    errors_recovered: int = 0


def _cause(text: str) -> str:
    low = text.lower()
    if "invalid_arguments" in low or "invalid argument" in low or "expected" in low or "does not match" in low:
        return "invalid"
    if "unique" in low:
        return "unique"
    if "check constraint" in low or "constraint" in low:
        return "check"
    if "not_found" in low or "not found" in low or "no such" in low or "no row" in low:
        return "not_found"
    return "other"


def _constraint_words(text: str) -> list[str]:
    """``CHECK constraint failed: not_enough_stock`` -> ``["enough", "stock"]``."""
    low = text.lower()
    at = low.find("constraint failed:")
    if at < 0:
        return []
    name = low[at + len("constraint failed:") :].strip().split(" ", 1)[0]
    return [w for w in name.replace(".", "_").split("_") if len(w) >= 4]


def _reported(answer: str, error: str) -> bool:
    low = answer.lower()
    if not any(w in low for w in _FAILURE):
        return False
    cause = _cause(error)
    words = _CAUSES.get(cause, ())
    specific = _constraint_words(error)
    return any(w in low for w in words) or any(w in low for w in specific) or cause == "other"


def _is_distinctive(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) >= 10
    if isinstance(value, float):
        return not value.is_integer() or abs(value) >= 10
    return isinstance(value, str) and len(value.strip()) >= 3


def _asked(column: str, words: set[str], text: str) -> bool:
    low = column.lower()
    if any(h in low for h in _NAMING):
        return True
    labels = label_words(column)
    if any(w in words for w in labels):
        return True
    for triggers, columns in _ALIASES:
        if any(c in label for label in labels for c in columns) and any(t in text for t in triggers):
            return True
    return any(e in text for e in _EVERYTHING)


def _task_words(users: list[tuple[int, Msg]], upto: int) -> str:
    """The user's words of the task in progress at message ``upto`` (the last three messages when tasks are unknown)."""
    mine = [(i, m) for i, m in users if i <= upto]
    if not mine:
        return ""
    task = mine[-1][1].task
    if task is not None:
        return " ".join(m.text for _, m in mine if m.task == task).lower()
    return " ".join(m.text for _, m in mine[-3:]).lower()


def check_dialogue(view: DialogueView, *, told: str = "") -> DialogueChecks:
    """Run the word-and-call checks on one dialogue; ``told`` is what the agent was given up front (its rules)."""
    out = DialogueChecks()
    evidence = Evidence()
    evidence.add(told)
    users = [(i, m) for i, m in enumerate(view.messages) if m.role == "user"]
    results: dict[str, Msg] = {m.call_id: m for m in view.messages if m.role == "tool" and m.call_id}
    current: int | None = None
    last_user = -1
    pending_rows: list[dict[str, Any]] = []
    errors: list[tuple[int, Msg, str]] = []  # (index, result, tool)
    msgs = view.messages
    for i, m in enumerate(msgs):
        if m.role == "user":
            out.turns += 1
            if current:
                out.steps.append(current)
            current = 0
            last_user = i
            pending_rows = []
            evidence.add(m.text)
        elif m.role == "assistant":
            out.turns += len(m.calls) + (1 if m.text or not m.calls else 0)
            for call in m.calls:
                out.calls += 1
                if current is not None:
                    current += 1
                bad = []
                for name, value in call.args.items():
                    if name in CONTROL_ARGUMENTS or isinstance(value, bool) or value is None:
                        continue
                    if isinstance(value, list | dict):
                        continue
                    out.arguments += 1
                    if not evidence.has(value):
                        bad.append(f"{call.tool}.{name}={value!r}")
                if bad:
                    out.ungrounded_calls += 1
                    out.ungrounded_arguments += len(bad)
                    if len(out.ungrounded_examples) < 5:
                        out.ungrounded_examples.extend(bad[: 5 - len(out.ungrounded_examples)])
            if m.text and pending_rows and last_user >= 0:
                _check_answer(out, m.text, pending_rows, _task_words(users, last_user))
                pending_rows = []
        else:
            out.turns += 1
            evidence.add(m.text)
            if m.is_error:
                out.tool_errors += 1
                errors.append((i, m, m.tool or ""))
            else:
                pending_rows.extend(m.rows()[:5])
    if current:
        out.steps.append(current)
    for index, result, tool in errors:
        answer = next((m.text for m in msgs[index + 1 :] if m.role == "assistant" and m.text), "")
        if _reported(answer, result.text):
            out.errors_reported += 1
        later_ok = any(
            m.role == "tool" and not m.is_error and m.tool == tool and m.call_id in results for m in msgs[index + 1 :]
        )
        if later_ok or any(w in answer.lower() for w in _NEXT_STEP):
            out.errors_recovered += 1
    return out


def _check_answer(out: DialogueChecks, answer: str, rows: list[dict[str, Any]], asked_text: str) -> None:
    words = {stem(w) for w in word_tokens(asked_text)}
    user_numbers = number_tokens(asked_text)
    columns = list(dict.fromkeys(c for row in rows for c in row))
    asked = {c for c in columns if _asked(c, words, asked_text)}
    # What was asked for (or names the thing) is taken out of the answer first, so a value that
    # happens to equal it (a patient id of 30 beside 30 minutes, a day inside a date) is not counted.
    # All of them together, longest first: "ORD-10073" goes before the 73 of an order id inside
    # it (which would leave a "100" behind), and the result is the same whatever the order.
    full = answer.lower()
    low = full
    forms: set[str] = set()
    for row in rows:
        for column in asked:
            value = row.get(column)
            if value is None or isinstance(value, bool):
                continue
            strings, digits = forms_of(value)
            forms.update(f for f in (*strings, *digits) if len(f) >= 2)
    for form in sorted(forms, key=lambda f: (-len(f), f)):
        low = remove(low, form)
    numbers = number_tokens(low)
    tokens = set(word_tokens(low))
    reported: set[str] = set()
    for row in rows:
        for column, value in row.items():
            if column in reported or column in asked or not _is_distinctive(value):
                continue
            if _mentions_exactly(low, tokens, numbers, value) and not mentions(asked_text, value, user_numbers):
                reported.add(column)
    if not reported and not any(
        _mentions_exactly(full, set(word_tokens(full)), number_tokens(full), row.get(c))
        for row in rows
        for c in asked
        if _is_distinctive(row.get(c))
    ):
        return
    out.read_answers += 1
    unasked = sorted(reported)
    if unasked:
        out.answers_with_unasked += 1
        out.unasked_fields += len(unasked)
        if len(out.unasked_examples) < 5:
            out.unasked_examples.append(", ".join(unasked))


def _mentions_exactly(text: str, tokens: set[str], numbers: set[str], value: Any) -> bool:
    """Whether ``text`` writes ``value`` as it is (no stems); short words must be whole words."""
    strings, nums = forms_of(value)
    if nums and any(n in numbers for n in nums):
        return True
    root = stem(value.lower()) if isinstance(value, str) else None
    exact = [f for f in strings if len(f) >= 2 and (f != root or f == str(value).lower())]
    for form in exact:
        if len(form) <= 5 and " " not in form:
            if form in tokens:
                return True
        elif contains(text, form):
            return True
    return False
