"""Schemas: JSON Schema export with an inlined root, the CLI that prints it, and round trips."""

from __future__ import annotations

import json

import msgspec
import pytest
from jsonschema import Draft202012Validator

from schemas import SCHEMAS, DatabaseSpec, Environment, Event, ToolCall, UserMessage, json_schema
from simulator.cli import main
from tests.conftest import shop_environment


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_top_level_schema_is_valid_without_a_root_ref(name: str) -> None:
    schema = json_schema(SCHEMAS[name])
    assert "$ref" not in schema
    Draft202012Validator.check_schema(schema)


def test_environment_schema_accepts_a_real_environment_and_rejects_a_broken_one() -> None:
    validator = Draft202012Validator(json_schema(Environment))
    good = msgspec.to_builtins(shop_environment())
    assert list(validator.iter_errors(good)) == []
    bad = dict(good)
    bad["tools"] = [{"name": 3}]
    assert list(validator.iter_errors(bad))


def test_event_union_round_trips_through_its_tag() -> None:
    events: list[Event] = [
        ToolCall(call_id="call_0001", tool="get_customer", arguments={"customer_id": 1}),
        UserMessage(text="hello", is_task_complete=True),
    ]
    decoded = msgspec.json.decode(msgspec.json.encode(events), type=list[Event])
    assert decoded == events
    assert msgspec.to_builtins(events[0])["kind"] == "tool_call"


def test_database_spec_needs_exactly_one_source() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"ddl": "CREATE TABLE t(x)", "path": "x.sqlite"}, DatabaseSpec)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({}, DatabaseSpec)


def test_duplicate_tool_names_are_refused() -> None:
    env = msgspec.to_builtins(shop_environment())
    env["tools"].append(env["tools"][0])
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(env, Environment)


def test_schema_command_prints_the_named_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "tool"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["title"] == "ToolSpec"
    assert "$ref" not in printed
    assert set(printed["required"]) >= {"name", "description", "input_schema", "implementation"}


def test_schema_command_refuses_an_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["schema", "nonsense"])
    assert exc.value.code == 2
