"""JSON Schema export for Structs, with the root inlined (MCP and many tools reject a root ``$ref``)."""

from __future__ import annotations

from typing import Any

import msgspec


def json_schema(tp: Any) -> dict[str, Any]:
    """Return the JSON Schema of ``tp`` with its root definition inlined.

    Nested types stay in ``$defs`` and are referenced from inside the root; the root
    object itself is never a ``$ref``.
    """
    schema: dict[str, Any] = msgspec.json.schema(tp)
    ref = schema.get("$ref")
    if ref is None:
        return schema
    defs: dict[str, Any] = dict(schema.get("$defs", {}))
    name = ref.rsplit("/", 1)[-1]
    root = dict(defs.pop(name))
    if _refers_to(root, name) or any(_refers_to(d, name) for d in defs.values()):
        defs[name] = root  # recursive types keep their definition for inner references
    if defs:
        root["$defs"] = defs
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return root


def _refers_to(node: Any, name: str) -> bool:
    if isinstance(node, dict):
        if node.get("$ref") == f"#/$defs/{name}":
            return True
        return any(_refers_to(v, name) for v in node.values())
    if isinstance(node, list):
        return any(_refers_to(v, name) for v in node)
    return False
