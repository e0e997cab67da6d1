"""Standard JSON only: no ``NaN`` or ``Infinity`` leaves toolservers.

A REAL column can hold an infinity (SQLite stores NaN as NULL); JSON has no word for
either, so such values become ``null``.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "finite", "standard"]


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (inside dicts, lists and tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """``value`` as standard JSON text (unicode kept, unknown types as ``str``, no NaN/Infinity)."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:  # a non-finite float somewhere: rare, so only then walk the value
        return json.dumps(finite(value), ensure_ascii=False, default=str, allow_nan=False)


def standard(value: Any) -> tuple[Any, str]:
    """``value`` made JSON-safe (non-finite floats as None, a copy only when needed) and its JSON text."""
    try:
        return value, json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        clean = finite(value)
        return clean, json.dumps(clean, ensure_ascii=False, default=str, allow_nan=False)
