"""Every way a provider call can fail: recovered by a retry, or raised as a typed error.

Backoff waits go through a fake clock, so the tests assert on the waits themselves
(the ``retry-after`` value, the jittered backoff) rather than on wall time.
"""

from __future__ import annotations

import random

import anyio
import pytest

from simulator.providers import (
    BadResponse,
    ChatMessage,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Request,
    UsageMeter,
)
from simulator.providers.loopback import Reply, Script, serve_loopback
from tests.simulator.providers.conftest import ANTHROPIC, FakeClock, Protocol, client_for

pytestmark = pytest.mark.anyio

HELLO = Request(messages=[ChatMessage.user("hello")])


async def test_429_waits_exactly_what_retry_after_says(proto: Protocol) -> None:
    clock = FakeClock()
    script = Script(proto.error(429, "rate_limit_error", headers={"retry-after": "7"}), proto.ok("after the wait"))
    async with serve_loopback(script) as server, client_for(proto, server, clock) as client:
        response = await client.complete(HELLO)
    assert response.text == "after the wait"
    assert response.attempts == 2
    assert clock.sleeps == [7.0]
    assert server.hits == 2


async def test_retry_after_ms_wins_over_retry_after(proto: Protocol) -> None:
    clock = FakeClock()
    headers = {"retry-after": "30", "retry-after-ms": "1500"}
    script = Script(proto.error(429, "rate_limit_error", headers=headers), proto.ok())
    async with serve_loopback(script) as server, client_for(proto, server, clock) as client:
        await client.complete(HELLO)
    assert clock.sleeps == [1.5]


async def test_a_429_holds_back_every_caller_of_the_model(proto: Protocol) -> None:
    clock = FakeClock()
    script = Script(proto.error(429, "rate_limit_error", headers={"retry-after": "4"}), proto.ok(), proto.ok())
    async with serve_loopback(script) as server, client_for(proto, server, clock) as client:
        await client.complete(HELLO)
        waited_before = list(clock.sleeps)
        client.limiter.pause(4.0)  # as after another caller's 429
        await client.complete(HELLO)
    assert waited_before == [4.0]
    assert clock.sleeps == [4.0, 4.0]


async def test_500_is_retried_with_full_jitter_backoff(proto: Protocol) -> None:
    clock = FakeClock()
    script = Script(proto.error(500, "api_error"), proto.error(502, "api_error"), proto.ok("third time"))
    async with serve_loopback(script) as server, client_for(proto, server, clock, seed=11) as client:
        response = await client.complete(HELLO)
    assert response.text == "third time"
    assert response.attempts == 3
    rng = random.Random(11)
    assert clock.sleeps == [rng.uniform(0, 1.0), rng.uniform(0, 2.0)]


async def test_anthropic_overloaded_529_is_retried() -> None:
    clock = FakeClock()
    script = Script(ANTHROPIC.error(529, "overloaded_error", "Overloaded"), ANTHROPIC.ok("recovered"))
    async with serve_loopback(script) as server, client_for(ANTHROPIC, server, clock) as client:
        response = await client.complete(HELLO)
    assert response.text == "recovered"
    assert server.hits == 2
    assert len(clock.sleeps) == 1


async def test_overloaded_for_good_is_provider_unavailable() -> None:
    overloaded = ANTHROPIC.error(529, "overloaded_error", "Overloaded", headers={"retry-after": "2"})
    meter = UsageMeter()
    async with serve_loopback(Script(overloaded, overloaded, overloaded)) as server:
        async with client_for(ANTHROPIC, server, max_retries=2) as client:
            with pytest.raises(ProviderUnavailable) as caught:
                await client.bind(meter=meter).complete(HELLO)
    assert caught.value.status == 529
    assert caught.value.retry_after == 2.0
    assert server.hits == 3
    assert (meter.totals.retries, meter.totals.failures, meter.totals.requests) == (2, 1, 0)


async def test_rate_limited_for_good_is_rate_limited(proto: Protocol) -> None:
    limited = proto.error(429, "rate_limit_error", headers={"retry-after": "1"})
    async with serve_loopback(Script(limited, limited)) as server, client_for(proto, server, max_retries=1) as client:
        with pytest.raises(RateLimited):
            await client.complete(HELLO)
    assert server.hits == 2


#: Long enough for a warm client to reach the loopback server even on a loaded machine,
#: short enough to keep the tests fast; a held reply never comes, so each timed-out
#: attempt costs exactly this much.
TIMEOUT = 0.25


async def test_timeout_then_success(proto: Protocol) -> None:
    never = anyio.Event()
    script = Script(proto.ok("warm"), Reply(hold=never), proto.ok("in time"))
    async with serve_loopback(script) as server, client_for(proto, server, timeout=TIMEOUT) as client:
        await client.complete(HELLO)  # the SDK's first call pays its lazy set-up
        response = await client.complete(HELLO)
    assert response.text == "in time"
    assert response.attempts == 2
    assert server.hits == 3


async def test_timeouts_for_good_are_provider_timeout(proto: Protocol) -> None:
    never = anyio.Event()
    meter = UsageMeter()
    script = Script(proto.ok("warm"), Reply(hold=never), Reply(hold=never))
    async with serve_loopback(script) as server:
        async with client_for(proto, server, timeout=TIMEOUT, max_retries=1) as client:
            await client.complete(HELLO)
            with pytest.raises(ProviderTimeout):
                await client.bind(meter=meter).complete(HELLO)
    assert (meter.totals.retries, meter.totals.failures) == (1, 1)


async def test_connection_cut_mid_body_is_retried(proto: Protocol) -> None:
    cut = proto.ok("never seen")
    cut.truncate = True
    script = Script(cut, proto.ok("whole"))
    async with serve_loopback(script) as server, client_for(proto, server) as client:
        response = await client.complete(HELLO)
    assert response.text == "whole"
    assert server.hits == 2


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"id": "msg_1", "content": [{"type": "te', id="truncated-json"),
        pytest.param(b"<html>502 Bad Gateway</html>", id="not-json"),
        pytest.param(b'{"unexpected": true}', id="wrong-shape"),
        pytest.param(b'{"content": [{"type": "text", "text": 5}], "usage": {"input_tokens": "x"}}', id="wrong-types"),
    ],
)
async def test_malformed_bodies_are_retried_then_bad_response(proto: Protocol, raw: bytes) -> None:
    script = Script(Reply(raw=raw), proto.ok("clean"), Reply(raw=raw), Reply(raw=raw))
    async with serve_loopback(script) as server, client_for(proto, server, max_retries=1) as client:
        assert (await client.complete(HELLO)).text == "clean"
        with pytest.raises(BadResponse) as caught:
            await client.complete(HELLO)
    assert caught.value.status == 200
    assert server.hits == 4


@pytest.mark.parametrize(
    ("status", "kind", "error_type"),
    [
        (400, "invalid_request_error", ProviderRejected),
        (404, "not_found_error", ProviderRejected),
        (401, "authentication_error", ProviderAuthError),
        (403, "permission_error", ProviderAuthError),
    ],
)
async def test_client_errors_are_not_retried(
    proto: Protocol, status: int, kind: str, error_type: type[ProviderError]
) -> None:
    async with serve_loopback(Script(proto.error(status, kind, "no"), proto.ok())) as server:
        async with client_for(proto, server) as client:
            with pytest.raises(error_type) as caught:
                await client.complete(HELLO)
    assert caught.value.status == status
    assert not caught.value.retryable
    assert server.hits == 1


async def test_server_saying_do_not_retry_is_obeyed(proto: Protocol) -> None:
    script = Script(proto.error(503, "api_error", headers={"x-should-retry": "false"}), proto.ok())
    async with serve_loopback(script) as server, client_for(proto, server) as client:
        with pytest.raises(ProviderUnavailable):
            await client.complete(HELLO)
    assert server.hits == 1


async def test_nothing_listening_is_provider_unavailable(proto: Protocol) -> None:
    async with serve_loopback(Script()) as server:
        pass  # the port is closed again: connections are refused
    async with client_for(proto, server, max_retries=1) as client:
        with pytest.raises(ProviderUnavailable):
            await client.complete(HELLO)
