"""Grounding over 240 real dialogues: the agent uses only what it was told and what its tools returned.

Checked from the record alone (the user's words and the tool results, never the acts):
every argument of every call was said by the user or returned by an earlier tool, and
the agent reports the fields the user asked about. Then the acts themselves: every value
in a user act is in the user's words so far, so what the agent acts on is a parse of
what was said.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from schemas import AgentMessage, Effect, FeedbackKind, ToolCall, ToolResult, UserFeedback, UserMessage
from simulator.offline.acts import Change, Correct, Inform, Request, decode_acts
from simulator.offline.language import value_forms
from simulator.quality._checks import CONTROL_ARGUMENTS, check_dialogue
from simulator.quality._view import view_of
from tests.simulator.offline._sample import ENVIRONMENTS, PER_ENVIRONMENT, sample

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_no_argument_value_comes_from_nowhere(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    s = sample(tmp_path_factory, name)
    told = "\n".join(p for p in (s.environment.description, s.environment.policy) if p)
    calls = 0
    for raw in s.raw():
        checks = check_dialogue(view_of(raw), told=told)
        calls += checks.calls
        assert checks.ungrounded_calls == 0, (raw["id"], checks.ungrounded_examples)
    assert calls > 5 * PER_ENVIRONMENT


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_the_agent_reports_what_was_asked(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    answers = unasked = 0
    for raw in sample(tmp_path_factory, name).raw():
        checks = check_dialogue(view_of(raw))
        answers += checks.read_answers
        unasked += checks.answers_with_unasked
    assert answers > PER_ENVIRONMENT
    # the measure matches values in text, so a value that happens to sit inside another
    # (a city inside a hotel's name) can still count: allow a small share
    assert unasked / answers <= 0.05, unasked / answers


def _said(value: Any, words: str) -> bool:
    return any(form.lower() in words for form in value_forms(value))


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_every_value_in_the_users_acts_is_in_the_users_words(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    checked = 0
    for record in sample(tmp_path_factory, name).records:
        words = ""
        for event in record.events:
            if not isinstance(event, UserMessage):
                continue
            words += " " + event.text.lower()
            for act in decode_acts(event.acts):
                if isinstance(act, Request | Inform | Change | Correct):
                    for key, value in act.args.items():
                        if key in CONTROL_ARGUMENTS or isinstance(value, bool):
                            continue
                        checked += 1
                        assert _said(value, words), (record.id, event.text, type(act).__name__, key, value)
                if isinstance(act, Request):
                    # what the words leave open is named, never given
                    assert not set(act.withheld) & set(act.args), (record.id, act)
    assert checked > PER_ENVIRONMENT


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_users_identify_things_as_people_do(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    """No user states an internal row id: ids reach calls only through tool results."""
    for record in sample(tmp_path_factory, name).records:
        for event in record.events:
            if isinstance(event, UserMessage):
                for act in decode_acts(event.acts):
                    if isinstance(act, Request | Inform | Correct):
                        ids = [k for k in act.args if k.endswith("_id")]
                        assert not ids, (record.id, event.text, act)


def test_every_kind_of_feedback_occurs(tmp_path_factory: pytest.TempPathFactory) -> None:
    seen = {
        e.feedback
        for name in ENVIRONMENTS
        for r in sample(tmp_path_factory, name).records
        for e in r.events
        if isinstance(e, UserFeedback)
    }
    # MISSING is what a user says when a write did not happen: a correct agent gives no cause
    assert set(FeedbackKind) - {FeedbackKind.MISSING} <= seen, set(FeedbackKind) - seen


def test_a_value_is_found_only_as_a_whole_word_or_number() -> None:
    # The search without a regular expression finds exactly what the bounded one finds.
    import random
    import re

    from simulator.dialogue.grounding import _find_whole

    def bounded(wanted: str, haystack: str) -> str | None:
        lead = r"(?<![0-9a-z])" if wanted[0].isalnum() else ""
        tail = r"(?![0-9a-z])" if wanted[-1].isalnum() else ""
        m = re.search(lead + re.escape(wanted) + tail, haystack)
        return m.group(0) if m else None

    rng = random.Random(7)
    alphabet = "ab1 -.é"
    for _ in range(20_000):
        haystack = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        wanted = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))
        assert _find_whole(wanted, haystack) == bounded(wanted, haystack), (wanted, haystack)
    assert _find_whole("may 2", "due may 20") is None and _find_whole("ord-1", "ord-1, ord-10") == "ord-1"


#: How many rows were found, said as the user's own ("You have 8 products on the account").
_MINE = re.compile(
    r"\d+ [\w ]+ (on the account|under your name|in the system for you|on record for you|for you\.|on your record"
    r"|appear on your account|listed for you|on your account)"
    r"|(Your account shows|The account has|Your record has|You have|You've got|Your account has|On your account:) \d+"
)
#: Words that present the rows named as the whole list.
_WHOLE = re.compile(r"\b(They are|They're|Those are|Here they are|Here's the list|The list|The names are|Namely)\b")


def _replies_after_reads(name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, str]]:
    """(table read, rows it returned, the agent's reply) for each reply that follows exactly one read."""
    s = sample(tmp_path_factory, name)
    for record in s.records:
        reads: list[tuple[str | None, int]] = []
        for event in record.events:
            if isinstance(event, ToolCall):
                tool = next((t for t in s.environment.tools if t.name == event.tool), None)
                reads.append((tool.table if tool is not None and tool.effect is Effect.READ else None, 0))
            elif isinstance(event, ToolResult) and reads:
                found = event.structured.get("rows") if isinstance(event.structured, dict) else None
                reads[-1] = (reads[-1][0], len(found) if isinstance(found, list) else 0)
            elif isinstance(event, AgentMessage):
                if len(reads) == 1 and reads[0][0] is not None:
                    yield reads[0][0], reads[0][1], event.text
                reads = []


def test_rows_of_a_catalogue_are_never_said_to_be_the_users(tmp_path_factory: pytest.TempPathFactory) -> None:
    """ "There are 12 flights in the system for you": a search of the flights is no one's own."""
    public = []
    for name in ("clinic", "retail", "travel"):
        policy = sample(tmp_path_factory, name).environment.rules
        assert policy is not None
        public += [t for table, _, t in _replies_after_reads(name, tmp_path_factory) if policy.rules(table).public]
    assert len(public) > 5
    claimed = [text for text in public if _MINE.search(text)]
    assert not claimed, claimed[:3]


def test_a_list_named_in_part_says_it_is_only_the_first(tmp_path_factory: pytest.TempPathFactory) -> None:
    """ "I found 12 flights. They're CJ195, CJ244 twice, CJ246 and CJ530.": five of twelve."""
    long_lists = [
        text for name in ENVIRONMENTS for _, rows, text in _replies_after_reads(name, tmp_path_factory) if rows > 5
    ]
    assert long_lists
    assert not [text for text in long_lists if _WHOLE.search(text)], long_lists[:3]
