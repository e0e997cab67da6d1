"""Template language for the offline brains: names for things, values, and phrase banks.

Every phrase is picked with the dialogue's seeded ``random.Random``, and personas shape
the result (terse or verbose, polite or impatient), so two dialogues over the same task
do not read alike while the same seed always gives the same words.
"""

from __future__ import annotations

import random
from typing import Any

from schemas import Persona
from toolservers.naming import plural, singular

__all__ = ["Phrasing", "entity", "entity_plural", "format_value", "label", "value_forms"]

_ACRONYMS = {"id": "ID", "url": "URL", "sku": "SKU", "iata": "IATA", "vip": "VIP"}


def label(column: str) -> str:
    """``customer_id`` -> ``customer ID``; ``placed_on`` -> ``placed on``."""
    return " ".join(_ACRONYMS.get(w, w) for w in column.split("_") if w)


def entity(table: str) -> str:
    """A table's row as a noun: ``order_items`` -> ``order item``."""
    return singular(table).replace("_", " ")


def entity_plural(table: str) -> str:
    """``order_items`` -> ``order items``; ``category`` -> ``categories``."""
    return plural(singular(table)).replace("_", " ")


def format_value(value: Any) -> str:
    """How the offline brains say a value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def value_forms(value: Any) -> list[str]:
    """Ways a value may appear in an answer (for grounding: was it said?)."""
    forms = {format_value(value)}
    if isinstance(value, float):
        forms.add(repr(value))
        if value.is_integer():
            forms.add(str(int(value)))
        forms.add(f"{value:,.2f}")
    elif isinstance(value, int) and not isinstance(value, bool):
        forms.add(f"{value:,}")
    return sorted(forms)


# --------------------------------------------------------------------------- phrase banks

_USER_GREETINGS = {
    "polite": ["Hi there!", "Hello, good morning.", "Hi, I hope you can help me.", "Hello!", "Good afternoon."],
    "neutral": ["Hi.", "Hello.", "Hey.", "Hi,"],
    "impatient": ["Hi, quick one.", "Hey, I need something sorted.", "Hello — I'm in a bit of a hurry."],
}
_USER_THANKS = {
    "polite": ["Great, thank you!", "Perfect, thanks a lot.", "Thanks, that's exactly it.", "Wonderful, thank you."],
    "neutral": ["OK, thanks.", "Got it.", "Good.", "Right, thanks."],
    "impatient": ["Fine.", "OK.", "Good, moving on.", "Finally, thanks."],
}
_USER_NEXT = ["Next,", "Also,", "One more thing:", "While you're at it,", "Now,", "Then,", "After that,"]
_USER_BYE = {
    "polite": [
        "That's everything I needed — thank you so much for your help!",
        "That covers it all. Thanks, have a nice day!",
        "All done on my side. Thank you!",
    ],
    "neutral": ["That's all, thanks.", "That's everything. Bye.", "OK, all sorted. Thanks."],
    "impatient": ["That's it. Thanks.", "Done. Bye.", "Good, that's all I needed."],
}
_USER_WRONG = [
    "Hmm, that doesn't look right.",
    "I don't think that's correct.",
    "That's not the one I meant.",
    "Wait, that's not what I expected.",
    "No, that's not it.",
]
_USER_MISSING = [
    "It doesn't look like that went through.",
    "I can't see that change yet.",
    "That didn't seem to work.",
    "I don't think that was done.",
]
_USER_UNSURE = [
    "Could you double-check that it was saved?",
    "Just to be sure — can you confirm that's recorded now?",
    "Can you verify that the change is really there?",
    "Would you mind checking it once more?",
]
_USER_CHANGE_MIND = [
    "Actually, I've changed my mind —",
    "Sorry, on second thought,",
    "Hmm, actually,",
    "Wait, let's do it differently:",
]
_USER_DONT_KNOW = [
    "I'm not sure about that one — can you work it out from what you found?",
    "I don't have that, sorry. Can you use what you already looked up?",
]

_AGENT_GREETINGS = ["Happy to help.", "Sure, I can help with that.", "Of course.", "Certainly.", "Sure thing."]
_AGENT_ASK = [
    "Could you tell me {slots}?",
    "To look that up I'll need {slots}.",
    "What is {slots}?",
    "Can you give me {slots}, please?",
    "Before I go ahead, could you share {slots}?",
]
_AGENT_FOUND_ONE = ["I found the {entity}:", "Here is the {entity}:", "Got it — the {entity}:", "This is what I have:"]
_AGENT_FOUND_MANY = ["I found {n} {entities}.", "There are {n} {entities}.", "Your search returned {n} {entities}."]
_AGENT_FOUND_NONE = ["I couldn't find any {entities} matching that.", "No {entities} match that."]
_AGENT_DONE = ["Done —", "All set:", "That's done:", "I've made the change:"]
_AGENT_FAILED = ["I'm sorry, that didn't work:", "Unfortunately the system refused it:", "That failed:"]
_AGENT_MORE = [
    "Is there anything else I can do for you?",
    "Anything else?",
    "What else can I help with?",
    "Let me know if you need anything else.",
]
_AGENT_BYE = ["You're welcome — have a great day!", "Glad I could help. Goodbye!", "Happy to help. Take care!"]


class Phrasing:
    """Picks phrases for one speaker in one dialogue."""

    def __init__(self, rng: random.Random, persona: Persona | None = None) -> None:
        self.rng = rng
        self.persona = persona or Persona(name="User")

    def pick(self, bank: list[str]) -> str:
        return self.rng.choice(bank)

    def _mood(self, banks: dict[str, list[str]]) -> str:
        return self.pick(banks.get(self.persona.temperament, banks["neutral"]))

    # ------------------------------------------------------------------ user
    def greeting(self) -> str:
        return self._mood(_USER_GREETINGS)

    def thanks(self) -> str:
        return self._mood(_USER_THANKS)

    def next_marker(self) -> str:
        return self.pick(_USER_NEXT)

    def bye(self) -> str:
        return self._mood(_USER_BYE)

    def wrong(self) -> str:
        return self.pick(_USER_WRONG)

    def missing(self) -> str:
        return self.pick(_USER_MISSING)

    def unsure(self) -> str:
        return self.pick(_USER_UNSURE)

    def change_mind(self) -> str:
        return self.pick(_USER_CHANGE_MIND)

    def dont_know(self) -> str:
        return self.pick(_USER_DONT_KNOW)

    def please(self, text: str) -> str:
        """Dress a request for the persona."""
        if self.persona.temperament == "polite" and text.startswith("Please ") and self.rng.random() < 0.6:
            text = self.pick(["Could you please ", "Would you ", "Can you "]) + text[len("Please ") :]
        elif self.persona.temperament == "impatient" and self.rng.random() < 0.4:
            text = text + self.pick([" Quickly, please.", " As fast as you can.", ""])
        if not text.rstrip().endswith(("?", ".", "!")):
            text = text.rstrip() + ("?" if text.lower().startswith(("could", "would", "can")) else ".")
        return text

    def context(self, sentence: str) -> str:
        """A background sentence a verbose persona adds, a terse one drops."""
        if self.persona.verbosity == "verbose":
            return sentence + " "
        if self.persona.verbosity == "terse":
            return ""
        return sentence + " " if self.rng.random() < 0.4 else ""

    def inform(self, pairs: list[tuple[str, Any]]) -> str:
        parts = [f"the {label(k)} is {format_value(v)}" for k, v in pairs]
        body = _join(parts)
        if self.persona.verbosity == "terse" and len(pairs) == 1:
            return format_value(pairs[0][1]) + "."
        return self.pick(["Sure, ", "Yes — ", "Of course: ", "", "OK, "]) + body + "."

    # ------------------------------------------------------------------ agent
    def agent_greeting(self) -> str:
        return self.pick(_AGENT_GREETINGS)

    def ask(self, slots: list[str]) -> str:
        names = _join([f"the {label(s)}" for s in slots])
        return self.pick(_AGENT_ASK).format(slots=names)

    def found_one(self, table: str) -> str:
        return self.pick(_AGENT_FOUND_ONE).format(entity=entity(table))

    def found_many(self, table: str, n: int) -> str:
        if n == 1:
            return self.pick(["I found 1 {entity}.", "There is 1 matching {entity}."]).format(entity=entity(table))
        return self.pick(_AGENT_FOUND_MANY).format(n=n, entities=entity_plural(table) if n != 1 else entity(table))

    def found_none(self, table: str) -> str:
        return self.pick(_AGENT_FOUND_NONE).format(entities=entity_plural(table))

    def done(self) -> str:
        return self.pick(_AGENT_DONE)

    def failed(self) -> str:
        return self.pick(_AGENT_FAILED)

    def more(self) -> str:
        return self.pick(_AGENT_MORE)

    def agent_bye(self) -> str:
        return self.pick(_AGENT_BYE)


def describe_row(row: dict[str, Any], fields: list[str]) -> str:
    """``status shipped, total 25.50``."""
    return ", ".join(f"{label(f)} {format_value(row.get(f))}" for f in fields if f in row)


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text
