"""Fleets: one model behind several loopback endpoints, through both official SDKs.

Requests spread over the endpoints by how many each has in flight; an endpoint that keeps
failing is taken out, and probed back in once its time out has passed on the fake clock
(no real sleeps). Rate limits stay per model; figures and events are per endpoint.
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from schemas.errors import ConfigError
from simulator.log import run_log
from simulator.providers import (
    ChatMessage,
    ClientPool,
    LLMClient,
    ProviderSettings,
    ProviderUnavailable,
    Request,
    Secret,
    open_client,
    parse_model,
    settings_from_env,
)
from simulator.providers.fleet import display_url
from simulator.providers.loopback import LoopbackServer, Received, Reply, serve_loopback
from tests.simulator.providers.conftest import CANARY_KEY, FakeClock, Protocol

pytestmark = pytest.mark.anyio

HELLO = Request(messages=[ChatMessage.user("hello")])


def fleet_settings(proto: Protocol, urls: list[str], **changes: Any) -> ProviderSettings:
    values: dict[str, Any] = {
        "api_key": Secret(CANARY_KEY),
        "base_urls": tuple(urls),
        "max_retries": 3,
        "timeout": 10.0,
        "max_concurrency": 8,
        "endpoint_failures": 2,
        "endpoint_cooldown": 10.0,
    }
    return ProviderSettings(**(values | changes))


@asynccontextmanager
async def fleet_client(
    proto: Protocol, urls: list[str], clock: FakeClock | None = None, **changes: Any
) -> AsyncIterator[LLMClient]:
    settings = fleet_settings(proto, urls, **changes)
    async with open_client(proto.spec, settings, clock=clock or FakeClock(), rng=random.Random(5)) as client:
        yield client


class Arrivals:
    """Counts arrivals; ``await until(n)`` returns once ``n`` have arrived (no polling)."""

    def __init__(self) -> None:
        self.count = 0
        self._waiters: list[tuple[int, anyio.Event]] = []

    def arrive(self) -> None:
        self.count += 1
        for n, event in self._waiters:
            if self.count >= n:
                event.set()

    async def until(self, n: int) -> None:
        if self.count < n:
            event = anyio.Event()
            self._waiters.append((n, event))
            with anyio.fail_after(20):
                await event.wait()


def answering(proto: Protocol) -> Any:
    async def handler(request: Received) -> Reply:
        return proto.ok("fine")

    return handler


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def url_at(proto: Protocol, port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    return base if proto.name == "anthropic" else base + "/v1"


# --------------------------------------------------------------------------- settings


def test_repeated_base_urls_make_a_fleet_and_a_single_one_does_not() -> None:
    spec = parse_model("openai:Qwen/Qwen3-8B")
    urls = ["http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"]
    fleet = settings_from_env(spec, {}, base_url=urls)
    assert fleet.base_urls == tuple(urls) and fleet.base_url == urls[0]
    assert fleet.endpoints == tuple(urls)
    assert fleet.api_key == Secret("EMPTY")  # local servers need no key
    one = settings_from_env(spec, {}, base_url=urls[:1])
    assert one.base_urls == () and one.base_url == urls[0] and one.endpoints == (urls[0],)
    assert settings_from_env(spec, {"OPENAI_BASE_URL": urls[1]}).endpoints == (urls[1],)
    # A list from a config file is accepted as it is.
    assert ProviderSettings(base_urls=list(urls)).base_urls == tuple(urls)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"base_urls": ("http://127.0.0.1:1/v1", "http://127.0.0.1:1/v1")},
        {"base_urls": ("http://127.0.0.1:1/v1", "ftp://127.0.0.1:2")},
        {"base_url": "http://127.0.0.1:3/v1", "base_urls": ("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1")},
        {"endpoint_failures": 0},
        {"endpoint_cooldown": 0.0},
        {"endpoint_cooldown": 30.0, "endpoint_cooldown_max": 10.0},
    ],
)
def test_bad_fleet_settings_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ProviderSettings(**changes)


def test_endpoints_are_shown_without_credentials() -> None:
    assert display_url("https://user:pw@gpu-3.internal:8000/v1?token=x#f") == "https://gpu-3.internal:8000/v1"
    assert display_url("http://[::1]:9000/v1") == "http://[::1]:9000/v1"
    assert display_url(None) == "(provider default)"


# --------------------------------------------------------------------------- routing


async def test_two_endpoints_both_receive_requests(proto: Protocol) -> None:
    async with serve_loopback(answering(proto)) as a, serve_loopback(answering(proto)) as b:
        async with fleet_client(proto, [proto.base_url(a), proto.base_url(b)]) as client:
            for _ in range(6):  # one at a time: ties go to the endpoint picked longest ago
                await client.complete(HELLO)
            assert (a.hits, b.hits) == (3, 3)
            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(client.complete, HELLO)
            stats = client.fleet.stats()
    assert a.hits > 3 and b.hits > 3 and a.hits + b.hits == 16
    assert [(s.endpoint, s.requests, s.errors) for s in stats] == [
        (display_url(proto.base_url(a)), a.hits, 0),
        (display_url(proto.base_url(b)), b.hits, 0),
    ]
    assert all(s.model == proto.spec and s.latency_ms is not None for s in stats)
    for s in stats:
        assert s.latency_ms is not None and 0 < s.latency_ms.p50 <= s.latency_ms.p90 <= s.latency_ms.p99


async def test_requests_go_to_the_endpoint_with_the_fewest_in_flight(proto: Protocol) -> None:
    gates = {"a": anyio.Event(), "b1": anyio.Event(), "b2": anyio.Event()}
    servers: dict[str, LoopbackServer] = {}
    arrived, finished = Arrivals(), Arrivals()

    def held(name: str) -> Any:
        async def handler(request: Received) -> Reply:
            arrived.arrive()
            if name == "a":
                await gates["a"].wait()
            else:  # b's first three requests wait for b1, the later ones for b2
                await (gates["b1"] if servers["b"].hits <= 3 else gates["b2"]).wait()
            return proto.ok("done")

        return handler

    async def call() -> None:
        await client.complete(HELLO)
        finished.arrive()

    async with serve_loopback(held("a")) as a, serve_loopback(held("b")) as b:
        servers.update(a=a, b=b)
        async with fleet_client(proto, [proto.base_url(a), proto.base_url(b)]) as client:
            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(call)
                await arrived.until(6)
                assert (a.in_flight, b.in_flight) == (3, 3)
                gates["b1"].set()  # b's three answer; a's stay in flight
                await finished.until(3)
                for _ in range(3):  # all three go to b, which has none in flight
                    tg.start_soon(call)
                await arrived.until(9)
                await anyio.wait_all_tasks_blocked()
                assert (a.hits, b.hits) == (3, 6)
                assert [e.in_flight for e in client.fleet.endpoints] == [3, 3]
                gates["a"].set()
                gates["b2"].set()
    assert finished.count == 9


async def test_the_concurrency_cap_applies_to_each_endpoint(proto: Protocol) -> None:
    release = anyio.Event()
    arrived = Arrivals()

    async def handler(request: Received) -> Reply:
        arrived.arrive()
        await release.wait()
        return proto.ok("done")

    async with serve_loopback(handler) as a, serve_loopback(handler) as b:
        async with fleet_client(proto, [proto.base_url(a), proto.base_url(b)], max_concurrency=2) as client:
            async with anyio.create_task_group() as tg:
                for _ in range(7):
                    tg.start_soon(client.complete, HELLO)
                await arrived.until(4)
                await anyio.wait_all_tasks_blocked()
                assert (a.in_flight, b.in_flight) == (2, 2)  # the other three wait their turn
                release.set()
    assert a.hits + b.hits == 7
    assert (a.max_in_flight, b.max_in_flight) == (2, 2)


async def test_rate_limits_stay_per_model_across_endpoints(proto: Protocol) -> None:
    clock = FakeClock()
    async with serve_loopback(answering(proto)) as a, serve_loopback(answering(proto)) as b:
        urls = [proto.base_url(a), proto.base_url(b)]
        async with fleet_client(proto, urls, clock, rpm=6) as client:  # one request per 10 s, a burst of one
            for _ in range(4):
                await client.complete(HELLO)
    assert (a.hits, b.hits) == (2, 2)
    assert clock.sleeps == [10.0, 10.0, 10.0]  # two endpoints, still one request per 10 s


async def test_a_429_on_one_endpoint_holds_back_the_whole_model(proto: Protocol) -> None:
    clock = FakeClock()
    limited = [proto.error(429, "rate_limit_error", headers={"retry-after": "5"})]

    async def first_limited(request: Received) -> Reply:
        return limited.pop() if limited else proto.ok("fine")

    async with serve_loopback(first_limited) as a, serve_loopback(answering(proto)) as b:
        async with fleet_client(proto, [proto.base_url(a), proto.base_url(b)], clock) as client:
            await client.complete(HELLO)
            assert client.limiter.clock.now() - 1000.0 == 5.0
            assert all(client.fleet.in_service(e) for e in client.fleet.endpoints)  # a 429 is no fault
    assert (a.hits, b.hits) == (1, 1)
    assert clock.sleeps == [5.0]


# --------------------------------------------------------------------------- failing endpoints


async def test_a_dead_endpoint_is_routed_around_and_probed_back_in(proto: Protocol, tmp_path: Path) -> None:
    clock = FakeClock()
    port = closed_port()
    log_file = tmp_path / "run.log"
    async with serve_loopback(answering(proto)) as live:
        urls = [url_at(proto, port), proto.base_url(live)]
        with run_log(log_file):
            async with fleet_client(proto, urls, clock) as client:
                dead, alive = client.fleet.endpoints
                for _ in range(2):  # each call tries the dead one first (its turn), then retries on the live one
                    response = await client.complete(HELLO)
                    assert response.text == "fine" and response.attempts == 2
                assert not client.fleet.in_service(dead)
                for _ in range(4):  # out of service: every request goes to the live one, at once
                    assert (await client.complete(HELLO)).attempts == 1
                assert live.hits == 6
                assert (dead.tally.requests, dead.tally.errors, dead.tally.ejections) == (2, 2, 1)

                async with serve_loopback(answering(proto), port=port) as recovered:
                    clock.t = dead.out_until or 0.0  # its time out is over: the next request probes it
                    assert (await client.complete(HELLO)).attempts == 1
                    assert recovered.hits == 1 and client.fleet.in_service(dead)
                    for _ in range(4):
                        await client.complete(HELLO)
                    assert (recovered.hits, live.hits) == (3, 8)  # back in the rotation
                stats = {s.endpoint: s for s in client.fleet.stats()}
    assert stats[display_url(urls[0])].requests == 5
    assert stats[display_url(urls[0])].errors == 2
    assert stats[display_url(urls[0])].ejections == 1
    assert stats[display_url(urls[1])].requests == 8
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    events = [(e["event"], e.get("endpoint")) for e in lines if str(e["event"]).startswith("endpoint_")]
    dead_name = display_url(urls[0])
    assert events == [("endpoint_out", dead_name), ("endpoint_probe", dead_name), ("endpoint_back", dead_name)]
    out = next(e for e in lines if e["event"] == "endpoint_out")
    assert out["model"] == proto.spec and out["out_for_s"] == 10.0 and out["error"] == "ProviderUnavailable"
    assert CANARY_KEY not in log_file.read_text()


async def test_an_endpoint_answering_500s_is_taken_out_and_a_failed_probe_doubles_its_time_out(
    proto: Protocol,
) -> None:
    clock = FakeClock()
    state = {"recovered": False}

    async def sick(request: Received) -> Reply:
        return proto.ok("recovered") if state["recovered"] else proto.error(500, "api_error", "boom")

    async with serve_loopback(sick) as bad, serve_loopback(answering(proto)) as good:
        async with fleet_client(proto, [proto.base_url(bad), proto.base_url(good)], clock) as client:
            first, _ = client.fleet.endpoints
            for _ in range(2):
                assert (await client.complete(HELLO)).text == "fine"
            assert first.out_until is not None and first.out_until - clock.t == pytest.approx(10.0, abs=1.0)
            clock.t = first.out_until
            await client.complete(HELLO)  # the probe fails (500), the call succeeds elsewhere
            assert bad.hits == 3 and first.cooldown == 20.0
            assert first.out_until == pytest.approx(clock.t + 20.0, abs=1.0)
            clock.t = first.out_until
            state["recovered"] = True
            assert (await client.complete(HELLO)).text == "recovered"  # the second probe puts it back
            assert client.fleet.in_service(first) and first.cooldown == 10.0
            assert first.tally.ejections == 2


async def test_timeouts_take_an_endpoint_out(proto: Protocol) -> None:
    never = anyio.Event()

    async def stuck(request: Received) -> Reply:
        await never.wait()
        return proto.ok("late")

    async with serve_loopback(stuck) as slow, serve_loopback(answering(proto)) as fast:
        urls = [proto.base_url(slow), proto.base_url(fast)]
        async with fleet_client(proto, urls, timeout=0.2, endpoint_failures=1) as client:
            assert (await client.complete(HELLO)).text == "fine"
            assert not client.fleet.in_service(client.fleet.endpoints[0])
            assert client.fleet.endpoints[0].tally.errors == 1
            never.set()


async def test_when_every_endpoint_is_out_the_retry_policy_waits_for_the_first_probe(proto: Protocol) -> None:
    clock = FakeClock()
    ports = [closed_port(), closed_port()]
    urls = [url_at(proto, p) for p in ports]
    async with fleet_client(proto, urls, clock, endpoint_failures=1, max_retries=3) as client:
        with pytest.raises(ProviderUnavailable):
            await client.complete(HELLO)
        one, two = client.fleet.endpoints
        # Attempts 1 and 2 took both out (each after its backoff); attempt 3 found none in
        # service and failed at once, so the retry policy waited for the first one's time
        # out (its retry-after); attempt 4 probed it, and failed.
        assert (one.tally.requests, two.tally.requests) == (2, 1)
        assert len(clock.sleeps) == 3
        assert clock.sleeps[2] == pytest.approx(10.0 - clock.sleeps[0] - clock.sleeps[1], abs=1e-6)
        assert one.cooldown == 20.0 and two.cooldown == 10.0


async def test_a_single_endpoint_is_never_taken_out(proto: Protocol) -> None:
    clock = FakeClock()
    async with fleet_client(proto, [url_at(proto, closed_port())], clock, max_retries=5, endpoint_failures=1) as c:
        with pytest.raises(ProviderUnavailable):
            await c.complete(HELLO)
        (only,) = c.fleet.endpoints
        assert only.tally.requests == 6 and c.fleet.in_service(only)
    assert len(clock.sleeps) == 5 and all(s < 20 for s in clock.sleeps)  # plain backoff, no time outs


async def test_the_pool_shares_a_fleet_and_reports_every_endpoint(proto: Protocol) -> None:
    async with serve_loopback(answering(proto)) as a, serve_loopback(answering(proto)) as b:
        settings = fleet_settings(proto, [proto.base_url(a), proto.base_url(b)])
        async with ClientPool(clock=FakeClock()) as pool:
            user, agent = pool.get(proto.spec, settings), pool.get(proto.spec, settings)
            assert user is agent
            await user.bind(role="user").complete(HELLO)
            await agent.bind(role="agent").complete(HELLO)
            stats = pool.endpoint_stats()
    assert [(s.model, s.requests) for s in stats] == [(proto.spec, 1), (proto.spec, 1)]


def test_a_fleet_from_flags_or_a_config_file(tmp_path: Path) -> None:
    from simulator.cli import build_parser
    from simulator.cli._config import apply_config
    from simulator.cli._models import llm_setup

    urls = ["http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"]
    config = tmp_path / "fleet.toml"
    config.write_text(f"base-url = {json.dumps(urls)}\nmax-requests = 4\n[models]\nall = 'openai:Qwen/Qwen3-8B'\n")
    flags = ["--base-url", urls[0], "--base-url", urls[1], "--model", "openai:Qwen/Qwen3-8B", "--max-requests", "4"]
    for argv in (["generate", "--config", str(config)], ["generate", *flags]):
        argv += ["--dialogues", "1", "--seed", "1", "--out", str(tmp_path / "out")]
        parser = build_parser()
        apply_config(parser, argv, ("generate",))
        setup = llm_setup(["openai:Qwen/Qwen3-8B"], parser.parse_args(argv), env={})
        assert setup is not None
        settings = setup.settings["openai:Qwen/Qwen3-8B"]
        assert settings.base_urls == tuple(urls) and settings.max_concurrency == 4


def test_endpoint_tallies_of_several_processes_add_up() -> None:
    import pickle

    from simulator.providers.fleet import EndpointTally

    fast, slow = EndpointTally("openai:m", "http://a/v1"), EndpointTally("openai:m", "http://a/v1")
    for _ in range(90):
        fast.add_latency(0.010)
    for _ in range(10):
        slow.add_latency(1.0)
    fast.requests, fast.errors, slow.requests, slow.errors, slow.ejections = 95, 5, 12, 2, 1
    merged = pickle.loads(pickle.dumps(fast))  # as a worker would send it
    merged.merge(slow)
    stats = merged.stats()
    assert (stats.requests, stats.errors, stats.ejections) == (107, 7, 1)
    assert stats.latency_ms is not None
    assert stats.latency_ms.p50 == pytest.approx(10.0, rel=0.02)
    assert stats.latency_ms.p99 == pytest.approx(1000.0, rel=0.02)
