"""Arguments generated from a tool's input schema: valid ones (boundaries included) and invalid ones.

Seeded and deterministic: the same schema, tool name and seed always give the same cases.
Valid cases come in a fixed order of strategies first (the typical call with only the
required fields, every field, the lower and upper boundaries, huge numbers and very long
strings, unicode, hostile text), then random mixtures of them. Every valid case is
checked against the schema and every invalid case is checked to really be invalid, so a
finding never rests on a case the schema itself would not judge that way. Formats are
generated correctly but never used to make a case invalid (most validators ignore them).
"""

from __future__ import annotations

import copy
import functools
import json
import random
import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from simulator.stress._regex import sample_pattern
from toolservers.validation import schema_problems

__all__ = ["HOSTILE_STRINGS", "UNICODE_STRINGS", "Case", "CaseGenerator", "validator_for"]

Json = Any

#: Strings that break naive SQL, LIKE patterns, shells, paths and templates when pasted in.
HOSTILE_STRINGS = (
    "'; DROP TABLE users; --",
    "' OR '1'='1",
    "%_\\%",
    "../../../etc/passwd",
    "$(rm -rf /)",
    "{{7*7}}${7*7}",
    "<script>alert(1)</script>",
    "nul\u0000byte",
    "line\nbreak\r\ttab",
)
UNICODE_STRINGS = (
    "Zoë Ångström",
    "日本語のテキスト",
    "emoji 🙂👍🏽🇫🇷",
    "مرحبا بالعالم",
    "zero\u200bwidth\u200djoiner",
    "rtl \u202eoverride",
    "e\u0301\u0302\u0303 combining",
    "\U0001f600" * 8,
)
LONG_STRING_LENGTH = 10_000
HUGE_INTEGERS = (2**63 - 1, -(2**63), 2**64, 10**30)
HUGE_NUMBERS = (1.7976931348623157e308, -1.7976931348623157e308, 5e-324)
_MAX_DEPTH = 6
_UNKNOWN_FIELD = "__unexpected_field__"

_FORMATS: dict[str, str] = {
    "date": "2024-02-29",
    "date-time": "2024-02-29T23:59:59Z",
    "time": "23:59:59",
    "email": "ada@example.com",
    "idn-email": "zoë@example.com",
    "uri": "https://example.com/a?b=c",
    "uri-reference": "/a/b?c=d",
    "iri": "https://example.com/ä",
    "url": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
    "duration": "P1DT2H",
    "json-pointer": "/a/0",
    "regex": "^a+$",
}

#: Strategies in the order valid cases use them before random mixtures begin.
_PLAN: tuple[tuple[str, bool], ...] = (
    ("typical", False),
    ("typical", True),
    ("min", True),
    ("max", True),
    ("huge", True),
    ("unicode", True),
    ("hostile", True),
)
_INVALID_KINDS = ("missing_required", "wrong_type", "unknown_field", "out_of_enum", "null", "out_of_range")


def validator_for(schema: Any) -> Draft202012Validator | None:
    """A compiled validator for ``schema``, or None when it is not valid JSON Schema (cached by content)."""
    if not isinstance(schema, dict):
        return None
    try:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return _validator(canonical)


@functools.lru_cache(maxsize=4096)
def _validator(canonical: str) -> Draft202012Validator | None:
    schema = json.loads(canonical)
    if schema_problems(schema):
        return None
    validator = Draft202012Validator(schema)
    try:
        validator.is_valid({})  # an unresolvable reference fails here, not in the middle of a run
    except Exception:
        return None
    return validator


@dataclass(frozen=True, slots=True)
class Case:
    """One set of arguments. ``kind`` names how it was made; ``field`` the field made invalid."""

    kind: str
    arguments: dict[str, Json]
    valid: bool
    field: str | None = None

    def describe(self, limit: int = 400) -> str:
        """The arguments as JSON, long strings abbreviated (``"long long ...(10000 chars)"``)."""
        text = json.dumps(_abbreviate(self.arguments), ensure_ascii=False, default=str)
        return text if len(text) <= limit else text[: limit - 3] + "..."


def _abbreviate(value: Json) -> Json:
    if isinstance(value, str) and len(value) > 40:
        return f"{value[:16]}...({len(value)} chars)"
    if isinstance(value, dict):
        return {k: _abbreviate(v) for k, v in value.items()}
    if isinstance(value, list):
        shown = [_abbreviate(v) for v in value[:5]]
        return shown + ([f"...({len(value)} items)"] if len(value) > 5 else [])
    return value


class CaseGenerator:
    """Valid and invalid arguments for one input schema.

    ``schema_ok`` is false when the schema is not valid JSON Schema: valid cases are then
    made on a best-effort basis without checking, and no invalid cases are made (nothing
    can be called invalid against a broken schema).
    """

    def __init__(self, schema: dict[str, Json], *, seed: int, tool: str) -> None:
        self.schema = schema
        self._rng = random.Random(f"{seed}:{tool}")
        self._defs: dict[str, Json] = {}
        for key in ("$defs", "definitions"):
            defs = schema.get(key)
            if isinstance(defs, dict):
                self._defs.update({f"#/{key}/{name}": d for name, d in defs.items()})
        self._validator = validator_for(schema)

    @property
    def schema_ok(self) -> bool:
        return self._validator is not None

    def is_valid(self, arguments: dict[str, Json]) -> bool | None:
        """Whether ``arguments`` match the schema; None when the schema cannot judge."""
        if self._validator is None:
            return None
        try:
            return bool(self._validator.is_valid(arguments))
        except Exception:
            return None

    # -- valid ------------------------------------------------------------------------------

    def valid_cases(self, n: int) -> list[Case]:
        """Up to ``n`` distinct valid cases: the fixed strategies first, then random mixtures."""
        cases: list[Case] = []
        seen: set[str] = set()
        attempts = 0
        while len(cases) < n and attempts < n * 4 + len(_PLAN):
            if attempts < len(_PLAN):
                strategy, all_fields = _PLAN[attempts]
            else:
                strategy, all_fields = "random", self._rng.random() < 0.5
            attempts += 1
            value = self._value(self.schema, strategy, 0, all_fields=all_fields)
            if not isinstance(value, dict):
                continue
            key = json.dumps(value, sort_keys=True, default=str)
            if key in seen:
                continue
            ok = self.is_valid(value)
            if ok is False:
                continue
            seen.add(key)
            kind = strategy if all_fields or strategy != "typical" else "required_only"
            cases.append(Case(kind=kind, arguments=value, valid=True))
        return cases

    def _resolve(self, node: Json) -> Json:
        for _ in range(_MAX_DEPTH):
            if not isinstance(node, dict) or "$ref" not in node:
                break
            target = self._defs.get(str(node["$ref"]))
            if target is None:
                return {}
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def _value(self, node: Json, strategy: str, depth: int, *, all_fields: bool = True) -> Json:
        node = self._resolve(node)
        if not isinstance(node, dict):
            return None if node is False else "x"
        rng = self._rng
        pick = _pick_strategy(rng) if strategy == "random" else strategy
        if "const" in node:
            return copy.deepcopy(node["const"])
        if isinstance(node.get("enum"), list) and node["enum"]:
            values = node["enum"]
            non_null = [v for v in values if v is not None] or values
            if pick == "min":
                return copy.deepcopy(non_null[0])
            if pick in {"max", "huge"}:
                return copy.deepcopy(non_null[-1])
            if pick == "typical" and "default" in node and node["default"] in values:
                return copy.deepcopy(node["default"])
            return copy.deepcopy(rng.choice(values) if strategy == "random" else non_null[0])
        for key in ("anyOf", "oneOf"):
            branches = node.get(key)
            if isinstance(branches, list) and branches:
                usable = [b for b in branches if self._resolve(b) != {"type": "null"}] or branches
                branch = rng.choice(branches) if strategy == "random" else usable[0]
                base = {k: v for k, v in node.items() if k not in {"anyOf", "oneOf"}}
                return self._value({**base, **self._resolve(branch)}, strategy, depth, all_fields=all_fields)
        if isinstance(node.get("allOf"), list):
            merged: dict[str, Json] = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                part = self._resolve(part)
                if isinstance(part, dict):
                    props = {**merged.get("properties", {}), **part.get("properties", {})}
                    required = [*merged.get("required", []), *part.get("required", [])]
                    merged = {**merged, **part, "properties": props, "required": required}
            return self._value(merged, strategy, depth, all_fields=all_fields)
        kind = _json_type(node, rng, strategy)
        if kind == "null":
            return None
        if kind == "boolean":
            return {"min": False, "max": True}.get(pick, rng.random() < 0.5 if strategy == "random" else True)
        if kind == "integer":
            return _integer(node, pick, rng)
        if kind == "number":
            return _number(node, pick, rng)
        if kind == "string":
            return _string(node, pick, rng)
        if kind == "array":
            if depth >= _MAX_DEPTH:
                return []
            items = node.get("items", {})
            lo = int(node.get("minItems", 0))
            hi = node.get("maxItems")
            count = {"min": lo, "max": min(int(hi), 50) if hi is not None else 50, "typical": max(lo, 1)}.get(
                pick, rng.randint(lo, max(lo, min(int(hi) if hi is not None else 5, 5)))
            )
            values = [self._value(items, strategy, depth + 1) for _ in range(count)]
            if node.get("uniqueItems"):
                unique: list[Json] = []
                for v in values:
                    if v not in unique:
                        unique.append(v)
                values = unique
            return values
        if kind != "object":  # "string", or a type name the schema misspelt
            return _string(node, pick, rng)
        if depth >= _MAX_DEPTH:
            return {}
        props = node.get("properties", {})
        if not isinstance(props, dict):
            props = {}
        required = [r for r in node.get("required", []) if isinstance(r, str)]
        out: dict[str, Json] = {}
        for name, sub in props.items():
            wanted = name in required or (all_fields if strategy != "random" else rng.random() < 0.6)
            if wanted:
                out[name] = self._field(sub, strategy, depth)
        for name in required:
            if name not in out:
                out[name] = "x"  # required but undeclared: the schema's own defect
        return out

    def _field(self, node: Json, strategy: str, depth: int) -> Json:
        """A value for one field that is valid on its own, falling back to a typical one."""
        value = self._value(node, strategy, depth + 1)
        if self._validator is None or self._field_ok(node, value):
            return value
        for fallback in ("typical", "random", "random"):
            value = self._value(node, fallback, depth + 1)
            if self._field_ok(node, value):
                return value
        return value

    def _field_ok(self, node: Json, value: Json) -> bool:
        if not isinstance(node, dict):
            return True
        schema = dict(node)
        for key in ("$defs", "definitions"):
            if key in self.schema:
                schema[key] = self.schema[key]
        validator = validator_for(schema)
        if validator is None:
            return True
        try:
            return bool(validator.is_valid(value))
        except Exception:
            return True

    # -- invalid ------------------------------------------------------------------------------

    def invalid_cases(self, n: int) -> list[Case]:
        """Up to ``n`` cases the schema rejects, one kind after another (every kind before repeats)."""
        if self._validator is None or n <= 0:
            return []
        root = self._resolve(self.schema)
        props: dict[str, Json] = root.get("properties", {}) if isinstance(root.get("properties"), dict) else {}
        required = [r for r in root.get("required", []) if isinstance(r, str) and r in props]
        base = self._value(root, "typical", 0, all_fields=True)
        if not isinstance(base, dict) or self.is_valid(base) is not True:
            base = self._value(root, "typical", 0, all_fields=False)
        if not isinstance(base, dict):
            return []
        per_kind: dict[str, list[Case]] = {k: [] for k in _INVALID_KINDS}
        for name in required:
            per_kind["missing_required"].append(
                Case("missing_required", {k: v for k, v in base.items() if k != name}, False, name)
            )
        names = list(props)
        self._rng.shuffle(names)
        for name in names:
            sub = self._resolve(props[name])
            for wrong in _wrong_types(sub):
                per_kind["wrong_type"].append(Case("wrong_type", {**base, name: wrong}, False, name))
            if isinstance(sub, dict) and isinstance(sub.get("enum"), list):
                per_kind["out_of_enum"].append(Case("out_of_enum", {**base, name: _outside(sub["enum"])}, False, name))
            per_kind["null"].append(Case("null", {**base, name: None}, False, name))
            for bad in _out_of_range(sub):
                per_kind["out_of_range"].append(Case("out_of_range", {**base, name: bad}, False, name))
        per_kind["unknown_field"].append(Case("unknown_field", {**base, _UNKNOWN_FIELD: 1}, False, _UNKNOWN_FIELD))
        cases: list[Case] = []
        seen: set[str] = set()
        queues = {k: [c for c in v if self.is_valid(c.arguments) is False] for k, v in per_kind.items()}
        while len(cases) < n and any(queues.values()):
            for kind in _INVALID_KINDS:
                if queues[kind] and len(cases) < n:
                    case = queues[kind].pop(0)
                    key = json.dumps(case.arguments, sort_keys=True, default=str)
                    if key not in seen:
                        seen.add(key)
                        cases.append(case)
        return cases


# -- leaves ----------------------------------------------------------------------------------


def _pick_strategy(rng: random.Random) -> str:
    return rng.choice(("typical", "typical", "min", "max", "huge", "unicode", "hostile"))


def _json_type(node: dict[str, Json], rng: random.Random, strategy: str) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        options = [k for k in kind if isinstance(k, str)]
        non_null = [k for k in options if k != "null"]
        if strategy == "random" and options:
            return str(rng.choice(options))
        return non_null[0] if non_null else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in node or "required" in node:
        return "object"
    if "items" in node or "minItems" in node:
        return "array"
    if any(k in node for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def _bounds(node: dict[str, Json], integer: bool) -> tuple[float | None, float | None]:
    lo: float | None = None
    hi: float | None = None
    step = 1 if integer else 1e-9
    if isinstance(node.get("minimum"), int | float):
        lo = node["minimum"]
    if isinstance(node.get("exclusiveMinimum"), int | float):
        lo = max(lo if lo is not None else -float("inf"), node["exclusiveMinimum"] + step)
    if isinstance(node.get("maximum"), int | float):
        hi = node["maximum"]
    if isinstance(node.get("exclusiveMaximum"), int | float):
        hi = min(hi if hi is not None else float("inf"), node["exclusiveMaximum"] - step)
    return lo, hi


def _integer(node: dict[str, Json], pick: str, rng: random.Random) -> int:
    lo_f, hi_f = _bounds(node, True)
    lo = int(-(-lo_f // 1)) if lo_f is not None else None
    hi = int(hi_f // 1) if hi_f is not None else None

    def clamp(v: int) -> int:
        if lo is not None and v < lo:
            v = lo
        if hi is not None and v > hi:
            v = hi
        return v

    if pick == "typical":
        default = node.get("default")
        value = default if isinstance(default, int) and not isinstance(default, bool) else 1
    elif pick == "min":
        value = lo if lo is not None else 0
    elif pick == "max":
        value = hi if hi is not None else 2**31 - 1
    elif pick == "huge":
        value = rng.choice(HUGE_INTEGERS)
    else:
        value = rng.choice((-1, 0, 1, 2, 7, 42, 1000, -(2**31)))
    value = clamp(value)
    multiple = node.get("multipleOf")
    if isinstance(multiple, int) and multiple > 0:
        value = clamp(value - value % multiple)
    return value


def _number(node: dict[str, Json], pick: str, rng: random.Random) -> float | int:
    lo, hi = _bounds(node, False)
    if pick == "typical":
        default = node.get("default")
        value: float = default if isinstance(default, int | float) and not isinstance(default, bool) else 1.5
    elif pick == "min":
        value = lo if lo is not None else 0.0
    elif pick == "max":
        value = hi if hi is not None else 1e15
    elif pick == "huge":
        value = rng.choice(HUGE_NUMBERS)
    else:
        value = rng.choice((-1.5, 0.0, 0.1, 3.14159, 99.99, -1e-6))
    if lo is not None and value < lo:
        value = lo
    if hi is not None and value > hi:
        value = hi
    return value


def _string(node: dict[str, Json], pick: str, rng: random.Random) -> str:
    min_len = int(node.get("minLength", 0))
    max_len = int(node["maxLength"]) if isinstance(node.get("maxLength"), int) else None
    pattern = node.get("pattern")
    fmt = node.get("format")
    if isinstance(pattern, str):
        made = sample_pattern(pattern, rng, longest=pick in {"max", "huge"})
        if made is not None:
            return made
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    if pick == "typical":
        default = node.get("default")
        examples = node.get("examples")
        if isinstance(default, str):
            text = default
        elif isinstance(examples, list) and examples and isinstance(examples[0], str):
            text = examples[0]
        else:
            text = _described_example(node.get("description")) or "test"
    elif pick == "min":
        text = ""
    elif pick in {"max", "huge"}:
        text = ("long " * (LONG_STRING_LENGTH // 5 + 1))[:LONG_STRING_LENGTH]
    elif pick == "unicode":
        text = rng.choice(UNICODE_STRINGS)
    elif pick == "hostile":
        text = rng.choice(HOSTILE_STRINGS)
    else:
        text = rng.choice(("a", "test value", "O'Brien", "100%", "x" * 300))
    if max_len is not None:
        text = text[:max_len]
    if len(text) < min_len:
        text = text + "x" * (min_len - len(text))
    return text


def _described_example(description: Json) -> str | None:
    """The example a description gives (``e.g., 'America/New_York'``, ``in HH:MM format``), if any.

    A quoted value after "e.g." or "example" first, then any quoted value, then a format
    spelt out (``YYYY-MM-DD``). Many servers validate beyond their schema, and such a
    value is what they accept.
    """
    if not isinstance(description, str):
        return None
    marker = _EXAMPLE_MARKER.search(description)
    for text in (description[marker.end() :] if marker else "", description):
        quoted = _QUOTED.search(text)
        if quoted:
            return next(group for group in quoted.groups() if group)
    return next((example for spelt, example in _SPELT_FORMATS if spelt in description), None)


_EXAMPLE_MARKER = re.compile(r"\b(e\.g\.|for example|example|such as)", re.IGNORECASE)
#: A quoted value; a quote next to a letter is an apostrophe (``the user's``), not a quote.
_QUOTED = re.compile(r"(?<!\w)'([^'\s][^']{0,60})'(?!\w)|\"([^\"\s][^\"]{0,60})\"|`([^`\s][^`]{0,60})`")
#: Longest first: ``HH:MM:SS`` before the ``HH:MM`` it contains.
_SPELT_FORMATS = (("YYYY-MM-DD", "2024-01-15"), ("HH:MM:SS", "14:30:00"), ("HH:MM", "14:30"))


# -- invalid values ------------------------------------------------------------------------------

_SAMPLES: dict[str, Json] = {
    "string": "not-a-number",
    "integer": 12345,
    "number": 1.5,
    "boolean": True,
    "array": [1, "two"],
    "object": {"nested": True},
}


def _wrong_types(node: Json) -> list[Json]:
    """Values of JSON types the node does not allow (at most two), or none when it allows anything."""
    if not isinstance(node, dict):
        return []
    kind = node.get("type")
    allowed = {kind} if isinstance(kind, str) else set(kind) if isinstance(kind, list) else set()
    if not allowed:
        return []
    if "number" in allowed:
        allowed.add("integer")
    order = ("string", "integer", "object", "array", "number", "boolean")
    wrong = [_SAMPLES[t] for t in order if t not in allowed]
    if "integer" in allowed and "number" not in allowed:
        wrong.insert(0, 1.5)  # a fraction is the wrong type for an integer
    return wrong[:2]


def _outside(values: list[Json]) -> Json:
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None):
        return max((v for v in values if v is not None), default=0) + 987654
    return "__not_one_of_the_allowed_values__"


def _out_of_range(node: Json) -> list[Json]:
    if not isinstance(node, dict):
        return []
    bad: list[Json] = []
    for key, delta in (("minimum", -1), ("exclusiveMinimum", 0), ("maximum", 1), ("exclusiveMaximum", 0)):
        limit = node.get(key)
        if isinstance(limit, int | float) and not isinstance(limit, bool):
            bad.append(limit + delta)
    if isinstance(node.get("maxLength"), int):
        bad.append("y" * (node["maxLength"] + 1))
    if isinstance(node.get("minLength"), int) and node["minLength"] > 0:
        bad.append("y" * (node["minLength"] - 1))
    if isinstance(node.get("pattern"), str):
        bad.append("\u2603 does not match \u2603")
    return bad
