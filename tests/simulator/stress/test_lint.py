"""Schema lint: each defect gets its check, severity and tool; good schemas get nothing serious."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from simulator.domains import load_domain
from simulator.stress._tool import ToolInfo, looks_like_write
from simulator.stress.lint import lint_tools
from simulator.stress.report import Finding, Severity
from tests.simulator.stress.broken_server import TOOLS as BROKEN_TOOLS

GOOD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"order_id": {"type": "integer", "description": "The order's id"}},
    "required": ["order_id"],
    "additionalProperties": False,
}


def tool(name: str, schema: dict[str, Any] | None = None, description: str | None = None, **kw: Any) -> ToolInfo:
    return ToolInfo(
        name=name,
        description=description if description is not None else f"Do the {name} thing to one order and return it.",
        input_schema=schema if schema is not None else GOOD_SCHEMA,
        output_schema=kw.pop("output_schema", None),
        **kw,
    )


def checks(findings: list[Finding]) -> set[tuple[str | None, str, Severity]]:
    return {(f.tool, f.check, f.severity) for f in findings}


def test_the_broken_servers_schema_defects_are_found_on_the_right_tool() -> None:
    found = checks(lint_tools([ToolInfo.from_listing(t) for t in BROKEN_TOOLS]))
    assert ("bad_schema", "schema.invalid", Severity.HIGH) in found
    assert ("bad_schema", "schema.required_unknown", Severity.HIGH) in found
    assert ("bad_schema", "description.vague", Severity.LOW) in found
    assert ("bad_schema", "param.undescribed", Severity.LOW) in found
    others = {t for t, _, s in found if s.rank >= Severity.MEDIUM.rank and t != "bad_schema"}
    assert others == set()


def test_a_built_in_domain_has_no_schema_finding_above_low() -> None:
    env = load_domain("retail")
    infos = [
        ToolInfo(t.name, t.description, t.input_schema, t.output_schema, read_only_hint=t.effect == "read")
        for t in env.tools
    ]
    serious = [f for f in lint_tools(infos) if f.severity.rank > Severity.LOW.rank]
    assert serious == []


def test_descriptions_types_and_required() -> None:
    untyped = {"type": "object", "properties": {"x": {"description": "what"}}, "required": ["x"]}
    no_required = {"type": "object", "properties": {"order_id": {"type": "integer", "description": "id"}}}
    found = checks(
        lint_tools(
            [
                tool("get_thing", description=""),
                tool("get_other", untyped),
                tool("delete_order", no_required),
                tool("make_list", {"type": "array"}),
            ]
        )
    )
    assert ("get_thing", "description.missing", Severity.MEDIUM) in found
    assert ("get_other", "param.untyped", Severity.MEDIUM) in found
    assert ("delete_order", "schema.required_absent", Severity.MEDIUM) in found
    assert ("delete_order", "schema.open", Severity.INFO) in found
    assert ("make_list", "schema.not_object", Severity.HIGH) in found


def test_free_strings_and_deep_nesting() -> None:
    schema = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "description": "The status"},
            "placed_on": {"type": "string", "description": "When"},
            "kind": {"type": "string", "enum": ["a", "b"], "description": "Constrained: no finding"},
            "deep": {
                "type": "object",
                "description": "nested",
                "properties": {"a": {"type": "object", "properties": {"b": {"type": "array", "items": {}}}}},
            },
        },
        "additionalProperties": False,
    }
    found = lint_tools([tool("search_orders", schema)])
    free = {f.message.split()[0] for f in found if f.check == "param.free_string"}
    assert free == {"status", "placed_on"}
    assert any(f.check == "schema.deep" for f in found)


def test_names_that_collide_look_alike_are_generic_or_invalid() -> None:
    found = checks(
        lint_tools(
            [
                tool("get_order"),
                tool("get_orders"),
                tool("Get-Order"),
                tool("run"),
                tool("find orders!"),
                tool("x" * 70),
            ]
        )
    )
    assert ("get_order", "name.collision", Severity.MEDIUM) in found
    assert ("Get-Order", "name.collision", Severity.MEDIUM) in found
    assert ("get_order", "name.similar", Severity.LOW) in found
    assert ("run", "name.generic", Severity.LOW) in found
    assert ("find orders!", "name.invalid", Severity.MEDIUM) in found
    assert ("x" * 70, "name.invalid", Severity.LOW) in found


def test_output_schema_and_annotation_contradictions() -> None:
    found = checks(
        lint_tools(
            [
                tool("get_order", output_schema={"type": "objekt"}),
                tool("delete_order", read_only_hint=True),
            ]
        )
    )
    assert ("get_order", "output_schema.invalid", Severity.HIGH) in found
    assert ("delete_order", "annotations.contradict", Severity.MEDIUM) in found


def test_what_counts_as_a_write() -> None:
    assert looks_like_write("create_customer")
    assert looks_like_write("cancelOrder")
    assert looks_like_write("book-flight")
    assert looks_like_write("Place_Order")
    assert not looks_like_write("get_customer")
    assert not looks_like_write("settings_overview")  # "settings" is not "set"
    assert tool("get_x", read_only_hint=False).write_reason == "annotated readOnlyHint: false"
    assert tool("get_x", destructive_hint=True).is_write
    assert tool("get_x", declared_write=True).is_write
    assert not tool("get_x", read_only_hint=True).is_write
    listed = types.Tool(name="lookup", input_schema={"type": "object"}, annotations=types.ToolAnnotations())
    assert not ToolInfo.from_listing(listed).is_write
