"""Schema lint: what in a tool's name, description and schemas makes a model misuse it.

Every finding names the tool, a stable check id, a severity and a fix. Checks:

=============================  ========  ====================================================
check                          severity  what
=============================  ========  ====================================================
schema.invalid                 high      input_schema is not valid JSON Schema
schema.not_object              high      input_schema's root is not ``type: object``
schema.required_unknown        high      ``required`` names a property that is not declared
output_schema.invalid          high      output_schema is not valid JSON Schema
description.missing            medium    no tool description
description.vague              low       a description too short or generic to choose by
param.untyped                  medium    a parameter without a type
param.undescribed              low       parameters without a description
param.free_string              info      a free string whose name asks for an enum or format
schema.required_absent         medium    a get/update/delete tool that requires nothing
schema.open                    info      unknown fields are allowed (typos pass silently)
schema.deep                    low       nesting deeper than three levels
name.invalid                   medium    characters model APIs reject, or too long
name.collision                 medium    two names equal but for case, ``-`` and ``_``
name.similar                   low       two names one edit apart (``get_order``/``get_orders``)
name.generic                   low       a name that says nothing (``run``, ``query``)
annotations.contradict         medium    a name that says write, annotated read-only
=============================  ========  ====================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from simulator.stress._tool import ToolInfo, looks_like_write
from simulator.stress.report import Finding, Severity
from toolservers.validation import schema_problems

__all__ = ["lint_tools"]

_NAME_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAME_SPEC = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_GENERIC_NAMES = frozenset(
    {"run", "execute", "exec", "query", "tool", "do", "process", "handle", "action", "call", "helper", "main", "test"}
)
_VAGUE = re.compile(r"^(does stuff|helper|tool|todo|misc|n/?a|tbd|a tool|utility|function)\.?$", re.IGNORECASE)
_ENTITY_VERBS = ("get", "update", "delete", "remove", "cancel", "fetch", "read")
_MAX_DEPTH = 3
_TYPED_KEYS = ("type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf", "not")
_FORMAT_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(^|_)(date|day|birthday|dob)$|_on$"), "format: date (YYYY-MM-DD)"),
    (re.compile(r"(^|_)(datetime|timestamp)$|_at$"), "format: date-time"),
    (re.compile(r"(^|_)e?mail$"), "format: email"),
    (re.compile(r"(^|_)(url|uri|link|website|homepage)$"), "format: uri"),
    (
        re.compile(r"(^|_)(status|state|type|kind|category|level|tier|mode|priority|sort|order_by|direction)$"),
        "an enum",
    ),
    (re.compile(r"(^|_)(currency|country|language|locale)(_code)?$"), "an enum or a pattern of codes"),
    (re.compile(r"(^|_)uuid$"), "format: uuid"),
)


def lint_tools(tools: Sequence[ToolInfo]) -> list[Finding]:
    """Every lint finding for ``tools``, per tool and across tools (names)."""
    findings: list[Finding] = []
    for tool in tools:
        findings.extend(_lint_tool(tool))
    findings.extend(_lint_names(tools))
    return findings


def _finding(tool: str | None, check: str, severity: Severity, message: str, fix: str) -> Finding:
    return Finding(check=check, severity=severity, tool=tool, message=message, fix=fix)


def _lint_tool(tool: ToolInfo) -> Iterator[Finding]:
    name = tool.name
    schema = tool.input_schema
    for problem in schema_problems(schema):
        yield _finding(
            name,
            "schema.invalid",
            Severity.HIGH,
            f"input_schema is not valid JSON Schema at {problem}",
            "fix the keyword so the schema passes a JSON Schema 2020-12 validator "
            "(types are string, integer, number, boolean, array, object, null)",
        )
    if schema.get("type") != "object":
        yield _finding(
            name,
            "schema.not_object",
            Severity.HIGH,
            f"input_schema's root has type {schema.get('type')!r}; MCP requires an object",
            'set "type": "object" at the root and list the parameters under "properties"',
        )
    for path, node in _objects(schema):
        declared = node.get("properties")
        props: dict[str, Any] = declared if isinstance(declared, dict) else {}
        required = node.get("required")
        if isinstance(required, list):
            unknown = [r for r in required if isinstance(r, str) and r not in props]
            if unknown and (props or node.get("additionalProperties") is False):
                yield _finding(
                    name,
                    "schema.required_unknown",
                    Severity.HIGH,
                    f"{path}required names {', '.join(map(repr, unknown))}, which {path}properties does not declare; "
                    "no call can satisfy both",
                    "declare the property under properties, or drop it from required",
                )
    if tool.output_schema is not None:
        for problem in schema_problems(tool.output_schema):
            yield _finding(
                name,
                "output_schema.invalid",
                Severity.HIGH,
                f"output_schema is not valid JSON Schema at {problem}",
                "fix the output schema; clients validate structured results against it",
            )
    yield from _lint_description(tool)
    yield from _lint_params(tool)
    depth = _depth(schema)
    if depth > _MAX_DEPTH:
        yield _finding(
            name,
            "schema.deep",
            Severity.LOW,
            f"arguments nest {depth} levels deep; models fill deep structures badly",
            "flatten the arguments, or split the tool",
        )
    if tool.read_only_hint is True and looks_like_write(name):
        yield _finding(
            name,
            "annotations.contradict",
            Severity.MEDIUM,
            "the name says the tool changes something, but it is annotated readOnlyHint: true",
            "set readOnlyHint: false (and destructiveHint as fits), or rename the tool",
        )


def _lint_description(tool: ToolInfo) -> Iterator[Finding]:
    text = (tool.description or "").strip()
    if not text:
        yield _finding(
            tool.name,
            "description.missing",
            Severity.MEDIUM,
            "the tool has no description; a model has only its name to go by",
            "say what the tool does, what it returns and when it fails, in one or two sentences",
        )
        return
    humanised = tool.name.replace("_", " ").replace("-", " ").lower()
    if len(text) < 20 or len(text.split()) < 4 or _VAGUE.match(text) or text.lower().rstrip(".") == humanised:
        yield _finding(
            tool.name,
            "description.vague",
            Severity.LOW,
            f"the description {text!r} is too short or generic to choose the tool by",
            "say what the tool does, what it returns and when it fails, in one or two sentences",
        )


def _lint_params(tool: ToolInfo) -> Iterator[Finding]:
    schema = tool.input_schema
    props = schema.get("properties")
    if not isinstance(props, dict):
        return
    untyped = [n for n, p in props.items() if isinstance(p, dict) and not any(k in p for k in _TYPED_KEYS)]
    if untyped:
        yield _finding(
            tool.name,
            "param.untyped",
            Severity.MEDIUM,
            f"parameters without a type: {', '.join(untyped)}",
            'give each parameter a "type" (or an enum)',
        )
    undescribed = [n for n, p in props.items() if isinstance(p, dict) and not str(p.get("description", "")).strip()]
    if undescribed:
        yield _finding(
            tool.name,
            "param.undescribed",
            Severity.LOW,
            f"parameters without a description: {', '.join(undescribed)}",
            "describe each parameter: what it means, its unit or format, an example",
        )
    for pname, prop in props.items():
        if not isinstance(prop, dict) or "string" not in _types(prop):
            continue
        if any(k in prop for k in ("enum", "const", "format", "pattern")):
            continue
        for pattern, wanted in _FORMAT_HINTS:
            if pattern.search(pname.lower()):
                yield _finding(
                    tool.name,
                    "param.free_string",
                    Severity.INFO,
                    f"{pname} is a free string, but its name suggests {wanted}",
                    f"constrain {pname} with {wanted}, so a model cannot pass a value the tool cannot use",
                )
                break
    required = schema.get("required")
    verb = re.split(r"[_\-]", tool.name, maxsplit=1)[0].lower()
    if props and not required and verb in _ENTITY_VERBS:
        yield _finding(
            tool.name,
            "schema.required_absent",
            Severity.MEDIUM,
            f"a {verb} tool that requires no parameter: a model may call it without saying which one",
            "list the identifying parameters under required",
        )
    if props and schema.get("additionalProperties") is not False:
        yield _finding(
            tool.name,
            "schema.open",
            Severity.INFO,
            "unknown fields are allowed, so a misspelt parameter is silently ignored",
            'set "additionalProperties": false',
        )


def _lint_names(tools: Sequence[ToolInfo]) -> Iterator[Finding]:
    names = [t.name for t in tools]
    for name in names:
        if not _NAME_SPEC.match(name):
            yield _finding(
                name,
                "name.invalid",
                Severity.MEDIUM,
                f"the name {name!r} has characters or a length MCP clients reject (allowed: A-Z a-z 0-9 _ - ., 1-128)",
                "rename the tool with letters, digits and '_' only",
            )
        elif not _NAME_OK.match(name):
            yield _finding(
                name,
                "name.invalid",
                Severity.LOW,
                f"the name {name!r} is rejected by several model APIs (they allow A-Z a-z 0-9 _ -, up to 64)",
                "rename the tool with letters, digits and '_' only, at most 64 characters",
            )
        if name.lower() in _GENERIC_NAMES:
            yield _finding(
                name,
                "name.generic",
                Severity.LOW,
                f"the name {name!r} does not say what the tool does or to what",
                "name the tool verb_object, e.g. search_orders",
            )
    by_key: dict[str, list[str]] = {}
    for name in names:
        by_key.setdefault(re.sub(r"[-_.\s]", "", name.lower()), []).append(name)
    for group in by_key.values():
        if len(group) > 1:
            for name in group:
                others = ", ".join(o for o in group if o != name)
                yield _finding(
                    name,
                    "name.collision",
                    Severity.MEDIUM,
                    f"{name!r} differs from {others} only in case or separators",
                    "give the tools clearly different names, or merge them",
                )
    ordered = sorted(set(names))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if abs(len(a) - len(b)) <= 1 and _one_edit(a, b) and a.lower() != b.lower():
                yield _finding(
                    a,
                    "name.similar",
                    Severity.LOW,
                    f"{a!r} and {b!r} are one character apart; a model will confuse them",
                    "rename one so the difference says what it is (get_order / list_orders)",
                )


# -- helpers -------------------------------------------------------------------------------------


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return set()


def _objects(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema in ``node`` with its dotted path prefix (``''`` for the root)."""
    if not isinstance(node, dict):
        return
    if "properties" in node or "required" in node:
        yield path, node
    props = node.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            yield from _objects(sub, f"{path}{name}.")
    items = node.get("items")
    if isinstance(items, dict):
        yield from _objects(items, f"{path}[].")


def _depth(node: Any, level: int = 0) -> int:
    """How many object/array levels deep the arguments go (the root object is level 1)."""
    if not isinstance(node, dict) or level > 20:
        return level
    kinds = _types(node)
    nested = level + 1 if ("object" in kinds or "array" in kinds or "properties" in node) else level
    deepest = nested
    props = node.get("properties")
    if isinstance(props, dict):
        for sub in props.values():
            deepest = max(deepest, _depth(sub, nested))
    if isinstance(node.get("items"), dict):
        deepest = max(deepest, _depth(node["items"], nested))
    return deepest


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by exactly one insertion, deletion or substitution."""
    if a == b:
        return False
    if len(a) > len(b):
        a, b = b, a
    if len(b) - len(a) > 1:
        return False
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :]
    return a[i:] == b[i + 1 :]
