"""Schema validators are compiled once per environment and shared; verdicts stay jsonschema's."""

from __future__ import annotations

from typing import Any

import jsonschema
import jsonschema_rs
import mcp_types as types
import pytest
from jsonschema import Draft202012Validator

from schemas import Environment, ToolEvent, ToolResult
from schemas.errors import InvalidArgumentsError
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.domains import load_domain
from simulator.offline.scenarios import build_scenario
from tests.conftest import shop_environment
from toolservers import connect_tool_server, validation
from toolservers.validation import FORMAT_CHECKER, ArgumentValidator, OutputValidator, output_validator, schema_problems

pytestmark = pytest.mark.anyio


class _Spy:
    """Counts every jsonschema validator built and every schema checked, in any draft."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.checks = 0
        self.builds = 0
        for cls in set(jsonschema.validators._VALIDATORS.values()):  # type: ignore[attr-defined]
            self._wrap(monkeypatch, cls)
        for name in ("validator_for", "Draft202012Validator"):
            original = getattr(jsonschema_rs, name)

            def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                self.builds += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(jsonschema_rs, name, counted)

    def _wrap(self, monkeypatch: pytest.MonkeyPatch, cls: Any) -> None:
        check, init, evolve = cls.check_schema, cls.__init__, cls.evolve
        descending = [0]

        def check_schema(schema: Any, *args: Any, **kwargs: Any) -> Any:
            self.checks += 1
            return check(schema, *args, **kwargs)

        def build(validator: Any, *args: Any, **kwargs: Any) -> None:
            # jsonschema validates a subschema by evolving the validator (a copy sharing the
            # compiled state), on every validation: that is checking, not compiling.
            if not descending[0]:
                self.builds += 1
            init(validator, *args, **kwargs)

        def evolved(validator: Any, **changes: Any) -> Any:
            descending[0] += 1
            try:
                return evolve(validator, **changes)
            finally:
                descending[0] -= 1

        monkeypatch.setattr(cls, "check_schema", staticmethod(check_schema))
        monkeypatch.setattr(cls, "__init__", build)
        monkeypatch.setattr(cls, "evolve", evolved)

    @property
    def total(self) -> int:
        return self.checks + self.builds


async def _noop(_event: ToolEvent) -> None:
    return None


async def test_a_second_dialogue_of_an_environment_compiles_no_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    env: Environment = load_domain("retail", seed=901)  # a fresh object: nothing is cached for it yet
    scenarios = [build_scenario(env, index=i, seed=3) for i in range(2)]
    # Compiled validators are shared by schema across environments: start from none.
    validation._output.cache_clear()
    validation._compiled.cache_clear()
    spy = _Spy(monkeypatch)
    events: list[Any] = []

    async def sink(event: Any) -> None:
        events.append(event)

    first = await run_dialogue(scenarios[0], env, DialogueConfig(), on_event=sink)
    assert spy.total > 0, "the first dialogue must compile its validators (else this test proves nothing)"
    assert first.success, first.error
    spy.checks = spy.builds = 0
    events.clear()

    second = await run_dialogue(scenarios[1], env, DialogueConfig(), on_event=sink)

    assert second.success, second.error
    structured = [e for e in events if isinstance(e, ToolResult) and not e.is_error and e.structured is not None]
    assert structured, "the second dialogue made calls whose structured content the client validated"
    assert (spy.checks, spy.builds) == (0, 0)


async def test_the_first_client_of_an_environment_gets_the_shared_validators() -> None:
    # Listing the tools gives the session new maps; the shared validators go into those,
    # so even the first dialogue's client never compiles the SDK's own.
    env: Environment = load_domain("retail", seed=902)
    async with connect_tool_server(env, on_event=_noop) as conn:
        tools = await conn.list_tools()
        held = conn.client.session._tool_output_validators
        with_schema = {t.name for t in tools if t.output_schema is not None}
        assert with_schema and set(held) == with_schema
        assert all(isinstance(v, OutputValidator) for v in held.values())


async def test_a_primed_client_still_validates_structured_content(monkeypatch: pytest.MonkeyPatch) -> None:
    env = shop_environment()
    async with connect_tool_server(env, on_event=_noop) as first:
        await first.list_tools()
    spy = _Spy(monkeypatch)
    async with connect_tool_server(env, on_event=_noop) as conn:
        tools = await conn.list_tools()
        assert {t.name for t in tools} == {t.name for t in env.tools}
        validators = conn.client.session._tool_output_validators
        assert isinstance(validators["get_customer"], OutputValidator)
        ok = await conn.client.call_tool("get_customer", {"customer_id": 1})
        assert not ok.is_error and ok.structured_content == {
            "customer_id": 1,
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "tier": "gold",
        }
        assert spy.total == 0
        # What the client does with a result: the same check, failing on content that does not fit.
        bad = types.CallToolResult(content=[], structured_content={"customer_id": "one"})
        with pytest.raises(RuntimeError, match="Invalid structured content"):
            await conn.client.session.validate_tool_result("get_customer", bad)


def test_invalid_output_schema_is_left_to_the_sdk() -> None:
    assert output_validator({"type": "nonsense"}) is None
    assert schema_problems({"type": "nonsense"})
    assert schema_problems({"type": "object", "properties": {"a": {"pattern": "("}}})  # Python re refuses it


# Instances on which the fast engine and jsonschema must agree (the fast one only ever says "valid").
SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False},
    {"type": "object", "properties": {"x": {"type": "number", "minimum": 0, "exclusiveMaximum": 10}}},
    {"type": "object", "properties": {"s": {"type": "string", "minLength": 2, "maxLength": 3}}},
    {"type": "object", "properties": {"e": {"enum": [1, "a", None, True]}}},
    {"type": "object", "properties": {"c": {"const": 1}}},
    {"type": "object", "properties": {"l": {"type": "array", "items": {"type": "integer"}, "maxItems": 2}}},
    {"type": "object", "properties": {"o": {"anyOf": [{"type": "string"}, {"type": "null"}]}}},
    {"type": "object", "properties": {"d": {"type": "string", "format": "date"}}},
]
VALUES: list[Any] = [
    1, 1.0, 1.5, -1, 10, 2**70, True, False, None, "", "ab", "abcd", "éé", "😀😀😀", "nope",
    [], [1, 2], [1, 2, 3], [True], {}, {"k": 1},
]  # fmt: skip


@pytest.mark.parametrize("schema", SCHEMAS)
def test_fast_path_agrees_with_jsonschema(schema: dict[str, Any]) -> None:
    reference = Draft202012Validator(schema)  # formats are annotations in output schemas
    arguments = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)  # and enforced on arguments
    validator = ArgumentValidator(schema)
    checked = output_validator(schema)
    assert checked is not None
    keys = list(schema["properties"]) + ["extra"]
    for key in keys:
        for value in VALUES:
            instance = {key: value}
            expected = reference.is_valid(instance)
            assert checked.is_valid(instance) is expected, (schema, instance)
            if arguments.is_valid(instance):
                validator.validate(instance)
            else:
                with pytest.raises(InvalidArgumentsError):
                    validator.validate(instance)


FORMATTED = {
    "type": "object",
    "properties": {
        "d": {"type": "string", "format": "date"},
        "t": {"type": "string", "format": "date-time"},
        "h": {"type": "string", "format": "time"},
        "e": {"type": "string", "format": "email"},
    },
    "additionalProperties": False,
}
FORMATTED_VALUES = [
    "2026-02-03", "2026-02-30", "2026-2-3", "2024-02-29", "2023-02-29", "2026-02-03 10:00", "2026-02-03T10:00:05Z",
    "2026-02-03T10:00:05+02:00", "2026-02-03T10:00:05+24:00", "2026-02-03 25:00", "10:00", "10:61", "23:59:59.5",
    "ada@example.com", "not an address", "", 3, None,
]  # fmt: skip


def test_the_fast_engine_checks_formats_with_the_same_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every verdict is jsonschema's (with the enforced formats); the fast engine answers the valid ones.
    reference = Draft202012Validator(FORMATTED, format_checker=FORMAT_CHECKER)
    validator = ArgumentValidator(FORMATTED)
    assert validator._fast is not None
    slow: list[Any] = []
    original = Draft202012Validator.iter_errors
    # What an ArgumentValidator asks: an extension of Draft 2020-12, a class of its own.
    checking = validation._ArgumentDraft.iter_errors

    def counting(self: Any, instance: Any) -> Any:
        slow.append(instance)
        return checking(self, instance)

    monkeypatch.setattr(validation._ArgumentDraft, "iter_errors", counting)
    for key in FORMATTED["properties"]:
        for value in FORMATTED_VALUES:
            instance = {key: value}
            expected = next(original(reference, instance), None) is None
            slow.clear()
            if expected:
                validator.validate(instance)
                # Only a format jsonschema does not enforce (e-mail) may send a valid call to it.
                assert not slow or key == "e", instance
            else:
                with pytest.raises(InvalidArgumentsError):
                    validator.validate(instance)
                assert slow == [instance]  # jsonschema described it: the counter sees its calls


def test_argument_patterns_are_matched_by_the_linear_engine_output_patterns_by_jsonschema() -> None:
    # Python's re finds "abc" in "abc\n" with ^...$; ECMA-262, which JSON Schema names, does
    # not, and neither does the linear engine arguments are matched with (Python's re can
    # backtrack for ever on an agent's argument). The client's output check is the SDK's.
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^abc$"}}}
    with pytest.raises(InvalidArgumentsError, match="expected pattern"):
        ArgumentValidator(schema).validate({"s": "abc\n"})
    ArgumentValidator(schema).validate({"s": "abc"})
    checked = output_validator(schema)
    assert checked is not None and checked.is_valid({"s": "abc\n"})
    with pytest.raises(InvalidArgumentsError):
        ArgumentValidator(schema).validate({"s": "abd"})


def test_an_argument_pattern_the_linear_engine_compiles_keeps_the_fast_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both engines match such a pattern with the same regular expressions, so valid arguments
    # never reach jsonschema; a pattern only Python's re knows still sends every call there.
    linear = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-\\d+$"}}}
    python_only = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^a{,3}$"}}}
    slow: list[Any] = []
    original = validation._ArgumentDraft.iter_errors

    def counting(self: Any, instance: Any) -> Any:
        slow.append(instance)
        return original(self, instance)

    monkeypatch.setattr(validation._ArgumentDraft, "iter_errors", counting)
    fast = ArgumentValidator(linear)
    assert fast._fast is not None
    fast.validate({"code": "ABC-12"})
    assert slow == []
    with pytest.raises(InvalidArgumentsError, match="expected pattern"):
        fast.validate({"code": "abc-12"})
    assert slow == [{"code": "abc-12"}]
    # Output schemas are checked as the SDK checks them: jsonschema, Python's re.
    assert output_validator(linear) is not None and output_validator(linear)._fast is None  # type: ignore[union-attr]
    slow.clear()
    plain = ArgumentValidator(python_only)
    assert plain._fast is None
    plain.validate({"code": "aa"})
    assert slow == [{"code": "aa"}]


async def test_dialogues_starting_together_list_the_tools_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import anyio

    from toolservers.server import ToolServer

    listed = 0
    original = ToolServer._list_tools

    async def counting(self: ToolServer, ctx: Any, params: Any) -> Any:
        nonlocal listed
        listed += 1
        return await original(self, ctx, params)

    monkeypatch.setattr(ToolServer, "_list_tools", counting)
    env = shop_environment()
    names: list[set[str]] = []

    async def dialogue() -> None:
        async with connect_tool_server(env, on_event=_noop) as conn:
            names.append({t.name for t in await conn.list_tools()})

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(dialogue)
    assert listed == 1
    assert names == [{t.name for t in env.tools}] * 20
