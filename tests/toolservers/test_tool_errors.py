"""Errors a model can act on: a broken foreign key is named, non-finite numbers and bad dates are refused.

And what goes back is always standard JSON, even when the database holds an infinity.
"""

from __future__ import annotations

import json
import math
from typing import Any

import mcp_types as types
import pytest

from schemas import DatabaseSpec, Effect, Environment, ResultShape, SqlImplementation, ToolSpec
from schemas.errors import InvalidArgumentsError
from tests.toolservers.test_server import Recorder
from toolservers import TRANSPORTS, TransportName, build_tool_server, connect_tool_server
from toolservers.derive import derive_environment_from_ddl
from toolservers.validation import ArgumentValidator

pytestmark = pytest.mark.anyio

DDL = """
CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE invoice (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customer (id),
    total REAL NOT NULL,
    issued_on TEXT NOT NULL
);
CREATE TABLE reading (id INTEGER PRIMARY KEY, value REAL NOT NULL);
INSERT INTO customer VALUES (1, 'Ada'), (2, 'Alan');
INSERT INTO invoice VALUES (10, 1, 25.5, '2026-01-03'), (11, 1, 7.0, '2026-01-04');
INSERT INTO reading VALUES (1, 9e999), (2, -9e999), (3, 2.5);
"""


def _tool(name: str, sql: str, schema: dict[str, Any], result: ResultShape, effect: Effect) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=name,
        input_schema={"type": "object", "additionalProperties": False, **schema},
        implementation=SqlImplementation(statements=[sql], result=result),
        effect=effect,
        table=name.split("_", 1)[1],
    )


def billing_environment() -> Environment:
    ids = {"type": "integer"}
    return Environment(
        id="billing",
        domain="billing",
        database=DatabaseSpec(ddl=DDL),
        tools=[
            _tool(
                "add_invoice",
                "INSERT INTO invoice (customer_id, total, issued_on) VALUES (:customer_id, :total, :issued_on) "
                "RETURNING id",
                {
                    "properties": {
                        "customer_id": ids,
                        "total": {"type": "number"},
                        "issued_on": {"type": "string", "format": "date"},
                    },
                    "required": ["customer_id", "total", "issued_on"],
                },
                ResultShape.ROW,
                Effect.WRITE,
            ),
            _tool(
                "remove_customer",
                "DELETE FROM customer WHERE id = :id RETURNING id",
                {"properties": {"id": ids}, "required": ["id"]},
                ResultShape.ROW,
                Effect.WRITE,
            ),
            _tool(
                "list_reading",
                "SELECT id, value FROM reading ORDER BY id",
                {"properties": {}},
                ResultShape.ROWS,
                Effect.READ,
            ),
        ],
    )


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> TransportName:
    name: TransportName = request.param
    return name


async def test_a_foreign_key_refusal_names_the_relation_and_the_key(transport: TransportName) -> None:
    recorder = Recorder()
    async with connect_tool_server(billing_environment(), transport=transport, on_event=recorder) as conn:
        before = conn.database.snapshot()
        orphan = await conn.client.call_tool(
            "add_invoice", {"customer_id": 999, "total": 1.0, "issued_on": "2026-02-01"}
        )
        in_use = await conn.client.call_tool("remove_customer", {"id": 1})
        fine = await conn.client.call_tool("add_invoice", {"customer_id": 2, "total": 3.0, "issued_on": "2026-02-01"})
        after = (await conn.finish()).snapshot()
    assert orphan.is_error and in_use.is_error and not fine.is_error
    assert "invoice.customer_id → customer.id: no customer 999" in text_of(orphan)
    assert "invoice.customer_id → customer.id: 2 invoice rows still refer to customer 1" in text_of(in_use)
    assert [r.error_code for r in recorder.results()] == ["execution_failed", "execution_failed", None]
    assert after["customer"] == before["customer"]
    assert len(after["invoice"]) == len(before["invoice"]) + 1


def test_foreign_key_message_ignores_violations_already_in_the_file() -> None:
    server = build_tool_server(billing_environment())
    try:
        server.db.trusted("PRAGMA foreign_keys = OFF")
        server.db.trusted("INSERT INTO invoice VALUES (99, 555, 1.0, '2026-01-01')")  # dangling already
        server.db.trusted("PRAGMA foreign_keys = ON")
        with pytest.raises(Exception, match="no customer 777") as caught:
            server.executor.call("add_invoice", {"customer_id": 777, "total": 1.0, "issued_on": "2026-02-01"})
        assert "555" not in str(caught.value)
    finally:
        server.close()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_naming_the_field(bad: float) -> None:
    server = build_tool_server(billing_environment())
    try:
        before = server.db.snapshot()
        with pytest.raises(InvalidArgumentsError) as caught:
            server.executor.call("add_invoice", {"customer_id": 2, "total": bad, "issued_on": "2026-02-01"})
        assert caught.value.field == "total" and "finite" in caught.value.problem
        assert server.db.snapshot() == before
    finally:
        server.close()


async def test_non_finite_numbers_over_mcp_are_refused(transport: TransportName) -> None:
    async with connect_tool_server(billing_environment(), transport=transport) as conn:
        result = await conn.client.call_tool(
            "add_invoice", {"customer_id": 2, "total": math.inf, "issued_on": "2026-02-01"}
        )
        rows = (await conn.finish()).query("SELECT count(*) FROM invoice")
    # In process the infinity arrives as a float; over the wire JSON has no such number and
    # the client sends null. Either way nothing is stored.
    assert result.is_error
    assert rows == [(2,)]


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


async def test_results_are_standard_json_even_for_infinities(transport: TransportName) -> None:
    recorder = Recorder()
    async with connect_tool_server(billing_environment(), transport=transport, on_event=recorder) as conn:
        result = await conn.client.call_tool("list_reading", {})
        await conn.finish()
    assert not result.is_error
    parsed = _strict(text_of(result))
    assert [r["value"] for r in parsed["rows"]] == [None, None, 2.5]
    assert _strict(recorder.results()[0].text) == parsed
    server = build_tool_server(billing_environment())
    try:
        outcome = server.executor.call("list_reading", {})
        assert [r["value"] for r in outcome.structured["rows"]] == [None, None, 2.5]
    finally:
        server.close()


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        (
            "date",
            ["2024-02-29", "2026-12-31"],
            ["2023-02-29", "2024-13-01", "2024-1-5", "yesterday", "2024-01-05T00:00"],
        ),
        (
            "date-time",
            ["2024-01-05 10:00", "2024-01-05 10:00:59", "2024-01-05T10:00:00Z", "2024-01-05T10:00:00.123+02:00"],
            ["2024-01-05", "2024-01-05 25:00", "2024-02-30 10:00", "2024-01-05 10:00 +99:00", "soon"],
        ),
        ("time", ["09:30", "23:59:59", "00:00:00.5"], ["24:00", "9:30", "12:60", "noon"]),
    ],
)
def test_declared_formats_are_enforced(fmt: str, good: list[str], bad: list[str]) -> None:
    validator = ArgumentValidator(
        {"type": "object", "properties": {"when": {"type": ["string", "null"], "format": fmt}}}
    )
    for value in [*good, None]:
        validator.validate({"when": value})
    for value in bad:
        with pytest.raises(InvalidArgumentsError) as caught:
            validator.validate({"when": value})
        assert caught.value.field == "when" and fmt in caught.value.problem, value


def test_format_checking_keeps_validators_shared() -> None:
    schema = {"type": "object", "properties": {"d": {"type": "string", "format": "date"}}}
    assert ArgumentValidator(schema)._validator is ArgumentValidator(dict(schema))._validator


async def test_derived_tools_refuse_dates_that_are_not_dates() -> None:
    env = derive_environment_from_ddl(DDL, {}, env_id="billing", domain="billing")
    search = next(t for t in env.tools if t.category == "search" and t.table == "invoice")
    param = next(p for p, s in search.input_schema["properties"].items() if s.get("format") == "date")
    async with connect_tool_server(env) as conn:
        refused = await conn.client.call_tool(search.name, {param: "2026-02-30"})
        accepted = await conn.client.call_tool(search.name, {param: "2026-01-04"})
    assert refused.is_error and param in text_of(refused) and "YYYY-MM-DD" in text_of(refused)
    assert not accepted.is_error


TREE_DDL = """
CREATE TABLE tree (id INTEGER PRIMARY KEY, label TEXT NOT NULL, parent_id INTEGER REFERENCES tree (id));
INSERT INTO tree VALUES (1, 'root', NULL), (2, 'branch', 1), (3, 'twig', 1);
"""


async def test_a_self_reference_refusal_says_which_rows_still_refer() -> None:
    env = derive_environment_from_ddl(TREE_DDL, {}, env_id="tree", domain="tree")
    async with connect_tool_server(env) as conn:
        in_use = await conn.client.call_tool("delete_tree", {"id": 1})
        orphan = await conn.client.call_tool("create_tree", {"label": "leaf", "parent_id": 999})
        moved = await conn.client.call_tool("update_tree", {"id": 2, "parent_id": 998})
        rows = (await conn.finish()).query("SELECT count(*) FROM tree")
    assert in_use.is_error and orphan.is_error and moved.is_error
    assert "tree.parent_id → tree.id: 2 tree rows still refer to tree 1" in text_of(in_use)
    assert "tree.parent_id → tree.id: no tree 999" in text_of(orphan)
    assert "tree.parent_id → tree.id: no tree 998" in text_of(moved)
    assert rows == [(3,)]


def test_an_update_without_a_field_to_change_says_which_fields_there_are() -> None:
    env = derive_environment_from_ddl(DDL, {}, env_id="billing", domain="billing")
    validator = ArgumentValidator(env.tool("update_invoice").input_schema)
    with pytest.raises(InvalidArgumentsError) as caught:
        validator.validate({"id": 10})
    assert caught.value.field == "(arguments)"
    assert caught.value.problem == "pass at least one field besides id (customer_id, issued_on, total)"
    validator.validate({"id": 10, "total": 1.0})


_NUL_SCHEMAS = {
    # No regular expression: the fast engine answers first.
    "fast": {"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array"}}},
    # A pattern only Python's re compiles ({,n}) sends every call to jsonschema alone.
    "slow": {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": "^[a-z\\x00]{,20}$"}, "tags": {"type": "array"}},
    },
}


@pytest.mark.parametrize("path", sorted(_NUL_SCHEMAS))
def test_nul_characters_in_strings_are_refused_naming_the_field(path: str) -> None:
    validator = ArgumentValidator(_NUL_SCHEMAS[path])
    assert (validator._fast is None) == (path == "slow")
    validator.validate({"name": "ada", "tags": [{"x": "fine"}]})
    for arguments, field in [
        ({"name": "a\x00"}, "name"),
        ({"name": "ada", "tags": ["ok", {"x": "b\x00c"}]}, "tags.1.x"),
    ]:
        with pytest.raises(InvalidArgumentsError) as caught:
            validator.validate(arguments)
        assert caught.value.field == field and "NUL" in caught.value.problem


async def test_derived_tools_refuse_nul_characters(transport: TransportName) -> None:
    env = derive_environment_from_ddl(DDL, {}, env_id="billing", domain="billing")
    async with connect_tool_server(env, transport=transport) as conn:
        search = await conn.client.call_tool("search_customers", {"name": "\x00zzz"})
        create = await conn.client.call_tool("create_customer", {"name": "Gr\x00ce"})
        rows = (await conn.finish()).query("SELECT count(*) FROM customer")
    assert search.is_error and create.is_error
    assert "name: " in text_of(search) and "name: " in text_of(create)
    assert rows == [(2,)]


def test_a_pattern_that_backtracks_without_bound_in_re_is_matched_at_once() -> None:
    """``^(a+)+$`` against forty ``a`` and a ``b``: Python's ``re`` would take hours (30 took
    seconds and held the event loop past any call deadline); the argument is refused at once."""
    from schemas.errors import InvalidArgumentsError

    validator = ArgumentValidator({"type": "object", "properties": {"word": {"type": "string", "pattern": "^(a+)+$"}}})
    validator.validate({"word": "aaaa"})
    with pytest.raises(InvalidArgumentsError, match=r"word: expected pattern '\^\(a\+\)\+\$'"):
        validator.validate({"word": "a" * 40 + "b"})
    # What only Python's re reads (a named back-reference) is still matched, by re.
    named = ArgumentValidator(
        {"type": "object", "properties": {"w": {"type": "string", "pattern": "^(?P<n>a)(?P=n)$"}}}
    )
    named.validate({"w": "aa"})
    with pytest.raises(InvalidArgumentsError):
        named.validate({"w": "ab"})
