"""What an external server's results hold: rows as the offline agent reads them, and values in them.

Structured results (and text that is JSON) give rows of fields; other text gives values
by pattern: ``Key: value`` lines, hexadecimal ids, one-word list items, and its first
sentence-like line. A value's :class:`Source` says how to find it again in a result of
the same call (a field, and a pattern for text): that is how a later call's argument
refers to an earlier result, and how a value is re-read from a replay.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from simulator.external.proxy import Answer

__all__ = ["Harvest", "Source", "harvest_values", "result_rows", "value_of"]

_KEY_LINE = re.compile(r"(?m)^[ \t]*([A-Za-z][\w ]{0,30}):[ \t]+(\S.*?)[ \t]*$")
_HEX = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b")
_ITEM_PATTERN = r"(?m)^[*+-]?[ \t]*([\w./-]+)[ \t]*$"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a harvested value is in an observation's result: its row field, and a pattern for text."""

    obs: int
    field: str
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class Harvest:
    key: str
    value: Any
    source: Source | None


def result_rows(answer: Answer) -> tuple[list[dict[str, Any]], bool]:
    """The rows of a result as the offline agent reads them, and whether they came from text."""
    structured = answer.structured
    if structured is None:
        try:
            structured = json.loads(answer.text)
        except ValueError:
            return [{"result": answer.text}], True
    if isinstance(structured, dict):
        if isinstance(structured.get("rows"), list):
            return [r for r in structured["rows"] if isinstance(r, dict)], False
        return [structured], False
    return [], False


def harvest_values(answer: Answer, index: int) -> list[Harvest]:
    rows, from_text = result_rows(answer)
    out: list[Harvest] = []
    if not from_text:
        for r, row in enumerate(rows[:3]):
            for key, value in row.items():
                if isinstance(value, str | int | float) and not isinstance(value, bool):
                    out.append(Harvest(key, value, Source(index, key) if r == 0 else None))
        return out
    text = answer.text
    seen: set[str] = set()
    for match in _KEY_LINE.finditer(text):
        raw, value = match.group(1), match.group(2)
        key = re.sub(r"\W+", "_", raw.strip().lower())
        pattern = rf"(?m)^[ \t]*{re.escape(raw)}:[ \t]+(\S.*?)[ \t]*$"
        first = key not in seen
        seen.add(key)
        out.append(Harvest(key, value, Source(index, "result", pattern) if first else None))
    for match in _HEX.finditer(text):
        value = match.group(0)
        pattern = rf"\b([0-9a-f]{{{len(value)}}})\b"
        found = re.search(pattern, text)
        ok = found is not None and found.group(1) == value
        out.append(Harvest("id", value, Source(index, "result", pattern) if ok else None))
    line = next(
        (ln.strip() for ln in text.splitlines() if len(ln.split()) >= 2 and not ln.rstrip().endswith(":")), None
    )
    if line is not None and len(line) <= 120:
        out.append(Harvest("line", line, None))
    for match in re.finditer(_ITEM_PATTERN, text):
        value = match.group(1)
        found = re.search(_ITEM_PATTERN, text)
        ok = found is not None and found.group(1) == value and found.start() == match.start()
        out.append(Harvest("item", value, Source(index, "result", _ITEM_PATTERN) if ok else None))
    return out


def value_of(answer: Answer, key: str) -> Any:
    """The first value called ``key`` in ``answer`` (None when there is none)."""
    return next((h.value for h in harvest_values(answer, 0) if h.key == key), None)
