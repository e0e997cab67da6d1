"""How the planned requests are worded: the same move in many frames, shaped by the persona."""

from __future__ import annotations

from typing import Any

from simulator.offline.language import Phrasing, cap, field_name, format_value, join, label

__all__ = ["ask_fields", "field_list", "frame", "pairs"]


def field_list(fields: list[str]) -> str:
    """``["status", "total"]`` -> ``"the status and the total"``."""
    return join([f"the {field_name(f)}" for f in fields])


def pairs(say: Phrasing, args: dict[str, Any], names: list[str]) -> str:
    """``label value`` pairs in words: ``the label work, the city Leeds and the postal code LS1 4AB``."""
    return join([f"the {label(k)} {say.value(args[k], k)}" for k in names if k in args])


_ASK_TERSE = (
    "{Fields} of {thing}?",
    "{thing}: {fields}?",
    "Need the {bare} of {thing}.",
    "{Fields} for {thing}, please.",
    "{thing} — {fields}?",
    "Just {fields} of {thing}.",
    "{thing}? {Fields}, please.",
    "Check {thing}: {fields}?",
    "{Fields} on {thing}?",
    "Quick one — {fields} of {thing}?",
)
_ASK = (
    "What's {fields} of {thing}?",
    "Could you tell me {fields} of {thing}?",
    "I'd like to know {fields} of {thing}.",
    "Can you check {thing} and tell me {fields}?",
    "Can you look up {thing}? I need {fields}.",
    "I have a question about {thing}: what is {fields}?",
    "Would you check {fields} of {thing} for me?",
    "Please find {thing} and let me know {fields}.",
    "Do you know {fields} of {thing}?",
    "Could you find out {fields} of {thing}?",
    "I'm after {fields} of {thing}.",
    "Quick question about {thing}: what's {fields}?",
    "Can you pull up {thing} and give me {fields}?",
    "Would you let me know {fields} of {thing}?",
    "What does the system have as {fields} of {thing}?",
    "Can you see {fields} of {thing}?",
    "I'd like to check {fields} of {thing}, please.",
    "Could you read me {fields} of {thing}?",
    "Do you have {fields} of {thing} there?",
    "Would you look at {thing} and tell me {fields}?",
    "What have you got for {fields} of {thing}?",
    "I need to know {fields} of {thing}.",
    "Any chance you could check {fields} of {thing}?",
    "Could you give me {fields} of {thing}?",
    "I'm trying to find out {fields} of {thing}.",
    "Can you look into {thing} for me? I want {fields}.",
    "What is {fields} of {thing}, please?",
)
_ASK_VERBOSE = (
    "I was wondering if you could help me with {thing} — I'd really like to know {fields}.",
    "I've been trying to remember {fields} of {thing}; could you look it up for me?",
    "I'm sorting out my paperwork and I need {fields} of {thing}. Would you be able to check that?",
    "Could you do me a favour and look up {thing}? I'm after {fields}.",
    "If it's not too much trouble, I'd love to know {fields} of {thing}.",
    "I'd be really grateful if you could check {fields} of {thing} for me.",
    "Sorry to ask, but could you look up {thing}? I'd like {fields}.",
    "I've been going through my things and realised I don't know {fields} of {thing}. Could you help?",
    "Would you mind terribly checking {thing}? What I need is {fields}.",
    "My memory isn't what it was — what's {fields} of {thing}?",
)


def ask_fields(say: Phrasing, thing: str, fields: list[str]) -> str:
    """A question about ``fields`` of ``thing`` in the persona's register."""
    listed = field_list(fields)
    bare = join([field_name(f) for f in fields])
    if say.terse:
        bank: tuple[str, ...] = _ASK_TERSE
    elif say.verbose:
        bank = _ASK_VERBOSE + _ASK
    else:
        bank = _ASK
    text = say.pick(bank).format(fields=listed, Fields=cap(bare), bare=bare, thing=thing)
    return cap(text)


def frame(
    say: Phrasing, terse: tuple[str, ...], normal: tuple[str, ...], verbose: tuple[str, ...], **slots: Any
) -> str:
    """One of the register's frames, filled: terse users get terse frames, verbose ones chatty ones."""
    if say.terse:
        bank = terse
    elif say.verbose:
        bank = verbose + normal[: max(1, len(normal) // 3)]
    else:
        bank = normal
    return cap(say.pick(bank).format(**slots))


def value(say: Phrasing, v: Any, column: str = "") -> str:
    return format_value(v, column, currency=say.currency)
