"""Reading an agent's plain words: what a message asks of the user, and what it says happened.

An agent under evaluation speaks no dialogue acts, and the offline user must not lean on the
acts of the offline agent either (they say what the agent meant, not what it said). So the
user, the verifier and the policy check read the words with the functions here:

- :func:`requests` — the parts of a message that ask the user for something: questions
  ("what's your email?") and requests ("tell me your phone number", "I'll need your email
  first", "your email or phone will tell me");
- :func:`asks_to_go_ahead` — whether the message asks leave to make a change ("shall I go
  ahead?", "is that right?", "happy for me to do that?"), not whether there is anything else;
- :func:`refusal` — the words with which the agent says it will not do something ("I can't
  do that", "that's not something I can change"); "I can't see any" and "none, I'm afraid"
  report nothing found and are no refusal;
- :func:`failure` — the words with which it says a tool call did not go through ("the system
  refused it", "that isn't a valid time").

Each is one pass over the text (plain substring tests and a sentence split without
backtracking), so a long reply costs a scan. They read English, as the offline user speaks it.
"""

from __future__ import annotations

import re

__all__ = ["asks_to_go_ahead", "failure", "refusal", "requests"]

_SENTENCE_END = re.compile(r"[.!?]")
_CLAUSE_BREAK = re.compile(r" [—–-] |; |: ")

#: Words that make a sentence a request of the user even without a question mark.
_REQUEST_CUES = (
    "tell me", "give me", "let me have", "let me know", "send me", "i need", "i'll need", "i'd need",
    "i will need", "i would need", "please", "could you", "can you", "would you", "will tell me",
    "share", "provide", "what's your", "what is your", "which", "whose", "may i have", "can i have",
    "could i have", "can i get", "could i get", "need to know", "need your", "need the", "will do",
    "would do", "is enough", "are enough", "works for me", "do you have", "do we have",
)  # fmt: skip

#: Words that ask for a fact outright: a clause with one is a request even when it also
#: mentions going ahead ("before I go ahead, could you share the repo path?").
_ASK_CUES = (
    "tell me", "give me", "let me have", "send me", "share", "provide", "i need", "i'll need", "i'd need",
    "need your", "need the", "what's your", "what is your", "may i have", "can i have", "could i have",
)  # fmt: skip

#: Words of a question asking leave to make a change.
_GO_AHEAD_CUES = (
    "shall i", "should i", "do you want me to", "would you like me to", "want me to", "can i go ahead",
    "may i", "confirm", "okay to", "ok to", "go ahead", "is that right", "is that correct", "proceed",
    "sound good", "sound right", "sounds good", "sounds right", "happy for me to", "all right to",
    "alright to", "all right if", "good to go", "carry on", "put it through", "make that change",
    "make it happen", "can i do", "shall we", "fine to", "okay with you", "ok with you", "that ok",
    "that okay", "agree", "happy with that", "happy to go", "right to go", "are you sure",
)  # fmt: skip

#: A question about what else to do: it closes an answer and asks leave for nothing.
_CLOSING_CUES = (
    "anything else", "something else", "another thing", "anything further", "anything more",
    "anything other", "what's next", "what next", "do next", "look into anything", "check anything",
    "help with anything", "what else", "else i can", "anything on your list", "any other",
    "instead", "another value", "different value", "pick another", "next thing", "on your mind",
    "shall we carry on", "shall we go on", "shall we continue", "keep going", "shall i go on", "does that cover",
    "cover it", "cover what", "all you needed", "all you need", "help you with", "next one", "what can i do",
    "do now",
)  # fmt: skip

#: Words of a question that asks for a fact (an email, which order), not for leave to go ahead.
_INFO_CUES = (
    "what's your", "what is your", "what's the", "what is the", "what email", "what phone", "what number",
    "what name", "which", "whose", "may i have", "may i take", "may i ask", "confirm who", "confirm your",
    "we have for you", "we hold", "on file",
)  # fmt: skip

#: Words with which an agent declines a request.
_REFUSAL_CUES = (
    "can't do that", "cannot do that", "can't do this", "not something i can", "isn't something i can",
    "not something i'm able", "isn't something i'm able", "not permitted", "isn't permitted",
    "not allowed", "isn't allowed", "aren't allowed", "not able to", "unable to", "won't be able to",
    "no way to", "read-only for me", "not open to changes", "isn't open to changes", "against the rules",
    "the rules don't", "the rules do not", "the rules mean", "our policy doesn't", "policy does not allow",
    "not authorised",
    "not authorized", "i'm not in a position", "i must decline", "i have to decline", "i can't help with",
    "i cannot help with", "can't make that change", "cannot make that change", "i can't change",
    "i cannot change", "i can't cancel", "i cannot cancel", "i can't update", "i cannot update",
    "i can't book", "i cannot book", "i can't remove", "i cannot remove", "i can't delete",
    "i cannot delete", "i can't add", "i cannot add", "i can't modify", "i cannot modify",
    "i can't process", "i cannot process", "i can't go ahead", "i cannot go ahead", "i can't make",
    "i cannot make", "i can't let", "i cannot let", "i can't set", "i cannot set", "i can't issue",
    "isn't possible", "not possible", "say no to that", "stop you there",
    "hands are tied", "i'm afraid not", "i can't:", "but i can't", "unfortunately i can't", "turn down",
    "can't go ahead", "cannot go ahead", "can't help with", "cannot help with", "can't be done", "cannot be done",
    "i can't do", "i cannot do",
)  # fmt: skip

#: Words that report nothing found, which the refusal cues must not read as a refusal.
_NOT_FOUND_CUES = ("unable to find", "not able to find", "unable to locate", "not able to locate", "no way to find")

#: Words with which an agent says a tool call did not go through.
_FAILURE_CUES = (
    "error", "did not work", "didn't work", "didn't go through", "did not go through", "refused",
    "failed", "not accepted", "wasn't accepted", "was not accepted", "wouldn't accept", "would not accept",
    "didn't accept", "did not accept", "said no", "bounced back", "hit a problem", "ran into a problem",
    "isn't a valid", "is not a valid", "isn't valid", "is not valid", "not a valid", "invalid",
    "rejected", "went wrong", "no luck", "didn't take", "came back with a problem",
)  # fmt: skip


def _sentences(low: str) -> list[tuple[str, bool]]:
    """The sentences of ``low``, each with whether it ends in '?' (one pass, linear)."""
    out: list[tuple[str, bool]] = []
    start = 0
    for end in _SENTENCE_END.finditer(low):
        sentence = low[start : end.end()].strip()
        if sentence:
            out.append((sentence, end.group() == "?"))
        start = end.end()
    rest = low[start:].strip()
    if rest:
        out.append((rest, False))
    return out


def _clauses(sentence: str) -> list[str]:
    """The clauses of one sentence, split at dashes, semicolons and colons."""
    return [c for c in _CLAUSE_BREAK.split(sentence) if c.strip()]


def _lower(text: str) -> str:
    return text.lower().replace("\u2019", "'")


def requests(text: str) -> str:
    """The clauses of ``text`` that ask the user for something, lower-cased, joined by spaces.

    A clause counts when it ends a question or carries a request ("tell me", "I'll need",
    "please"); a question about what else to do asks for nothing.
    """
    found: list[str] = []
    for sentence, asked in _sentences(_lower(text)):
        parts = _clauses(sentence)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if _CLOSING.search(part) or (asked and last and _is_go_ahead(part) and not _ASK.search(part)):
                continue
            if (asked and last) or _REQUEST.search(part):
                found.append(part)
    return " ".join(found)


def asks_to_go_ahead(text: str) -> bool:
    """Whether ``text`` asks leave to make a change, in a question that is not about what else to do."""
    for sentence, asked in _sentences(_lower(text)):
        if not asked:
            continue
        tail = _clauses(sentence)[-1]
        if _CLOSING.search(tail):
            continue
        if _is_go_ahead(tail) or (_is_go_ahead(sentence) and not _CLOSING.search(sentence)):
            return True
    return False


def _is_go_ahead(part: str) -> bool:
    return _GO_AHEAD.search(part) is not None and _INFO.search(part) is None


def refusal(text: str) -> str | None:
    """The words with which ``text`` declines to do something, or None."""
    low = _lower(text)
    for m in _REFUSAL.finditer(low):
        if not any(low.startswith(nf, m.start()) for nf in _NOT_FOUND_CUES):
            return m.group(0)
    return None


def failure(text: str) -> str | None:
    """The words with which ``text`` says a tool call did not go through, or None."""
    m = _FAILURE.search(_lower(text))
    return m.group(0) if m else None


def _pattern(cues: tuple[str, ...]) -> re.Pattern[str]:
    """Any of ``cues`` as whole words (literals only: no backtracking)."""
    alternatives = "|".join(re.escape(c) for c in sorted(cues, key=len, reverse=True))
    return re.compile(r"(?<![\w'])(?:" + alternatives + r")(?![\w'])")


_REQUEST = _pattern(_REQUEST_CUES)
_ASK = _pattern(_ASK_CUES)
_GO_AHEAD = _pattern(_GO_AHEAD_CUES)
_CLOSING = _pattern(_CLOSING_CUES)
_INFO = _pattern(_INFO_CUES)
_REFUSAL = _pattern(_REFUSAL_CUES)
_FAILURE = _pattern(_FAILURE_CUES)
