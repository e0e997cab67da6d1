"""Reading an agent's plain words, as the offline user and the checkers do.

The phrasings here are not the offline agent's templates (those are checked in
tests/simulator/offline/test_language.py): they are written the way LLM agents under
evaluation tend to speak, so the user reads an outside agent as well as its own.
"""

from __future__ import annotations

import pytest

from simulator.dialogue.reading import asks_to_go_ahead, failure, refusal, requests


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("Could you please provide the email address associated with your account?", "email address"),
        ("To get started, I'll need your order number.", "order number"),
        ("Please share your phone number so I can look up your account.", "phone number"),
        ("Sure! What's your email?", "email"),
        ("Happy to help. Whose account is this? Your phone number will do.", "phone number"),
        ("I can look into that — tell me the booking reference and I'll pull it up.", "booking reference"),
    ],
)
def test_a_request_of_the_user_is_read_with_what_it_asks_for(text: str, asked: str) -> None:
    assert asked in requests(text)


@pytest.mark.parametrize(
    "text",
    [
        "Is there anything else I can help you with today?",
        "Your order ORD-10042 has shipped; the tracking number is on the way.",
        "The insurance provider on your account is Northstar Health.",
        "I'd cancel booking BK-6F8C3 for you. Would you like me to proceed?",
    ],
)
def test_an_answer_closing_or_asking_leave_asks_for_no_fact(text: str) -> None:
    assert "email" not in requests(text) and "number" not in requests(text) and "provider" not in requests(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'll cancel order ORD-10073 for you. Would you like me to proceed?",
        "Just to confirm: you want to change your city from Cardiff to Kyoto. Is that correct?",
        "Shall I go ahead and book it?",
        "I can book Dr Rossi on 8 May at 14:15. Does that sound good?",
        "Before I make the change — the new phone would be +44 7700 900123 — OK to go ahead?",
    ],
)
def test_a_question_asking_leave_to_write_is_read_as_one(text: str) -> None:
    assert asks_to_go_ahead(text)


@pytest.mark.parametrize(
    "text",
    [
        "Is there anything else I can help you with?",
        "Would you like me to look up anything else?",
        "Could you confirm your email address?",
        "Done — the city is now Kyoto. Shall we do the next one?",
        "I've updated it for you.",
    ],
)
def test_a_question_about_something_else_or_a_fact_asks_no_leave(text: str) -> None:
    assert not asks_to_go_ahead(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't cancel a booking that has already been cancelled.",
        "Unfortunately, I'm not able to change the loyalty tier on your account.",
        "That isn't something I can help with, as it's against our policy.",
        "I'm unable to modify another customer's order.",
        "I won't be able to share details of a booking that isn't yours.",
    ],
)
def test_a_refusal_is_read_as_one(text: str) -> None:
    assert refusal(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "I'm afraid there are no orders on your account.",
        "None, I'm afraid: there are no cancelled appointments.",
        "I'm unable to find an account with that phone number.",
        "Sorry, I can't see any held bookings.",
        "Your booking is confirmed.",
    ],
)
def test_nothing_found_is_no_refusal(text: str) -> None:
    assert refusal(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "The system returned an error: the quantity can be at most 20.",
        "That didn't go through — 09:45 isn't a valid time.",
        "The update was rejected because the date is in the past.",
    ],
)
def test_a_failed_call_is_read_as_one(text: str) -> None:
    assert failure(text) is not None


@pytest.mark.parametrize("text", ["Your order has shipped.", "Done — the status is now cancelled."])
def test_a_result_is_no_failure(text: str) -> None:
    assert failure(text) is None


def test_reading_a_huge_reply_is_one_scan() -> None:
    """No backtracking: a long run with no sentence end, and one of commas, are read at once."""
    for text in ("a, " * 200_000, "x" * 500_000 + "?"):
        assert requests(text) == ("" if text.startswith("a") else text)
        assert not asks_to_go_ahead(text)
        assert refusal(text) is None and failure(text) is None


def test_a_request_that_mentions_going_ahead_still_asks_for_the_fact() -> None:
    text = "Hi! Let's see — before I go ahead, could you share the repo path and the branch type?"
    assert "repo path" in requests(text) and "branch type" in requests(text)
    assert "passport number" not in requests("Can I go ahead and change the passport number to PL8781885?")
