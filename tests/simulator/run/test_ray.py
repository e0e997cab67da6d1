"""The Ray executor on a real local Ray instance: one, started here (2 CPUs) for the whole module.

What must hold: the instance listens on loopback only; a run on Ray writes the records a
run in one process writes; a worker killed mid-run loses nothing and duplicates nothing;
the driver killed with SIGKILL and run again gives exactly N dialogues; LLM brains run in
the workers with their settings shipped from the driver, the plan made once on the driver,
and the API key nowhere in the dataset, the logs or Ray's own files.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import psutil
import pytest

from schemas import DialogueRecord, Scenario, TerminationReason
from simulator.dialogue.runner import DialogueConfig
from simulator.log import RUN_LOG
from simulator.run.config import FAILURE_REASONS, RunConfig
from simulator.run.dataset import DATASET_FILE, iter_records
from simulator.run.execute import Executor, RunSummary, execute_run
from simulator.run.plan import PreparedRun, ScenarioPlan, prepare_run
from simulator.run.ray_executor import ExecutorError, RayExecutor, _Dispatch, _is_loopback_address, _Job
from tests.simulator.run.ray_helpers import KillAlways, KillOnce

ROOT = Path(__file__).resolve().parents[3]
#: Fields that are times: they differ between any two runs.
_TIMES = frozenset({"ts", "started_at", "duration_s", "duration_ms", "latency_ms"})


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayExecutor]:
    """The module's one Ray instance, started the way ``dialogsim`` starts one."""
    executor = RayExecutor(num_cpus=2).start()
    try:
        yield executor
    finally:
        executor.stop()


def _timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _records(out: Path) -> dict[str, Any]:
    """Every record of a dataset by scenario id, without times; fails on a repeated id."""
    found: dict[str, Any] = {}
    for _, record in iter_records(out):
        assert record.scenario.id not in found, f"{record.scenario.id} written twice"
        found[record.scenario.id] = _timeless(msgspec.to_builtins(record))
    return found


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert sorted(a) == sorted(b)
    differing = [sid for sid in sorted(a) if a[sid] != b[sid]]
    assert not differing, f"records differ: {differing}"


def _events(out: Path, name: str) -> list[dict[str, Any]]:
    lines = (out / RUN_LOG).read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == name]


def _generate(out: Path, *, dialogues: int, seed: int, executor: Executor | None = None, **kw: Any) -> RunSummary:
    prepared = prepare_run(RunConfig(dialogues=dialogues, seed=seed, out_dir=out, concurrency=3))

    async def run() -> RunSummary:
        return await execute_run(prepared, executor=executor, progress=False, **kw)

    return anyio.run(run)


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


# --------------------------------------------------------------------------- safe by default


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_local_instance_listens_on_loopback_only(cluster: RayExecutor) -> None:
    import ray
    from ray._common.usage import usage_lib

    assert cluster.node_address == "127.0.0.1"
    assert not usage_lib.usage_stats_enabled()

    @ray.remote
    class Probe:
        def pid(self) -> int:
            return os.getpid()

    probe = Probe.remote()  # type: ignore[attr-defined]
    worker_pid = ray.get(probe.pid.remote(), timeout=300)
    try:
        me = psutil.Process()
        listening: list[tuple[int, str, str, int]] = []
        for process in [me, *me.children(recursive=True)]:
            try:
                name = process.name()
                sockets = process.net_connections(kind="inet")
            except psutil.NoSuchProcess:
                continue
            listening += [(process.pid, name, c.laddr.ip, c.laddr.port) for c in sockets if c.status == "LISTEN"]
    finally:
        ray.kill(probe)
    names = {name for _, name, _, _ in listening}
    # It saw Ray's own servers and a worker's, so the check below is about them.
    assert {"gcs_server", "raylet"} <= names, listening
    assert worker_pid in {pid for pid, _, _, _ in listening}, listening
    exposed = [entry for entry in listening if not _is_loopback(entry[2])]
    assert not exposed, f"listening beyond loopback: {exposed}"
    assert not any("dashboard" in name.lower() for name in names), "the dashboard is off unless asked for"


def test_asking_for_ray_without_it_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from simulator.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    out = tmp_path / "out"
    code = main(["generate", "--dialogues", "2", "--seed", "1", "--executor", "ray", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "dialogsim[ray]" in err
    assert not out.exists()
    code = main(["eval", "--agent", "offline", "--seed", "1", "--executor", "ray", "--out", str(out)])
    assert code == 2 and "dialogsim[ray]" in capsys.readouterr().err


def test_ray_flags_need_the_ray_executor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main

    code = main(["generate", "--dialogues", "2", "--seed", "1", "--workers", "2", "--out", str(tmp_path / "o")])
    assert code == 2 and "--workers needs --executor ray" in capsys.readouterr().err


def test_ray_with_an_external_server_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main

    out = tmp_path / "o"
    ray_flags = ["--executor", "ray", "--server", "mcp-server-git --repository .", "--out", str(out)]
    assert main(["generate", "--dialogues", "2", "--seed", "1", *ray_flags]) == 2
    assert main(["eval", "--agent", "offline", "--seed", "1", *ray_flags]) == 2
    err = capsys.readouterr().err
    assert err.count("--executor ray with --server/--url is not supported") == 2
    assert not out.exists()


def test_workers_get_the_settings_of_their_own_models_only() -> None:
    from simulator.llm import LLMSetup, use_setup
    from simulator.providers import Secret
    from simulator.providers.settings import ProviderSettings
    from simulator.run.ray_executor import _dec, _llm_parts

    key = "sk-test-worker-key-0123456789"
    setup = LLMSetup(
        settings={
            "openai:agent-model": ProviderSettings(api_key=Secret(key), base_url="http://127.0.0.1:9/v1", rpm=60.0),
            "openai:planner-model": ProviderSettings(api_key=Secret("sk-planner-key-000000")),
        }
    )
    with use_setup(setup):
        secrets, prompts, _ = _llm_parts(DialogueConfig(agent="openai:agent-model"), workers=3)
    assert set(secrets.models) == {"openai:agent-model"}  # never the planner's
    shipped = msgspec.json.decode(secrets.models["openai:agent-model"], type=ProviderSettings, dec_hook=_dec)
    assert shipped.api_key == Secret(key) and shipped.base_url == "http://127.0.0.1:9/v1"
    assert shipped.rpm == 20.0  # the account's limit, shared by the three workers
    assert set(prompts) >= {"user", "agent", "judge"}
    with use_setup(setup):
        none, _, _ = _llm_parts(DialogueConfig(), workers=3)
    assert none.models == {}


def test_loopback_addresses_are_told_apart() -> None:
    assert all(map(_is_loopback_address, ["127.0.0.1:6379", "localhost:6379", "[::1]:6379", "127.0.0.2:1"]))
    assert not any(map(_is_loopback_address, ["auto", "10.0.0.5:6379", "head.example:6379", "192.0.2.2:6379"]))


@pytest.mark.anyio
async def test_the_dispatch_sends_lost_scenarios_first_and_ends_when_all_are_done() -> None:
    scenarios = [_Job(i, f"s{i}") for i in range(3)]
    dispatch = _Dispatch(iter(scenarios))
    finished: list[bool] = []
    dispatch.when_finished(lambda: finished.append(True))
    a, b = await dispatch.take(), await dispatch.take()
    assert (a, b) == (scenarios[0], scenarios[1]) and dispatch.in_flight == 2
    dispatch.lost(a)  # its worker died: it goes before the rest
    assert await dispatch.take() == scenarios[0]
    assert await dispatch.take() == scenarios[2]
    dispatch.done()
    dispatch.done()
    assert not dispatch.finished and dispatch.in_flight == 1
    got: list[Any] = []

    async def taker() -> None:
        got.append(await dispatch.take())

    async with anyio.create_task_group() as tg:
        tg.start_soon(taker)
        await anyio.wait_all_tasks_blocked()
        assert got == []  # nothing to take, but one is still in flight: it could come back
        dispatch.done()  # the last record arrived: the waiting slot is told there is no more
    assert got == [None] and dispatch.finished and finished == [True]


# --------------------------------------------------------------------------- the records


def _built_lazily(prepared: PreparedRun, ahead: list[int]) -> PreparedRun:
    """``prepared`` with a plan that notes, at each build, how many built scenarios have no record yet.

    The plan is not portable (as a stored model plan): the driver builds its scenarios."""
    plan = prepared.plan
    dataset = prepared.config.out_dir / DATASET_FILE
    built = 0

    def build(i: int) -> Scenario:
        nonlocal built
        written = dataset.read_bytes().count(b"\n") if dataset.is_file() else 0  # each record is one write
        built += 1
        ahead.append(built - written)
        return plan.build(i)

    return dataclasses.replace(prepared, plan=ScenarioPlan(plan.count, plan.id_of, build, plan.unique))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ray_writes_the_records_of_a_single_process_run(cluster: RayExecutor, tmp_path: Path) -> None:
    one = _generate(tmp_path / "one", dialogues=12, seed=5)
    prepared = prepare_run(RunConfig(dialogues=12, seed=5, out_dir=tmp_path / "ray", concurrency=3))
    assert list(prepared.pending()) == list(range(12))
    ahead: list[int] = []
    two = anyio.run(
        lambda: execute_run(_built_lazily(prepared, ahead), executor=RayExecutor(workers=2), progress=False)
    )
    _same(_records(tmp_path / "one"), _records(tmp_path / "ray"))
    # The driver builds scenarios as worker slots free up, not the whole plan up front:
    # built without a record yet are at most the 2 x 3 slots' (the one being built included).
    assert len(ahead) == 12 and max(ahead) <= 2 * 3 + 1
    assert [(e["built_by"], e["workers"]) for e in _events(tmp_path / "ray", "ray_run_started")] == [("driver", 2)]
    assert two.generated == one.generated == 12 and two.failed == one.failed
    # The progress and the summary count every worker's tool calls, as one process does.
    assert (two.tool_calls, two.tool_errors) == (one.tool_calls, one.tool_errors)
    assert two.tool_calls > 0
    assert two.dataset == one.dataset
    assert [e["executor"] for e in _events(tmp_path / "ray", "run_started")] == ["ray"]
    # Both workers are asked for; one that comes up after the other has done all twelve
    # (a loaded machine) is not waited for, so only the first is certain to start.
    started = sorted(e["worker"] for e in _events(tmp_path / "ray", "worker_started"))
    assert started in ([0], [1], [0, 1])
    # A second run of the same command on Ray finds everything done and adds nothing.
    again = _generate(tmp_path / "ray", dialogues=12, seed=5, executor=RayExecutor(workers=2))
    assert again.generated == 0 and again.skipped == 12
    assert len((tmp_path / "ray" / DATASET_FILE).read_bytes().splitlines()) == 12


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_worker_killed_mid_run_loses_nothing(cluster: RayExecutor, tmp_path: Path) -> None:
    reference = tmp_path / "one"
    _generate(reference, dialogues=16, seed=8)
    victim = sorted(_records(reference))[1]
    marker = tmp_path / "killed.pid"
    out = tmp_path / "ray"

    summary = _run_with_kill(out, victim, marker)

    assert marker.is_file(), "the victim never ran"
    killed_pid = int(marker.read_text())
    lost = _events(out, "worker_lost")
    assert len(lost) == 1 and lost[0]["pid"] == killed_pid
    # The driver knew what was in flight on that worker: the victim and the others it took down.
    assert victim in lost[0]["redispatched"] and len(lost[0]["redispatched"]) == 3
    assert len(_events(out, "worker_replaced")) == 1
    # The offline plan is portable: the workers built the scenarios, the driver sent indexes.
    assert [e["built_by"] for e in _events(out, "ray_run_started")] == ["workers"]
    assert summary.generated == 16 and summary.failed == 0
    _same(_records(out), _records(reference))  # every one exactly once, as one process writes it


def _run_with_kill(out: Path, victim: str, marker: Path) -> RunSummary:
    prepared = prepare_run(RunConfig(dialogues=16, seed=8, out_dir=out, concurrency=3))

    async def run() -> RunSummary:
        return await execute_run(
            prepared,
            dialogues=KillOnce(marker=str(marker), victim=victim, busy=3),
            executor=RayExecutor(workers=2),
            progress=False,
        )

    return anyio.run(run)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_when_every_worker_is_lost_the_run_stops_and_keeps_what_it_wrote(cluster: RayExecutor, tmp_path: Path) -> None:
    out = tmp_path / "ray"
    prepared = prepare_run(RunConfig(dialogues=10, seed=9, out_dir=out, concurrency=2))
    victim = prepared.plan.id_of(list(prepared.pending())[4])  # every worker that gets it dies; none is replaced

    async def run() -> RunSummary:
        return await execute_run(
            prepared, dialogues=KillAlways(victim), executor=RayExecutor(workers=2, max_restarts=0), progress=False
        )

    with pytest.raises(ExecutorError) as caught:
        anyio.run(run)
    assert caught.value.code == "executor"
    lost = _events(out, "worker_lost")
    assert len(lost) == 2 and all(victim in e["redispatched"] for e in lost)
    written = _records(out)  # whole records only, none twice
    assert victim not in written and len(written) < 10
    # The same run in one process, resumed over what Ray wrote, completes it.
    again = _generate(out, dialogues=10, seed=9)
    assert again.skipped == len(written) and len(_records(out)) == 10


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_driver_killed_and_run_again_gives_exactly_n_dialogues(cluster: RayExecutor, tmp_path: Path) -> None:
    import ray

    address = ray.get_runtime_context().gcs_address
    out = tmp_path / "killed"
    n = 20
    command = [
        sys.executable,
        "-m",
        "simulator",
        "--log-level",
        "info",
        "--log-format",
        "json",
        "generate",
        "--dialogues",
        str(n),
        "--seed",
        "6",
        "--concurrency",
        "2",
        "--executor",
        "ray",
        "--workers",
        "2",
        "--ray-address",
        address,
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen: list[str] = []
    finished = 0
    try:
        for line in proc.stderr:  # blocks until the driver says something: no sleeping
            seen.append(line)
            finished += '"dialogue_finished"' in line
            if finished >= 3:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert finished >= 3, "".join(seen[-20:])
    assert proc.returncode == -signal.SIGKILL
    at_kill = (out / DATASET_FILE).read_bytes().count(b"\n")
    assert 3 <= at_kill < n

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=800)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stderr
    records = _records(out)  # fails on a repeated id
    assert len(records) == n
    assert (out / DATASET_FILE).read_bytes().endswith(b"\n")
    reference = tmp_path / "one"
    prepared = prepare_run(RunConfig(dialogues=n, seed=6, out_dir=reference, concurrency=2))
    anyio.run(lambda: execute_run(prepared, progress=False))
    _same(records, _records(reference))


# --------------------------------------------------------------------------- models and planning


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.anyio
async def test_llm_brains_run_in_the_workers_on_a_plan_made_once_by_the_driver(
    cluster: RayExecutor, tmp_path: Path
) -> None:
    import ray

    from simulator.providers.loopback import Received, Reply, openai_error, serve_loopback
    from tests.simulator.llm.test_llm_dialogue import FakeModel
    from tests.simulator.llm.test_llm_tasks import KEY, MODEL, Scripted, _shop_design, _tasks

    planner = Scripted({"environment": [_shop_design()], "tasks": [{"tasks": _tasks()}]})
    brains = FakeModel("openai")
    brain_model = "openai:brain-model"
    order: list[str] = []

    async def handler(request: Received) -> Reply:
        body = request.json()
        name = body.get("response_format", {}).get("json_schema", {}).get("name")
        if name in ("environment", "tasks"):
            order.append("plan")
            return planner(request)
        order.append(body["model"])
        if len(order) - order.count("plan") == 1:  # a worker's first request: overloaded, retried
            return openai_error(503, "overloaded", headers={"retry-after": "0"})
        return brains(request)

    out = tmp_path / "data"
    dialogues = 4
    async with serve_loopback(handler) as server:
        result = await anyio.run_process(
            [
                sys.executable,
                "-m",
                "simulator",
                "generate",
                "--design",
                "a tiny shop",
                "--env-model",
                MODEL,
                "--tasks-model",
                MODEL,
                "--agent-model",
                brain_model,
                "--user-model",
                brain_model,
                "--base-url",
                server.openai_base_url,
                "--dialogues",
                str(dialogues),
                "--concurrency",
                "2",
                "--seed",
                "4",
                "--executor",
                "ray",
                "--workers",
                "2",
                "--ray-address",
                ray.get_runtime_context().gcs_address,
                "--out",
                str(out),
                "--no-progress",
            ],
            check=False,
            cwd=ROOT,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": os.environ.get("HOME", str(tmp_path)),  # Ray's token is under it
                "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token"),
                "OPENAI_API_KEY": KEY,
            },
        )
        requests = list(server.requests)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-3000:]
    lines = (out / DATASET_FILE).read_bytes().splitlines()
    records = [msgspec.json.decode(line, type=DialogueRecord) for line in lines]
    assert len(records) == dialogues
    # Planned once, on the driver, before any dialogue: one design, one task batch per dialogue.
    assert len(planner.named("environment")) == 1 and len(planner.named("tasks")) == dialogues
    first_brain = order.index("brain-model")
    assert "plan" not in order[first_brain:], "a worker called a planner model"
    stored = [
        msgspec.json.decode(line, type=msgspec.Raw)
        for line in (out / "plan" / "scenarios.jsonl").read_bytes().splitlines()
    ]
    assert len(stored) == dialogues
    assert {r.scenario.environment_id for r in records} == {"a-tiny-shop"}
    # The brains ran in the workers with the driver's settings: the key reached every request.
    for record in records:
        assert record.brains["agent"] == f"llm:{brain_model}"
        assert record.termination not in FAILURE_REASONS, record.error
        assert record.termination is TerminationReason.USER_DONE
        assert record.usage.requests > 0
    brain_requests = len(order) - order.count("plan")
    assert sum(r.usage.requests for r in records) == brain_requests - 1  # all but the one refused
    # The workers' endpoint figures add up in the driver's summary.
    endpoints = json.loads((out / "summary.json").read_text())["endpoints"]
    assert [(e["model"], e["requests"], e["errors"]) for e in endpoints] == [(brain_model, brain_requests, 1)]
    # The worker's own log line about the retry reached the run's log, marked with its worker.
    retries = [e for e in map(json.loads, (out / RUN_LOG).read_text().splitlines()) if "retry 1 of" in e["event"]]
    assert len(retries) == 1 and retries[0]["worker"] in (0, 1) and retries[0]["dialogue_id"]
    assert all(KEY in r.headers.get("authorization", "") for r in requests)
    # ... and nowhere else: not in the dataset, its logs, the command's output, or Ray's files.
    leaks = [p for p in out.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert not leaks
    assert KEY not in stderr + result.stdout.decode()
    assert cluster.session_dir is not None
    ray_files = [p for p in cluster.session_dir.rglob("*") if p.is_file() and not p.is_symlink()]
    assert ray_files, "Ray's session directory has files"
    assert not [p for p in ray_files if KEY.encode() in p.read_bytes()]
    assert _events(out, "worker_started")


# --------------------------------------------------------------------------- eval


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_eval_on_ray_scores_as_in_one_process(cluster: RayExecutor, tmp_path: Path) -> None:
    from simulator.eval import EvalConfig, run_eval

    def evaluate(out: Path, executor: Executor | None) -> Any:
        config = EvalConfig(
            agent="offline", out_dir=out, seed=2, trials=2, source="retail", limit=3, concurrency=2, progress=False
        )
        if executor is not None:
            config = EvalConfig(**{**config.__dict__, "executor": executor})
        return anyio.run(run_eval, config)

    one = evaluate(tmp_path / "one", None)
    two = evaluate(tmp_path / "ray", RayExecutor(workers=2))
    assert two.run.generated == one.run.generated == 6
    _same(_records(tmp_path / "one" / "records"), _records(tmp_path / "ray" / "records"))
    assert _timeless(msgspec.to_builtins(two.results)) == _timeless(msgspec.to_builtins(one.results))
