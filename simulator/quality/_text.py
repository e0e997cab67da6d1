"""Text helpers of the quality checks: sentences, tokens, and the ways a value is written.

Everything here is linear in the length of the text (no pattern can backtrack: every
repetition in these expressions is over a character class its neighbour cannot match),
so a hostile megabyte of agent text costs a scan, not a stall.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

__all__ = [
    "Evidence",
    "contains",
    "forms_of",
    "label_words",
    "mentions",
    "number_tokens",
    "remove",
    "sentences",
    "stem",
    "word_tokens",
]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?|[^\w\s]")
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_SMALL = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
)
_GENERIC = frozenset({"id", "on", "at", "of", "is", "the", "a", "no", "by", "to", "in", "for", "per", "num", "nr"})


def sentences(text: str) -> list[str]:
    """The sentences of ``text``: split after ``.``, ``!`` or ``?`` followed by white space."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def word_tokens(text: str) -> list[str]:
    """Lower-case words and punctuation marks, the unit of distinct-n."""
    return _WORD.findall(text.lower())


def number_tokens(text: str) -> set[str]:
    """Every number written in ``text`` (``1,250.50``, ``3``), as written."""
    return set(_NUMBER.findall(text))


def stem(word: str) -> str:
    """A crude stem: ``cancelled`` -> ``cancel``, ``delivered`` -> ``deliver``, ``books`` -> ``book``."""
    w = word.lower()
    for suffix in ("lled", "ied", "ing", "ed", "es", "s"):
        if suffix == "s" and w.endswith(("ss", "us", "is")):
            continue
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            if suffix == "lled":
                return w[:-3]
            if suffix == "ied":
                return w[:-3] + "y"
            return w[: -len(suffix)]
    return w


def label_words(column: str) -> list[str]:
    """The words of a column name that say what it is: ``delivered_on`` -> ``["deliver"]``."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", column.lower()) if p and p not in _GENERIC]
    return [stem(p) for p in parts]


def _date_forms(year: int, month: int, day: int) -> list[str]:
    try:
        d = dt.date(year, month, day)
    except ValueError:
        return []
    name = _MONTHS[d.month - 1]
    return [
        f"{d.day} {name}",
        f"{name} {d.day}",
        f"{d.day}{_ordinal(d.day)} {name}",
        f"{name} {d.day}{_ordinal(d.day)}",
    ]


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _time_forms(hour: int, minute: int) -> list[str]:
    h12 = hour % 12 or 12
    half = "am" if hour < 12 else "pm"
    out = [
        f"{hour:02d}:{minute:02d}",
        f"{hour}:{minute:02d}",
        f"{h12}:{minute:02d} {half}",
        f"{h12}:{minute:02d}{half}",
    ]
    if minute == 0:
        out += [f"{h12} {half}", f"{h12}{half}", f"{h12} o'clock"]
    return out


def forms_of(value: Any) -> tuple[list[str], list[str]]:
    """How ``value`` may be written: (lower-case strings to find as substrings, number tokens)."""
    if value is None or isinstance(value, bool):
        return [], []
    if isinstance(value, int):
        words = [_SMALL[value]] if 0 <= value < len(_SMALL) else []
        return words, [str(value), f"{value:,}"]
    if isinstance(value, float):
        floats = {f"{value:.2f}", repr(value), f"{value:,.2f}"}
        if value.is_integer():
            floats.add(str(int(value)))
            floats.add(f"{int(value):,}")
        return [], sorted(floats)
    if not isinstance(value, str):
        return [], []
    text = value.strip().lower()
    if not text:
        return [], []
    out = {text}
    if "_" in text:
        out.add(text.replace("_", " "))
    m = _ISO_DATE.fullmatch(text[:10]) if len(text) >= 10 else None
    if m:
        out.update(_date_forms(int(m[1]), int(m[2]), int(m[3])))
        t = _TIME.search(text[10:])
        if t:
            out.update(_time_forms(int(t[1]), int(t[2])))
    t = _TIME.fullmatch(text)
    if t:
        out.update(_time_forms(int(t[1]), int(t[2])))
    if " " not in text and text.isalpha() and len(text) >= 5:
        out.add(stem(text))
    return sorted(out), []


def contains(text: str, form: str) -> bool:
    """``form`` in ``text``; a form that starts or ends with a digit not as part of a longer
    number ("may 20" is not in "may 2026", nor "3 may" in "13 may")."""
    if not form:
        return False
    head, tail = form[0].isdigit(), form[-1].isdigit()
    if not head and not tail:
        return form in text
    start = text.find(form)
    while start >= 0:
        end = start + len(form)
        if not (head and start > 0 and text[start - 1].isdigit()) and not (
            tail and end < len(text) and text[end].isdigit()
        ):
            return True
        start = text.find(form, start + 1)
    return False


def remove(text: str, form: str) -> str:
    """``text`` with every whole occurrence of ``form`` (as :func:`contains` finds them) blanked out."""
    if not form:
        return text
    head, tail = form[0].isdigit(), form[-1].isdigit()
    if not head and not tail:
        return text.replace(form, " ")
    out: list[str] = []
    at = 0
    start = text.find(form)
    while start >= 0:
        end = start + len(form)
        if not (head and start > 0 and text[start - 1].isdigit()) and not (
            tail and end < len(text) and text[end].isdigit()
        ):
            out += [text[at:start], " "]
            at = end
            start = text.find(form, end)
        else:
            start = text.find(form, start + 1)
    out.append(text[at:])
    return "".join(out)


class Evidence:
    """What has been said or returned so far, grown message by message, searchable for a value."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._text = ""
        self._numbers: set[str] = set()
        self._dirty = False

    def add(self, text: str) -> None:
        if text:
            self._parts.append(text.lower())
            self._numbers |= number_tokens(text)
            self._dirty = True

    @property
    def text(self) -> str:
        if self._dirty:
            self._text = "\n".join(self._parts)
            self._dirty = False
        return self._text

    def has(self, value: Any) -> bool:
        """Whether ``value`` was said or returned, in one of its usual forms."""
        strings, numbers = forms_of(value)
        if any(n in self._numbers for n in numbers):
            return True
        text = self.text
        return any(contains(text, s) for s in strings)


def mentions(text: str, value: Any, numbers: set[str] | None = None) -> bool:
    """Whether ``text`` (lower case) writes ``value``; ``numbers`` are the text's number tokens."""
    strings, nums = forms_of(value)
    if nums and any(n in (numbers if numbers is not None else number_tokens(text)) for n in nums):
        return True
    return any(contains(text, s) for s in strings if len(s) >= 2)
