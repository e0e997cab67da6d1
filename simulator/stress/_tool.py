"""What the stress test knows about one tool: its listing, plus the declared effect when known."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import mcp_types as types

__all__ = ["WRITE_VERBS", "ToolInfo", "looks_like_write"]

#: Leading words of tool names that change something.
WRITE_VERBS = frozenset(
    {
        "add",
        "append",
        "approve",
        "assign",
        "book",
        "cancel",
        "charge",
        "clear",
        "create",
        "delete",
        "drop",
        "edit",
        "enroll",
        "insert",
        "merge",
        "modify",
        "move",
        "patch",
        "pay",
        "place",
        "post",
        "purge",
        "put",
        "refund",
        "register",
        "reject",
        "remove",
        "rename",
        "request",
        "reschedule",
        "reset",
        "revoke",
        "save",
        "schedule",
        "send",
        "set",
        "submit",
        "transfer",
        "update",
        "upload",
        "upsert",
        "write",
    }
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _first_word(name: str) -> str:
    spaced = _CAMEL.sub("_", name)
    return re.split(r"[_\-.\s]+", spaced.strip("_-. "), maxsplit=1)[0].lower()


def looks_like_write(name: str) -> bool:
    """Whether a tool's name starts with a verb that changes something (``create_``, ``cancelOrder``...)."""
    return _first_word(name) in WRITE_VERBS


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """A listed tool. ``declared_write`` is the environment's own effect, None for other servers."""

    name: str
    description: str | None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    read_only_hint: bool | None = None
    destructive_hint: bool | None = None
    declared_write: bool | None = None

    @classmethod
    def from_listing(cls, tool: types.Tool, declared_write: bool | None = None) -> ToolInfo:
        annotations = tool.annotations
        return cls(
            name=tool.name,
            description=tool.description,
            input_schema=dict(tool.input_schema),
            output_schema=dict(tool.output_schema) if tool.output_schema is not None else None,
            read_only_hint=annotations.read_only_hint if annotations is not None else None,
            destructive_hint=annotations.destructive_hint if annotations is not None else None,
            declared_write=declared_write,
        )

    @property
    def write_reason(self) -> str | None:
        """Why this tool counts as a write (for ``--no-writes``), or None when nothing says so."""
        if self.declared_write:
            return "declares effect 'write'"
        if self.read_only_hint is False:
            return "annotated readOnlyHint: false"
        if self.destructive_hint:
            return "annotated destructiveHint: true"
        if looks_like_write(self.name):
            return f"its name starts with {_first_word(self.name)!r}"
        return None

    @property
    def is_write(self) -> bool:
        return self.write_reason is not None
