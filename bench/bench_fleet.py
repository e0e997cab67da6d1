"""Endpoint fleets: the harness's requests/s against two loopback endpoints vs one.

``python -m bench fleet [--requests N] [--max-requests C] [--latency-ms L] [--rounds R]
[--dialogues D] [--json PATH]``

Each OpenAI-compatible loopback endpoint runs in its own subprocess and answers every
request after a fixed latency L, as a small scripted model.

(a) Requests: ``LLMClient.complete`` (limits, retries, accounting, the fleet's routing)
    is called by 2C concurrent callers with ``--max-requests`` C, the cap of requests in
    flight per endpoint: with one endpoint the cap is the bottleneck (at most C / L
    requests/s); a second endpoint of the same model doubles the room, so the ideal is
    twice the throughput. Rounds alternate between one and two endpoints in the same
    run; the best round of each counts. Goal: two endpoints >= 1.8x one.
(b) Model-played dialogues: D dialogues of the retail domain with the LLM user and the
    LLM agent (tool calls through each dialogue's real MCP server), the full pipeline
    (``execute_run``) at concurrency 2C, against one and then two endpoints. Reported:
    requests per dialogue, the client process's CPU time per dialogue and per request
    (everything but the model: MCP, SQLite, bus, recorder, SDK), dialogues/s.

The default latency (1 s) keeps the client's own CPU time (a few ms per request) far
from the limit even on a loaded 2-core machine; with short latencies a busy machine makes
the client, not the endpoints, the bottleneck and the ratio falls toward 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from bench._endpoint import EndpointProcess
from bench.bench_providers import MODEL, PROMPT, _workers
from simulator.providers import ChatMessage, ProviderSettings, Request, Secret, UsageMeter, open_client
from simulator.providers.loopback import Received, Reply, openai_completion, serve_loopback

GOAL = 1.8


def _model(body: dict[str, Any]) -> dict[str, Any]:
    """A scripted model: the user asks once and thanks; the agent calls a tool, then answers."""
    messages = body["messages"]
    if "response_format" in body:  # the LLM user's structured turn
        done = any(m["role"] == "assistant" for m in messages)
        reply = {
            "user_message": "Thanks, that's all I needed." if done else "Hi, can you look up customer 1 for me?",
            "is_task_complete": done,
        }
        return openai_completion(json.dumps(reply), prompt_tokens=200, completion_tokens=20)
    last = messages[-1]
    tools = [t["function"]["name"] for t in body.get("tools", [])]
    if last["role"] == "tool":
        return openai_completion(f"Here is what I found: {str(last['content'])[:200]}", prompt_tokens=400)
    if not tools or "that's all" in json.dumps(last):
        return openai_completion("Orders 7 and 9 are open." if not tools else "You're welcome, goodbye!")
    tool = "get_customer" if "get_customer" in tools else tools[0]
    return openai_completion(tool_calls=[("call_1", tool, {"customer_id": 1})], prompt_tokens=300)


async def _serve(latency: float) -> None:
    async def handler(request: Received) -> Reply:
        return Reply(body=_model(request.json()), delay=latency)

    async with serve_loopback(handler) as server:
        print(server.port, flush=True)
        await anyio.sleep_forever()


def _server(latency: float) -> EndpointProcess:
    """The scripted model in a subprocess."""
    return EndpointProcess("bench.bench_fleet", latency, start_timeout=30)


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


async def _dialogues(urls: list[str], count: int, cap: int, out: Path) -> dict[str, float]:
    """``count`` model-played dialogues through the full pipeline; their figures."""
    from simulator.dialogue.runner import DialogueConfig
    from simulator.llm import LLMSetup, use_setup
    from simulator.providers import parse_model, settings_from_env
    from simulator.run.config import RunConfig
    from simulator.run.execute import execute_run
    from simulator.run.plan import prepare_run

    spec = parse_model(f"openai:{MODEL}")
    settings = settings_from_env(spec, {}, api_key="EMPTY", base_url=urls, max_concurrency=cap)
    setup = LLMSetup(settings={str(spec): settings})
    model = str(spec)
    config = RunConfig(
        dialogues=count,
        seed=1,
        out_dir=out,
        concurrency=2 * cap,
        domains=("retail",),
        dialogue=DialogueConfig(user=model, agent=model),
    )
    prepared = prepare_run(config)
    with use_setup(setup):
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            summary = await execute_run(prepared, progress=False)
        finally:
            await setup.pool.aclose()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    requests = sum(e.requests for e in summary.endpoints)
    assert summary.generated == count and summary.failed == 0 and summary.dataset.terminations == {"user_done": count}
    return {
        "dialogues_per_s": count / wall,
        "requests_per_dialogue": requests / count,
        "cpu_ms_per_dialogue": cpu * 1000.0 / count,
        "cpu_ms_per_request": cpu * 1000.0 / requests,
        "wall_s": wall,
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    latency = args.latency_ms / 1000.0
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(_server(latency)) for _ in range(2)]
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
        dialogues: dict[str, dict[str, float]] = {}
        if args.dialogues:
            with tempfile.TemporaryDirectory() as tmp:
                for name, chosen in (("one", urls[:1]), ("two", urls)):
                    out = Path(tmp) / name
                    dialogues[name] = await _dialogues(chosen, args.dialogues, args.max_requests, out)
    return {
        "one_per_s": one,
        "two_per_s": two,
        "two_spread": spread,
        "ideal_one_per_s": args.max_requests / latency,
        "dialogues": dialogues,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=192, help="requests per round (default 192)")
    parser.add_argument("--max-requests", type=int, default=8, help="requests in flight per endpoint (default 8)")
    parser.add_argument("--latency-ms", type=float, default=1000.0, help="each endpoint's latency (default 1000)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument(
        "--dialogues", type=int, default=48, help="model-played dialogues per side for (b) (default 48; 0: skip)"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        anyio.run(_serve, args.latency_ms / 1000.0)
        return 0

    started = time.perf_counter()
    result = anyio.run(_run, args)
    command = "python -m bench fleet " + " ".join(argv if argv is not None else sys.argv[1:])
    one, two = max(result["one_per_s"]), max(result["two_per_s"])
    ratio = two / one
    print(f"command: {command.strip()}")
    print(
        f"(a) {args.requests} requests x {args.rounds} rounds, {args.max_requests} in flight per endpoint, "
        f"{2 * args.max_requests} callers, endpoint latency {args.latency_ms:g} ms, each endpoint in a subprocess"
    )
    print(f"  ideal, one endpoint (cap / latency):   {result['ideal_one_per_s']:8.1f} requests/s")
    ideal = result["ideal_one_per_s"]
    print(f"  one endpoint:                          {one:8.1f} requests/s ({one / ideal:.0%} of its ideal)")
    print(f"  two endpoints:                         {two:8.1f} requests/s ({two / (2 * ideal):.0%} of their ideal)")
    print(f"  requests per endpoint, last round:     {' / '.join(map(str, result['two_spread']))}")
    print(f"  goal two / one >= {GOAL:g}; figure {ratio:.2f}; verdict {'met' if ratio >= GOAL else 'NOT met'}")
    if result["dialogues"]:
        d1, d2 = result["dialogues"]["one"], result["dialogues"]["two"]
        print(
            f"(b) {args.dialogues} model-played dialogues per side (LLM user and agent, retail, MCP in process), "
            f"concurrency {2 * args.max_requests}"
        )
        for label, d in (("one endpoint", d1), ("two endpoints", d2)):
            print(
                f"  {label + ':':<15} {d['dialogues_per_s']:6.2f} dialogues/s, {d['requests_per_dialogue']:.1f} "
                f"requests/dialogue, client CPU {d['cpu_ms_per_dialogue']:.1f} ms/dialogue "
                f"({d['cpu_ms_per_request']:.2f} ms/request)"
            )
        print(f"  ratio two / one: {d2['dialogues_per_s'] / d1['dialogues_per_s']:.2f}")
    print(f"  ({time.perf_counter() - started:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps({"command": command.strip(), "ratio": ratio, **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
