"""The offline planner's probe over a real stdio server whose read tools misbehave (``probe_server.py``)."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from schemas import Mode
from schemas.errors import ExternalServerError
from simulator.cli import main
from simulator.external.execute import plan_external
from simulator.external.spec import ExternalSpec

pytestmark = pytest.mark.anyio

PROBE_SERVER = Path(__file__).with_name("probe_server.py")
#: ``lookup_code``'s input schema: what its ``code`` must look like (the server itself checks nothing).
CODE = re.compile(r"^[A-Z]{3}-[0-9]+$")


def probe_command(*flags: str) -> str:
    return " ".join(shlex.quote(w) for w in [sys.executable, str(PROBE_SERVER), *flags])


@pytest.mark.slow
def test_tools_that_hang_or_crash_the_server_are_skipped_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, the first probe call that timed out or lost the server ended the run (exit 2)."""
    out = tmp_path / "out"
    command = probe_command("--slow", "--stuck", "--crash", "--big", "10")
    argv = ["generate", "--server", command, "--call-timeout", "1", "--dialogues", "2", "--seed", "1",
            "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    for tool in ("get_crash", "get_slow", "get_stuck"):
        assert tool in err  # each skipped tool is named in a warning
    report = json.loads((out / "plan" / "probe.json").read_text())
    skipped = {s["tool"]: s for s in report["skipped"]}
    assert set(skipped) == {"get_crash", "get_slow", "get_stuck"}
    # A server that still answers after one call went unanswered is kept; a stuck or exited one is replaced.
    assert [skipped[t]["replaced"] for t in ("get_slow", "get_stuck", "get_crash")] == [False, True, True]
    assert all(s["stage"] == "probe" and s["problem"] for s in skipped.values())
    # The tools after them were still probed, and each skipped tool was called once.
    assert {"list_codes", "list_docs", "lookup_code"} <= {o["tool"] for o in report["observed"]}
    assert report["calls"] == len(report["observed"]) + 3
    lines = (out / "dialogues.jsonl").read_text().splitlines()
    assert len(lines) == 2
    planned = {s["tool"] for line in lines for t in json.loads(line)["scenario"]["tasks"] for s in t["chain"]}
    assert planned and not planned & set(skipped)


@pytest.mark.slow
def test_a_tool_that_fails_when_tasks_are_checked_is_dropped_and_the_rest_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Planned tasks are run again on a second instance; ``get_flaky`` answers on the probe
    and hangs there. Before, that left the second instance failed for every later task too:
    nothing could be planned (exit 2)."""
    out = tmp_path / "out"
    command = probe_command("--flaky", str(tmp_path / "counter"), "--big", "10")
    argv = ["generate", "--server", command, "--call-timeout", "1", "--dialogues", "1", "--seed", "1",
            "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "get_flaky" in capsys.readouterr().err
    report = json.loads((out / "plan" / "probe.json").read_text())
    assert [(s["tool"], s["stage"], s["replaced"]) for s in report["skipped"]] == [("get_flaky", "check", False)]
    assert "get_flaky" in {o["tool"] for o in report["observed"]}
    (line,) = (out / "dialogues.jsonl").read_text().splitlines()
    planned = {s["tool"] for t in json.loads(line)["scenario"]["tasks"] for s in t["chain"]}
    assert planned and "get_flaky" not in planned


@pytest.mark.slow
async def test_a_server_that_cannot_be_started_again_ends_the_run(tmp_path: Path) -> None:
    marker = tmp_path / "gone"
    spec = ExternalSpec(command=probe_command("--gone", str(marker), "--big", "10"), call_timeout_s=5)
    with pytest.raises(ExternalServerError) as caught:
        await plan_external(spec, count=1, seed=1, mode=Mode.USER_ORIENTED)
    assert caught.value.field == "--server"
    assert marker.exists()


@pytest.mark.slow
async def test_planned_values_are_short_and_planned_arguments_fit_the_input_schema() -> None:
    """Before, a 2 MB field was a value the agent had to tell the user, and ``lookup_code`` was
    planned with ``doc-1`` (a value from ``list_codes``), which its schema does not allow."""
    spec = ExternalSpec(command=probe_command(), call_timeout_s=30)
    _, scenarios = await plan_external(spec, count=12, seed=1, mode=Mode.USER_ORIENTED)
    tasks = [t for s in scenarios for t in s.tasks]
    values = [v.value for t in tasks for v in t.expected.values]
    assert values and all(len(v) <= 120 for v in values if isinstance(v, str)), [str(v)[:40] for v in values]
    lookups = [s.resolved for t in tasks for s in t.chain if s.tool == "lookup_code"]
    assert lookups and all(CODE.match(str(args.get("code"))) for args in lookups), lookups
    checks = [c.arguments for t in tasks for c in t.expected.calls if c.tool == "lookup_code"]
    assert all(CODE.match(str(args.get("code"))) for args in checks), checks
