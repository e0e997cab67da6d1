"""The run: dataset file, resume, manifest checks, concurrency, the failure boundary."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from schemas import (
    RECORD_VERSION,
    AgentMessage,
    ChainStep,
    DialogueEnded,
    DialogueRecord,
    DialogueStarted,
    Environment,
    Event,
    FeedbackKind,
    Mode,
    Persona,
    Scenario,
    SubRequest,
    Task,
    TaskOutcome,
    TerminationReason,
    ToolCall,
    ToolResult,
    UserFeedback,
    UserMessage,
)
from schemas.errors import ConfigError
from simulator.dialogue.recorder import build_record
from simulator.dialogue.runner import DialogueConfig, EventSink
from simulator.run.config import MESSAGE_CAP_KEY, RunConfig, fingerprint
from simulator.run.dataset import DATASET_FILE, ENVIRONMENTS_DIR, MANIFEST_FILE, SUMMARY_FILE, iter_records
from simulator.run.execute import RunSummary, execute_run
from simulator.run.plan import PreparedRun, prepare_run
from tests.conftest import shop_environment

ROOT = Path(__file__).resolve().parents[3]

# --------------------------------------------------------------------------- fakes


def make_scenario(index: int, *, mode: Mode = Mode.USER_ORIENTED, seed: int = 0) -> Scenario:
    task = Task(
        id=f"t{index}",
        goal=f"Look up customer {index % 2 + 1}.",
        chain=[ChainStep(id="s1", tool="get_customer", arguments={"customer_id": index % 2 + 1})],
        sub_requests=[SubRequest(id="r1", steps=["s1"], intent="lookup", text="Who is that customer?")],
    )
    return Scenario(
        id=f"shop-{seed}-{index:04d}",
        environment_id="shop",
        domain="shop",
        tasks=[task],
        persona=Persona(name="Ada"),
        mode=mode,
        seed=seed,
    )


def planner(config: RunConfig) -> tuple[Sequence[Environment], Sequence[Scenario]]:
    scenarios = [make_scenario(i, mode=config.mode, seed=config.seed) for i in range(config.dialogues)]
    return [shop_environment()], scenarios


async def fake_dialogue(
    scenario: Scenario,
    environment: Environment,
    config: DialogueConfig,
    *,
    on_event: EventSink | None = None,
) -> DialogueRecord:
    """A deterministic dialogue with two requests, three tool calls and one tool error."""
    index = int(scenario.id.rsplit("-", 1)[1])
    success = index % 3 != 0
    events: list[Event] = [
        DialogueStarted(scenario_id=scenario.id, environment_id=environment.id, mode=scenario.mode.value),
        UserMessage(text=f"Who is customer {index}?"),
        ToolCall(call_id=f"{scenario.id}-c1", tool="get_customer", arguments={"customer_id": "x"}),
        ToolResult(
            call_id=f"{scenario.id}-c1",
            tool="get_customer",
            is_error=True,
            error_code="invalid_arguments",
            text='customer_id: expected integer, got "x"',
        ),
        ToolCall(call_id=f"{scenario.id}-c2", tool="get_customer", arguments={"customer_id": index}),
        ToolResult(call_id=f"{scenario.id}-c2", tool="get_customer", is_error=False, text='{"name": "Ada"}'),
        AgentMessage(text="That is Ada."),
        UserFeedback(feedback=FeedbackKind.CONFIRM if success else FeedbackKind.CORRECTION, task_id="t"),
        UserMessage(text="And her tier?"),
        ToolCall(call_id=f"{scenario.id}-c3", tool="search_customers", arguments={"name": "Ada"}),
        ToolResult(call_id=f"{scenario.id}-c3", tool="search_customers", is_error=False, text="[]"),
        AgentMessage(text="Gold."),
        UserMessage(text="Thanks.", is_task_complete=True),
        DialogueEnded(reason=TerminationReason.USER_DONE),
    ]
    for seq, event in enumerate(events, start=1):
        event.dialogue_id = scenario.id
        event.seq = seq
        event.ts = 0.0
        if on_event is not None:
            await on_event(event)
        await anyio.lowlevel.checkpoint()
    return build_record(
        scenario,
        events,
        [TaskOutcome(task_id=t.id, success=success) for t in scenario.tasks],
        TerminationReason.USER_DONE,
        success=success,
    )


def config_for(out: Path, **changes: Any) -> RunConfig:
    settings: dict[str, Any] = {"dialogues": 6, "seed": 1, "concurrency": 3, "out_dir": out}
    return RunConfig(**(settings | changes))


def run(prepared: PreparedRun, dialogue_fn: Any = fake_dialogue) -> RunSummary:
    async def main() -> RunSummary:
        return await execute_run(prepared, dialogue_fn=dialogue_fn, progress=False)

    return anyio.run(main)


def generate(out: Path, **changes: Any) -> RunSummary:
    return run(prepare_run(config_for(out, **changes), planner=planner))


def dataset_lines(out: Path) -> list[bytes]:
    return (out / DATASET_FILE).read_bytes().splitlines(keepends=True)


def scenario_ids(out: Path) -> list[str]:
    return [record.scenario.id for _, record in iter_records(out)]


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- the dataset


def test_generate_writes_manifest_environments_records_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "data"
    summary = generate(out)
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["format"] == 1 and manifest["record_version"] == RECORD_VERSION
    assert manifest["fingerprint"] == json.loads(json.dumps(fingerprint(config_for(out))))
    assert (out / "environments" / "shop.json").is_file()
    lines = dataset_lines(out)
    assert len(lines) == 6 and all(line.endswith(b"\n") for line in lines)
    assert sorted(scenario_ids(out)) == [f"shop-1-{i:04d}" for i in range(6)]

    assert (summary.requested, summary.skipped, summary.generated, summary.failed) == (6, 0, 6, 0)
    assert summary.dataset.samples == 6
    assert summary.dataset.tool_calls == 18
    assert summary.dataset.tool_error_rate == pytest.approx(1 / 3)
    assert summary.dataset.invalid_argument_rate == pytest.approx(1 / 3)
    assert summary.dataset.steps.max == 2
    assert summary.dataset.turns.mean == 11  # 3 user + 3 calls + 3 results + 2 replies
    assert summary.dataset.dialogue_success_rate == pytest.approx(4 / 6)
    written = msgspec.json.decode((out / SUMMARY_FILE).read_bytes(), type=RunSummary)
    assert written.dataset == summary.dataset


def test_second_identical_run_adds_nothing(tmp_path: Path) -> None:
    out = tmp_path / "data"
    generate(out)
    before = (out / DATASET_FILE).read_bytes()
    manifest = (out / MANIFEST_FILE).read_bytes()
    summary = generate(out)
    assert (summary.skipped, summary.generated) == (6, 0)
    assert (out / DATASET_FILE).read_bytes() == before
    assert (out / MANIFEST_FILE).read_bytes() == manifest


def test_asking_for_more_dialogues_extends_the_dataset(tmp_path: Path) -> None:
    out = tmp_path / "data"
    generate(out, dialogues=4)
    summary = generate(out, dialogues=9, concurrency=5)
    assert (summary.skipped, summary.generated, summary.dataset.samples) == (4, 5, 9)
    ids = scenario_ids(out)
    assert len(ids) == len(set(ids)) == 9


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param("half", id="half-line-no-newline"),
        pytest.param("garbage", id="undecodable-last-line"),
    ],
)
def test_resume_truncates_a_trailing_partial_line(tmp_path: Path, tail: str) -> None:
    out = tmp_path / "data"
    generate(out, dialogues=4)
    complete = (out / DATASET_FILE).read_bytes()
    # What a kill in the middle of writing record 4 could leave behind.
    other = tmp_path / "other"
    generate(other, dialogues=6)
    line_5 = next(line for line in dataset_lines(other) if b'"shop-1-0005"' in line)
    cut = line_5[: len(line_5) // 2] if tail == "half" else b'{"id": "shop-1-0005", "scen\n'
    with (out / DATASET_FILE).open("ab") as f:
        f.write(cut)

    prepared = prepare_run(config_for(out, dialogues=6), planner=planner)
    assert prepared.truncate_at == len(complete)
    assert [s.id for s in prepared.pending_scenarios()] == ["shop-1-0004", "shop-1-0005"]
    summary = run(prepared)
    data = (out / DATASET_FILE).read_bytes()
    assert data.startswith(complete) and data.endswith(b"\n")
    ids = scenario_ids(out)
    assert sorted(ids) == [f"shop-1-{i:04d}" for i in range(6)]
    assert summary.dataset.samples == 6


def test_a_damaged_line_in_the_middle_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "data"
    generate(out, dialogues=3)
    lines = dataset_lines(out)
    (out / DATASET_FILE).write_bytes(lines[0] + b"not json\n" + lines[1])
    before = tree_digest(out)
    with pytest.raises(ConfigError, match="line 2"):
        prepare_run(config_for(out), planner=planner)
    assert tree_digest(out) == before


# --------------------------------------------------------------------------- refusing other datasets


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"seed": 2}, id="seed"),
        pytest.param({"mode": Mode.TASK_ORIENTED}, id="mode"),
        pytest.param({"domains": ("bank",)}, id="domains"),
        pytest.param({"dialogue": DialogueConfig(max_turns=7)}, id="max-turns"),
        # The cap cuts the text a record holds (and the user was shown): records cut at 60
        # characters and uncut ones must not share a dataset.
        pytest.param({"dialogue": DialogueConfig(max_message_chars=60)}, id="message-cap"),
    ],
)
def test_another_config_is_refused_and_the_dir_unchanged(tmp_path: Path, changes: dict[str, Any]) -> None:
    out = tmp_path / "data"
    generate(out, dialogues=3)
    before = tree_digest(out)
    with pytest.raises(ConfigError, match="other settings"):
        prepare_run(config_for(out, **changes), planner=planner)
    assert tree_digest(out) == before


def test_dialogue_count_concurrency_transport_and_timeout_are_not_part_of_the_fingerprint(
    tmp_path: Path,
) -> None:
    a = config_for(tmp_path, dialogues=3)
    b = config_for(
        tmp_path,
        dialogues=300,
        concurrency=64,
        dialogue=DialogueConfig(transport="stdio", timeout_s=5.0),
    )
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(config_for(tmp_path, dialogue=DialogueConfig(agent_mistake_rate=0.5)))
    # The default message cap leaves the fingerprint as it was before the cap was part of it.
    assert MESSAGE_CAP_KEY not in fingerprint(a)
    assert fingerprint(config_for(tmp_path, dialogue=DialogueConfig(max_message_chars=60)))[MESSAGE_CAP_KEY] == 60


def test_an_out_dir_that_cannot_be_written_is_one_config_error_naming_it(tmp_path: Path) -> None:
    """An OSError while setting the directory up (read-only, no space; here a file where the
    environments directory goes) is a ConfigError naming --out, not a traceback."""
    out = tmp_path / "data"
    out.mkdir()
    (out / ENVIRONMENTS_DIR).write_text("in the way")
    with pytest.raises(ConfigError, match=r"--out .*data: cannot be written") as caught:
        generate(out, dialogues=2)
    assert caught.value.field == "--out"
    assert not (out / DATASET_FILE).exists()


def test_another_record_version_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "data"
    generate(out, dialogues=2)
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    manifest["record_version"] = 99
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    before = tree_digest(out)
    with pytest.raises(ConfigError, match="version 99"):
        prepare_run(config_for(out), planner=planner)
    assert tree_digest(out) == before


def test_a_record_of_another_version_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "data"
    generate(out, dialogues=2)
    lines = dataset_lines(out)
    other = RECORD_VERSION + 1
    lines[0] = lines[0].replace(f'"version":{RECORD_VERSION}}}'.encode(), f'"version":{other}}}'.encode())
    (out / DATASET_FILE).write_bytes(b"".join(lines))
    with pytest.raises(ConfigError, match=f"version {other}"):
        prepare_run(config_for(out), planner=planner)


def test_a_foreign_directory_or_a_file_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(ConfigError, match="not empty"):
        prepare_run(config_for(foreign), planner=planner)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        prepare_run(config_for(a_file), planner=planner)
    assert sorted(p.name for p in foreign.iterdir()) == ["cat.jpg"]


def test_an_empty_existing_directory_is_used(tmp_path: Path) -> None:
    generate(tmp_path, dialogues=2)
    assert len(dataset_lines(tmp_path)) == 2


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"dialogues": 0}, id="no-dialogues"),
        pytest.param({"concurrency": 0}, id="no-concurrency"),
        pytest.param({"dialogue": DialogueConfig(agent_mistake_rate=1.5)}, id="rate"),
        pytest.param({"dialogue": DialogueConfig(transport="pigeon")}, id="transport"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path: Path, changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        prepare_run(config_for(tmp_path / "out", **changes), planner=planner)
    assert not (tmp_path / "out").exists()


def test_a_missing_branch_source_is_refused_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="branch source"):
        prepare_run(config_for(out, branch_from=tmp_path / "nowhere", at_turn=4, variants=2))
    assert not out.exists()


def test_a_planner_config_error_leaves_nothing_behind(tmp_path: Path) -> None:
    def bad_planner(config: RunConfig) -> tuple[Sequence[Environment], Sequence[Scenario]]:
        raise ConfigError("unknown domain 'nope'")

    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="nope"):
        prepare_run(config_for(out), planner=bad_planner)
    assert not out.exists()


# --------------------------------------------------------------------------- running


def test_a_dialogue_function_that_raises_gives_a_failed_record_and_the_run_goes_on(tmp_path: Path) -> None:
    async def flaky(
        scenario: Scenario,
        environment: Environment,
        config: DialogueConfig,
        *,
        on_event: EventSink | None = None,
    ) -> DialogueRecord:
        if scenario.id.endswith("0002"):
            assert on_event is not None
            await on_event(UserMessage(dialogue_id=scenario.id, seq=1, text="hello?"))
            raise ValueError("boom")
        return await fake_dialogue(scenario, environment, config, on_event=on_event)

    out = tmp_path / "data"
    summary = run(prepare_run(config_for(out), planner=planner), flaky)
    assert (summary.generated, summary.failed) == (6, 1)
    records = {r.scenario.id: r for _, r in iter_records(out)}
    assert len(records) == 6
    broken = records["shop-1-0002"]
    assert broken.termination is TerminationReason.AGENT_FAILURE
    assert not broken.success and broken.error is not None and "ValueError" in broken.error
    assert [o.success for o in broken.outcomes] == [False]
    assert [m.content for m in broken.messages] == ["hello?"]  # what it said before raising is kept
    kinds = [type(e).__name__ for e in broken.events]
    assert kinds == ["UserMessage", "ErrorEvent", "DialogueEnded"]
    assert summary.dataset.terminations == {"agent_failure": 1, "user_done": 5}


def test_a_record_for_the_wrong_scenario_is_replaced_by_a_failed_one(tmp_path: Path) -> None:
    async def confused(
        scenario: Scenario,
        environment: Environment,
        config: DialogueConfig,
        *,
        on_event: EventSink | None = None,
    ) -> DialogueRecord:
        return await fake_dialogue(make_scenario(99, seed=1), environment, config)

    out = tmp_path / "data"
    summary = run(prepare_run(config_for(out, dialogues=2), planner=planner), confused)
    assert summary.failed == 2
    assert sorted(scenario_ids(out)) == ["shop-1-0000", "shop-1-0001"]


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_concurrency_is_honoured(tmp_path: Path, concurrency: int) -> None:
    in_flight = 0
    peak = 0
    all_in = anyio.Event()

    async def counting(
        scenario: Scenario,
        environment: Environment,
        config: DialogueConfig,
        *,
        on_event: EventSink | None = None,
    ) -> DialogueRecord:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == concurrency:
            all_in.set()
        try:
            with anyio.fail_after(10):
                await all_in.wait()  # the first C dialogues wait for each other: C are in flight
            return await fake_dialogue(scenario, environment, config, on_event=on_event)
        finally:
            in_flight -= 1

    out = tmp_path / "data"
    summary = run(prepare_run(config_for(out, dialogues=20, concurrency=concurrency), planner=planner), counting)
    assert peak == concurrency
    assert summary.generated == 20 and summary.failed == 0
    assert len(set(scenario_ids(out))) == 20


def test_run_stats_see_every_event(tmp_path: Path) -> None:
    out = tmp_path / "data"
    summary = generate(out, dialogues=5)
    # The run-level stream and the records agree.
    assert summary.dataset.tool_calls == 15
    assert summary.dataset.feedback == {"confirm": 3, "correction": 2}


# --------------------------------------------------------------------------- end to end, killed


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "simulator", "generate", *args, "--no-progress"]


def _comparable(out: Path) -> dict[str, Any]:
    """Per scenario id: the scenario and the messages (no timestamps or durations)."""
    result: dict[str, Any] = {}
    for _, record in iter_records(out):
        messages = [msgspec.to_builtins(m) for m in record.messages]
        result[record.scenario.id] = (msgspec.to_builtins(record.scenario), messages)
    return result


def _first_difference(a: Any, b: Any) -> str:
    (scenario_a, messages_a), (scenario_b, messages_b) = a, b
    if scenario_a != scenario_b:
        return "the scenarios differ"
    for i, (x, y) in enumerate(zip(messages_a, messages_b, strict=False)):
        if x != y:
            return f"message {i}: {x!r} != {y!r}"
    return f"{len(messages_a)} messages != {len(messages_b)} messages"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    # Enough dialogues that the kill, sent once 3 records are in, always lands mid-run.
    total = 120
    args = ("--dialogues", str(total), "--seed", "3", "--concurrency", "4")
    killed = tmp_path / "killed"
    fresh = tmp_path / "fresh"

    proc = subprocess.Popen(
        _cli(*args, "--out", str(killed)),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    dataset = killed / DATASET_FILE
    deadline = time.monotonic() + 240
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if dataset.exists() and dataset.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.002)
        finished_first = proc.poll() is not None
        if not finished_first:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not finished_first, "the run finished before it could be killed: nothing was resumed"
    assert proc.returncode == -signal.SIGKILL
    lines_at_kill = dataset.read_bytes().count(b"\n")
    assert 3 <= lines_at_kill < total

    resumed = subprocess.run(_cli(*args, "--out", str(killed)), cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run(_cli(*args, "--out", str(fresh)), cwd=ROOT, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr

    ids = scenario_ids(killed)
    assert len(ids) == total and len(set(ids)) == total
    assert dataset.read_bytes().endswith(b"\n")
    assert set(ids) == set(scenario_ids(fresh))
    a, b = _comparable(killed), _comparable(fresh)
    differing = {sid: _first_difference(a[sid], b[sid]) for sid in sorted(a) if a[sid] != b[sid]}
    assert not differing, f"resumed and fresh records differ: {differing}"


def test_cli_generate_needs_a_dialogue_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main

    out = tmp_path / "out"
    assert main(["generate", "--seed", "1", "--out", str(out), "--no-progress"]) == 2
    assert "--dialogues is required" in capsys.readouterr().err
    assert not out.exists()


def test_cli_help_defaults_match_the_runner() -> None:
    from simulator.cli._generate import HELP_DEFAULTS

    defaults = DialogueConfig()
    assert HELP_DEFAULTS == {k: getattr(defaults, k) for k in HELP_DEFAULTS}


def test_cli_generate_help(capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--dialogues", "--domain", "--database", "--mode", "--seed", "--concurrency", "--out"):
        assert flag in text
    assert "--branch-from" in text
    assert "continues where it stopped" in text


def test_a_database_file_that_changed_is_another_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its path is the same, its rows are not: the dialogues of the two would not be of one run."""
    import sqlite3
    import subprocess
    import sys

    from simulator.cli import main

    db = tmp_path / "library.sqlite"
    subprocess.run([sys.executable, str(ROOT / "examples" / "library_db.py"), str(db)], check=True, capture_output=True)
    out = tmp_path / "data"
    argv = ["generate", "--dialogues", "2", "--database", str(db), "--seed", "11", "--out", str(out)]
    assert main(argv) == 0
    assert main([*argv[:2], "3", *argv[3:]]) == 0  # the same file: the run resumes
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE members SET email = 'changed_' || email")
    before = tree_digest(out)
    capsys.readouterr()
    assert main([*argv[:2], "4", *argv[3:]]) == 2
    assert "database_sha256" in capsys.readouterr().err
    assert tree_digest(out) == before
