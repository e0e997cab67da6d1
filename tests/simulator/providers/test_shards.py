"""SDK client shards: one endpoint's requests in flight spread over one SDK client per SHARD_SIZE,
each with its own connection pool, so no pool walks hundreds of connections and none churns."""

from __future__ import annotations

import anyio
import pytest

from simulator.providers import ChatMessage, Request
from simulator.providers._http import SHARD_SIZE, SdkShards
from simulator.providers.loopback import Received, Reply, serve_loopback
from tests.simulator.providers.conftest import Protocol, client_for

pytestmark = pytest.mark.anyio

HELLO = Request(messages=[ChatMessage.user("hello")])


def test_one_client_per_shard_size_in_flight() -> None:
    made: list[int] = []

    def make() -> int:
        made.append(len(made))
        return made[-1]

    assert len(SdkShards(make, 1).clients) == 1
    assert len(SdkShards(make, SHARD_SIZE).clients) == 1
    assert len(SdkShards(make, SHARD_SIZE + 1).clients) == 2
    assert len(SdkShards(make, 200).clients) == -(-200 // SHARD_SIZE)


def test_a_lease_takes_the_least_busy_client_and_gives_it_back() -> None:
    shards = SdkShards(iter(range(3)).__next__, 3 * SHARD_SIZE)
    with shards.lease() as a, shards.lease() as b, shards.lease() as c, shards.lease() as d:
        assert sorted([a, b, c]) == [0, 1, 2]
        assert d == 0
    with pytest.raises(RuntimeError), shards.lease():
        raise RuntimeError("the request failed")
    with shards.lease() as again:
        assert again == 0  # every lease above was given back, the failed one too


@pytest.mark.slow
async def test_requests_in_flight_spread_over_the_clients_and_keep_their_connections(proto: Protocol) -> None:
    """120 requests held at once, twice: the first wave's connections are all reused by the second
    (one SDK client's pool keeps only 100 idle ones alive, so a single client would close and reopen 20)."""
    in_flight = 120
    arrived = 0
    full = anyio.Event()
    release = anyio.Event()

    async def handler(request: Received) -> Reply:
        nonlocal arrived
        arrived += 1
        if arrived % in_flight == 0:
            full.set()
        reply = proto.ok("hi")
        reply.hold = release
        return reply

    async with serve_loopback(handler) as server, client_for(proto, server, max_concurrency=in_flight) as client:
        provider = client.fleet.endpoints[0].provider
        shards = provider._clients  # type: ignore[attr-defined]
        assert len(shards.clients) == -(-in_flight // SHARD_SIZE)
        replies: list[str] = []

        async def one() -> None:
            replies.append((await client.complete(HELLO)).text)

        for wave in range(2):
            full, release = anyio.Event(), anyio.Event()
            replies.clear()

            async with anyio.create_task_group() as tg:
                for _ in range(in_flight):
                    tg.start_soon(one)
                await full.wait()
                busy = sorted(shards._busy)
                assert busy[-1] - busy[0] <= 1 and sum(busy) == in_flight, busy  # evenly spread
                release.set()
            assert replies == ["hi"] * in_flight
            assert sum(shards._busy) == 0
            assert server.connections == in_flight, (wave, server.connections)
