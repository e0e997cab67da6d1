"""The API key never shows: not in a log line (stdlib logging or structlog, any level, the
SDKs' own debug logs included), not in an exception, not in a published event."""

from __future__ import annotations

import logging
import traceback

import msgspec
import pytest
import structlog

from schemas import ProviderCall
from simulator.providers import ChatMessage, ProviderError, Request, StructuredOutputError, complete_structured
from simulator.providers.loopback import Reply, Script, serve_loopback
from tests.simulator.providers.conftest import CANARY_KEY, Protocol, client_for

pytestmark = pytest.mark.anyio


class Answer(msgspec.Struct):
    value: int


async def test_no_key_in_logs_exceptions_or_events(proto: Protocol, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDKs' and httpx's debug output too
    events: list[ProviderCall] = []
    errors: list[BaseException] = []

    async def publish(event: ProviderCall) -> None:
        events.append(event)

    script = Script(
        proto.ok("fine"),
        proto.error(429, "rate_limit_error", headers={"retry-after": "1"}),
        proto.ok("after 429"),
        # A server that echoes the key back in its error message (some proxies do).
        proto.error(401, "authentication_error", f"invalid x-api-key: {CANARY_KEY}"),
        proto.error(400, "invalid_request_error", f"bad key {CANARY_KEY}"),
        Reply(raw=b"{not json"),
        Reply(raw=f"{{'key': '{CANARY_KEY}'".encode()),
        proto.ok("not an object"),
        proto.ok("still not"),
    )
    with structlog.testing.capture_logs() as struct_logs:
        async with serve_loopback(script) as server:
            async with client_for(proto, server, max_retries=1) as client:
                llm = client.bind(role="user", on_call=publish)
                ask = Request(messages=[ChatMessage.user("hi")])
                await llm.complete(ask)
                await llm.complete(ask)
                for _ in range(3):
                    try:
                        await llm.complete(ask)
                    except ProviderError as exc:
                        errors.append(exc)
                try:
                    await complete_structured(llm, ask, Answer)
                except StructuredOutputError as exc:
                    errors.append(exc)
                texts = [repr(client), repr(client.limiter), repr(vars(client))]

    assert len(errors) == 4
    assert server.requests[0].headers["authorization"] == f"Bearer {CANARY_KEY}"  # it was sent
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text, repr(struct_logs)]
    texts += [msgspec.json.encode(e).decode() for e in events]
    assert caplog.records  # the debug logs were really captured
    leaks = [text for text in texts if CANARY_KEY in text]
    assert leaks == []
