"""How large a tool result may be, and what a call gets past that.

Any SQLite file can be served (``--database``), and a TEXT or BLOB cell may hold megabytes
(a stored document, an image). A result is recorded in the dataset, sent over the
transport and read by a model as context, so its JSON text is capped at
:data:`MAX_RESULT_CHARS` characters:

- A read past the cap is answered with :class:`ResultTooLargeError` (code
  ``result_too_large``) saying how large the result was and what would fit (a smaller
  ``limit``, narrower filters; a tool's columns cannot be chosen, so a row too large on
  its own cannot be shown). A read that lists rows stops fetching them once their text
  values alone pass the cap, so a refused list holds at most one batch of rows past it.
- A write past the cap has been committed, so it is answered as a success: its largest
  values are shown as a marker naming their size (``<text of 5,242,880 characters not
  shown>``), largest first until the result fits (and when that is not enough, the
  rows past the cap are left out; ``count`` still says how many there were).

The executor applies both, so the gold replay and the planners see what an agent sees.
"""

from __future__ import annotations

import re
import sqlite3
from itertools import chain
from operator import length_hint
from typing import Any

from schemas import ResultShape, ToolSpec
from schemas.errors import ToolError
from toolservers._json import dumps

__all__ = ["MAX_RESULT_CHARS", "ResultTooLargeError"]

#: Most characters of JSON text in one tool result. 256 Ki characters is about 64 K tokens:
#: far past any result of a real table's rows (100 rows of a dozen columns are ~30 K) and
#: still within a model's context next to the dialogue; at most 1 MiB as UTF-8.
MAX_RESULT_CHARS = 262_144

#: Rows a read that lists rows fetches at a time. A list of at most this many is not weighed
#: (its JSON text's length says it all; derived tools list 20 by default); a longer one has
#: its text values added up after each batch, so a refused read holds at most this many
#: rows past the cap.
_BATCH = 32
_OVER = f"over the {MAX_RESULT_CHARS:,}-character limit on a tool result"
_LIMIT_PARAM = re.compile(r"\bLIMIT\s+:([A-Za-z_]\w*)", re.IGNORECASE)
# '{"rows": [' and '], "count": ' with '}': what the JSON of a ROWS result adds to its rows.
_ROWS_OPEN, _ROWS_CLOSE = len('{"rows": ['), len('], "count": ') + 1


class ResultTooLargeError(ToolError):
    """A read whose result is past :data:`MAX_RESULT_CHARS`; nothing was changed.

    ``size`` is the result's length in characters of JSON (a lower bound when ``complete``
    is False: the rows were no longer fetched once past the cap), ``limit`` the cap, and
    ``fit`` how many of a list's first rows fit in it (None for a result that is not a list).
    """

    code = "result_too_large"

    def __init__(self, message: str, *, size: int, limit: int, complete: bool, fit: int | None = None) -> None:
        self.size = size
        self.limit = limit
        self.complete = complete
        self.fit = fit
        super().__init__(message)


def fetch_bounded(cursor: sqlite3.Cursor, limit: int = MAX_RESULT_CHARS) -> tuple[list[Any], bool]:
    """The cursor's rows, fetched until their text and blob values alone pass ``limit``.

    Returns the rows and whether they are all of them. Those values' lengths are less than
    the rows' JSON text, so a list cut here could never be shown whole.
    """
    rows: list[Any] = cursor.fetchmany(_BATCH)
    if len(rows) < _BATCH:
        return rows, True
    # length_hint is a str's or bytes' length and 0 for a number or NULL: no Python per cell.
    weight = sum(map(length_hint, chain.from_iterable(rows)))
    while weight <= limit and (batch := cursor.fetchmany(_BATCH)):
        rows += batch
        weight += sum(map(length_hint, chain.from_iterable(batch)))
    if weight > limit:
        cursor.close()
        return rows, False
    return rows, True


def refused_rows(spec: ToolSpec, rows: list[dict[str, Any]], size: int | None) -> ResultTooLargeError:
    """The error of a read listing ``rows``, past the cap; ``size`` None: not all rows were fetched."""
    lengths = [len(dumps(row)) for row in rows]
    fit, total = 0, _ROWS_OPEN + _ROWS_CLOSE + 1
    for n in lengths:
        grown = total + n + (2 if fit else 0) + len(str(fit + 1)) - len(str(fit))
        if grown > MAX_RESULT_CHARS:
            break
        fit, total = fit + 1, grown
    complete = size is not None
    if size is None:
        size = _ROWS_OPEN + sum(lengths) + 2 * max(len(rows) - 1, 0) + _ROWS_CLOSE + len(str(len(rows)))
    how_large = f"{size:,} characters of JSON" if complete else f"at least {size:,} characters of JSON"
    head = f"the result is {how_large}, {_OVER}, so it is not shown"
    if fit == 0:
        what = _row(spec)
        return ResultTooLargeError(
            f"{head}: even its first {what} is {lengths[0]:,} characters{_largest(rows[0])}. {_no_columns(what)}; "
            "narrow the filters to leave it out. Nothing was changed.",
            size=size,
            limit=MAX_RESULT_CHARS,
            complete=complete,
            fit=0,
        )
    param = _limit_param(spec)
    first = "only the first row fits" if fit == 1 else f"only the first {fit:,} rows fit"
    again = f"Call again with `{param}` at most {fit:,}" if param else "Call again with arguments that match fewer"
    alone = ""
    if fit < len(rows) and _ROWS_OPEN + lengths[fit] + _ROWS_CLOSE + 1 > MAX_RESULT_CHARS:
        alone = (
            f"; the next {_row(spec)} is {lengths[fit]:,} characters on its own{_largest(rows[fit])}, "
            "too large to be shown at all"
        )
    return ResultTooLargeError(
        f"{head}: {first}. {again}, or narrow the filters (a tool's columns cannot be chosen)"
        f"{alone}. Nothing was changed.",
        size=size,
        limit=MAX_RESULT_CHARS,
        complete=complete,
        fit=fit,
    )


def refused(spec: ToolSpec, structured: dict[str, Any], text: str) -> ResultTooLargeError:
    """The error of a read whose whole result ``structured`` (JSON ``text``) is past the cap."""
    shape = spec.implementation.result
    if shape is ResultShape.ROWS:
        return refused_rows(spec, structured["rows"], len(text))
    if shape is ResultShape.SCALAR:
        what, largest = "value", ""
    else:
        row = structured.get("row") if shape is ResultShape.OPTIONAL_ROW else structured
        what, largest = _row(spec), _largest(row) if isinstance(row, dict) else ""
    return ResultTooLargeError(
        f"the {what} is {len(text):,} characters of JSON{largest}, {_OVER}, so it is not shown. "
        f"{_no_columns(what)}. Nothing was changed.",
        size=len(text),
        limit=MAX_RESULT_CHARS,
        complete=True,
    )


def shown(structured: dict[str, Any], text: str) -> tuple[dict[str, Any], str]:
    """A committed write's result past the cap, cut to fit: its largest values become markers.

    Values are replaced largest first, each by a marker naming its size, until the JSON
    text fits; when every value worth replacing is replaced and a list of rows is still too
    long, the rows past the cap are left out (``count`` keeps the number there were).
    ``structured`` is changed in place. Returns it and its new JSON text.
    """
    size = len(text)
    cells = sorted(_cells(structured), key=lambda cell: -cell[2])
    for holder, key, n in cells:
        if size <= MAX_RESULT_CHARS:
            break
        marker = _marker(holder[key])
        size += len(dumps(marker)) - n
        holder[key] = marker
    rows = structured.get("rows")
    if size > MAX_RESULT_CHARS and isinstance(rows, list):
        while rows and size > MAX_RESULT_CHARS:
            size -= len(dumps(rows.pop())) + (2 if rows else 0)
    return structured, dumps(structured)


def _cells(value: Any) -> list[tuple[Any, Any, int]]:
    """Every text or blob value inside ``value`` worth a marker: (its dict or list, its key, its JSON length)."""
    out: list[tuple[Any, Any, int]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(item, str | bytes):
            # A marker is ~40 characters: a shorter value would not get shorter.
            if len(item) > 64:
                out.append((value, key, len(dumps(item))))
        elif isinstance(item, dict | list):
            out.extend(_cells(item))
    return out


def _marker(value: str | bytes) -> str:
    if isinstance(value, bytes):
        return f"<blob of {len(value):,} bytes not shown>"
    return f"<text of {len(value):,} characters not shown>"


def _largest(row: dict[str, Any]) -> str:
    """``"(its `body` alone is 5,242,880 characters)"`` for the row's longest text or blob value."""
    sizes = [(length_hint(v), k) for k, v in row.items()]
    if not sizes:
        return ""
    n, name = max(sizes, key=lambda s: s[0])
    unit = "bytes" if isinstance(row[name], bytes) else "characters"
    return f" (its `{name}` alone is {n:,} {unit})" if n else ""


def _no_columns(what: str) -> str:
    return f"A tool's columns cannot be chosen, so this tool cannot show this {what}"


def _row(spec: ToolSpec) -> str:
    return f"{spec.table} row" if spec.table else "row"


def _limit_param(spec: ToolSpec) -> str | None:
    """The argument that a list's ``LIMIT`` is bound to, when the tool has one."""
    statements = spec.implementation.statements
    m = _LIMIT_PARAM.search(statements[-1]) if statements else None
    if m is None or m.group(1) not in spec.input_schema.get("properties", {}):
        return None
    return m.group(1)
