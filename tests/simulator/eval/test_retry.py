"""``eval --retry-failed``: trials that failed on the infrastructure's side run again; an agent's own failures never."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio
import pytest

from schemas import TerminationReason
from simulator.eval import EvalConfig, run_eval
from simulator.eval.evaluate import RECORDS_DIR
from simulator.llm import LLMSetup, use_setup
from simulator.providers import parse_model, settings_from_env
from simulator.providers.loopback import Received, Reply, openai_completion, serve_loopback
from simulator.run.dataset import DATASET_FILE, iter_records
from tests.simulator.eval.conftest import cmd_test_agent

pytestmark = pytest.mark.anyio


def _lines(out: Path) -> int:
    return len((out / RECORDS_DIR / DATASET_FILE).read_bytes().splitlines())


async def test_an_outside_agents_own_failure_is_never_retried(tmp_path: Path, shop_file: Path) -> None:
    config = EvalConfig(
        agent=cmd_test_agent("crash-first"), out_dir=tmp_path / "e", source=str(shop_file), trials=2, progress=False
    )
    first = await run_eval(config)
    assert first.results.summary.failed == 1
    again = await run_eval(dataclasses.replace(config, retry_failed=True))
    assert again.run.generated == 0 and again.run.skipped == 2
    assert again.results.summary.failed == 1 and _lines(tmp_path / "e") == 2


async def test_a_model_agent_whose_endpoint_hung_is_evaluated_again(tmp_path: Path, shop_file: Path) -> None:
    answering = False

    async def handler(request: Received) -> Reply:
        if not answering:
            await anyio.Event().wait()  # accepts the request, never answers
        return Reply(body=openai_completion("Sorry, I cannot help with that."))

    model = "openai:fake-1"
    out = tmp_path / "e"
    async with serve_loopback(handler) as server:
        spec = parse_model(model)
        setup = LLMSetup(settings={str(spec): settings_from_env(spec, {}, base_url=server.openai_base_url)})
        config = EvalConfig(agent=model, out_dir=out, source=str(shop_file), turn_timeout_s=1.0, progress=False)
        with use_setup(setup):
            hung = await run_eval(config)
            (failure,) = hung.results.summary.failures
            assert failure.reason == "agent_failure" and "did not answer within 1 s" in failure.detail
            answering = True
            retried = await run_eval(dataclasses.replace(config, retry_failed=True))
        await setup.pool.aclose()
    assert retried.run.generated == 1 and retried.run.retried == 1
    assert retried.results.summary.failed == 0 and retried.results.summary.dialogues == 1
    assert _lines(out) == 2  # the failed record stays; the new one is the trial's record
    ((_, record),) = list(iter_records(out / RECORDS_DIR))
    assert record.termination is not TerminationReason.AGENT_FAILURE
