"""Dialogues with model brains against a fake OpenAI-compatible endpoint: client CPU per request, and schedule.

``python -m bench llm [--dialogues N] [--concurrency C] [--latency-ms L] [--schedule-dialogues M]
[--schedule-concurrency K] [--floor post|create] [--only cpu|schedule] [--json PATH]``

The endpoint (``simulator.providers.loopback`` in a subprocess, on its own core) plays
both roles the way a model would: as the user it sends the structured
``{user_message, is_task_complete}`` reply and ends after 1-4 turns (decided by a hash
of its prompt, so dialogues differ in length); as the agent it calls a tool of the
dialogue's MCP server (one the request lists) and then answers in words. The dialogues
really run: full pipeline (``execute_run``: tool servers over MCP, bus, recorder,
dataset), the official ``openai`` SDK, provider limits and accounting.

(a) Client CPU per model request: N dialogues at zero latency; the run's process CPU
    time divided by the requests it made, against a bare loop of the same SDK
    (``AsyncOpenAI.chat.completions.create``) replaying the very request bodies the run
    sent (the endpoint keeps a sample), same concurrency, same endpoint.
(b) Wall time against the zero-overhead schedule: M dialogues, endpoint latency L,
    concurrency K. The schedule takes each dialogue's own request count from its record
    (requests x L is the least time it can take: its requests are sequential) and packs
    the dialogues in run order onto K slots, each to the first slot free. Beside it, the
    floor: the bare SDK sending as many requests in the very same schedule on the same
    endpoint (a sample of the run's bodies, taken across the run), with nothing of the
    harness around it (``--floor``: ``post``, the SDK calls the harness makes, by default;
    ``create``, the typed method). The floor's ratio is what the SDK alone reaches on
    this machine; the endpoint's own CPU is shown so a saturated endpoint would be seen.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import resource
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx2
import msgspec
import openai
import psutil

from bench._endpoint import EndpointProcess
from simulator.providers.loopback import Received, Reply, openai_completion, serve_loopback

MODEL = "openai:fake-model"
SAMPLE = 400


# --------------------------------------------------------------------------- the endpoint (subprocess)


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    messages = body["messages"]
    if "response_format" in body or any("user_message" in str(m.get("content")) for m in messages[:1]):
        # The user: K turns, K from its prompt; done once its K-th reply has been given.
        system = str(messages[0].get("content", ""))
        turns = 1 + zlib.crc32(system.encode()) % 4
        said = sum(1 for m in messages if m["role"] == "assistant")
        done = said >= turns
        reply = {
            "user_message": "Thanks, that is everything." if done else f"Could you check my account, part {said + 1}?",
            "is_task_complete": done,
        }
        return openai_completion(json.dumps(reply), prompt_tokens=300, completion_tokens=20)
    last = messages[-1]
    if last["role"] == "tool":
        return openai_completion("Done: " + str(last["content"])[:200], prompt_tokens=900, completion_tokens=30)
    tools = body.get("tools", [])
    if not tools:
        return openai_completion("Happy to help.", prompt_tokens=100, completion_tokens=5)
    chosen = next((t for t in tools if not t["function"]["parameters"].get("required")), tools[0])
    call = ("call_" + str(len(messages)), chosen["function"]["name"], {})
    return openai_completion(tool_calls=[call], prompt_tokens=900, completion_tokens=15)


async def _serve(latency: float, capture: str, every: int) -> None:
    captured = seen = 0
    sample = Path(capture).open("w", encoding="utf-8") if capture else None  # noqa: ASYNC230 - before serving

    async def handler(request: Received) -> Reply:
        nonlocal captured, seen
        server.requests.clear()  # the server keeps what it received; this one lives long
        body = request.json()
        seen += 1
        if sample is not None and captured < SAMPLE and (seen - 1) % every == 0:
            captured += 1
            sample.write(json.dumps(body) + "\n")
            sample.flush()
        return Reply(body=_answer(body), delay=latency)

    async with serve_loopback(handler) as server:
        print(server.port, flush=True)
        await anyio.sleep_forever()


def _endpoint_cpu(endpoint: EndpointProcess) -> float:
    """CPU seconds the endpoint process has used so far (to tell whether it, not the client, was the bottleneck)."""
    assert endpoint.process is not None
    times = psutil.Process(endpoint.process.pid).cpu_times()
    return float(times.user + times.system)


def _endpoint(latency: float, capture: Path | None = None, every: int = 1) -> EndpointProcess:
    """The fake endpoint in a subprocess, capturing every ``every``-th request to ``capture`` (SAMPLE at most)."""
    extra = ["--capture", str(capture), "--capture-every", str(every)] if capture is not None else []
    return EndpointProcess("bench.bench_llm", latency, extra)


# --------------------------------------------------------------------------- the run


def _children_cpu() -> float:
    """CPU seconds of this process's children that have ended: a run's scenario builder process
    (``simulator.run.builder``) is reaped when the run ends, so its CPU counts as the run's (the
    endpoint process lives on, and is not counted)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


async def _run(base_url: str, dialogues: int, concurrency: int, seed: int) -> dict[str, Any]:
    """Run ``dialogues`` model-brained dialogues; CPU, wall, and each record's request count in run order."""
    from schemas import ProviderCall
    from simulator.dialogue.runner import DialogueConfig
    from simulator.llm import LLMSetup, use_setup
    from simulator.providers import parse_model, settings_from_env
    from simulator.run.config import RunConfig
    from simulator.run.dataset import iter_records
    from simulator.run.execute import execute_run
    from simulator.run.plan import prepare_run

    settings = settings_from_env(parse_model(MODEL), {}, base_url=base_url, max_concurrency=concurrency, timeout=600.0)
    setup = LLMSetup(settings={MODEL: settings})
    with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
        config = RunConfig(
            dialogues=dialogues,
            seed=seed,
            concurrency=concurrency,
            domains=("retail",),
            out_dir=Path(tmp) / "run",
            dialogue=DialogueConfig(agent=MODEL, user=MODEL, timeout_s=3600, turn_timeout_s=600),
        )
        with use_setup(setup):
            prepared = prepare_run(config)
            cpu, builder, wall = time.process_time(), _children_cpu(), time.perf_counter()
            try:
                summary = await execute_run(prepared, progress=False)
            finally:
                await setup.pool.aclose()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            builder = _children_cpu() - builder
        order = {prepared.plan.id_of(i): i for i in range(prepared.requested)}
        counts: list[tuple[int, int]] = []
        failed = 0
        for _, record in iter_records(config.out_dir):
            counts.append((order[record.id], sum(1 for e in record.events if isinstance(e, ProviderCall))))
            failed += record.error is not None
    counts.sort()
    return {
        "cpu_s": cpu + builder,
        "builder_cpu_s": builder,
        "wall_s": wall,
        "requests": sum(n for _, n in counts),
        "per_dialogue": [n for _, n in counts],
        "failed": failed,
        "generated": summary.generated,
    }


async def _bare(base_url: str, bodies: list[dict[str, Any]], total: int, concurrency: int) -> float:
    """CPU seconds per request of the bare SDK replaying ``bodies`` (round robin)."""
    async with openai.AsyncOpenAI(api_key="EMPTY", base_url=base_url, max_retries=0, timeout=600.0) as sdk:
        counter = iter(range(total))

        async def worker() -> None:
            for i in counter:
                await sdk.chat.completions.create(**bodies[i % len(bodies)])

        cpu = time.process_time()
        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
        return (time.process_time() - cpu) / total


#: The bare-SDK floors of (b): "create" is ``chat.completions.create(**body)`` on one client, as a user
#: would write it; "post" is the SDK's ``post`` of the body encoded once (msgspec), on one client per
#: SHARD_SIZE slots: the SDK calls the harness makes, with everything else taken away.
FLOORS = ("post", "create")


async def _bare_schedule(
    base_url: str, bodies: list[dict[str, Any]], per_dialogue: Sequence[int], slots: int, kind: str
) -> dict[str, Any]:
    """The bare SDK sending ``per_dialogue[i]`` requests in a row for each "dialogue", packed onto ``slots``
    like the zero-overhead schedule (a free slot takes the next dialogue), replaying ``bodies`` round robin."""
    from simulator.providers._http import SHARD_SIZE

    clients = 1 if kind == "create" else max(1, -(-slots // SHARD_SIZE))
    sdks = [
        openai.AsyncOpenAI(api_key="EMPTY", base_url=base_url, max_retries=0, timeout=600.0) for _ in range(clients)
    ]
    encoder = msgspec.json.Encoder()
    dialogues = iter(per_dialogue)
    sent = iter(range(sum(per_dialogue)))

    async def slot(sdk: openai.AsyncOpenAI) -> None:
        for n in dialogues:
            for _ in range(n):
                body = bodies[next(sent) % len(bodies)]
                if kind == "create":
                    await sdk.chat.completions.create(**body)
                else:
                    await sdk.post("/chat/completions", cast_to=httpx2.Response, content=encoder.encode(body))

    try:
        cpu, wall = time.process_time(), time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(min(slots, len(per_dialogue))):
                tg.start_soon(slot, sdks[i % clients])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        for sdk in sdks:
            await sdk.close()
    return {
        "kind": kind,
        "clients": clients,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_ms_per_request": cpu / sum(per_dialogue) * 1000,
    }


def zero_overhead_schedule(per_dialogue: Sequence[int], latency: float, slots: int) -> float:
    """The makespan of packing dialogues (``requests x latency`` each, in order) onto ``slots``."""
    free = [0.0] * min(slots, max(1, len(per_dialogue)))
    heapq.heapify(free)
    end = 0.0
    for n in per_dialogue:
        start = heapq.heappop(free)
        finish = start + n * latency
        end = max(end, finish)
        heapq.heappush(free, finish)
    return end


async def cpu_per_request(dialogues: int, concurrency: int, seed: int, rounds: int) -> dict[str, Any]:
    """(a): harness CPU per request and bare-SDK CPU per request, best of ``rounds`` each, alternating."""
    with tempfile.TemporaryDirectory(prefix="bench-llm-sample-") as tmp:
        capture = Path(tmp) / "bodies.jsonl"
        async with _endpoint(0.0, capture) as endpoint:
            await _run(endpoint.base_url, 6, concurrency, seed)  # warm up, and fill the sample
            bodies = [json.loads(line) for line in capture.read_text().splitlines() if line.strip()]
            harness: list[float] = []
            bare: list[float] = []
            requests = 0
            for r in range(rounds):
                result = await _run(endpoint.base_url, dialogues, concurrency, seed + 1 + r)
                requests = result["requests"]
                harness.append(result["cpu_s"] / result["requests"])
                bare.append(await _bare(endpoint.base_url, bodies, max(requests, 200), concurrency))
    return {
        "harness_cpu_ms": [x * 1000 for x in harness],
        "bare_cpu_ms": [x * 1000 for x in bare],
        "requests_per_round": requests,
        "sample_bodies": len(bodies),
    }


async def schedule(
    dialogues: int, concurrency: int, latency: float, seed: int, floors: Sequence[str] = ("post",)
) -> dict[str, Any]:
    """(b): the run's wall time against its own zero-overhead schedule.

    Then, for each of ``floors`` (see FLOORS), the bare SDK sending as many requests in the same
    schedule on the same endpoint, replaying a sample of the run's own bodies taken across the
    whole run: the wall time the SDK alone needs for this schedule on this machine.
    """
    with tempfile.TemporaryDirectory(prefix="bench-llm-schedule-") as tmp:
        capture = Path(tmp) / "bodies.jsonl"
        every = max(1, dialogues * 10 // SAMPLE)  # about ten requests a dialogue: a sample across the run
        async with _endpoint(latency, capture, every) as endpoint:
            served = _endpoint_cpu(endpoint)
            result = await _run(endpoint.base_url, dialogues, concurrency, seed)
            served = _endpoint_cpu(endpoint) - served
            ideal = zero_overhead_schedule(result["per_dialogue"], latency, concurrency)
            bodies = [json.loads(line) for line in capture.read_text().splitlines() if line.strip()]
            bare = []
            for kind in floors:
                before = _endpoint_cpu(endpoint)
                floor = await _bare_schedule(endpoint.base_url, bodies, result["per_dialogue"], concurrency, kind)
                bare.append(floor | {"endpoint_cpu_s": _endpoint_cpu(endpoint) - before})
    return {
        "wall_s": result["wall_s"],
        "ideal_s": ideal,
        "ratio": result["wall_s"] / ideal,
        "requests": result["requests"],
        "cpu_s": result["cpu_s"],
        "cpu_ms_per_request": result["cpu_s"] / result["requests"] * 1000,
        "builder_cpu_s": result["builder_cpu_s"],
        "endpoint_cpu_s": served,
        "failed": result["failed"],
        "generated": result["generated"],
        "max_requests_per_dialogue": max(result["per_dialogue"]),
        "bare_sdk": [{**b, "ratio": b["wall_s"] / ideal, "sample_bodies": len(bodies)} for b in bare],
    }


def schedule_cpu_line(sched: dict[str, Any]) -> str:
    return (
        f"  harness CPU {sched['cpu_s']:.1f} s = {sched['cpu_ms_per_request']:.2f} ms per request"
        + (
            f" (of which the scenario builder process {sched['builder_cpu_s']:.1f} s)"
            if sched.get("builder_cpu_s")
            else ""
        )
        + f"; the endpoint process {sched['endpoint_cpu_s']:.1f} s"
    )


def floor_lines(sched: dict[str, Any]) -> list[str]:
    """What the bare SDK alone needs for the same schedule: the floor this machine sets on the ratio."""
    what = {"post": "SDK post of the same bodies", "create": "chat.completions.create(**body)"}
    return [
        f"  floor, bare SDK in the same schedule ({what[b['kind']]}, {b['clients']} client(s), "
        f"{b['sample_bodies']} bodies sampled across the run): wall {b['wall_s']:.2f} s, ratio {b['ratio']:.3f}, "
        f"{b['cpu_ms_per_request']:.2f} ms CPU per request (endpoint {b['endpoint_cpu_s']:.1f} s)"
        for b in sched.get("bare_sdk", [])
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench llm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=120, help="dialogues per round for (a) (default 120)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrency for (a) (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds for (a) (default 3)")
    parser.add_argument("--latency-ms", type=float, default=500.0, help="endpoint latency for (b) (default 500)")
    parser.add_argument("--schedule-dialogues", type=int, default=2000, help="dialogues for (b) (default 2000)")
    parser.add_argument("--schedule-concurrency", type=int, default=200, help="concurrency for (b) (default 200)")
    parser.add_argument(
        "--floor",
        action="append",
        choices=FLOORS,
        help="bare-SDK floors for (b), repeatable (default: post): post = the SDK's post of the same bodies "
        "encoded once, one client per 16 slots (the harness's SDK calls alone); create = "
        "chat.completions.create(**body) on one client (as a user would write it)",
    )
    parser.add_argument("--only", choices=("cpu", "schedule"), help="run only (a) (cpu) or (b) (schedule)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--capture", default="", help=argparse.SUPPRESS)
    parser.add_argument("--capture-every", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        anyio.run(_serve, args.latency_ms / 1000.0, args.capture, args.capture_every)
        return 0
    cpu: dict[str, Any] = {}
    sched: dict[str, Any] = {}
    if args.only != "schedule":
        cpu = anyio.run(cpu_per_request, args.dialogues, args.concurrency, args.seed, args.rounds)
    if args.only != "cpu":
        sched = anyio.run(
            schedule,
            args.schedule_dialogues,
            args.schedule_concurrency,
            args.latency_ms / 1000.0,
            args.seed + 100,
            tuple(args.floor or ["post"]),
        )
    command = "python -m bench llm " + " ".join(argv if argv is not None else sys.argv[2:])
    print(f"command: {command.strip()}")
    if cpu:
        harness, bare = min(cpu["harness_cpu_ms"]), min(cpu["bare_cpu_ms"])
        print(
            f"(a) client CPU per model request: {args.dialogues} dialogues x {args.rounds} rounds, concurrency "
            f"{args.concurrency}, zero latency, {cpu['requests_per_round']} requests a round (best round)"
        )
        print(f"  full pipeline (LLM user + agent, MCP tools, recorder): {harness:7.2f} ms CPU per request")
        print(f"  bare SDK replaying the same request bodies:           {bare:7.2f} ms CPU per request")
        print(f"  ratio:                                                {harness / bare:7.2f}")
    if sched:
        print(
            f"(b) {args.schedule_dialogues} dialogues, endpoint latency {args.latency_ms:g} ms, concurrency "
            f"{args.schedule_concurrency}: {sched['requests']} requests"
        )
        print(
            f"  zero-overhead schedule: {sched['ideal_s']:8.2f} s    wall: {sched['wall_s']:8.2f} s    "
            f"ratio {sched['ratio']:.3f}   ({sched['failed']} failed)"
        )
        print(schedule_cpu_line(sched))
        for line in floor_lines(sched):
            print(line)
    if args.json:
        args.json.write_text(json.dumps({"command": command.strip(), "cpu": cpu, "schedule": sched}, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
