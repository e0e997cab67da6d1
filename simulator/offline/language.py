"""Template language for the offline brains: nouns, values the way people write them, phrase banks.

Articles and plurals come from ``inflect`` (one engine per process, results cached);
dates, times and money are written as a person writes them ("Tuesday 12 May", "€45.00",
"14:30"), never as ISO stamps or raw column names. Phrases are drawn from banks with the
dialogue's seeded ``random.Random``; the persona picks the register (terse, normal,
verbose; polite, neutral, impatient) so a terse user's messages are a fraction of a
chatty one's, and the same seed always gives the same words.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Sequence
from typing import Any

from schemas import Persona
from simulator.offline._inflect import article, plural
from toolservers.naming import singular

__all__ = [
    "MONEY_WORDS",
    "attach",
    "Phrasing",
    "a",
    "cap",
    "contact",
    "dash_case",
    "entity",
    "entity_plural",
    "field_name",
    "field_words",
    "format_value",
    "is_code",
    "is_flag",
    "is_money",
    "total_of",
    "join",
    "named",
    "label",
    "value_forms",
]

_ACRONYMS = {"id": "ID", "url": "URL", "sku": "SKU", "iata": "IATA", "vip": "VIP", "isbn": "ISBN"}
MONEY_WORDS = ("price", "total", "amount", "cost", "fee", "refund", "rate", "balance", "charge")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SNAKE = re.compile(r"[a-z]+(?:_[a-z]+)+")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?Z?)?")


def label(column: str) -> str:
    """``customer_id`` -> ``customer ID``; ``placed_on`` -> ``placed on``; ``total_total`` -> ``total``."""
    words = [w for w in column.split("_") if w]
    words = [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]
    return " ".join(_ACRONYMS.get(w, w) for w in words)


def field_name(column: str) -> str:
    """A column as a person names it in a question: ``opens_at`` -> ``opening time``,
    ``borrowed_on`` -> ``borrowed date``, ``due_on`` -> ``due date``; else its label."""
    low = column.lower()
    if not low.endswith(("_on", "_at")) or low.count("_") != 1:
        return label(column)
    verb = low.split("_", 1)[0]
    noun = "time" if low.endswith("_at") else "date"
    if verb.endswith("s") and len(verb) > 3 and noun == "time":  # opens, closes: a present verb
        stem = verb[:-1]
        stem = stem[:-1] if stem.endswith("e") else stem
        return f"{stem}ing {noun}"
    if verb.endswith("s") and len(verb) > 3:  # starts_on
        return f"{verb[:-1]} {noun}"
    return f"{verb} {noun}"


_CONTACT = {
    "email": ("email address", "email", "email address"),
    "phone": ("phone number",),
    "mobile": ("mobile number", "mobile"),
}


def contact(column: str, rng: random.Random | None = None) -> str:
    """How a person names a way of identifying them: ``email`` -> ``email address``,
    ``phone`` -> ``phone number``, ``card_number`` -> ``card number``."""
    names = _CONTACT.get(column.lower())
    if names is None:
        return label(column)
    return names[0] if rng is None else names[rng.randrange(len(names))]


_UNITS = frozenset(
    {"minutes", "hours", "days", "nights", "weeks", "months", "years", "pages", "units", "seats", "points"}
)


def total_of(column: str) -> tuple[str, str]:
    """What a ``total_*`` sum adds up, and its unit: ``total_duration_minutes`` -> ``("duration", "minutes")``,
    ``total_amount`` -> ``("amount", "")``, ``total_pages`` -> ``("", "pages")``."""
    words = label(column.removeprefix("total_")).split()
    words = [w for w in words if w != "total"] or ["total"]
    if words[-1] in _UNITS:
        return " ".join(words[:-1]), words[-1]
    return " ".join(words), ""


def field_words(column: str, value: Any = None) -> str:
    """A field as a person names it, a count as one: ``renewals`` (3) -> ``number of renewals``."""
    from simulator.offline._inflect import engine

    name = field_name(column)
    last = name.rsplit(" ", 1)[-1]
    if isinstance(value, int) and not isinstance(value, bool) and " " not in name and engine().singular_noun(last):
        return f"number of {name}"
    return name


def is_code(name: str) -> bool:
    """Whether ``name`` is a code or number rather than a name (``C292985031``, ``ORD-10046``)."""
    return " " not in name.strip() and any(ch.isdigit() for ch in name)


def named(noun: str, name: str, *, title: bool = False) -> str:
    """How a person calls a row by its name: a code with its noun ("copy C292985031"), a title
    or a name of several words as it is ("Rails Across the Andes"), one word with "the"."""
    if is_code(name):
        return f"{noun} {name}"
    if title or " " in name or not name[:1].isupper():
        return name
    return f"the {name}"


def entity(table: str) -> str:
    """A table's row as a noun: ``order_items`` -> ``order item``."""
    return singular(table).replace("_", " ")


def entity_plural(table: str) -> str:
    """``order_items`` -> ``order items``; ``category`` -> ``categories``."""
    return plural(entity(table))


def a(phrase: str) -> str:
    """``a(order)`` -> ``an order``."""
    return article(phrase)


def cap(text: str) -> str:
    """Upper-case the first letter only (``cap("iPhone case")`` keeps the rest)."""
    return text[:1].upper() + text[1:] if text else text


def join(parts: Sequence[str], word: str = "and") -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    items = [p for p in parts if p]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def is_money(column: str) -> bool:
    low = column.lower()
    return any(w in low for w in MONEY_WORDS) and not low.endswith(("_id", "_method", "_count"))


def _date(text: str) -> tuple[dt.date, tuple[int, int] | None] | None:
    m = _ISO_DATE.fullmatch(text)
    if not m:
        return None
    try:
        day = dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
    clock = (int(m[4]), int(m[5])) if m[4] is not None else None
    return day, clock


def human_date(day: dt.date, *, weekday: bool = False) -> str:
    """``4 May 2026`` (``Monday 4 May 2026`` with ``weekday``)."""
    text = f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
    return f"{_WEEKDAYS[day.weekday()]} {text}" if weekday else text


def is_flag(column: str, value: Any) -> bool:
    """Whether ``value`` of ``column`` is a yes/no flag stored as 0 or 1 (``is_default``, ``active``)."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value in (0, 1)
        and column.lower().startswith(("is_", "has_", "accepting", "active"))
    )


def format_value(value: Any, column: str = "", *, currency: str = "") -> str:
    """How the offline brains write a value: dates and money as people write them."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) or (isinstance(value, int) and column and is_money(column)):
        if column and is_money(column):
            return f"{currency}{value:,.2f}"
        return f"{value:,.2f}" if isinstance(value, float) else str(value)
    if isinstance(value, int):
        if is_flag(column, value):
            return "yes" if value else "no"
        return str(value)
    text = str(value)
    parsed = _date(text)
    if parsed is not None:
        day, clock = parsed
        out = human_date(day)
        if clock is not None and clock != (0, 0):
            out += f" at {clock[0]:02d}:{clock[1]:02d}"
        return out
    if _SNAKE.fullmatch(text):
        return text.replace("_", " ")
    if " " in text.strip() and text.rstrip()[-1:] in {".", "!", "?"}:
        return f'"{text}"'  # a phrase that ends a sentence of its own, inside another sentence
    return text


def value_forms(value: Any) -> list[str]:
    """Ways a value may appear in an answer (for grounding: was it said?)."""
    forms = {format_value(value)}
    if isinstance(value, bool):
        return sorted(forms)
    if isinstance(value, float):
        forms |= {repr(value), f"{value:.2f}", f"{value:,.2f}"}
        if value.is_integer():
            forms.add(str(int(value)))
    elif isinstance(value, int):
        forms |= {str(value), f"{value:,}"}
    elif isinstance(value, str):
        forms.add(value)
        parsed = _date(value)
        if parsed is not None:
            day, _ = parsed
            forms |= {human_date(day), f"{day.day} {_MONTHS[day.month - 1]}", f"{_MONTHS[day.month - 1]} {day.day}"}
    return sorted(forms)


# --------------------------------------------------------------------------- phrase banks
#
# Banks are keyed by register. ``{...}`` slots are filled by the caller; every bank of a
# frequent move has many entries so no sentence dominates a dataset.

_HELLO = {
    "polite": (
        "Hi there!",
        "Hello, good morning.",
        "Hi, I hope you can help me.",
        "Hello!",
        "Good afternoon.",
        "Hi, good evening.",
        "Hello there, I hope you're well.",
        "Hi! Thanks for picking this up.",
        "Good morning!",
        "Hello, thanks for taking the time.",
        "Hi, I was hoping you could help.",
        "Good morning — lovely to get through.",
        "Hello, and thank you for answering.",
        "Hi, hope your day's going well.",
        "Evening! Sorry to bother you.",
        "Hello, I'd appreciate a hand with something.",
        "Hi, sorry to trouble you.",
        "Good afternoon, I hope I've come to the right place.",
        "Hello, I wonder if you could help me.",
        "Good evening, thanks for picking up.",
        "Hi, thank you for your time.",
        "Hello — thanks so much for getting back to me.",
        "Good morning, I have a couple of questions.",
        "Hi there, I hope it's not too busy today.",
        "Hello, I'm hoping you can sort something out for me.",
        "Hi, could you help me with my account?",
    ),
    "neutral": (
        "Hi.",
        "Hello.",
        "Hey.",
        "Hi there.",
        "Morning.",
        "Hello there.",
        "Hey there.",
        "Good day.",
        "Afternoon.",
        "Hi, hello.",
        "Hello again.",
        "Hi, good morning.",
        "Hi, I have a few questions.",
        "Hello, hope you can help.",
        "Hiya.",
        "Hi, got a minute?",
        "Hello, quick question or two.",
        "Hey, how's it going?",
        "Hi, evening.",
        "Hello, I'm calling about my account.",
        "Hi, can you help me out?",
        "Hi, I need a hand.",
        "Hello, a couple of things.",
        "Hey, quick question.",
        "Morning, I've got a question.",
        "Hi — one or two things.",
        "Hello, I'm after some help.",
        "Hi, I'm checking a few things.",
    ),
    "impatient": (
        "Hi, quick one.",
        "Hey, I need something sorted.",
        "Hello — I'm in a bit of a hurry.",
        "Hi, I'm short on time.",
        "Hey. Let's be quick.",
        "Hi, this needs to be fast.",
        "Hi. Straight to it.",
        "Hello, no time to chat.",
        "Hey — urgent-ish.",
        "Hi, let's get this done.",
        "Right, hello. Busy day.",
        "Hi. Quick question.",
        "Hello — need this done fast.",
        "Hey, short on time today.",
        "Hi, let's keep it brief.",
        "Right. I need help, quickly.",
    ),
}
_INTRO = (
    "This is {name}.",
    "My name is {name}.",
    "It's {name} here.",
    "{name} speaking.",
    "I'm {name}.",
    "This is {name}, by the way.",
    "{name} here.",
    "You're talking to {name}.",
    "I'm {name}, by the way.",
    "The name's {name}.",
    "My name's {name}.",
)
_CHATTER = (
    "I've been meaning to sort this out for a few days.",
    "I hope this won't take long.",
    "I tried the website first but couldn't work it out.",
    "A friend told me you could help with this.",
    "I'm doing a bit of admin this afternoon.",
    "I'm finally getting round to a few things on my list.",
    "It's been a busy week, so thanks for your patience.",
    "Sorry if this is a silly question.",
    "I'm on my lunch break, so this is a good moment.",
    "I'd rather ask than get it wrong.",
    "I've got a few things to go through, if that's all right.",
    "I'm trying to get organised before the weekend.",
    "The kids are finally asleep, so now's my chance.",
    "I've got a cup of tea and a list, so here goes.",
    "My partner usually handles this, but they're away.",
    "I've been putting this off for ages, honestly.",
    "I'm new to all this, so bear with me.",
    "It's my day off and I'm catching up on errands.",
    "I wrote everything down so I wouldn't forget.",
    "I'm between meetings, but it shouldn't take long.",
    "Last time it went smoothly, so I thought I'd ask again.",
    "I'm a bit out of practice with these things.",
    "I'm sorting a few things out before I go away.",
    "I meant to do this yesterday but ran out of time.",
    "I'm not very good with these systems, so I thought I'd ask.",
    "I've just got home and remembered.",
    "I'm tidying up my accounts this week.",
    "It's quieter today, so I thought I'd get this done.",
    "I couldn't find it anywhere online.",
    "I've got about ten minutes, if that's all right.",
    "My neighbour said it was easy to sort out by asking.",
    "I'm keeping a list, and this is next on it.",
    "I don't do this very often, so sorry if I'm slow.",
    "It's been on my mind all week.",
)
_THANKS = {
    "polite": (
        "Great, thank you!",
        "Perfect, that's a big help.",
        "Thanks, that's exactly it.",
        "Wonderful, thank you.",
        "That's really helpful of you.",
        "Lovely, thank you so much.",
        "Brilliant, you're a star.",
        "Thank you, that's clear.",
        "Excellent, I appreciate you looking.",
        "That's great to know, thank you.",
        "Super, much appreciated.",
        "Much appreciated.",
        "Fantastic, thank you.",
        "Thanks, that answers it.",
        "Oh good, thank you.",
        "That's just what I needed.",
        "Oh, lovely — thank you.",
        "That's very kind of you.",
        "Thank you, that's really useful.",
        "How helpful, thank you.",
        "Ah, wonderful, you've saved me a headache.",
        "Thanks, that's good to hear.",
        "Marvellous, thank you.",
        "That clears it up, thank you.",
        "Ah, perfect — I appreciate it.",
        "Oh, splendid.",
        "That's reassuring, thank you kindly.",
        "Lovely stuff, cheers.",
        "How kind, that's exactly what I hoped.",
        "Thank you ever so much.",
        "Great, I really appreciate your help.",
        "That's a weight off my mind, thanks.",
        "Oh, how useful.",
        "Good, that's what I was after — thanks.",
        "Superb, thank you.",
        "Much obliged.",
        "I'm grateful, thank you.",
        "Thanks a million.",
        "Oh, that's good news.",
        "Aha, thank you.",
        "That sorts it, many thanks.",
        "Thank you, I'd wondered about that.",
        "Oh, I'm glad to hear it.",
        "Thanks — you've been quick.",
        "That's put my mind at ease.",
        "Right, that's lovely.",
        "Gosh, thank you.",
        "Thanks, I'll keep that in mind.",
        "Oh, that's handy to know.",
        "Thank you for looking.",
        "How reassuring — I'm glad I asked.",
        "I appreciate that.",
        "That's kind of you to check.",
        "Oh good, that's sorted then.",
        "Thanks, that's cleared it up.",
        "Wonderful, I'm relieved.",
        "Thank you, that's what I hoped.",
        "That's very useful, cheers.",
        "Brilliant — I'm grateful.",
        "Thanks for being so thorough.",
        "Oh, thank goodness.",
        "That's lovely to hear.",
        "Thank you, that helps a lot.",
        "Oh, that's useful — thanks.",
        "Lovely, that's what I needed to know.",
        "Thank you for finding that.",
        "That's perfect, thanks so much.",
        "Ah, that explains it — thank you.",
        "Thank you, that's one less thing to wonder about.",
        "Great, you've been very helpful.",
        "Oh, brilliant, thank you.",
        "Thanks ever so much for checking.",
        "That's good to know, I appreciate it.",
        "Wonderful, that's cleared things up.",
        "Thank you — that's a relief.",
        "How lovely, thanks.",
        "Thanks, that's really clear.",
        "I'm very grateful, thank you.",
        "Oh, excellent — thanks.",
        "That's just right, thank you.",
        "Thank you, I thought as much.",
        "Perfect, thank you for explaining.",
        "Oh, wonderful news.",
        "Thanks, you've been a great help.",
        "Ah, lovely, that's settled.",
        "That's so helpful, thank you.",
        "Thank you — that's exactly what I wanted to hear.",
    ),
    "neutral": (
        "OK, thanks.",
        "Got it.",
        "Good.",
        "Right you are, ta.",
        "Fine, thanks.",
        "OK.",
        "Thanks.",
        "Understood.",
        "Noted.",
        "Crystal clear.",
        "Alright.",
        "Makes sense.",
        "OK, good.",
        "Right.",
        "Thanks for checking.",
        "That helps.",
        "Good to know.",
        "Fair enough.",
        "All right, much obliged.",
        "That works.",
        "Thanks for that.",
        "Sounds good.",
        "Duly noted.",
        "Cool, that helps.",
        "That's clear enough.",
        "Message received.",
        "Great.",
        "Perfect.",
        "Nice.",
        "Ah, OK.",
        "Gotcha.",
        "Cheers.",
        "OK, cool.",
        "Yep, that's it.",
        "Good stuff.",
        "Right you are.",
        "Clear as day.",
        "Ah, right.",
        "Sure thing.",
        "That's handy.",
        "OK, I see.",
        "Fine by me.",
        "Noted, cheers.",
        "I follow.",
        "Fine, good.",
        "That adds up.",
        "That's fair.",
        "Great stuff.",
        "Sweet.",
        "Lovely.",
        "Good — one less thing to chase.",
        "Brilliant.",
        "Got it, ta.",
        "Handy.",
        "Ah, good.",
        "Right, OK then.",
        "Yep, spot on.",
        "Thanks, good to hear.",
        "OK, that settles it.",
        "Roger that.",
        "Fine, plain enough.",
        "Ah, I see now.",
        "That's useful to have.",
        "Great, cheers.",
        "Nice one.",
        "Okay, thanks for that.",
        "That's what I thought.",
        "So that's it.",
        "Good, glad that's clear.",
        "Noted, I'll remember that.",
        "All clear.",
        "OK, that's useful.",
        "Right, thanks for that.",
        "Good, that's clear.",
        "OK, understood, thanks.",
        "Fair enough, thanks.",
        "Right, got that.",
        "Thanks, that's fine.",
        "OK, makes sense.",
        "Good to know, ta.",
        "Cool, thanks.",
        "OK, that works.",
        "Right, noted, thanks.",
        "Sure, thanks.",
        "Fine, that's clear.",
        "OK, cheers for that.",
        "That's fine, thanks.",
        "Good stuff, thanks.",
        "Right, OK — thanks.",
        "Thanks, got it.",
    ),
    "impatient": (
        "Fine.",
        "OK.",
        "Good, moving on.",
        "Right.",
        "Good.",
        "Noted.",
        "OK, next.",
        "Fine, next.",
        "Got it, next.",
        "Right, go on.",
        "OK, good.",
        "That'll do.",
        "Fine, thanks.",
        "Good enough.",
        "Yes, fine.",
        "OK, keep going.",
        "Right, and?",
        "Sure.",
        "Next thing.",
        "Fine, carry on.",
        "OK, moving along.",
        "Right, next one.",
        "Good. Next.",
        "OK, fine.",
        "Yes, OK.",
        "Noted, next.",
        "Fine, let's go on.",
        "OK — and the next thing.",
        "Right, that's that.",
        "Good, quickly now.",
        "OK, got it.",
        "Fine. Moving on.",
        "Right, done.",
        "Right, good.",
        "Right. Next.",
        "Fine, noted.",
        "OK, that'll do.",
    ),
}
#: Thanks that repeat back what the agent reported ({v}: the value as said).
_ECHO = {
    "polite": (
        "{V} — lovely, thank you.",
        "Ah, {v}. Thank you for checking.",
        "So it's {v}? That's helpful.",
        "Oh, {v} — good to know.",
        "{V}, wonderful. Thank you.",
        "Right, {v}. Thanks so much.",
        "I'll jot down {v} — thank you.",
        "{V}! Thanks for finding that.",
        "Oh, it's {v}. Thank you.",
        "{V} — I'd never have remembered.",
        "So {v} — thanks ever so much.",
        "{V} — that's just what I needed, thanks.",
        "Thank you — {v}, then.",
        "Ah, {v}! That's very helpful.",
        "{V}. Thanks for looking that up.",
        "How lovely — {v}. Thank you.",
        "{V}; I'll make a note. Thank you kindly.",
        "Oh good, {v}. Much appreciated.",
    ),
    "neutral": (
        "{V} — right you are.",
        "So {v}. Got it.",
        "{V}, is it? Fine.",
        "OK, {v}. Noted.",
        "{V}, good.",
        "Ah, {v} — that makes sense.",
        "Good, {v} it is.",
        "{V}? Good to have that.",
        "{V} — fine.",
        "Right, so it's {v}.",
        "{V}. Good to know.",
        "OK, so {v} then.",
        "{V}, OK — thanks.",
        "Right, {v} then.",
        "{V}. That's what I thought.",
        "Okay, {v}, thanks.",
        "{V} — makes sense.",
        "Got it: {v}.",
        "{V}, noted, thanks.",
    ),
    "impatient": (
        "{V}. Fine.",
        "{V}, OK.",
        "Right, {v}.",
        "{V} — noted.",
        "OK, {v}. Next.",
        "{V}. Got it.",
        "Fine, {v}.",
        "{V}. OK, moving on.",
        "So {v}. Right.",
    ),
}
_ECHO_TERSE = (
    "{V}, OK.",
    "{V}. Thanks.",
    "{V} — got it.",
    "OK, {v}.",
    "{V}. OK.",
    "{V}, right.",
    "So {v}.",
    "{V}. Noted.",
)
_NEXT = (
    "Next,",
    "Also,",
    "One more thing:",
    "While you're at it,",
    "Now,",
    "Then,",
    "After that,",
    "Another thing:",
    "Oh, and",
    "Something else:",
    "Moving on,",
    "Separately,",
    "On another note,",
    "Besides that,",
    "And another question:",
    "Next question:",
    "There's something else too:",
    "While I have you,",
    "Before I forget,",
    "One last bit:",
    "I also wanted to ask:",
    "Additionally,",
    "Right, next:",
    "Also, quickly:",
    "Right, something different:",
    "On a different topic,",
    "Another question for you:",
    "Also, while we're here,",
    "And then,",
    "Next up,",
    "Oh, one more:",
    "Changing the subject,",
    "Now, the other thing:",
    "What I also need:",
    "Plus,",
    "There's one more thing I need:",
    "Anyway,",
    "OK, so,",
    "Second thing:",
    "Also, if you could,",
    "Now that's done,",
    "One further thing:",
    "Right, on to the next:",
    "Here's another:",
    "Okay, and",
    "Next on my list:",
    "And now,",
    "That reminds me:",
    "Also, I meant to ask:",
    "While I think of it,",
    "Then there's this:",
    "And the other thing:",
    "Another one:",
    "One other question:",
    "And lastly for now,",
    "Let's see, next:",
    "Also — quick one:",
    "Sticking with the account,",
    "Right then,",
    "So, next thing:",
    "Good — now,",
    "One more, if I may:",
    "My next question:",
    "And, separately,",
    "Another thing I need:",
    "Okay, so next,",
    "Next thing:",
    "Also, one thing:",
    "While we're at it,",
    "Okay, something else:",
    "And, if you don't mind,",
    "Now, another one:",
    "One more request:",
    "Before I go,",
    "And another thing:",
    "Also, could I ask:",
    "Right, and",
    "Then I have another one:",
    "Oh, something else:",
    "And next,",
    "Second question:",
    "Now, while you're there,",
    "One more question:",
    "Okay, next:",
    "Another quick one:",
    "Moving on to something else,",
    "And one more:",
    "Also, another thing:",
    "Next, if I may,",
    "Could I also ask:",
    "Then, one more:",
    "And while I'm here,",
    "Another small thing:",
    "I also need something else:",
    "Now, on another matter,",
    "As well as that,",
    "And then one more thing:",
    "Also, while I remember,",
    "On top of that,",
    "Oh, and one more thing:",
    "Right, my next question:",
    "Next, please:",
    "There's another thing:",
    "One thing more:",
    "And finally for now,",
    "Also, something else:",
    "Separately, though,",
    "Another point:",
    "OK, and another:",
    "Now for something else:",
    "While you're there,",
    "And, quickly,",
    "Then there's one more:",
    "And on a related note,",
    "Next one:",
    "Also — one more:",
)
_YES = {
    "polite": (
        "Yes, please go ahead.",
        "Yes please, spot on.",
        "That's correct, go ahead, thank you.",
        "Yes, that's all correct — please do.",
        "Yes, please, that's what I'd like.",
        "Perfect, yes, go ahead.",
        "Yes — thank you, please do that.",
        "That's right, please go ahead with it.",
        "Yes, that sounds right. Please do.",
        "Yes please, thank you for checking.",
        "Correct, yes please.",
        "Yes — go right ahead, please.",
        "Yes, thank you — that's exactly right.",
        "Absolutely, please go ahead.",
        "Perfect. Please proceed.",
        "Lovely, yes, do go ahead.",
        "That's spot on, yes please.",
        "Yes please — that's the one.",
        "Yes, that's what I'm after — please go ahead.",
        "Indeed, please do.",
        "That's it exactly. Go ahead, thank you.",
        "Yes, I'm happy with that.",
        "That all sounds right to me — please proceed.",
        "Yes, please. Thanks for reading it back.",
        "Quite right, yes.",
        "That's the plan — go ahead.",
        "Yes, that's right — please go ahead.",
        "Yes, that's perfect, thank you.",
        "Yes please, that's exactly it.",
        "That's right, yes — thank you.",
        "Yes, go ahead, that's all correct.",
        "Yes, lovely, please do.",
        "Yes, that's lovely — go ahead.",
        "Yes please; that all looks right.",
        "Yes, thanks — go ahead and save it.",
        "That's correct, yes — please carry on.",
    ),
    "neutral": (
        "Yes.",
        "Yes, go ahead.",
        "Correct.",
        "Yes, do it.",
        "That's right.",
        "Yep, go ahead.",
        "Yes, correct.",
        "Sure, go ahead.",
        "Yes please.",
        "OK, yes.",
        "Right, go ahead.",
        "Yes, that's it.",
        "Yeah, go ahead.",
        "Yes, sounds right.",
        "Sure, do it.",
        "Yep, that's right.",
        "Correct, go on.",
        "Yes, fine.",
        "Right, yes.",
        "Yes — all correct.",
        "Yep, do it.",
        "Yes, all good.",
        "Sure, that's right.",
        "Sure, go for it.",
        "Yes, fine by me.",
        "Right, do it.",
        "Yes, that works.",
        "Yeah, all good.",
        "Correct — go on.",
        "All correct, yes.",
        "Yep, sounds right.",
        "Yes, that's fine.",
        "Yep, all correct.",
        "Yes, save it.",
        "Yes — go on then.",
        "Correct, do it.",
        "Yes, put it through.",
        "Sure, save it.",
        "Yes, that's the one.",
        "Yes, carry on.",
        "Yep, that's it.",
    ),
    "impatient": (
        "Yes.",
        "Yes, go.",
        "Yes, do it.",
        "Correct, go ahead.",
        "Yep.",
        "Yes, just do it.",
        "Go ahead.",
        "Yes, get on with it.",
        "Right, yes, go.",
        "Yes — quickly, please.",
        "Fine, do it.",
        "Yes, that's it, go.",
        "Yes, save it.",
        "Yep, go.",
        "Correct. Do it.",
        "Yes — go on.",
        "Yes, carry on.",
    ),
}
#: A yes that names the field it agrees to ("Yes, the due date should be 8 June.").
_YES_FIELD = (
    "Yes, the {f} should be {v} — go ahead.",
    "Yes — {v} as the {f}, please.",
    "That's right, the {f} should be {v}.",
    "Yes, {v} for the {f} is correct.",
    "Correct — the {f} is {v}. Go ahead.",
    "Yes please, make the {f} {v}.",
    "Exactly, {v} for the {f}.",
    "Yes, {f} {v}, that's it.",
    "Yep — the {f} is {v}, go ahead.",
    "That's right: {v} is the {f} I want.",
    "Yes, put {v} as the {f}.",
    "Correct, the {f} {v} — please save it.",
    "Yes, that's the {f} I wanted: {v}.",
    "Yes — the {f}, {v}, is right.",
)
#: Now and then after a yes: a word more, never a no.
_YES_MORE = (
    "Thanks for checking.",
    "That's what I wanted.",
    "Thank you.",
    "Much appreciated.",
    "Thanks for reading it back.",
    "That's all correct.",
    "Lovely, thanks.",
    "That's exactly what I asked for.",
    "Great, thanks.",
    "Thanks for being careful.",
    "That's how I want it.",
    "Cheers.",
)
_YES_TERSE = (
    "Yes.",
    "Yep.",
    "Correct.",
    "Go ahead.",
    "Yes, do it.",
    "Confirmed.",
    "Yes please.",
    "Sure, go.",
    "Do it.",
    "Right, yes.",
    "Yes, go ahead.",
    "Correct, go.",
    "Yep, save it.",
    "Yes, fine.",
    "OK, yes.",
    "Sure, yes.",
)
_WRONG = (
    "Hmm, that doesn't look right.",
    "I don't think that's correct.",
    "That's not the one I meant.",
    "Wait, that's not what I expected.",
    "No, that's not it.",
    "That doesn't match what I have.",
    "Sorry, I think there's a mix-up.",
    "That's not quite right.",
    "I'm not sure that's the right one.",
    "Hang on, that isn't right.",
    "That's not what I was expecting.",
    "Something's off there.",
    "Hmm, no — that doesn't look like mine.",
    "That can't be right.",
    "No, I don't think so.",
)
_MISSING = (
    "It doesn't look like that went through.",
    "I can't see that change yet.",
    "That didn't seem to work.",
    "I don't think that was done.",
    "I'm not seeing the change on my side.",
    "Are you sure that was saved?",
    "Hmm, it doesn't look changed.",
    "I'm not sure it actually happened.",
    "It looks the same as before to me.",
    "Nothing seems to have changed.",
)
_UNSURE = (
    "Could you double-check that the {what} is now {value}?",
    "Just to be sure — can you confirm the {what} is {value} now?",
    "Would you mind checking once more that the {what} shows {value}?",
    "Can you look again and tell me the {what}?",
    "Sorry to be a pain, but could you check the {what} one more time?",
    "Can you verify the {what} really is {value}?",
    "Before we move on, can you read me the {what} again?",
    "Could you confirm the {what} for me once more?",
    "Just checking — is the {what} definitely {value} now?",
    "Sorry, can you read the {what} back to me?",
    "Would you check the {what} is showing {value}?",
    "Can you confirm it really says {value} for the {what}?",
    "One more look at the {what}, please?",
    "Is the {what} actually {value} now? Could you check?",
)
_CHANGE_MIND = (
    "Actually, I've changed my mind — make it {new} instead of {old}.",
    "Sorry, on second thought, {new} rather than {old}.",
    "Hmm, actually, could it be {new} instead of {old}?",
    "Wait, let's do {new}, not {old}.",
    "Oh, hang on — {new} would be better than {old}.",
    "Let me rethink that: {new} instead, please, not {old}.",
    "Actually, make that {new}, not {old}.",
    "No, wait — {new} rather than {old}, please.",
    "Sorry, I meant {new}, not {old}.",
    "Hold on, can we say {new} instead of {old}?",
)
_INFORM = (
    "the {l} is {v}",
    "my {l} is {v}",
    "my {l} is {v}",
    "{v} is my {l}",
    "the {l} I use is {v}",
    "the {l} you'll have is {v}",
    "it's {v} for the {l}",
    "the {l} should be {v}",
    "{v} — that's the {l}",
    "it's {v}",
    "that would be {v}",
)
#: Only for the ways a user is identified ("you'll find me under ...").
_INFORM_ME = (
    "you'll find me under {v}",
    "I'm registered with {v}",
    "the account is under {v}",
    "it's {v} on my account",
    "I signed up with {v}",
    "you should have me as {v}",
    "try {v}, that's my {l}",
    "I'm on your system with the {l} {v}",
    "the {l} on file should be {v}",
    "look me up by {v}",
)
_INFORM_TERSE = ("{L}: {v}.", "It's {v}.", "Try {v}.", "My {l}: {v}.", "Under {v}.")
_INFORM_LEAD = (
    "Sure, ", "Yes — ", "Of course: ", "", "", "", "OK, ", "Certainly: ", "Right, ", "Here you go: ",
    "No problem — ", "Ah yes, ", "Let me see — ", "Happy to: ", "Sure thing: ", "Yes, of course, ",
    "Hang on — ", "Got it here: ", "Just a sec — ", "Oh, right: ", "Fine — ", "One moment, ",
)  # fmt: skip
_INSTEAD = (
    "I don't have my {asked} to hand — my {l} is {v}, though.",
    "I'm not sure which {asked} I used, but my {l} is {v}.",
    "Can I give you my {l} instead? It's {v}.",
    "I'd rather not give my {asked}. My {l} is {v} — will that do?",
    "Hmm, I can't remember my {asked}. You could try my {l}: {v}.",
    "Not the {asked}, I'm afraid, but I do have my {l}: {v}.",
    "Would my {l} work instead? It's {v}.",
    "I never remember my {asked}, sorry — here's my {l}: {v}.",
    "My {l} should find me: {v}.",
    "I only have my {l} with me, which is {v}.",
    "I'm not sure about the {asked}; the {l} I know is {v}.",
    "Sorry, I don't know my {asked} offhand. It's {v} for the {l}.",
)
_INSTEAD_TERSE = ("{L}: {v}.", "My {l}: {v}.", "Only my {l}: {v}.", "Use my {l}: {v}.", "{L} instead: {v}.")
_DONT_KNOW = (
    "I'm not sure about that one — can you work it out from what you found?",
    "I don't have that, sorry. Can you use what you already looked up?",
    "I don't know it offhand — is there a way to look it up?",
)
_ACCEPT_REFUSAL = {
    "polite": (
        "Ah, I see. Thanks for explaining.",
        "Oh, I didn't realise. That's fine, thank you.",
        "Fair enough, thanks anyway.",
        "Understood, thanks for letting me know.",
        "Oh well, I understand. Thank you.",
        "That makes sense, thanks.",
        "Right, I see why. Thanks for checking.",
        "OK, I understand — no problem.",
        "Ah, that's a shame, but I understand.",
        "Oh, right — thanks for being clear about it.",
        "No worries, I'll leave it then.",
    ),
    "neutral": ("OK, understood.", "I see.", "Fair enough.", "OK, never mind then.", "Right, no problem.", "Got it."),
    "impatient": ("Fine.", "OK, whatever.", "Right. Never mind.", "Annoying, but fine.", "OK, forget it then."),
}
_BYE = {
    "polite": (
        "That's everything I needed — thank you so much for your help!",
        "That covers it all. Thanks, have a nice day!",
        "All done on my side. Thank you!",
        "That's all for today. Thanks for being so helpful.",
        "Great, that's everything. Have a lovely day!",
        "Thank you, that's all sorted now — bye!",
        "You've been very helpful, thanks. That's all.",
        "Perfect, I think that's everything. Many thanks!",
        "That's me sorted — thanks ever so much, goodbye!",
        "Wonderful, that's all I wanted to do today, thank you.",
        "I think we're done here; thanks for your patience!",
        "Lovely, that's the lot. Take care!",
        "Brilliant, that's all covered — thanks and goodbye.",
        "That's my list done, thank you kindly.",
        "Everything's in order now, thanks so much.",
        "That was all I needed; I appreciate the help!",
        "I'm all done now — thank you, and have a good evening.",
        "That's everything ticked off my list, many thanks!",
        "Splendid, that's it from me. Goodbye!",
        "That's all I had in mind — you've been a star, thank you.",
        "Right, that's me finished. Thanks so much and bye!",
        "Thank you for sorting all that out — goodbye for now.",
        "That's everything, thank you — have a good afternoon!",
        "I think that's all I needed. Thanks again!",
        "That's sorted everything out, thank you so much.",
        "All done, thank you for your patience. Bye!",
        "That's the last of it — many thanks, goodbye!",
        "That's all from me today. Thank you!",
        "Thanks so much, that's everything I wanted to sort.",
        "I've nothing else, thank you — have a lovely evening.",
        "Wonderful, all done. Thanks and take care!",
        "That's everything, I'm very grateful. Bye for now!",
    ),
    "neutral": (
        "That's all, thanks.",
        "That's everything, bye.",
        "OK, all sorted. Thanks.",
        "That's it for now, thanks.",
        "Nothing else, thanks.",
        "All good, bye for now.",
        "That's everything, cheers.",
        "Done for today, thanks.",
        "That's the lot, thanks.",
        "Nothing more from me, bye.",
        "OK, that's everything for now.",
        "All sorted, thanks, bye.",
        "That's all I had, thanks.",
        "Good, I'm done. Thanks.",
        "That's the lot for today, cheers.",
        "OK, I'm done here. Bye.",
        "Right, that's all. Thanks, bye.",
        "Nothing more, cheers.",
        "All done, thanks a lot.",
        "I think that's it. Bye.",
        "That's all for today, bye.",
        "OK, that's everything. Cheers.",
        "That covers it, thanks.",
        "Done, thanks very much.",
        "That's it from me, bye.",
        "Nothing else for now, thanks.",
        "That's everything I had. Bye.",
        "OK, that's sorted. Thanks.",
        "All finished, thanks. Bye.",
    ),
    "impatient": (
        "That's it, thanks.",
        "Done, bye.",
        "Good, that's all I needed.",
        "That's all for now.",
        "OK, done — bye.",
        "OK, that's it.",
        "Done. Thanks.",
        "That's everything, bye.",
        "Right, that's all.",
        "All done, bye.",
    ),
}
_GIVE_UP = (
    "I'll sort the rest out another time.",
    "Let's stop here, I'll call back about the rest.",
    "I'll leave it for now and try again later.",
    "Never mind, I'll deal with the rest another day.",
)

_AGENT_HELLO = (
    "Happy to help.",
    "Sure, I can help with that.",
    "Of course.",
    "Certainly.",
    "Sure thing.",
    "Glad to help.",
    "Thanks for getting in touch.",
    "Good to hear from you.",
    "I'd be glad to help.",
    "Let's sort that out.",
    "No problem at all.",
    "Thanks for reaching out.",
    "Absolutely.",
    "I can look into that.",
    "Let me help you with that.",
    "Sure, let's take a look.",
    "Of course, happy to.",
    "Right, let's get started.",
    "Hello, and welcome.",
    "Thanks for contacting us.",
    "Good to have you here.",
    "I'm here to help.",
    "Let's see what I can do.",
    "Sure — I'm on it.",
    "Hello! Let's get that sorted.",
    "Good to hear from you, let's have a look.",
    "Of course — let's see.",
    "Hi, thanks for waiting.",
    "Happy to take a look.",
    "Welcome — I can do that.",
    "Morning! I can help.",
    "Hello, thanks for getting in touch.",
    "Certainly, let's begin.",
    "Right away.",
    "Hi there, glad you called.",
    "Thanks for your message.",
    "Yes, of course.",
    "Lovely to hear from you.",
    "Happy to help with that.",
    "Sure, let me have a look.",
    "Of course, let's have a look.",
    "Good to hear from you — let's sort it.",
    "Certainly, I'll take a look.",
    "Hello! Happy to help.",
    "Yes, I can look into that.",
    "Sure thing, let's get started.",
    "Thanks for calling.",
    "Hi! Let's see.",
    "Right, let me help.",
    "Let me check that for you.",
    "Good morning, happy to help.",
    "Hello, thanks for calling.",
    "No problem, let's take a look.",
    "Of course — I'll check.",
    "Thanks for contacting us — happy to help.",
    "Hi, glad to help.",
    "Of course, I'm happy to look.",
    "Yes, let's sort that.",
    "Certainly — let me see.",
    "Hello, how nice to hear from you.",
    "Sure, I'll check for you.",
    "Happy to look into it.",
    "Good afternoon — happy to help.",
    "Hi, of course.",
    "Thanks for waiting — let's have a look.",
    "No problem, I'll help.",
    "Right, let's take a look.",
    "Great, let me help with that.",
    "Hello! Of course.",
    "Hi there — let me see.",
    "Sure, happy to check.",
    "Absolutely, let's look.",
    "Good evening, happy to help.",
    "Hello, let me take a look for you.",
)
_AGENT_NAME = ("{first}", "{first}", "")
_IDENTIFY = (
    "Before I can look into your {things}, could you give me the {slot} on your account?",
    "To find your {things} I first need to confirm who you are — what's the {slot} on the account?",
    "Could I have the {slot} you registered with, so I can pull up your account?",
    "First, may I have the {slot} on your account, please?",
    "I'll need to identify you first: what's your {slot}?",
    "So I can find the right account, could you tell me your {slot}?",
    "For security, I need to confirm the account first: what {slot} do we have on file for you?",
    "Let me find your account first — which {slot} did you sign up with?",
    "Happy to check your {things}; which {slot} is on your account?",
    "I just need your {slot} first, so I know which account to open.",
    "Can you confirm the {slot} we have for you, so I can look at your {things}?",
    "May I take your {slot}, to find your account?",
    "To get started, what's the {slot} your account uses?",
    "Which {slot} should I look your account up by?",
    "Could you share your {slot}, so I can check it's you?",
    "I'll pull up your account — what's your {slot}, please?",
    "What {slot} is the account under?",
    "Before we start, I'll need the {slot} linked to your account.",
    "To access your {things}, please tell me the {slot} we hold for you.",
    "Which {slot} do you use with us? That way I can find you.",
    "Could you read me the {slot} on file, so I can check your {things}?",
    "To keep your {things} safe, I'll need your {slot} first.",
    "Sure — whose account is it? Your {slot} will do.",
    "First things first: what's your {slot}?",
    "Give me your {slot} and I'll bring up the account.",
    "Could you start with your {slot}?",
    "Let me look you up — your {slot}, please?",
    "Which account is this for? Your {slot} is enough.",
    "I'll just need to check it's you: your {slot}, please.",
    "What's the {slot} you gave us when you joined?",
    "Sure. Whose account am I looking at? Your {slot} will tell me.",
    "I can check your {things} once I've found you — what's your {slot}?",
    "Let me bring up your account first. What {slot} do you have with us?",
    "Quick security step before your {things}: your {slot}, please.",
    "To look that up I need to know who you are. Could you give me your {slot}?",
    "I'll start by finding your record — could you tell me the {slot} it's under?",
    "Which {slot} is your account registered with?",
    "Can you tell me your {slot}? Then I'll open your {things}.",
    "I need to verify you before I go into your {things}; what {slot} do we have for you?",
    "Tell me your {slot} and I'll find your account.",
    "First I'll look you up. Your {slot}?",
    "Could you confirm your {slot}? I'll use it to find you.",
    "What's the {slot} you registered with? I'll pull your record from that.",
    "Happy to. Could I start with the {slot} on your record?",
    "Before anything else, I'll need to identify you — your {slot}, please?",
    "Can I get your {slot} so I can open the right account?",
    "I'll need your {slot} to find you in the system. What is it?",
    "Let me confirm who I'm speaking with: what {slot} is on your account?",
    "So I can check, which {slot} did you give us?",
    "To make sure it's really your account, could you tell me the {slot} we hold?",
    "Could you pass me your {slot}? That's how I'll find your {things}.",
    "I just need to find you first — do you have your {slot} handy?",
    "What {slot} should I search for?",
    "Mind giving me your {slot} first? Then we can look at your {things}.",
    "To begin, I'll need your {slot}.",
    "I'd be glad to check your {things}. First, what's your {slot}?",
    "Let me look up your account — could you give me your {slot}?",
    "Just so I pull up the right {things}, what's your {slot}?",
    "I'll find you in the system first: your {slot}, please.",
    "Could I take your {slot}, please? Then I'll look at your {things}.",
    "Before I check your {things}, can you tell me your {slot}?",
    "To help with your {things}, I need your {slot} first.",
    "What's the {slot} on the account, please?",
    "I'll check that for you — can I have your {slot}?",
    "Sure — what {slot} is your account under?",
    "Which {slot} do we have on file for you?",
    "Can you share the {slot} you use with us?",
    "Let's find your account first. Your {slot}?",
    "I need to confirm who you are — your {slot}, please.",
    "Could you give me your {slot}, so I can find your {things}?",
    "First, the {slot} on your account?",
    "For your {things}, I'll need to find you first — what's your {slot}?",
    "Would you tell me your {slot}? Then I can look.",
    "May I ask for your {slot}?",
    "Let me pull up your record: what's the {slot}?",
)
_ASK = (
    "Could you tell me {slots}?",
    "To look that up I'll need {slots}.",
    "What is {slots}?",
    "Can you give me {slots}, please?",
    "Before I go ahead, could you share {slots}?",
    "Which {first} do you mean?",
    "Do you have {slots} to hand?",
    "I just need {slots} to find it.",
    "Could you let me have {slots}?",
    "I'll need {slots} for that — what is it?",
    "Sorry, what's {slots}?",
    "Tell me {slots} and I'll look it up.",
)
_CONFIRM_HEAD = (
    "Just to confirm:",
    "Before I make the change:",
    "Let me check I have this right:",
    "To be sure:",
    "Here's what I'll do:",
    "So, to summarise:",
    "Before I go ahead:",
    "Quick check before I do it:",
    "Let me read that back:",
    "To make sure we're on the same page:",
    "One moment before I do that:",
    "Let me just double-check:",
    "So that I get it right:",
    "Here's the change:",
    "Right, the plan:",
    "Just checking:",
    "Before anything changes:",
    "Here's my understanding:",
    "So we agree on it:",
    "Let me confirm the details:",
    "Before it goes through:",
    "Let me say it back to you:",
    "For the record:",
    "To check I've understood:",
    "Just so we're clear:",
    "First, a quick read-back:",
    "Here's what would happen:",
    "So the change would be this:",
    "Before I press the button:",
    "Let me run it past you:",
    "Checking with you first:",
    "Please check this for me:",
    "A quick confirmation first:",
    "I've got it ready:",
    "Just so I'm sure:",
    "Here's the plan:",
    "Before I save anything:",
    "Let me recap:",
    "To recap:",
    "Before I commit it:",
    "One thing first:",
    "Double-checking with you:",
    "I want to be sure first:",
    "This is what I have:",
    "Here's what I've got:",
    "So, just to be clear:",
    "Let me make sure:",
    "Before I put it in:",
    "Quick recap:",
    "All right, the details:",
    "Let me spell it out:",
    "Just confirming:",
    "So we don't get it wrong:",
    "Just to double-check:",
    "So, to confirm:",
    "Let me check with you first:",
    "Before I do anything:",
    "Here's what it would be:",
    "A quick check:",
    "Let me make sure I've got it:",
    "Here's the summary:",
    "Just so you know what I'll do:",
    "Let me confirm with you:",
    "To be certain:",
    "Okay, so:",
    "Right, so:",
    "First, to be clear:",
    "Before I make any changes:",
    "Let me run through it:",
    "The change, then:",
    "So here's the change:",
    "Let me just confirm:",
    "Before going ahead:",
    "This is the change:",
    "All right:",
)
_CONFIRM_TAIL = (
    "Shall I go ahead?",
    "Should I go ahead with that?",
    "Do you want me to go ahead?",
    "Can I go ahead?",
    "Is that right — shall I proceed?",
    "Would you like me to do that?",
    "Shall I confirm it?",
    "is that correct, and shall I proceed?",
    "OK to go ahead?",
    "Do you want me to proceed?",
    "does that sound right to you?",
    "may I go ahead and do that?",
    "would you like me to carry on?",
    "happy for me to make it happen?",
    "all right if I do that now?",
    "shall I put it through?",
    "Are you happy for me to go ahead?",
    "Shall I make that change?",
    "Is it OK if I go ahead?",
    "Would you like me to confirm it now?",
    "Are you happy with that — shall I?",
    "Is that what you want me to do?",
    "Should I confirm that for you?",
    "Is that all correct before I proceed?",
    "Good to go?",
    "Want me to carry on with that?",
    "shall I make it so?",
    "is it all right to go ahead?",
    "do you want me to put that through?",
    "Is it OK to go ahead?",
    "Does that look right — shall I?",
    "Shall I do it?",
    "Happy for me to do that?",
    "Should I make the change now?",
    "Would you like me to do it now?",
    "would you like me to go ahead with it?",
    "shall I save it?",
    "may I put that through now?",
    "OK to make that change?",
    "Do I have that right — shall I go ahead?",
    "Should I save that?",
    "Are we good to go?",
    "May I proceed?",
    "Do you want me to do it that way?",
    "Is it all right to save that?",
    "Shall I do that, then?",
    "Does that match what you want — shall I proceed?",
    "Shall I make it official?",
    "Can you confirm that's right?",
    "Shall I go ahead and save it?",
    "Is that right — should I proceed?",
    "Would you like me to go through with it?",
    "Happy for me to confirm it?",
    "Okay to save?",
    "Shall I carry on?",
    "Do you want me to make the change?",
    "is that what you had in mind — shall I?",
    "shall I go through with it?",
    "can you confirm, and I'll go ahead?",
    "Should I proceed with that?",
    "Do you want me to put it through now?",
    "Shall I save that for you?",
    "Would you like me to save it?",
    "Is it all right if I save that now?",
    "Do you want me to go ahead and save it?",
    "Can you confirm I should go ahead?",
    "Shall I put that in now?",
    "Should I go ahead now?",
    "Is that OK to go ahead?",
    "Do I have your go-ahead to proceed?",
    "Would you like me to proceed with that?",
    "Okay to proceed?",
    "Are you happy for me to save that?",
    "Shall I make the change for you?",
    "should I save it now?",
    "shall I go ahead and do it?",
    "would you like me to confirm that?",
    "Do you want me to confirm it?",
    "Is it OK if I proceed?",
    "may I go ahead with that?",
    "is it all right to proceed?",
    "Shall I confirm the change?",
    "Should I go ahead and make it?",
    "Happy for me to proceed?",
    "Can I go ahead and save it?",
    "do you want me to go ahead with that?",
)
_DONE = (
    "Done —",
    "All set:",
    "That's done:",
    "I've made the change:",
    "That's sorted:",
    "Done, and checked:",
    "Finished —",
    "It's done:",
    "All done:",
    "Great, that went through:",
    "Completed:",
    "That worked:",
    "Right, that's gone through:",
    "Sorted:",
    "That's in:",
    "Success —",
    "All good:",
    "The change is made:",
    "That's taken care of:",
    "Done and dusted:",
    "There we go:",
    "That's now saved:",
    "Right —",
    "OK, that's through:",
    "Saved:",
    "That's updated:",
    "Changed:",
    "Done for you:",
    "It went through:",
    "No problems there:",
    "That's all in place:",
    "Handled:",
    "That's been processed:",
    "Okay, done:",
    "All sorted:",
    "That's recorded:",
    "There you go:",
    "It's all done:",
    "All finished:",
    "That's gone in:",
    "OK, that's done:",
    "That's through:",
    "Done and saved:",
    "Right, all done:",
    "Great, it's done:",
    "That's complete:",
    "It's been saved:",
    "Done, all good:",
    "That's set:",
    "Right, it's through:",
    "Lovely, done:",
    "All done now:",
    "That's all sorted:",
    "That's done for you:",
    "It's gone through:",
    "Done now:",
    "All set now:",
    "Sorted, all done:",
    "Perfect, done:",
    "It's sorted:",
    "That went in fine:",
    "Right, done:",
    "That's been done:",
    "All right, done:",
    "OK, all done:",
    "Yes, done:",
    "That's finished:",
    "It's in place:",
    "All complete:",
    "That's taken care of now:",
)
#: How many rows a read found; ``_FOUND_MINE`` adds the ways that say they are the user's.
_FOUND_MANY = (
    "I found {n} {things}.",
    "There are {n} {things}.",
    "I can see {n} {things}.",
    "{N} {things} come up.",
    "I'm seeing {n} {things}.",
    "The system lists {n} {things}.",
    "{N} {things} show up.",
    "I've got {n} {things} here.",
    "That brings up {n} {things}.",
    "There are {n} {things} on file.",
    "{N} {things} turn up.",
    "I've found {n} {things}.",
    "The search gives {n} {things}.",
    "Looking at the system, there are {n} {things}.",
    "{N} {things} match.",
    "That gives {n} {things}.",
    "I've pulled up {n} {things}.",
    "On record: {n} {things}.",
    "All told, {n} {things}.",
    "I'm looking at {n} {things}.",
    "I count {n} {things}.",
    "The system returns {n} {things}.",
    "{N} {things}, by the look of it.",
    "{N} {things} are on record.",
    "I see {n} {things} in total.",
    "{N} {things}, all told.",
    "In all, {n} {things}.",
    "I've found {n} {things} on file.",
    "I'm showing {n} {things}.",
    "{N} {things} are listed.",
    "That makes {n} {things}.",
    "{N} {things} in all.",
    "There are {n} {things} here.",
    "I've got {n} {things} listed.",
    "I've come across {n} {things}.",
    "I can find {n} {things}.",
    "It looks like {n} {things}.",
    "Checking now, I see {n} {things}.",
    "So, {n} {things}.",
    "I've got {n} {things} on screen.",
    "Right, {n} {things}.",
    "It comes to {n} {things}.",
    "A quick look shows {n} {things}.",
    "I'm seeing {n} {things} in total.",
)
#: Said only when every row found is the user's own (not of a catalogue or a search by number).
_FOUND_MINE = (
    "You have {n} {things} on the account.",
    "There are {n} {things} under your name.",
    "Your account shows {n} {things}.",
    "The account has {n} {things}.",
    "There are {n} {things} in the system for you.",
    "You've got {n} {things}.",
    "{N} {things} on record for you.",
    "The system shows {n} {things} for you.",
    "Looking you up, there are {n} {things}.",
    "There are {n} {things} on your record.",
    "{N} {things} appear on your account.",
    "I have {n} {things} listed for you.",
    "Your record has {n} {things}.",
)
_FOUND_NONE = (
    "I couldn't find any {things} matching that.",
    "No {things} match that.",
    "There aren't any {things} like that.",
    "I'm not seeing any {things} for that.",
    "Nothing comes up for that, I'm afraid.",
    "I've searched, but there are no {things} like that.",
    "Sorry, no {things} come up.",
    "The system has no {things} that match.",
    "I'm afraid there aren't any {things} there.",
)
_REFUSE_HEAD = (
    "I'm sorry, but I can't do that:",
    "I'm afraid that isn't possible:",
    "Unfortunately I can't make that change:",
    "I'm sorry, I'm not able to do that:",
    "I'm afraid I can't help with that one:",
    "Sorry, that's not something I can do:",
    "I'm afraid I have to say no to that:",
    "That's not allowed, I'm afraid:",
    "I'm unable to do that one:",
    "Sorry — I can't go ahead with that:",
    "I'm afraid I have to stop you there:",
    "That one isn't possible, sorry:",
    "I'm not allowed to do that, I'm afraid:",
    "Sorry, the rules mean I can't do that:",
    "I'm afraid that's one I have to turn down:",
    "I can't help with that part:",
    "I'd love to, but I can't:",
    "Unfortunately that's not allowed:",
    "I'm afraid my hands are tied on that one:",
    "I'm afraid that's not permitted:",
    "I'm afraid I can't do that one:",
    "That isn't possible, sorry:",
    "Sorry, I'm not able to:",
    "I can't make that change, I'm afraid:",
    "That's not allowed, sorry:",
    "I'm afraid not:",
    "Unfortunately I can't:",
    "I'm sorry, that's not possible:",
    "Sorry, but I can't help there:",
    "I'm afraid that can't be done:",
    "That one I can't do, I'm afraid:",
    "I wish I could, but I can't:",
)
_ERROR_HEAD = (
    "I'm sorry, that didn't go through:",
    "Unfortunately the system refused it:",
    "That failed, I'm afraid:",
    "Hmm, that didn't work:",
    "Sorry — the system wouldn't accept it:",
    "I tried, but it was refused:",
    "The system rejected that, unfortunately:",
    "That attempt failed:",
    "Sorry, it came back with an error:",
    "It wasn't accepted:",
    "That didn't work, sorry:",
    "The change bounced back, sorry:",
    "Sorry, I hit a problem:",
    "I got an error back:",
    "No luck, I'm afraid:",
    "That was refused:",
    "Sorry, the system said no:",
    "That one came back refused:",
)
_MORE = (
    "Is there anything else I can do for you?",
    "anything else?",
    "what else can I help with?",
    "is there anything more on your list?",
    "what's next on your list?",
    "can I check anything else for you?",
    "do you need help with anything else?",
    "shall I look into anything else?",
    "anything further you need?",
    "what else would you like to sort out?",
    "is there something more I can do?",
    "let me know what's next.",
    "what else can I look up for you?",
    "need anything else from me?",
    "can I do anything more today?",
    "is there another thing you'd like to check?",
    "what else is on your mind?",
    "Let me know if you need anything else.",
    "Is there something else you'd like to check?",
    "Can I help with anything else today?",
    "Anything more I can look into?",
    "What else is on your list?",
    "Is there anything further?",
    "Shall we look at something else?",
    "What would you like to do next?",
    "Anything else I can sort out for you?",
    "Is that everything for now?",
    "Happy to help with more if needed.",
    "Anything else on your list today?",
    "what else can I do for you?",
    "Would you like help with anything else?",
    "is there more you'd like to sort out?",
    "Just say if there's something else.",
    "shall I help with another thing?",
    "what would you like to look at next?",
    "is there anything else you were hoping to do?",
    "Any other questions?",
    "Do you have anything else for me?",
    "what else do you need today?",
    "I'm here if there's anything else.",
    "what shall we do next?",
    "is there a next item?",
    "Where to next?",
    "Shall we carry on?",
    "over to you.",
    "What's the next thing?",
    "I'm ready for the next one.",
    "is that what you needed?",
    "does that answer your question?",
    "does that help?",
    "was that what you were after?",
    "Tell me what's next.",
    "Is there more to check?",
    "shall I keep going?",
    "What can I do now?",
    "what would you like to check next?",
    "Does that cover it?",
    "is that useful?",
    "I'm happy to dig further if you like.",
    "just let me know what's next.",
    "what's next?",
    "Anything more?",
    "Something else?",
    "Anything else you'd like to know?",
    "What else can I check?",
    "Is there more?",
    "Anything else for today?",
    "anything more I can do?",
    "what else?",
    "Need anything more?",
    "Any more questions?",
    "Happy to look into anything else.",
    "Is there anything I've missed?",
    "Can I help further?",
    "what's the next thing on your list?",
    "does that answer it?",
    "I hope that helps.",
    "hope that's useful.",
    "Anything else I can help you with?",
    "is there something else?",
    "can I help with anything more?",
    "what else can I sort out?",
    "is there anything further I can check?",
    "Let me know what else you need.",
    "Is that all for now?",
    "anything else on your mind?",
    "any other details you need?",
    "Is there more I can do?",
    "what's next on the list?",
    "anything more you'd like me to look at?",
    "Shall I look into something else?",
    "is there another question?",
    "Can I check anything more for you?",
    "What else would you like to know?",
    "Does that help?",
    "I'm happy to check more.",
    "Shall we do the next one?",
    "is there anything else today?",
    "Is there anything else you'd like me to do?",
    "anything else you need from me today?",
    "what else shall we look at?",
    "shall I check something else while we're here?",
    "is there anything more I can help you with today?",
    "what else would be useful?",
    "Do you need anything more?",
    "Can I do anything else for you?",
    "is there another thing on your list?",
    "what else can I look into?",
    "anything else to sort out?",
    "Is there more you need?",
    "Shall I help with something else?",
    "Would you like me to check anything else?",
    "is there something else on your mind?",
    "what else can I answer for you?",
    "Anything else at all?",
    "Is there anything else I should look at?",
    "I'm happy to help with anything else.",
    "let me know if there's more.",
    "Just say the word if you need more.",
    "anything else I can find for you?",
    "Any other requests?",
    "What else is on your list today?",
    "Is there something more I can check?",
    "Would you like anything else looked up?",
    "shall we move on to something else?",
    "Anything further today?",
    "is there anything else to go through?",
    "what else do you need to know?",
    "Do you have another question?",
    "can I answer anything else?",
    "Anything more on your account?",
    "Shall I look at anything else for you?",
    "Is there anything more I can do today?",
    "What would you like me to do next?",
    "anything else I should know?",
    "Any more for me?",
    "would you like to check anything else?",
    "Is there another thing I can help with?",
    "what else can I help you sort?",
    "anything else while I have your account open?",
    "Shall I check anything else on your account?",
    "What else, if anything?",
    "Is there anything else I can look up?",
    "Need me to check anything else?",
    "Is that all you needed?",
    "does that cover what you needed?",
    "does that answer everything?",
    "is that what you were looking for?",
    "is that the information you needed?",
    "I hope that's clear.",
    "Let me know if that's not what you meant.",
    "Tell me if you need more detail.",
    "Happy to explain anything further.",
    "Would you like more detail on that?",
    "shall I go on?",
    "would you like me to carry on with anything else?",
    "Anything else I can do while you're here?",
    "What's the next question?",
)
_AGENT_BYE_MID = (
    "have a great day",
    "take care",
    "goodbye for now",
    "have a lovely evening",
    "enjoy the rest of your day",
    "all the best",
    "have a good week",
    "speak soon",
    "bye for now",
    "have a nice afternoon",
    "look after yourself",
    "have a restful evening",
    "enjoy your week",
    "thanks again for getting in touch",
    "wishing you a good day",
    "have a wonderful weekend",
    "enjoy the sunshine",
    "take it easy",
    "have a pleasant evening",
    "cheerio",
    "all the very best",
    "hope the rest of your day goes well",
    "see you next time",
    "stay well",
    "have a smooth week ahead",
    "enjoy your evening",
    "good luck with everything",
    "have a great evening",
    "enjoy the weekend",
    "see you soon",
    "have a brilliant day",
    "bye now",
    "all the best for the week",
    "until next time",
    "goodbye",
    "have a lovely day",
    "catch you later",
    "have a good one",
    "all the best to you",
    "mind how you go",
    "have a lovely weekend",
    "have a relaxing evening",
    "take good care",
    "talk soon",
    "have a great week ahead",
    "have a nice day",
    "enjoy the rest of the week",
    "bye",
    "speak to you soon",
    "have a splendid day",
    "hope to hear from you again",
    "be well",
    "have a peaceful evening",
    "enjoy what's left of the day",
    "have a wonderful day",
    "enjoy your afternoon",
    "have a good evening",
    "all the best for now",
    "take care now",
    "bye for now, and thanks",
    "have a lovely rest of the day",
    "enjoy the rest of your evening",
    "have a pleasant day",
    "look after yourself now",
    "have a good rest of the week",
    "best wishes",
    "goodbye, and take care",
    "have a great afternoon",
    "see you again soon",
)
_AGENT_BYE_HEAD = (
    "You're welcome",
    "My pleasure",
    "Glad I could help",
    "Happy to help",
    "Thanks for calling",
    "No problem at all",
    "It was a pleasure",
    "Anytime",
    "Thank you for your patience",
    "Great",
    "Lovely",
    "Not at all",
    "Any time at all",
    "That's all sorted",
    "Thanks for your time",
    "It's been a pleasure",
    "Glad that's all done",
    "All done then",
    "Wonderful",
    "Thanks for chatting",
    "Cheers",
    "Glad to be of help",
    "Pleasure",
    "You're very welcome",
    "All good",
    "Perfect",
    "Right then",
    "Great stuff",
    "Happy I could sort that",
    "It's been no trouble",
    "Thanks for getting in touch",
    "Always happy to help",
    "That's everything sorted",
    "Glad we got that done",
    "Thank you",
    "Thanks very much",
    "A pleasure, as always",
    "No trouble at all",
    "Glad it's all sorted",
    "Good to help",
    "You're most welcome",
    "Happy days",
    "Excellent",
    "Thanks for your patience today",
    "Right, that's all done",
    "Brilliant",
    "Thanks so much",
    "Glad to have helped",
    "That's all done then",
    "It was good to help",
    "Thank you for calling",
    "Many thanks",
    "It's been a pleasure to help",
    "So glad that's sorted",
    "Lovely talking to you",
    "That's everything then",
    "Thanks for your help too",
    "You're welcome, as always",
    "All good then",
    "Right you are",
    "A pleasure to help",
)
#: Before the last change, said again at the end.
_RECAP = ("To recap:", "So, to sum up:", "Just to recap,", "For your records:", "As a reminder,", "All in all:")
#: Between the thanks and the wish of a goodbye.
_AGENT_BYE_MORE = (
    "Come back any time.",
    "Just get in touch if anything else comes up.",
    "You know where to find us.",
    "We're here whenever you need us.",
    "Don't hesitate to call again.",
    "Everything is saved on your account.",
    "If anything looks wrong later, just let us know.",
    "It was nice talking to you.",
    "I'm glad we could sort it out.",
    "Feel free to message again.",
    "Thanks for being so clear.",
    "Happy to help again any time.",
)
_AGENT_BYE_TAIL = (
    "have a great day!",
    "take care!",
    "goodbye!",
    "have a lovely evening!",
    "enjoy the rest of your day!",
    "all the best!",
    "have a good week!",
    "speak soon!",
    "bye for now!",
    "have a nice afternoon!",
)


_SAFE_LOWER = frozenset(
    "Your The There You Thanks Thank That This It Here For On According Just Before Let To So Quick Done All Great "
    "Finished Completed Got Checked Looking Unfortunately Sorry Hmm Could Can What Which Do Is Anything Shall Would "
    "Happy No Nothing Now Next Also Then After Another Oh Something Moving Separately Besides Please I'd My Right "
    "Certainly Sure Of Yes Go Set Need Number How When Where Who Should Are May Does Will Kindly Tell Quick "
    "Quickly Any Might Remind Plus Anyway Just Count Change Remove Delete Add Cancel First Second One And Good "
    "It They While Okay Give In Additionally Those Sticking Their Want Brilliant Lovely Perfect Going Between As "
    "Splendid List Everything Checking A An Wonderful Regarding About With Both Each Every Once Well Sadly "
    "Actually Luckily Apparently Thankfully Taking By Among Altogether Overall Counting Namely".split()
)
_AFTER_DASH = re.compile(r"(?<= — )([A-Z][a-z]*)(?=[\s,:;.!?'’])")
#: A word after a colon inside a sentence, and the word after it ("Just to confirm: My plan is").
_AFTER_COLON = re.compile(r"(?<=\w: )([A-Z][a-z]*)(['’][a-z]+)?(?=([\s,:;.!?—]+)(\S*))")
_I_FORMS = frozenset({"I", "I'm", "I'll", "I'd", "I've", "I’m", "I’ll", "I’d", "I’ve"})


def _lowers(word: str) -> bool:
    """Whether ``word`` (a sentence's first word) may go lower case: an ordinary word, not I or a name."""
    base = re.split(r"['’]", word, maxsplit=1)[0]
    return base in _SAFE_LOWER and base != "I"


def _after_dash(m: re.Match[str]) -> str:
    word = m.group(1)
    label = _text_after(m) == ":" and word not in _I_FORMS  # "— Copies: C1 and C2" is a label, not a name
    return word.lower() if _lowers(word) or label else word


def _text_after(m: re.Match[str]) -> str:
    """The character right after the match (or "")."""
    return m.string[m.end() : m.end() + 1]


def _after_colon(m: re.Match[str]) -> str:
    word, tail, after = m.group(1), m.group(2) or "", m.group(4)
    # "The renewals ...", "What I'll do ..." go lower case; a title ("The Glass Orchard") keeps its capital.
    title = after[:1].isupper() and after.rstrip(",.;:!?") not in _I_FORMS
    return word.lower() + tail if _lowers(word) and not title else word + tail


def dash_case(text: str) -> str:
    """A dash or a colon inside a sentence joins clauses, so the word after it is lower case:
    "Welcome — first, may I ...", "Just to confirm: my plan is ..." (I, names, titles and
    other proper nouns keep their capital)."""
    text = _AFTER_DASH.sub(_after_dash, text)
    return _AFTER_COLON.sub(_after_colon, text)


def attach(first: str, second: str, *, joint: str = " — ") -> str:
    """Two sentences as one: ``attach("Thanks.", "Could you...")`` -> ``"Thanks — could you..."``.

    The second keeps its capital unless its first word is one that may go lower case.
    """
    if not first:
        return second
    if not second:
        return first
    if first.rstrip().endswith(("?", "!")):
        return f"{first.rstrip()} {cap(second)}"
    head = first.rstrip(" .!")
    word = second.split(" ", 1)[0].rstrip(",:;")
    if _lowers(word):
        second = second[:1].lower() + second[1:]
    return f"{head}{joint}{second}"


#: Paraphrases of a request's opening words, by register: (opening, questions, statements).
#: A question keeps a question's frame and a statement a statement's, so the end mark still fits.
_REWORD: tuple[tuple[str, dict[str, tuple[str, ...]]], ...] = (
    (
        "Could you ",
        {
            "polite": ("Could you ", "Would you ", "Would you be able to ", "Could you possibly ", "Might you "),
            "neutral": ("Could you ", "Can you ", "Would you ", "Any chance you could ", "Are you able to "),
            "impatient": ("Can you ", "Could you ", "Can you just "),
        },
    ),
    (
        "Can you ",
        {
            "polite": ("Can you ", "Could you ", "Would you mind helping me and ", "Would you kindly "),
            "neutral": ("Can you ", "Could you ", "Are you able to ", "Is it possible to "),
            "impatient": ("Can you ", "Can you just ", "Quickly, can you "),
        },
    ),
    (
        "I'd like to ",
        {
            "polite": ("I'd like to ", "I'd love to ", "I was hoping to ", "If possible, I'd like to "),
            "neutral": ("I'd like to ", "I want to ", "I'm looking to ", "I need to ", "I'm hoping to "),
            "impatient": ("I need to ", "I want to ", "I have to "),
        },
    ),
    (
        "Please ",
        {
            "polite": ("Please ", "I'd be grateful if you could ", "Would you please ", "Kindly "),
            "neutral": ("Please ", "I'd like you to ", "I need you to ", "Go ahead and "),
            "impatient": ("Please ", "Just ", "I need you to "),
        },
    ),
    (
        "What's ",
        {
            "polite": ("What's ", "Could you tell me what ", "Do you know what "),
            "neutral": ("What's ", "What is ", "Tell me, what's "),
            "impatient": ("What's ", "Quick one: what's "),
        },
    ),
    (
        "I need ",
        {
            "polite": ("I need ", "I'd appreciate ", "I'm hoping for "),
            "neutral": ("I need ", "I'm after ", "I'd like "),
            "impatient": ("I need ", "Need "),
        },
    ),
)


class Phrasing:
    """Picks phrases for one speaker in one dialogue."""

    def __init__(self, rng: random.Random, persona: Persona | None = None, *, currency: str = "") -> None:
        self.rng = rng
        self.persona = persona or Persona(name="User")
        self.currency = currency
        #: The year this speaker leaves out of dates ("3 May" for 3 May 2026), if any, and
        #: whether they put the month first ("May 3").
        self.year: int | None = None
        self.month_first = False
        #: Whether this speaker puts the day of the week before a date ("Sunday 7 June").
        self.weekday = False

    # ------------------------------------------------------------------ basics
    def pick(self, bank: Sequence[str]) -> str:
        return bank[self.rng.randrange(len(bank))]

    def _mood(self, banks: dict[str, tuple[str, ...]]) -> str:
        return self.pick(banks.get(self.persona.temperament, banks["neutral"]))

    @property
    def terse(self) -> bool:
        return self.persona.verbosity == "terse"

    @property
    def verbose(self) -> bool:
        return self.persona.verbosity == "verbose"

    def value(self, value: Any, column: str = "") -> str:
        if (self.year is not None or self.weekday) and isinstance(value, str):
            parsed = _date(value)
            if parsed is not None and parsed[1] in (None, (0, 0)):
                day = parsed[0]
                month = _MONTHS[day.month - 1]
                short = f"{month} {day.day}" if self.month_first else f"{day.day} {month}"
                text = short if day.year == self.year else human_date(day)
                return f"{_WEEKDAYS[day.weekday()]} {text}" if self.weekday else text
        return format_value(value, column, currency=self.currency)

    def speak_dates(self, year: int) -> None:
        """Pick how this speaker writes dates: in full, or without the year ``year`` (day first or month first)."""
        roll = self.rng.random()
        self.year = year if roll < 0.6 else None
        self.month_first = roll < 0.2
        self.weekday = self.rng.random() < 0.2

    # ------------------------------------------------------------------ user
    def greeting(self, *, name: str = "") -> str:
        if self.terse:
            return self.pick(("Hi.", "Hello.", "Hey.", "Hi there.", "Hiya.", "")) if self.rng.random() < 0.5 else ""
        out = self._mood(_HELLO)
        if name and self.rng.random() < (0.7 if self.verbose else 0.35):
            out += " " + self.pick(_INTRO).format(name=name)
        if self.verbose:
            out += " " + self.pick(_CHATTER)
        return out

    def thanks(self, echo: str = "") -> str:
        if echo and self.rng.random() < (0.15 if self.terse else 0.35):
            frame = self.pick(_ECHO_TERSE if self.terse else _ECHO.get(self.persona.temperament, _ECHO["neutral"]))
            return frame.format(v=echo, V=cap(echo))
        if self.terse:
            return self.pick(
                (
                    "OK.", "Thanks.", "Good.", "Got it.", "Right.", "Fine.", "Cheers.", "Great.", "Perfect.",
                    "OK, thanks.", "Noted.", "Sure.", "Ta.", "Good, thanks.", "Fine, thanks.", "Right, OK.",
                    "Nice.", "Ah, OK.", "Got it, ta.", "Lovely.", "Good stuff.", "Thanks, OK.", "Yep.", "Ace.",
                )
            )  # fmt: skip
        text = self._mood(_THANKS)
        if self.verbose and self.rng.random() < 0.5:
            text += " " + self.pick(
                (
                    "That's a relief.",
                    "I was hoping that would be the case.",
                    "Good to have that confirmed.",
                    "I'll make a note of that.",
                    "That's what I thought.",
                    "Nice to know.",
                    "I'll remember that for next time.",
                    "That saves me a phone call.",
                    "It's nice when things just work.",
                    "My partner will be pleased.",
                    "I was a little worried about that.",
                    "That puts my mind at rest.",
                    "I'll write that down somewhere safe.",
                    "That's one less thing to think about.",
                    "I'd been wondering about that for a while.",
                    "I'll let my sister know, she was asking.",
                    "That's much simpler than I feared.",
                    "I can cross that off now.",
                    "I'll tell the others at home.",
                    "It's good to have it straight.",
                    "That was quicker than I expected.",
                    "I'd half forgotten about it, to be honest.",
                )
            )
        return text

    def next_marker(self) -> str:
        return "" if self.terse and self.rng.random() < 0.6 else self.pick(_NEXT)

    def yes(self) -> str:
        if self.terse:
            return self.pick(_YES_TERSE)
        text = self._mood(_YES)
        if self.rng.random() < (0.4 if self.verbose else 0.2):
            text = f"{text} {self.pick(_YES_MORE)}"
        return text

    def bye(self) -> str:
        if self.terse:
            return self.pick(("Done, thanks.", "That's all.", "Thanks, bye.", "All good, bye.", "That's it, cheers."))
        return self._mood(_BYE)

    def give_up(self) -> str:
        return self.pick(_GIVE_UP)

    def wrong(self) -> str:
        return self.pick(_WRONG)

    def missing(self) -> str:
        return self.pick(_MISSING)

    def unsure(self, what: str, value: str) -> str:
        return self.pick(_UNSURE).format(what=what, value=value)

    def change_mind(self, new: str, old: str) -> str:
        return self.pick(_CHANGE_MIND).format(new=new, old=old)

    def dont_know(self) -> str:
        return self.pick(_DONT_KNOW)

    def accept_refusal(self) -> str:
        return self.pick(("OK.", "I see.", "Fine.", "Understood.")) if self.terse else self._mood(_ACCEPT_REFUSAL)

    def polite(self, text: str) -> str:
        """Dress a request for the persona: a please here, an urgency there, end punctuation."""
        text = text.strip()
        if not text:
            return text
        t = self.persona.temperament
        if t == "polite" and self.rng.random() < 0.35 and not text.endswith("?") and "please" not in text.lower():
            text = text.rstrip(".!") + self.pick(
                (
                    ", please.",
                    ", if you don't mind.",
                    ", thanks.",
                    ", please!",
                    ", if that's all right.",
                    ", when you have a moment.",
                    ", if possible.",
                    " — I'd be grateful.",
                    ", if it's no trouble.",
                    ", thank you.",
                    ", if you could.",
                    " — thanks so much.",
                    ", if that's possible.",
                    ", whenever you're ready.",
                    ", if you have a moment.",
                    " — thank you in advance.",
                    ", I'd really appreciate it.",
                    ", if that's OK.",
                    ", thanks ever so much.",
                    " — many thanks.",
                    ", if at all possible.",
                    ", when you get a chance.",
                    " — that would be lovely.",
                    ", if you'd be so kind.",
                    ", cheers.",
                    ", thanks a lot.",
                )
            )
        elif t == "impatient" and self.rng.random() < 0.35 and "please" not in text.lower():
            text = (
                text
                + " "
                + self.pick(
                    (
                        "Quickly, please.",
                        "As fast as you can.",
                        "I'm in a rush.",
                        "Thanks.",
                        "I haven't got long.",
                        "Let's not drag this out.",
                        "I've a meeting in five minutes.",
                        "Make it quick.",
                        "I'm in a hurry.",
                        "Quick as you can.",
                        "I need it sorted now.",
                        "Let's be quick about it.",
                        "I don't have long.",
                        "Fast, please.",
                        "I'm short on time.",
                        "I need to get going.",
                        "No time to waste.",
                        "Let's get on with it.",
                        "I'm on the clock here.",
                    )
                )
            )
        if text[-1] not in ".?!":
            text += "?" if text.lower().startswith(("could", "would", "can", "what", "which", "how", "when")) else "."
        return cap(text)

    def reword(self, text: str) -> str:
        """The same request with its opening words said another way (``Could you`` -> ``Would you``)."""
        for opening, banks in _REWORD:
            if not text.startswith(opening):
                continue
            if opening == "Please " and text[len(opening) :].startswith(("could ", "can ", "would ", "will ")):
                return text  # "Please could you ...": already a question, its opening stays
            choice = self._mood(banks)
            if opening == "What's " and choice.endswith(" what "):
                rest = text[len(opening) :].rstrip("?")
                return f"{choice}{rest} is?" if text.endswith("?") and " " not in rest.strip() else text
            if opening == "Please " and choice != opening and not choice.endswith(("to ", "could ", "please ")):
                return choice + text[len(opening) :]
            if opening == "Please " and choice.startswith(("Would", "I'd be")) and text.endswith("."):
                end = "?" if choice.startswith("Would") else "."
                return choice + text[len(opening) :].rstrip(".") + end
            if opening == "I need " and choice in {"I'd appreciate ", "I'm hoping for ", "I'd like "}:
                rest = text[len(opening) :]
                if rest.startswith("to ") or choice == "I'd like " and not rest.startswith(("the ", "a ", "an ")):
                    return text
            if opening in {"Could you ", "Can you "} and not text.endswith("?"):
                return text
            if choice == "Would you mind helping me and ":
                return text
            return choice + text[len(opening) :]
        return text

    def inform(self, pairs: list[tuple[str, Any]], *, identity: bool = False) -> str:
        """The values the agent asked for; ``identity``: they say who the user is (an email, a card number)."""
        if self.terse and len(pairs) == 1:
            if identity and self.rng.random() < 0.3:
                k, v = pairs[0]
                name = contact(k, self.rng)
                return self.pick(_INFORM_TERSE).format(l=name, L=cap(name), v=self.value(v, k))
            return self.value(pairs[0][1], pairs[0][0]) + "."
        bank = _INFORM + _INFORM_ME if identity else _INFORM
        parts = [
            self.pick(bank).format(l=contact(k, self.rng) if identity else label(k), v=self.value(v, k))
            for k, v in pairs
        ]
        lead = self.pick(_INFORM_LEAD)
        body = join(parts)
        return cap(lead + body) + "."

    def inform_instead(self, asked: list[str], pairs: list[tuple[str, Any]]) -> str:
        """Asked for one way of identifying, the user gives the one they know instead."""
        what = join([contact(s, self.rng) for s in asked], "or")
        k, v = pairs[0]
        name = contact(k, self.rng)
        frames = _INSTEAD_TERSE if self.terse else _INSTEAD
        return cap(self.pick(frames).format(asked=what, l=name, L=cap(name), v=self.value(v, k)))

    # ------------------------------------------------------------------ agent
    def agent_greeting(self) -> str:
        return self.pick(_AGENT_HELLO)

    def identify(self, things: str, slots: list[str]) -> str:
        slot = join([contact(s, self.rng) for s in slots], "or")
        return self.pick(_IDENTIFY).format(things=things, slot=slot)

    def ask(self, slots: list[str]) -> str:
        names = join([f"the {label(s)}" for s in slots])
        return self.pick(_ASK).format(slots=names, first=label(slots[0]))

    def confirm(self, summary: str) -> str:
        tail = self.pick(_CONFIRM_TAIL)
        if self.rng.random() < 0.7:
            return f"{self.pick(_CONFIRM_HEAD)} {attach(summary, tail)}"
        return f"{self.pick(_CONFIRM_HEAD)} {summary} {cap(tail)}"

    def yes_to(self, value: str, field: str = "") -> str:
        """A yes that echoes part of what was restated (the value, and now and then its field)."""
        if not value or self.rng.random() < 0.35:
            return self.yes()
        if field and not self.terse and self.rng.random() < 0.45:
            return self.pick(_YES_FIELD).format(v=value, f=field, F=cap(field))
        if self.terse:
            return self.pick(
                (
                    "Yes, {v}.",
                    "{V} — yes.",
                    "Yes — {v}, go.",
                    "Correct, {v}.",
                    "{V}, yes, go.",
                    "Yes: {v}.",
                    "Yep, {v}.",
                )
            ).format(v=value, V=cap(value))
        return self.pick(
            (
                "Yes, that's right, {v} — go ahead.",
                "Correct — {v}, please go ahead.",
                "Yes please, {v} is what I want.",
                "That's it, {v}, please do.",
                "Yes, {v} is correct — go ahead.",
                "Exactly, {v}, thanks — please proceed.",
                "Yes — {v} is right.",
                "Right, {v}, you can go ahead.",
                "{V} is correct, yes, please do it.",
                "Yep, {v}, go for it.",
                "Yes, {v} sounds right.",
                "Perfect — {v}, yes please.",
                "Sounds good, {v} it is.",
                "Yes, {v} — thank you for checking.",
                "That's correct: {v}, go ahead.",
                "Yes, {v}. Please save it.",
                "{V}, that's right — go ahead.",
                "Yes — {v} is what I asked for.",
                "Right, {v}. Please do.",
                "Yes, {v} is fine — carry on.",
                "Spot on, {v}. Go ahead.",
                "Yes please, {v}.",
                "That's right — {v}. Thanks.",
                "Yes, {v}, that's the one.",
                "Correct, {v} — please put it through.",
                "Yes, go ahead with {v}.",
                "Sure, {v} — go ahead.",
            )
        ).format(v=value, V=cap(value))

    def done(self) -> str:
        return self.pick(_DONE)

    def found_many(self, thing: str, n: int, *, mine: bool = False) -> str:
        """How many ``thing`` a read found; ``mine``: every one of them is the user's."""
        if n == 1:
            return self.pick(("I found 1 {t}.", "There is 1 {t}.", "Just 1 {t} comes up.")).format(t=thing)
        bank = self.pick(_FOUND_MANY + _FOUND_MINE if mine else _FOUND_MANY)
        return bank.format(n=n, N=cap(str(n)), things=plural(thing))

    def found_none(self, thing: str) -> str:
        return self.pick(_FOUND_NONE).format(things=plural(thing))

    def refuse(self, reason: str) -> str:
        return f"{self.pick(_REFUSE_HEAD)} {reason}"

    def error(self, reason: str) -> str:
        return f"{self.pick(_ERROR_HEAD)} {reason}"

    def more(self, name: str = "") -> str:
        text = self.pick(_MORE)
        if name and self.rng.random() < 0.3 and text.endswith("?"):
            text = text[:-1] + f", {name}?"
        return text

    def agent_bye(self, first_name: str = "", recap: str = "") -> str:
        head = self.pick(_AGENT_BYE_HEAD)
        if first_name and self.rng.random() < 0.7:
            head += f", {first_name}"
        tail = self.pick(_AGENT_BYE_MID)
        roll = self.rng.random()
        if recap and roll < 0.25:
            if self.rng.random() < 0.5:
                return f"{head} — {recap.rstrip('.')}; {tail}!"
            said = recap[:1].lower() + recap[1:] if _lowers(recap.split(" ", 1)[0]) else recap
            return f"{head}. {self.pick(_RECAP)} {said} {cap(tail)}!"
        if roll < 0.6:
            return f"{head}. {cap(tail)}!"
        if roll < 0.75:
            return f"{head}! {self.pick(_AGENT_BYE_MORE)} {cap(tail)}."
        return f"{head}, and {tail}!"
