"""Dialogue acts exchanged by the offline brains, alongside their template text.

The offline user and agent are a classic agenda-based pair: each message realises a
list of acts in template language, and the acts travel with the message (recorded in
the event) so the rule-based agent can act on what the user meant. An LLM brain ignores
them and reads the text.
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
    "Correct",
    "Greet",
    "Inform",
    "Refine",
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
    """Run ``tool`` for chain step ``step``: ``args`` said now, ``refs`` from earlier results,
    ``withheld`` the arguments the user has in mind but has not said yet."""

    step: str
    tool: str
    args: dict[str, Any] = {}
    refs: dict[str, ValueRef] = {}
    withheld: list[str] = []
    report: list[str] = []


class Inform(_Act, tag="inform"):
    args: dict[str, Any]


class Correct(_Act, tag="correct"):
    """The result of ``step`` was wrong; run ``tool`` again with these complete arguments."""

    step: str
    tool: str
    args: dict[str, Any]


class Refine(_Act, tag="refine"):
    """Run ``step`` again with ``args`` added (a filter, a sort)."""

    step: str
    args: dict[str, Any]


class Change(_Act, tag="change"):
    """The user changed their mind: run write ``step`` again with these values."""

    step: str
    args: dict[str, Any]


class Retry(_Act, tag="retry"):
    """``step`` did not take effect; do it again."""

    step: str


class Verify(_Act, tag="verify"):
    """Check the outcome of ``step`` by reading it back with ``tool``."""

    step: str
    tool: str
    args: dict[str, Any]


class Affirm(_Act, tag="affirm"):
    pass


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


Act = Greet | Request | Inform | Correct | Refine | Change | Retry | Verify | Affirm | Bye | Ask | Report

_decoder = msgspec.convert


def encode_acts(acts: list[Act]) -> list[dict[str, Any]]:
    """Acts as plain dicts, the form events carry."""
    out: list[dict[str, Any]] = msgspec.to_builtins(acts)
    return out


def decode_acts(raw: list[dict[str, Any]]) -> list[Act]:
    """Acts from an event; raises msgspec.ValidationError on a malformed act."""
    acts: list[Act] = _decoder(raw, list[Act])
    return acts
