"""``dialogsim generate`` against a fleet: two loopback model endpoints, or one live and one dead.

The command runs as a subprocess (its own event loop and clock); the endpoints run in
the test's event loop. The scripted model is the one of the LLM dialogue tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import msgspec
import pytest

from schemas import DialogueRecord, TerminationReason
from simulator.providers.fleet import display_url
from simulator.providers.loopback import Received, Reply, serve_loopback
from tests.simulator.llm.test_llm_dialogue import KEY, FakeModel
from tests.simulator.providers.test_fleet import closed_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def generate(tmp_path: Path, urls: list[str], dialogues: int = 4) -> tuple[int, str, Path]:
    out = tmp_path / "data"
    command = [sys.executable, "-m", "simulator", "generate", "--model", "openai:Qwen/Qwen3-8B"]
    for url in urls:
        command += ["--base-url", url]
    command += ["--domain", "retail", "--dialogues", str(dialogues), "--concurrency", "2", "--seed", "4"]
    command += ["--out", str(out), "--no-progress"]
    result = await anyio.run_process(
        command,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENAI_API_KEY": KEY, "COLUMNS": "200"},
    )
    return result.returncode, result.stdout.decode() + result.stderr.decode(), out


def records(out: Path) -> list[DialogueRecord]:
    return [
        msgspec.json.decode(line, type=DialogueRecord) for line in (out / "dialogues.jsonl").read_bytes().splitlines()
    ]


async def test_generate_spreads_requests_over_two_endpoints(tmp_path: Path) -> None:
    fake = FakeModel("openai")

    async def handler(request: Received) -> Reply:
        return fake(request)

    async with serve_loopback(handler) as a, serve_loopback(handler) as b:
        code, output, out = await generate(tmp_path, [a.openai_base_url, b.openai_base_url])
    assert code == 0, output
    assert a.hits > 0 and b.hits > 0
    found = records(out)
    assert len(found) == 4 and all(r.termination is TerminationReason.USER_DONE for r in found)
    assert sum(r.usage.requests for r in found) == a.hits + b.hits
    summary = json.loads((out / "summary.json").read_text())
    rows = {row["endpoint"]: row for row in summary["endpoints"]}
    assert rows.keys() == {display_url(a.openai_base_url), display_url(b.openai_base_url)}
    assert rows[display_url(a.openai_base_url)]["requests"] == a.hits
    assert rows[display_url(b.openai_base_url)]["requests"] == b.hits
    assert all(row["errors"] == 0 and row["latency_ms"]["p50"] > 0 for row in rows.values())
    assert "Model endpoints" in output and display_url(b.openai_base_url) in output
    assert KEY not in output and KEY not in (out / "run.log").read_text()


async def test_generate_routes_around_a_dead_endpoint(tmp_path: Path) -> None:
    fake = FakeModel("openai")

    async def handler(request: Received) -> Reply:
        return fake(request)

    dead = f"http://127.0.0.1:{closed_port()}/v1"
    async with serve_loopback(handler) as live:
        code, output, out = await generate(tmp_path, [dead, live.openai_base_url])
    assert code == 0, output
    found = records(out)
    assert len(found) == 4 and all(r.termination is TerminationReason.USER_DONE for r in found)
    rows = {row["endpoint"]: row for row in json.loads((out / "summary.json").read_text())["endpoints"]}
    dead_row = rows[display_url(dead)]
    assert dead_row["errors"] == dead_row["requests"] >= 3  # three in a row take it out
    assert dead_row["ejections"] >= 1 and dead_row["latency_ms"] is None
    assert rows[display_url(live.openai_base_url)]["requests"] == live.hits
    assert rows[display_url(live.openai_base_url)]["errors"] == 0
    # The run's log says when the dead endpoint was taken out, and what each endpoint did.
    lines = [json.loads(line) for line in (out / "run.log").read_text().splitlines()]
    taken_out = [e for e in lines if e["event"] == "endpoint_out"]
    assert [e["endpoint"] for e in taken_out] == [display_url(dead)] and taken_out[0]["run_id"]
    final = {e["endpoint"]: e for e in lines if e["event"] == "endpoint_stats"}
    assert final.keys() == rows.keys()
    assert final[display_url(live.openai_base_url)]["requests"] == live.hits
    assert final[display_url(live.openai_base_url)]["p50_ms"] > 0
