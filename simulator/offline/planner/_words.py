"""How the planned requests are worded: the same move in many frames, shaped by the persona."""

from __future__ import annotations

from typing import Any

from simulator.offline.language import Phrasing, cap, field_name, field_words, format_value, join, label

__all__ = ["ask_fields", "change_field", "field_list", "frame", "pairs"]


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
    "{thing}: what's {fields}?",
    "What's {fields} of {thing}?",
    "{Fields} — {thing}, please.",
    "Look up {thing}: {fields}.",
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
    "Could you check {thing} for me? I'd like {fields}.",
    "What does {thing} say for {fields}?",
    "I'm curious about {thing} — what's {fields}?",
    "Can you find {thing} and read me {fields}?",
    "Would you tell me {fields} of {thing}?",
    "Let me know {fields} of {thing}, please.",
    "I'd like {fields} of {thing}, if you can find it.",
    "Could you see what {fields} of {thing} is?",
    "Any idea what {fields} of {thing} is?",
    "I need {fields} for {thing} — can you check?",
    "Can you confirm {fields} of {thing} for me?",
    "Quick one: {fields} of {thing}?",
    "Would you look up {fields} of {thing}?",
    "What have you got as {fields} of {thing}?",
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
    "I'm trying to get my records straight — could you tell me {fields} of {thing}?",
    "I don't have the paperwork to hand, so could you look up {fields} of {thing} for me?",
    "It's a small thing, but I'd like to know {fields} of {thing}.",
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


_CHANGE_TERSE = (
    "Set the {f} of {thing} to {v}.",
    "Change the {f} of {thing} to {v}, please.",
    "{Thing}: {f} to {v}.",
    "{Thing} — make the {f} {v}.",
    "The {f} on {thing} should be {v}.",
    "{F} of {thing} to {v}, please.",
    "Update {thing}: {f} {v}.",
)
_CHANGE = (
    "Could you change the {f} of {thing} to {v}?",
    "Please update the {f} on {thing} to {v}.",
    "I'd like the {f} of {thing} changed to {v}.",
    "Can you set the {f} for {thing} to {v}?",
    "The {f} of {thing} should be {v} — could you change it?",
    "Could you make the {f} of {thing} {v}?",
    "I'd like to set the {f} on {thing} to {v}.",
    "Please switch the {f} of {thing} to {v}.",
    "Can the {f} of {thing} be changed to {v}?",
    "Would you put {v} as the {f} of {thing}?",
    "I need the {f} on {thing} to be {v}.",
    "For {thing}, could the {f} be {v} instead?",
    "{Thing} needs its {f} changed to {v} — can you do that?",
    "Could you update {thing} so that the {f} is {v}?",
    "Is it possible to change the {f} of {thing} to {v}?",
    "I'd like {thing} to have {v} as its {f}.",
    "Would you mind changing the {f} on {thing} to {v}?",
    "Can you amend {thing}? The {f} should read {v}.",
    "I want the {f} of {thing} to say {v}, please.",
    "There's a change for {thing}: the {f} is {v} now.",
)
_CHANGE_VERBOSE = (
    "Something has changed on my side, so could you update the {f} of {thing} to {v}, please?",
    "I've realised the {f} on {thing} is out of date — would you change it to {v}?",
    "I hope this is a simple one: the {f} of {thing} ought to be {v}. Could you sort that out?",
    "If it's not too much bother, I'd like the {f} on {thing} changed to {v}.",
    "I was looking at {thing} and the {f} isn't right any more; could you make it {v}?",
)


def change_field(say: Phrasing, column: str, thing: str, v: str, value: object = None) -> str:
    """A request to set ``column`` of ``thing`` to ``v``: the field as a person names it ("the
    closing time", "the number of renewals"), in one of the register's frames."""
    name = field_words(column, value)  # "the number of renewals", not "the renewals ... to 4"
    if say.terse:
        bank: tuple[str, ...] = _CHANGE_TERSE
    elif say.verbose:
        bank = _CHANGE_VERBOSE + _CHANGE[:7]
    else:
        bank = _CHANGE
    return cap(say.pick(bank).format(f=name, F=cap(name), thing=thing, Thing=cap(thing), v=v))
