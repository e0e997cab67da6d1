"""The template language's small rules: case after a colon or dash, totals with units, field names in requests."""

from __future__ import annotations

import random

from schemas import Persona
from simulator.offline.language import Phrasing, dash_case, total_of
from simulator.offline.planner._words import change_field


def test_a_word_after_a_colon_or_dash_inside_a_sentence_is_lower_case_unless_it_is_a_name() -> None:
    assert dash_case("Just to confirm: My plan is to add it.") == "Just to confirm: my plan is to add it."
    assert dash_case("Here's another: Could you check it?") == "Here's another: could you check it?"
    assert dash_case("Let me read that back: What I'll do is this.") == "Let me read that back: what I'll do is this."
    assert dash_case("Thanks — That helps.") == "Thanks — that helps."
    assert dash_case("I found 4 loans — Copies: C1 and C2.") == "I found 4 loans — copies: C1 and C2."
    # I, names and titles keep their capital
    assert dash_case("Before I go ahead: I'll add it.") == "Before I go ahead: I'll add it."
    assert dash_case("The books: The Glass Orchard and A Year in Kyoto.") == (
        "The books: The Glass Orchard and A Year in Kyoto."
    )
    assert dash_case("The branch: Central Library.") == "The branch: Central Library."


def test_a_total_says_what_it_adds_up_and_its_unit() -> None:
    assert total_of("total_duration_minutes") == ("duration", "minutes")
    assert total_of("total_amount") == ("amount", "")
    assert total_of("total_pages") == ("", "pages")
    assert total_of("total_total") == ("total", "")


def test_a_change_request_names_the_field_as_a_person_does() -> None:
    texts = set()
    for seed in range(40):
        say = Phrasing(random.Random(seed), Persona(name="Ann", verbosity="normal"))
        texts.add(change_field(say, "closes_at", "the Oakfield Branch", "17:00"))
        say = Phrasing(random.Random(seed), Persona(name="Ann", verbosity="terse"))
        texts.add(change_field(say, "renewals", "my loan due on 3 May", "3", 3))
    assert all("closes at" not in t for t in texts)
    assert any("closing time" in t for t in texts)
    assert all("number of renewals" in t.lower() for t in texts if "renewals" in t)
    assert len(texts) > 20


def test_every_confirmation_question_yes_and_refusal_reads_as_one_to_the_checkers() -> None:
    """A restatement ends with a question the policy checker sees as asking for a yes, a user's yes
    reads as one, and a refusal says no in words both the checker and the verifier know."""
    from simulator.dialogue.reading import asks_to_go_ahead, failure, refusal
    from simulator.offline import language
    from simulator.quality._policy_check import _affirmed

    for tail in language._CONFIRM_TAIL:
        assert asks_to_go_ahead(f"I'd cancel your order ORD-10073. {tail}"), tail
    for head in language._REFUSE_HEAD:
        assert refusal(head) is not None, head
    for head in language._ERROR_HEAD:
        assert failure(head) is not None, head
    for yes in [*language._YES_TERSE, *(y for bank in language._YES.values() for y in bank)]:
        assert _affirmed(yes), yes


def test_every_way_a_user_says_yes_reads_as_a_yes() -> None:
    from simulator.quality._policy_check import _affirmed

    said = set()
    for seed in range(300):
        for verbosity in ("terse", "normal", "verbose"):
            for temperament in ("polite", "neutral", "impatient"):
                say = Phrasing(random.Random(seed), Persona(name="Ann", verbosity=verbosity, temperament=temperament))
                said |= {say.yes(), say.yes_to("waiting"), say.yes_to("3 May"), say.yes_to("8 June", "due date")}
    assert len(said) > 200
    assert [s for s in said if not _affirmed(s)] == []
