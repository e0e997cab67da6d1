"""An agent cannot stall the evaluator with what it says: long replies are cut, and reading them is linear."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import AgentMessage, ErrorEvent, UserMessage
from simulator.dialogue.runner import MESSAGE_CUT, cap_message
from simulator.eval import EvalConfig, run_eval
from simulator.eval.agents import MAX_REPLY_LINE_BYTES
from simulator.eval.evaluate import RECORDS_DIR
from simulator.run.dataset import iter_records
from tests.conftest import shop_environment
from tests.simulator.conftest import make_user, shop_scenario
from tests.simulator.eval.agents_for_tests import MEGABYTE
from tests.simulator.eval.conftest import cmd_test_agent, python_test_agent
from toolservers.database import open_database

pytestmark = pytest.mark.anyio

CAP = 5000


def test_the_hostile_reply_is_a_megabyte_with_no_sentence_end() -> None:
    assert len(MEGABYTE) >= 1_000_000
    assert not set(".!?") & set(MEGABYTE)


@pytest.mark.timeout(60)
async def test_the_offline_user_reads_a_megabyte_reply_in_linear_time() -> None:
    """The user parses the agent's words itself (no cap in between); the old regex took hours on this."""
    env = shop_environment()
    db = open_database(env.database)
    try:
        user = make_user(shop_scenario(), env, db.query)
        await user.opening()
        for text in (MEGABYTE, MEGABYTE + " what is your email?", "?" * 1_000_000):
            turn = await user.respond(text, [])
            assert isinstance(turn.text, str)
    finally:
        db.close()


@pytest.mark.parametrize("agent", [python_test_agent("make_flooding"), cmd_test_agent("megabyte")])
async def test_a_megabyte_reply_is_cut_with_a_record_of_the_cut_and_the_dialogue_finishes(
    tmp_path: Path, shop_file: Path, agent: str
) -> None:
    out = tmp_path / "flood"
    outcome = await run_eval(
        EvalConfig(agent=agent, out_dir=out, source=str(shop_file), max_message_chars=CAP, progress=False)
    )
    (record,) = [r for _, r in iter_records(out / RECORDS_DIR)]
    assert outcome.run.failed == 0 and record.error is None  # it ran its course: the user gave up
    replies = [e for e in record.events if isinstance(e, AgentMessage)]
    cuts = [e for e in record.events if isinstance(e, ErrorEvent) and e.error_type == MESSAGE_CUT]
    assert replies and len(cuts) == len(replies)
    for reply, cut in zip(replies, cuts, strict=True):
        assert reply.text.startswith(MEGABYTE[:CAP]) and len(reply.text) < CAP + 200
        assert "message cut here" in reply.text
        assert str(len(MEGABYTE)) in cut.message and str(CAP) in cut.message
    # The user read every cut reply and answered it (its last message, giving up, was answered too).
    assert sum(isinstance(e, UserMessage) for e in record.events) == len(replies) > 1


def test_a_short_message_is_not_cut() -> None:
    assert cap_message("hello", 5) == ("hello", "")
    text, cut = cap_message("hello!", 5)
    assert text.startswith("hello\n[dialogsim: message cut here; 1 more") and cut


async def test_a_cmd_agent_that_writes_an_endless_line_fails_with_a_protocol_error(
    tmp_path: Path, shop_file: Path
) -> None:
    out = tmp_path / "endless"
    outcome = await run_eval(
        EvalConfig(agent=cmd_test_agent("flood"), out_dir=out, source=str(shop_file), progress=False)
    )
    (failure,) = outcome.results.summary.failures
    assert failure.reason == "agent_failure"
    assert str(MAX_REPLY_LINE_BYTES) in failure.detail
