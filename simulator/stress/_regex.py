"""Strings that match a regular expression, for JSON Schema ``pattern`` keywords.

Walks the parse tree of Python's own regex parser and emits one matching string: a
literal for literals, a member for classes, a count within the bounds for repeats.
Lookarounds and anchors are skipped and back references are not supported; every string
is checked with ``re.search`` (as JSON Schema matches patterns), so a miss means None,
never a wrong value.
"""

from __future__ import annotations

import importlib
import random
import re
from typing import Any

__all__ = ["sample_pattern"]


def sample_pattern(pattern: str, rng: random.Random, *, longest: bool) -> str | None:
    """A string matching ``pattern`` (re.search, as JSON Schema does), or None when too hard."""
    try:
        parser: Any = importlib.import_module("re._parser")
        parsed = parser.parse(pattern)
    except Exception:
        return None
    for _ in range(5):
        try:
            text = _emit(parsed, rng, longest)
        except _Unsupported:
            return None
        try:
            if re.search(pattern, text):
                return text
        except re.error:
            return None
    return None


class _Unsupported(Exception):
    pass


_CATEGORY_CHARS = {
    "CATEGORY_DIGIT": "0123456789",
    "CATEGORY_NOT_DIGIT": "abcXYZ-",
    "CATEGORY_WORD": "abcxyzABC019_",
    "CATEGORY_NOT_WORD": " -.!",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "abcXYZ019",
}


def _emit(parsed: Any, rng: random.Random, longest: bool) -> str:
    out: list[str] = []
    for op, av in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(av))
        elif name == "NOT_LITERAL":
            out.append("a" if chr(av) != "a" else "b")
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_emit_in(av, rng))
        elif name in {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}:
            lo, hi, sub = av
            top = lo + 3 if longest else lo + 1
            count = min(int(hi), top) if isinstance(hi, int) and hi < 2**31 else top
            count = rng.randint(lo, max(lo, count)) if not longest else max(lo, count)
            out.extend(_emit(sub, rng, longest) for _ in range(count))
        elif name == "SUBPATTERN":
            out.append(_emit(av[-1], rng, longest))
        elif name == "ATOMIC_GROUP":
            out.append(_emit(av, rng, longest))
        elif name == "BRANCH":
            out.append(_emit(rng.choice(av[1]), rng, longest))
        elif name == "CATEGORY":
            out.append(rng.choice(_CATEGORY_CHARS.get(str(av), "a")))
        elif name in {"AT", "ASSERT", "ASSERT_NOT"}:
            continue
        else:
            raise _Unsupported(name)
    return "".join(out)


def _emit_in(items: Any, rng: random.Random) -> str:
    choices: list[str] = []
    negate = False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            choices.append(chr(av))
        elif name == "RANGE":
            lo, hi = av
            choices.extend(chr(c) for c in range(lo, min(hi, lo + 25) + 1))
        elif name == "CATEGORY":
            choices.extend(_CATEGORY_CHARS.get(str(av), "a"))
    if negate:
        for candidate in "aZ0_- .":
            if candidate not in choices:
                return candidate
        raise _Unsupported("negated set")
    if not choices:
        raise _Unsupported("empty set")
    return rng.choice(choices)
