"""The on-disk response cache: a repeated request makes no HTTP request."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from simulator.providers import ChatMessage, Request, ResponseCache, UsageMeter
from simulator.providers.loopback import Script, serve_loopback
from tests.simulator.providers.conftest import Protocol, client_for

pytestmark = pytest.mark.anyio

ASK = Request(messages=[ChatMessage.user("What is the capital of France?")], max_tokens=50)


async def test_a_repeated_request_is_answered_from_disk(proto: Protocol, tmp_path: Path) -> None:
    meter = UsageMeter()
    script = Script(proto.ok("Paris", input_tokens=12, output_tokens=2), proto.ok("Lyon"))
    async with serve_loopback(script) as server:
        async with client_for(proto, server, cache_dir=tmp_path) as client:
            first = await client.bind(meter=meter).complete(ASK)
            again = await client.bind(meter=meter).complete(ASK)
        assert server.hits == 1
        # A new client on the same directory, as a resumed run would make: still no request.
        async with client_for(proto, server, cache_dir=tmp_path) as client:
            resumed = await client.bind(meter=meter).complete(ASK)
        assert server.hits == 1
    assert not first.cached
    assert again.cached and resumed.cached
    assert again.text == resumed.text == "Paris"
    assert again.usage == first.usage
    assert again.cost_usd == 0.0 and again.attempts == 0
    totals = meter.totals
    assert (totals.requests, totals.cache_hits, totals.input_tokens, totals.output_tokens) == (1, 2, 12, 2)


async def test_any_change_to_the_request_is_a_miss(proto: Protocol, tmp_path: Path) -> None:
    variants = [
        ASK,
        msgspec.structs.replace(ASK, temperature=0.5),
        msgspec.structs.replace(ASK, messages=[ChatMessage.user("What is the capital of Spain?")]),
        msgspec.structs.replace(ASK, stop=["\n"]),
        msgspec.structs.replace(ASK, seed=3),
    ]
    async with serve_loopback(Script(*(proto.ok(str(i)) for i in range(5)))) as server:
        async with client_for(proto, server, cache_dir=tmp_path) as client:
            texts = [(await client.complete(v)).text for v in variants]
            texts += [(await client.complete(v)).text for v in variants]
    assert texts == ["0", "1", "2", "3", "4"] * 2
    assert server.hits == 5


async def test_the_key_covers_the_provider_and_model(tmp_path: Path) -> None:
    key = ResponseCache.key
    assert key("openai", msgspec.structs.replace(ASK, model="a")) != key(
        "openai", msgspec.structs.replace(ASK, model="b")
    )
    assert key("openai", msgspec.structs.replace(ASK, model="a")) != key(
        "anthropic", msgspec.structs.replace(ASK, model="a")
    )


async def test_a_damaged_entry_is_a_miss_and_gets_replaced(proto: Protocol, tmp_path: Path) -> None:
    async with serve_loopback(Script(proto.ok("first"), proto.ok("second"))) as server:
        async with client_for(proto, server, cache_dir=tmp_path) as client:
            await client.complete(ASK)
            _damage_the_only_entry(tmp_path)
            assert (await client.complete(ASK)).text == "second"
            assert (await client.complete(ASK)).cached
    assert server.hits == 2
    assert _files(tmp_path, "*.tmp") == []  # writes leave no temporary files behind


def _files(directory: Path, pattern: str) -> list[Path]:
    return list(directory.rglob(pattern))


def _damage_the_only_entry(directory: Path) -> None:
    (entry,) = _files(directory, "*.json")
    entry.write_bytes(entry.read_bytes()[:10])


async def test_a_cache_that_cannot_be_written_does_not_fail_the_call(proto: Protocol, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory should be")
    async with serve_loopback(Script(proto.ok("answered"), proto.ok("again"))) as server:
        async with client_for(proto, server, cache_dir=blocked) as client:
            assert (await client.complete(ASK)).text == "answered"
            assert (await client.complete(ASK)).text == "again"
    assert server.hits == 2
