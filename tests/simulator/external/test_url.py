"""``--url``: an already running streamable HTTP server, shared by every dialogue.

The running server here is dialogsim's own HTTP tool server over the shop database (a
real streamable HTTP MCP server on loopback, with a bearer token), standing in for any
server someone else runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas import Mode, TerminationReason, ToolCall
from simulator.external.execute import execute_external, plan_external
from simulator.external.spec import ExternalSpec
from simulator.run.config import RunConfig
from simulator.run.dataset import iter_records
from simulator.run.plan import prepare_run
from tests.conftest import shop_environment
from toolservers import build_tool_server, http_tool_server

pytestmark = pytest.mark.anyio


async def test_a_running_server_is_shared_said_so_and_checked_by_what_the_agent_said(tmp_path: Path) -> None:
    tool_server = build_tool_server(shop_environment())
    try:
        async with http_tool_server(tool_server) as endpoint:
            spec = ExternalSpec(url=endpoint.url, headers={"Authorization": f"Bearer {endpoint.token}"})
            spec.check()
            env, scenarios = await plan_external(spec, count=2, seed=1, mode=Mode.USER_ORIENTED)
            out = tmp_path / "out"
            config = RunConfig(dialogues=2, seed=1, out_dir=out, concurrency=2, external=spec.describe())
            prepared = prepare_run(config, planner=lambda _c: ([env], scenarios))
            await execute_external(prepared, spec, progress=False)
    finally:
        tool_server.close()

    manifest = (out / "manifest.json").read_text()
    assert json.loads(manifest)["fingerprint"]["external"] == {"url": endpoint.url, "shared_state": True}
    assert endpoint.token not in manifest
    environment = (out / "environments" / f"{env.id}.json").read_text()
    assert '"shared_state": true' in environment and endpoint.token not in environment
    assert json.loads(environment)["server"]["header_names"] == ["Authorization"]
    records = [r for _, r in iter_records(out)]
    assert len(records) == 2
    for record in records:
        assert record.termination is TerminationReason.USER_DONE, record.error
        assert [e for e in record.events if isinstance(e, ToolCall)]
        for outcome in record.outcomes:
            assert outcome.success, outcome
            assert outcome.unchecked and outcome.unchecked[0].startswith("state: a --url server has one shared state")
