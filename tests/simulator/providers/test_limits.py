"""Concurrency cap, request and token rates, on the fake clock or counted by the server."""

from __future__ import annotations

import random

import anyio
import pytest

from simulator.providers import ChatMessage, Limiter, Request, RetryPolicy, TokenBucket
from simulator.providers.limits import parse_retry_after
from simulator.providers.loopback import LoopbackServer, Received, Reply, serve_loopback
from tests.simulator.providers.conftest import FakeClock, Protocol, client_for

pytestmark = pytest.mark.anyio


async def test_the_concurrency_cap_is_honoured(proto: Protocol) -> None:
    cap, total = 3, 12
    reached, release = anyio.Event(), anyio.Event()
    servers: list[LoopbackServer] = []

    async def handler(request: Received) -> Reply:
        if servers[0].in_flight >= cap:
            reached.set()
        await release.wait()
        return proto.ok("done")

    async with serve_loopback(handler) as server:
        servers.append(server)
        async with client_for(proto, server, max_concurrency=cap) as client, anyio.create_task_group() as tg:
            for i in range(total):
                tg.start_soon(client.complete, Request(messages=[ChatMessage.user(f"request {i}")]))
            await reached.wait()
            # Everything else is now parked; had the cap leaked, more requests would be in.
            await anyio.wait_all_tasks_blocked()
            assert server.in_flight == cap
            release.set()
    assert server.hits == total
    assert server.max_in_flight == cap
    assert client.limiter.max_in_flight == cap


async def test_requests_per_minute_space_requests_out() -> None:
    clock = FakeClock()
    bucket = TokenBucket(6, clock, burst_seconds=10)  # one request per 10 s, a burst of one
    for _ in range(3):
        await bucket.acquire(1)
    assert clock.sleeps == [10.0, 10.0]


async def test_concurrent_waiters_queue_in_arrival_order() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, clock, burst_seconds=1)  # 1 per second, burst of one
    await bucket.acquire(1)
    order: list[int] = []

    async def take(i: int) -> None:
        await bucket.acquire(1)
        order.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(take, i)
    assert order == [0, 1, 2, 3]


async def test_tokens_per_minute_are_settled_with_the_real_usage() -> None:
    clock = FakeClock()
    limiter = Limiter(max_concurrency=4, tpm=600, clock=clock)  # 10 tokens/s, burst 100
    async with limiter.slot(estimated_tokens=100):
        pass
    limiter.settle_tokens(estimated=100, actual=150)  # the reply used 50 more than estimated
    async with limiter.slot(estimated_tokens=10):
        pass
    assert clock.sleeps == [6.0]  # 60 tokens of debt at 10 per second


async def test_rpm_through_the_client(proto: Protocol) -> None:
    clock = FakeClock()
    async with serve_loopback(lambda r: _ok(proto)) as server:
        async with client_for(proto, server, clock, rpm=6) as client:
            for _ in range(3):
                await client.complete(Request(messages=[ChatMessage.user("hi")]))
    assert clock.sleeps == [10.0, 10.0]
    assert server.hits == 3


async def _ok(proto: Protocol) -> Reply:
    return proto.ok()


async def test_pause_holds_new_requests() -> None:
    clock = FakeClock()
    limiter = Limiter(max_concurrency=1, clock=clock)
    limiter.pause(5.0)
    async with limiter.slot():
        pass
    assert clock.sleeps == [5.0]


def test_backoff_is_full_jitter_capped_and_retry_after_wins() -> None:
    policy = RetryPolicy(max_retries=10, base_delay=1.0, max_delay=8.0, max_retry_after=60.0)
    rng, same = random.Random(3), random.Random(3)
    assert [policy.delay(n, None, rng) for n in range(6)] == [
        same.uniform(0, cap) for cap in (1.0, 2.0, 4.0, 8.0, 8.0, 8.0)
    ]
    assert policy.delay(5, 2.5, rng) == 2.5
    assert policy.delay(0, 3600.0, rng) == 60.0


def test_retry_after_header_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
