"""Endpoint fleets: the harness's requests/s against two loopback endpoints vs one.

``python -m bench fleet [--requests N] [--max-requests C] [--latency-ms L] [--rounds R] [--json PATH]``

Each OpenAI-compatible loopback endpoint runs in its own subprocess and answers every
request after a fixed latency L. ``LLMClient.complete`` (limits, retries, accounting, the
fleet's routing) is called by 2C concurrent callers with ``--max-requests`` C, the cap of
requests in flight per endpoint: with one endpoint the cap is the bottleneck (at most
C / L requests/s); a second endpoint of the same model doubles the room, so the ideal is
twice the throughput. Rounds alternate between one and two endpoints in the same run;
the best round of each counts. Goal: two endpoints >= 1.8x one.

The default latency (1 s) keeps the client's own CPU time (a few ms per request) far
from the limit even on a loaded 2-core machine; with short latencies a busy machine makes
the client, not the endpoints, the bottleneck and the ratio falls toward 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio

from bench.bench_providers import MODEL, PROMPT, _Server, _workers
from simulator.providers import ChatMessage, ProviderSettings, Request, Secret, UsageMeter, open_client

GOAL = 1.8


async def _harness(urls: list[str], total: int, cap: int) -> tuple[float, list[int]]:
    """Requests/s through one client over ``urls``, and how many requests each endpoint took."""
    settings = ProviderSettings(
        api_key=Secret("EMPTY"),
        base_urls=tuple(urls),
        max_concurrency=cap,
        rpm=1e9,
        tpm=1e12,
        max_retries=4,
        timeout=60.0,
    )
    meter = UsageMeter()
    async with open_client(f"openai:{MODEL}", settings) as client:
        llm = client.bind(role="agent", meter=meter.child())
        request = Request(messages=[ChatMessage.user(PROMPT)])

        async def call(i: int) -> None:
            await llm.complete(request)

        per_s = total / await _workers(total, 2 * cap, call)
        spread = [s.requests for s in client.fleet.stats()]
    assert meter.totals.requests == total and meter.totals.failures == 0
    return per_s, spread


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    latency = args.latency_ms / 1000.0
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(_Server(latency)) for _ in range(2)]
        urls = [s.base_url for s in servers]
        await _harness(urls[:1], 2 * args.max_requests, args.max_requests)  # warm both paths
        await _harness(urls, 2 * args.max_requests, args.max_requests)
        one: list[float] = []
        two: list[float] = []
        spread: list[int] = []
        for _ in range(args.rounds):
            one.append((await _harness(urls[:1], args.requests, args.max_requests))[0])
            per_s, spread = await _harness(urls, args.requests, args.max_requests)
            two.append(per_s)
    return {"one_per_s": one, "two_per_s": two, "two_spread": spread, "ideal_one_per_s": args.max_requests / latency}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=128, help="requests per round (default 128)")
    parser.add_argument("--max-requests", type=int, default=8, help="requests in flight per endpoint (default 8)")
    parser.add_argument("--latency-ms", type=float, default=1000.0, help="each endpoint's latency (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    result = anyio.run(_run, args)
    command = "python -m bench fleet " + " ".join(argv if argv is not None else sys.argv[1:])
    one, two = max(result["one_per_s"]), max(result["two_per_s"])
    ratio = two / one
    print(f"command: {command.strip()}")
    print(
        f"{args.requests} requests x {args.rounds} rounds, {args.max_requests} in flight per endpoint, "
        f"{2 * args.max_requests} callers, endpoint latency {args.latency_ms:g} ms, each endpoint in a subprocess"
    )
    print(f"  ideal, one endpoint (cap / latency):   {result['ideal_one_per_s']:8.1f} requests/s")
    ideal = result["ideal_one_per_s"]
    print(f"  one endpoint:                          {one:8.1f} requests/s ({one / ideal:.0%} of its ideal)")
    print(f"  two endpoints:                         {two:8.1f} requests/s ({two / (2 * ideal):.0%} of their ideal)")
    print(f"  requests per endpoint, last round:     {' / '.join(map(str, result['two_spread']))}")
    print(f"  goal two / one >= {GOAL:g}; figure {ratio:.2f}; verdict {'met' if ratio >= GOAL else 'NOT met'}")
    print(f"  ({time.perf_counter() - started:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps({"command": command.strip(), "ratio": ratio, **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
