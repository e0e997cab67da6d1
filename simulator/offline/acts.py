"""Dialogue acts exchanged by the offline brains, alongside their template text.

The offline user and agent are a classic agenda-based pair: each message realises a
list of acts in template language, and the acts travel with the message (recorded in
the event). The user's acts are a faithful parse of its words: every value in them is
in that message or earlier in the dialogue (a value said by the user or returned by a
tool); what the user has in mind but has not said travels only as the *name* of a slot
still to fill (``Request.withheld``). The rule-based agent acts on these parses, never on
the user's goal, and ``tests/simulator/offline/test_grounding.py`` checks both. An LLM
brain ignores them and reads the text.
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas import ValueRef

__all__ = [
    "Act",
    "Affirm",
    "Ask",
    "Bye",
    "Change",
    "Confirm",
    "Correct",
    "Greet",
    "Inform",
    "Refine",
    "Refuse",
    "Report",
    "Request",
    "Retry",
    "Verify",
    "decode_acts",
    "encode_acts",
]


class _Act(msgspec.Struct, kw_only=True, tag_field="act"):
    pass


class Greet(_Act, tag="greet"):
    pass


class Request(_Act, tag="request"):
    """Run ``tool`` for chain step ``step``: ``args`` said (now or earlier), ``refs`` from
    earlier results, ``withheld`` the names of arguments the words leave open, ``report``
    the fields the words ask about."""

    step: str
    tool: str
    args: dict[str, Any] = {}
    refs: dict[str, ValueRef] = {}
    withheld: list[str] = []
    report: list[str] = []


class Inform(_Act, tag="inform"):
    args: dict[str, Any]


class Correct(_Act, tag="correct"):
    """The result of ``step`` was wrong; run ``tool`` again with these arguments (and ``refs``)."""

    step: str
    tool: str
    args: dict[str, Any]
    refs: dict[str, ValueRef] = {}


class Refine(_Act, tag="refine"):
    """Run ``step`` again with ``args`` added (a filter, a sort)."""

    step: str
    args: dict[str, Any]


class Change(_Act, tag="change"):
    """Use these values for write ``step`` instead (a change of mind, or a correction after an error)."""

    step: str
    args: dict[str, Any]


class Retry(_Act, tag="retry"):
    """``step`` did not take effect; do it again."""

    step: str


class Verify(_Act, tag="verify"):
    """Read back what write ``step`` changed and say ``fields`` again."""

    step: str
    fields: list[str] = []


class Affirm(_Act, tag="affirm"):
    """Yes: to the agent's last confirmation question, or to its answer."""


class Bye(_Act, tag="bye"):
    pass


class Ask(_Act, tag="ask"):
    """The agent needs these arguments before it can run ``step``."""

    step: str
    slots: list[str]


class Report(_Act, tag="report"):
    step: str
    tool: str
    ok: bool
    values: dict[str, Any] = {}
    #: The tool's error code when ``ok`` is false.
    error: str | None = None


class Confirm(_Act, tag="confirm"):
    """The agent restated write ``step`` (``args`` as it would call it) and waits for a yes."""

    step: str
    tool: str
    args: dict[str, Any] = {}


class Refuse(_Act, tag="refuse"):
    """The rules forbid ``step``; ``rule`` says which (ownership, transition, ...)."""

    step: str
    rule: str


Act = (
    Greet
    | Request
    | Inform
    | Correct
    | Refine
    | Change
    | Retry
    | Verify
    | Affirm
    | Bye
    | Ask
    | Report
    | Confirm
    | Refuse
)


class _Acts(msgspec.Struct):
    # msgspec keeps the decoding plan of a Struct's fields on the class; for a bare
    # ``list[Act]`` it works the union out again on every call (about 20x slower).
    acts: list[Act]


def encode_acts(acts: list[Act]) -> list[dict[str, Any]]:
    """Acts as plain dicts, the form events carry."""
    out: list[dict[str, Any]] = msgspec.to_builtins(acts)
    return out


def decode_acts(raw: list[dict[str, Any]]) -> list[Act]:
    """Acts from an event; raises msgspec.ValidationError on a malformed act."""
    return msgspec.convert({"acts": raw}, _Acts).acts
