"""Provider layer: harness capacity and concurrency efficiency, against a loopback server.

``python -m bench providers [--requests N] [--concurrency C] [--rounds R]
[--latency-ms L] [--latency-requests M] [--json PATH]``

The OpenAI-compatible loopback server runs in a subprocess (its own core), so the
client side is what is measured.

(a) Harness capacity: requests per second one process sustains through
    ``LLMClient.complete`` (concurrency cap, request and token buckets with limits high
    enough never to bind, retries armed, cost and usage accounting, a ``ProviderCall``
    per call; no cache), against a bare loop of the same SDK call
    (``AsyncOpenAI.chat.completions.create``) at the same concurrency, both against a
    zero-latency server. Rounds alternate between the two; the best round of each counts.
    The client reads the reply with msgspec where the bare loop builds the SDK's
    pydantic models, which pays back part of the client's own overhead.
(b) Concurrency efficiency: the server adds a fixed latency L to every reply; M
    requests at concurrency cap C through the client, as a ratio of wall time to the
    ideal ``ceil(M / C) * L``. The bare SDK loop is timed the same way: in one process
    the SDK's own CPU time per request queues behind the latency, so its ratio is the
    floor the client can reach.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import openai

from bench._endpoint import EndpointProcess
from schemas import ProviderCall
from simulator.providers import (
    ChatMessage,
    ProviderSettings,
    Request,
    Secret,
    UsageMeter,
    open_client,
)
from simulator.providers.loopback import Received, Reply, openai_completion, serve_loopback

MODEL = "loopback-model"
PROMPT = "Which orders of customer 42 are still open?"


async def _serve(latency: float) -> None:
    reply = Reply(
        body=openai_completion("Orders 7 and 9 are open.", prompt_tokens=24, completion_tokens=8), delay=latency
    )

    async def handler(request: Received) -> Reply:
        return reply

    async with serve_loopback(handler) as server:
        print(server.port, flush=True)
        await anyio.sleep_forever()


def _server(latency: float) -> EndpointProcess:
    """The loopback server in a subprocess."""
    return EndpointProcess("bench.bench_providers", latency, start_timeout=30)


async def _workers(total: int, concurrency: int, call: Callable[[int], Awaitable[Any]]) -> float:
    """Run ``call`` ``total`` times on ``concurrency`` workers; the wall time in seconds."""
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            await call(i)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return time.perf_counter() - started


async def _bare(base_url: str, total: int, concurrency: int) -> float:
    async with openai.AsyncOpenAI(api_key="EMPTY", base_url=base_url, max_retries=0, timeout=60.0) as sdk:

        async def call(i: int) -> None:
            await sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}])

        return total / await _workers(total, concurrency, call)


async def _harness(base_url: str, total: int, concurrency: int) -> tuple[float, UsageMeter]:
    settings = ProviderSettings(
        api_key=Secret("EMPTY"),
        base_url=base_url,
        max_concurrency=concurrency,
        rpm=1e9,
        tpm=1e12,
        max_retries=4,
        timeout=60.0,
    )
    meter = UsageMeter()
    events: list[ProviderCall] = []

    async def publish(event: ProviderCall) -> None:
        events.append(event)

    async with open_client(f"openai:{MODEL}", settings) as client:
        llm = client.bind(role="agent", meter=meter.child(), on_call=publish)
        request = Request(messages=[ChatMessage.user(PROMPT)])

        async def call(i: int) -> None:
            await llm.complete(request)

        per_s = total / await _workers(total, concurrency, call)
    assert len(events) == total and meter.totals.requests == total
    return per_s, meter


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {}
    async with _server(0.0) as server:
        await _bare(server.base_url, 100, args.concurrency)  # warm both paths
        await _harness(server.base_url, 100, args.concurrency)
        bare: list[float] = []
        harness: list[float] = []
        for _ in range(args.rounds):
            bare.append(await _bare(server.base_url, args.requests, args.concurrency))
            per_s, meter = await _harness(server.base_url, args.requests, args.concurrency)
            harness.append(per_s)
        result["bare_per_s"] = bare
        result["harness_per_s"] = harness
        result["tokens_per_request"] = (meter.totals.input_tokens + meter.totals.output_tokens) / args.requests
    latency = args.latency_ms / 1000.0
    async with _server(latency) as server:
        await _harness(server.base_url, args.concurrency, args.concurrency)
        await _bare(server.base_url, args.concurrency, args.concurrency)
        result["latency_wall_s"] = (
            args.latency_requests / (await _harness(server.base_url, args.latency_requests, args.concurrency))[0]
        )
        result["latency_bare_wall_s"] = args.latency_requests / await _bare(
            server.base_url, args.latency_requests, args.concurrency
        )
    result["latency_ideal_s"] = math.ceil(args.latency_requests / args.concurrency) * latency
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench providers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round for (a) (default 1000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent requests / cap (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds for (a) (default 3)")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="server latency for (b) (default 200)")
    parser.add_argument("--latency-requests", type=int, default=320, help="requests for (b) (default 320)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        anyio.run(_serve, args.latency_ms / 1000.0)
        return 0

    result = anyio.run(_run, args)
    command = "python -m bench providers " + " ".join(argv if argv is not None else sys.argv[1:])
    bare, harness = max(result["bare_per_s"]), max(result["harness_per_s"])
    wall, ideal = result["latency_wall_s"], result["latency_ideal_s"]
    bare_wall = result["latency_bare_wall_s"]
    print(f"command: {command.strip()}")
    print(f"(a) harness capacity: {args.requests} requests x {args.rounds} rounds, concurrency {args.concurrency},")
    print("    zero-latency OpenAI-compatible loopback server in a subprocess, best round")
    print(f"  bare SDK loop (chat.completions.create):         {bare:8.0f} requests/s")
    print(f"  LLMClient (limits, retries, accounting, events): {harness:8.0f} requests/s")
    print(f"  ratio client / bare:                             {harness / bare:8.2f}")
    print(
        f"(b) concurrency efficiency: {args.latency_requests} requests, cap {args.concurrency}, "
        f"server latency {args.latency_ms:g} ms"
    )
    print(f"  ideal ceil(N/C) x L:                             {ideal:8.3f} s")
    print(f"  LLMClient wall time:                             {wall:8.3f} s")
    print(f"  ratio wall / ideal:                              {wall / ideal:8.2f}")
    print(f"  (bare SDK loop at the same concurrency:          {bare_wall:8.3f} s, ratio {bare_wall / ideal:.2f})")
    if args.json:
        args.json.write_text(json.dumps({"command": command.strip(), **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
