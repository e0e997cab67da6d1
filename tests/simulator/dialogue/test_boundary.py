"""The dialogue's one catch-all boundary, in process: every way a dialogue can break outside
the conversation is recorded with the ending its origin means, and run_dialogue never raises."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from schemas import ErrorEvent, InitialState, TerminationReason, ToolInvocation
from schemas.errors import ToolServerError
from simulator.dialogue import runner as runner_module
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from tests.conftest import shop_environment
from tests.simulator.conftest import shop_scenario
from toolservers.transports import connect_tool_server

pytestmark = pytest.mark.anyio


def _errors(record: Any) -> list[ErrorEvent]:
    return [e for e in record.events if isinstance(e, ErrorEvent)]


async def test_a_tool_server_that_cannot_start_is_a_tool_failure() -> None:
    @asynccontextmanager
    async def broken(*_args: Any, **_kwargs: Any) -> AsyncIterator[Any]:
        raise ToolServerError("the server process exited at once")
        yield  # pragma: no cover

    record = await run_dialogue(shop_scenario(seed=1), shop_environment(), DialogueConfig(), connect=broken)
    assert record.termination is TerminationReason.TOOL_FAILURE
    assert not record.success and all(not o.success for o in record.outcomes)
    (error,) = _errors(record)
    assert (error.where, error.error_type) == ("tool_failure", "ToolServerError")


async def test_a_tool_listing_that_fails_is_a_tool_failure() -> None:
    @asynccontextmanager
    async def no_listing(environment: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with connect_tool_server(environment, **kwargs) as conn:

            async def list_tools() -> Any:
                raise ConnectionResetError("the server went away")

            conn.client.list_tools = list_tools  # type: ignore[method-assign]
            yield conn

    record = await run_dialogue(shop_scenario(seed=1), shop_environment(), DialogueConfig(), connect=no_listing)
    assert record.termination is TerminationReason.TOOL_FAILURE
    assert "ConnectionResetError" in (record.error or "")


async def test_an_initial_state_that_cannot_be_replayed_is_a_tool_failure() -> None:
    scenario = shop_scenario(seed=1)
    scenario.initial_state = InitialState(db_actions=[ToolInvocation(tool="get_customer", arguments={"id": -5})])
    record = await run_dialogue(scenario, shop_environment(), DialogueConfig())
    assert record.termination is TerminationReason.TOOL_FAILURE
    (error,) = _errors(record)
    assert error.error_type == "InitialStateError"


async def test_a_bug_in_verification_keeps_the_ending_and_fails_the_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("a bug in the verifier")
        return real(*_args, **_kwargs)

    real = runner_module.verify_dialogue
    monkeypatch.setattr(runner_module, "verify_dialogue", broken)
    record = await run_dialogue(shop_scenario(seed=1), shop_environment(), DialogueConfig())
    # The conversation ran its course: the ending stays the user's, not a tool failure.
    assert record.termination is TerminationReason.USER_DONE
    (error,) = _errors(record)
    assert (error.where, error.error_type) == ("verify", "KeyError")
    assert not record.success and record.error is not None and record.error.startswith("verify failed")
