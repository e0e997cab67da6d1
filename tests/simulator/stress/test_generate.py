"""Argument generation: valid cases are valid (boundaries included), invalid ones invalid, all seeded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from simulator.domains import load_domain
from simulator.stress.generate import LONG_STRING_LENGTH, CaseGenerator

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_number": {"type": "string", "pattern": "^ORD-\\d{5}$", "description": "e.g. ORD-10042"},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 20},
        "note": {"type": "string"},
        "code": {"type": "string", "maxLength": 8},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "amount": {"type": ["number", "null"]},
        "count": {"type": "integer"},
        "when": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "flag": {"type": "boolean"},
    },
    "required": ["order_number", "quantity"],
    "additionalProperties": False,
}


def dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def test_valid_cases_validate_and_cover_the_boundaries() -> None:
    cases = CaseGenerator(SCHEMA, seed=3, tool="t").valid_cases(30)
    validator = Draft202012Validator(SCHEMA)
    assert len(cases) == 30
    assert all(validator.is_valid(c.arguments) and c.valid for c in cases)
    kinds = [c.kind for c in cases]
    assert kinds[:7] == ["required_only", "typical", "min", "max", "huge", "unicode", "hostile"]
    values = [c.arguments for c in cases]
    notes = [v["note"] for v in values if "note" in v]
    assert "" in notes
    assert any(len(n) == LONG_STRING_LENGTH for n in notes)
    assert any(any(ord(ch) > 0xFFFF for ch in n) for n in notes)  # beyond the basic plane
    assert any("DROP TABLE" in n or "\u0000" in n or "$(" in n for n in notes)
    counts = [v["count"] for v in values if "count" in v]
    assert any(abs(c) >= 2**63 - 1 for c in counts)
    assert {v["quantity"] for v in values} >= {1, 20}  # both ends of the range
    assert all(len(v.get("code", "")) <= 8 for v in values)
    assert all(v["order_number"].startswith("ORD-") and len(v["order_number"]) == 9 for v in values)
    assert {v.get("status") for v in values} >= {"open", "closed"}


def test_same_seed_same_cases_other_seed_other_cases() -> None:
    def make(seed: int) -> list[str]:
        gen = CaseGenerator(SCHEMA, seed=seed, tool="t")
        return [dump(c.arguments) for c in gen.valid_cases(15) + gen.invalid_cases(15)]

    assert make(1) == make(1)
    assert make(1) != make(2)
    # The tool name is part of the seed: two tools with one schema are not probed identically.
    assert [c.arguments for c in CaseGenerator(SCHEMA, seed=1, tool="a").valid_cases(15)] != [
        c.arguments for c in CaseGenerator(SCHEMA, seed=1, tool="b").valid_cases(15)
    ]


def test_invalid_cases_are_invalid_and_cover_every_kind_first() -> None:
    gen = CaseGenerator(SCHEMA, seed=0, tool="t")
    cases = gen.invalid_cases(40)
    validator = Draft202012Validator(SCHEMA)
    assert cases and all(not validator.is_valid(c.arguments) and not c.valid for c in cases)
    kinds = [c.kind for c in cases]
    every = ["missing_required", "wrong_type", "unknown_field", "out_of_enum", "null", "out_of_range"]
    assert kinds[:6] == every
    by_kind = {c.kind: c for c in cases}
    assert by_kind["missing_required"].field in {"order_number", "quantity"}
    assert by_kind["missing_required"].field not in by_kind["missing_required"].arguments
    assert by_kind["out_of_enum"].arguments["status"] not in {"open", "closed"}
    assert by_kind["unknown_field"].field in by_kind["unknown_field"].arguments
    # A nullable field is never made "invalid" with null.
    assert all(c.field != "amount" for c in cases if c.kind == "null")
    assert len(gen.invalid_cases(3)) == 3


def test_unknown_fields_only_count_as_invalid_when_the_schema_forbids_them() -> None:
    open_schema = {**SCHEMA, "additionalProperties": True}
    kinds = {c.kind for c in CaseGenerator(open_schema, seed=0, tool="t").invalid_cases(40)}
    assert "unknown_field" not in kinds


def test_a_broken_schema_gets_best_effort_valid_cases_and_no_invalid_ones() -> None:
    broken = {"type": "object", "properties": {"q": {"type": "strin"}}, "required": ["q", "missing_field"]}
    gen = CaseGenerator(broken, seed=0, tool="bad_schema")
    assert not gen.schema_ok
    assert gen.is_valid({"q": "x"}) is None
    assert gen.valid_cases(3)
    assert all(isinstance(c.arguments.get("q"), str) for c in gen.valid_cases(3))
    assert gen.invalid_cases(5) == []


def test_refs_any_of_and_nested_objects() -> None:
    schema = {
        "type": "object",
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
        "properties": {
            "at": {"$ref": "#/$defs/point"},
            "either": {"anyOf": [{"type": "integer", "minimum": 5}, {"type": "string", "minLength": 2}]},
        },
        "required": ["at", "either"],
        "additionalProperties": False,
    }
    validator = Draft202012Validator(schema)
    cases = CaseGenerator(schema, seed=0, tool="t").valid_cases(12)
    assert len(cases) >= 5
    assert all(validator.is_valid(c.arguments) for c in cases)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_tool_of_a_built_in_domain(seed: int) -> None:
    """Property check over real schemas: what is called valid validates, what is called invalid does not."""
    for tool in load_domain("travel").tools:
        gen = CaseGenerator(tool.input_schema, seed=seed, tool=tool.name)
        validator = Draft202012Validator(tool.input_schema)
        valid = gen.valid_cases(8)
        assert valid, tool.name
        assert all(validator.is_valid(c.arguments) for c in valid), tool.name
        assert all(not validator.is_valid(c.arguments) for c in gen.invalid_cases(8)), tool.name
