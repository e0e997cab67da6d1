"""The agent messages the user rejected: masked, or their dialogues left out, or kept as they are.

The expected messages are worked out here apart from :mod:`simulator.export.rejected`: from
the recorder itself (``messages_from_events`` of the events before the user message that
rejected a turn) and, for a planned detour, from the user's own acts (its answer changes
the detour's step), not from the tool error the module looks for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from schemas import DialogueRecord, FeedbackKind, Mode, UserFeedback, UserMessage
from schemas.errors import ConfigError
from simulator.cli import main
from simulator.dialogue.recorder import build_record, messages_from_events
from simulator.dialogue.runner import DialogueConfig
from simulator.export import RejectedTurns, export
from simulator.export._chat import chat, system_text
from simulator.export.openai import openai_tools
from simulator.export.parquet import parquet_schema
from simulator.export.rejected import rejected_messages
from simulator.run.config import RunConfig
from simulator.run.dataset import DATASET_FILE, iter_records
from simulator.run.execute import execute_run
from simulator.run.plan import prepare_run
from tests.conftest import shop_environment
from tests.simulator.export.test_export import read_jsonl, sorted_records
from tests.simulator.run.test_run import generate

REJECTING = (FeedbackKind.CORRECTION, FeedbackKind.MISSING)


@pytest.fixture(scope="module")
def mistakes_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Offline brains with an agent that takes the wrong row whenever it can: some answers
    corrected, some refinements not applied, some planned detours, many clean dialogues."""
    out = tmp_path_factory.mktemp("mistakes") / "data"
    config = RunConfig(
        dialogues=24,
        seed=2,
        out_dir=out,
        concurrency=6,
        mode=Mode.USER_ORIENTED,
        dialogue=DialogueConfig(agent_mistake_rate=1.0),
    )

    async def run() -> None:
        await execute_run(prepare_run(config), progress=False)

    anyio.run(run)
    return out


@pytest.fixture
def scripted(tmp_path: Path) -> Path:
    """Six scripted dialogues (tests.simulator.run.test_run): dialogues 0 and 3 have their
    first answer corrected; the others are confirmed."""
    out = tmp_path / "scripted"
    generate(out, dialogues=6)
    return out


def is_planned_detour(record: DialogueRecord, feedback: UserFeedback, answer: UserMessage) -> bool:
    """The user's change of values after its task's planned refusal: its answer changes the detour's step."""
    task = next((t for t in record.scenario.tasks if t.id == feedback.task_id), None)
    if task is None or task.detour is None or task.detour.step != feedback.step_id:
        return False
    return feedback.feedback in {FeedbackKind.CORRECTION, FeedbackKind.CHANGE_OF_MIND} and any(
        a.get("act") == "change" and a.get("step") == task.detour.step for a in answer.acts
    )


def expected_rejected(record: DialogueRecord) -> set[int]:
    """The indexes into ``record.messages`` of the agent messages answered by a correction or a missing."""
    out: set[int] = set()
    feedback: list[UserFeedback] = []
    for position, event in enumerate(record.events):
        if isinstance(event, UserFeedback):
            feedback.append(event)
        elif isinstance(event, UserMessage):
            if any(f.feedback in REJECTING and not is_planned_detour(record, f, event) for f in feedback):
                before = messages_from_events(record.events[:position])
                assert before == record.messages[: len(before)]
                last_user = max(i for i, m in enumerate(before) if m.role == "user")
                out |= {i for i in range(last_user + 1, len(before)) if before[i].role == "assistant"}
            feedback = []
    return out


def planned_detours(record: DialogueRecord) -> int:
    count = 0
    feedback: list[UserFeedback] = []
    for event in record.events:
        if isinstance(event, UserFeedback):
            feedback.append(event)
        elif isinstance(event, UserMessage):
            count += sum(1 for f in feedback if is_planned_detour(record, f, event))
            feedback = []
    return count


def weighted(example: dict[str, Any]) -> set[int]:
    """Indexes (into the record's messages: the system message comes first) of the weighted messages."""
    assert example["messages"][0]["role"] == "system"
    return {i - 1 for i, m in enumerate(example["messages"]) if "weight" in m}


def without_weights(line: bytes, key: str) -> bytes:
    example = json.loads(line)
    for m in example[key]:
        m.pop("weight", None)
    return json.dumps(example, ensure_ascii=False).encode() + b"\n"


def test_the_datasets_have_what_the_tests_need(mistakes_data: Path, task_data: Path) -> None:
    records = sorted_records(mistakes_data, task_data)
    expected = [expected_rejected(r) for r in records]
    assert sum(1 for e in expected if e) >= 3, "dialogues with an agent turn the user rejected"
    assert sum(1 for e in expected if not e) >= 10, "dialogues with none"
    assert sum(planned_detours(r) for r in records) >= 3, "planned detours (new values, not a rejection)"
    rejected = [records[i].messages[j] for i, e in enumerate(expected) for j in e]
    assert any(m.tool_calls for m in rejected) and any(m.content for m in rejected), "calls and replies"


def test_a_detour_is_a_change_of_mind_and_as_a_correction_of_older_datasets_no_rejection(
    mistakes_data: Path, task_data: Path
) -> None:
    """The offline user records its new values after a planned refusal as a change of mind;
    a dataset written before it did recorded a correction, which is no rejection either."""
    records = [r for r in sorted_records(mistakes_data, task_data) if planned_detours(r)]
    assert records
    for record in records:
        detours = {t.detour.step for t in record.scenario.tasks if t.detour is not None}
        kinds = {e.feedback for e in record.events if isinstance(e, UserFeedback) and e.step_id in detours}
        assert FeedbackKind.CORRECTION not in kinds and FeedbackKind.CHANGE_OF_MIND in kinds, record.id
        older = msgspec.structs.replace(
            record,
            events=[
                msgspec.structs.replace(e, feedback=FeedbackKind.CORRECTION)
                if isinstance(e, UserFeedback) and e.feedback is FeedbackKind.CHANGE_OF_MIND and e.step_id in detours
                else e
                for e in record.events
            ],
        )
        assert rejected_messages(older) == rejected_messages(record), record.id


def test_openai_weights_exactly_the_messages_the_user_rejected(
    mistakes_data: Path, task_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "train.jsonl"
    result = export([mistakes_data, task_data], "openai", out)
    records = sorted_records(mistakes_data, task_data)
    examples = read_jsonl(out)
    assert result.written == len(records) == len(examples)
    total = 0
    for record, example in zip(records, examples, strict=True):
        expected = expected_rejected(record)
        assert weighted(example) == expected, record.id
        assert rejected_messages(record) == expected
        for index in expected:
            message = example["messages"][index + 1]
            assert message["role"] == "assistant" and message["weight"] == 0
        total += len(expected)
    assert total > 0
    assert (result.masking, result.masked_messages) == (True, total)
    assert result.masked_dialogues == sum(1 for r in records if expected_rejected(r))


def test_a_planned_detour_is_not_masked(mistakes_data: Path) -> None:
    """The agent reported the refusal the scenario planned, as it should: the user's new values are no rejection."""
    checked = 0
    for _, record in iter_records(mistakes_data):
        feedback: list[UserFeedback] = []
        user = -1
        for event in record.events:
            if isinstance(event, UserFeedback):
                feedback.append(event)
            elif isinstance(event, UserMessage):
                user += 1
                detour = any(is_planned_detour(record, f, event) for f in feedback)
                others = any(f.feedback in REJECTING and not is_planned_detour(record, f, event) for f in feedback)
                if detour and not others:
                    users = [i for i, m in enumerate(record.messages) if m.role == "user"]
                    turn = set(range(users[user - 1] + 1, users[user]))
                    assert turn and not turn & rejected_messages(record), record.id
                    checked += 1
                feedback = []
    assert checked >= 3


def test_the_scripted_correction_masks_the_whole_first_turn(scripted: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    result = export(scripted, "openai", out)
    examples = read_jsonl(out)
    # Messages: user, call, result, call, result, "That is Ada.", user, call, result, "Gold.", user.
    assert [weighted(e) for e in examples] == [{1, 3, 5}, set(), set(), {1, 3, 5}, set(), set()]
    assert (result.masked_messages, result.masked_dialogues) == (6, 2)


@pytest.mark.parametrize("kind", list(FeedbackKind))
def test_only_a_correction_or_a_missing_rejects(scripted: Path, kind: FeedbackKind) -> None:
    _, record = next(iter_records(scripted))  # dialogue 0: its first answer corrected
    events = [msgspec.structs.replace(e, feedback=kind) if isinstance(e, UserFeedback) else e for e in record.events]
    changed = build_record(record.scenario, events, record.outcomes, record.termination, success=record.success)
    assert rejected_messages(changed) == (frozenset({1, 3, 5}) if kind in REJECTING else frozenset())


def test_feedback_before_the_first_user_message_rejects_nothing(scripted: Path) -> None:
    _, record = next(iter_records(scripted))
    fb = UserFeedback(feedback=FeedbackKind.CORRECTION, task_id="t")
    events = [record.events[0], fb, *(e for e in record.events[1:] if not isinstance(e, UserFeedback))]
    changed = build_record(record.scenario, events, record.outcomes, record.termination, success=record.success)
    assert rejected_messages(changed) == frozenset()


def test_a_dialogue_without_a_rejection_is_written_as_keep_writes_it(
    mistakes_data: Path, task_data: Path, tmp_path: Path
) -> None:
    records = sorted_records(mistakes_data, task_data)
    for fmt, key in (("openai", "messages"), ("sharegpt", "conversations")):
        masked, kept = tmp_path / f"mask.{fmt}", tmp_path / f"keep.{fmt}"
        export([mistakes_data, task_data], fmt, masked)
        result = export([mistakes_data, task_data], fmt, kept, rejected_turns=RejectedTurns.KEEP)
        assert (result.masking, result.masked_messages) == (False, 0)
        assert b'"weight"' not in kept.read_bytes()
        pairs = zip(records, masked.read_bytes().splitlines(True), kept.read_bytes().splitlines(True), strict=True)
        for record, mask_line, keep_line in pairs:
            if expected_rejected(record):
                assert mask_line != keep_line and without_weights(mask_line, key) == keep_line
            else:
                assert b'"weight"' not in mask_line and mask_line == keep_line


def test_keep_writes_what_the_export_wrote_before_the_option(scripted: Path, tmp_path: Path) -> None:
    """The line the openai export always wrote: system, the chat of the record's messages, the tools."""
    out = tmp_path / "keep.jsonl"
    export(scripted, "openai", out, rejected_turns=RejectedTurns.KEEP)
    env = shop_environment()
    expected = [
        json.dumps(
            {
                "messages": [{"role": "system", "content": system_text(env)}, *chat(r.messages)],
                "tools": openai_tools(env),
            },
            ensure_ascii=False,
        ).encode()
        + b"\n"
        for r in sorted_records(scripted)
    ]
    assert out.read_bytes() == b"".join(expected)


@pytest.mark.parametrize("fmt", ["openai", "sharegpt", "parquet", "native"])
def test_drop_dialogue_leaves_out_exactly_the_dialogues_with_a_rejected_turn(
    mistakes_data: Path, task_data: Path, tmp_path: Path, fmt: str
) -> None:
    records = sorted_records(mistakes_data, task_data)
    clean = [r.id for r in records if not expected_rejected(r)]
    out = tmp_path / f"drop.{fmt}"
    result = export([mistakes_data, task_data], fmt, out, rejected_turns=RejectedTurns.DROP_DIALOGUE)
    assert result.written == len(clean) and result.filtered == {"rejected turns": len(records) - len(clean)}
    assert (result.masking, result.masked_messages) == (False, 0)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        assert table.schema.equals(parquet_schema()) and table.column("id").to_pylist() == clean
    elif fmt == "native":
        assert [json.loads(line)["id"] for line in out.read_bytes().splitlines()] == clean
    else:
        assert len(read_jsonl(out)) == len(clean) and b'"weight"' not in out.read_bytes()


def test_sharegpt_weights_the_turns_of_the_rejected_messages(
    mistakes_data: Path, task_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "s.jsonl"
    export([mistakes_data, task_data], "sharegpt", out)
    checked = 0
    for record, example in zip(sorted_records(mistakes_data, task_data), read_jsonl(out), strict=True):
        roles = [m.role for m in record.messages if m.role != "tool"]
        assert not any(a == b == "user" for a, b in zip(roles, roles[1:], strict=False)), "one human turn a message"
        expected = expected_rejected(record)
        bounds = [i for i, m in enumerate(record.messages) if m.role == "user"] + [len(record.messages)]
        # The user messages (by ordinal) whose agent turn after them the next one rejected.
        rejected_after = {k for k in range(len(bounds) - 1) if expected & set(range(bounds[k] + 1, bounds[k + 1]))}
        user = -1
        for turn in example["conversations"]:
            if turn["from"] == "human":
                user += 1
            elif turn["from"] in ("gpt", "function_call"):
                assert ("weight" in turn) == (user in rejected_after), record.id
                assert turn.get("weight", 0) == 0
                checked += "weight" in turn
            else:
                assert "weight" not in turn
    assert checked > 0


def test_parquet_has_a_weight_per_message(mistakes_data: Path, task_data: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out, kept = tmp_path / "m.parquet", tmp_path / "k.parquet"
    export([mistakes_data, task_data], "parquet", out)
    export([mistakes_data, task_data], "parquet", kept, rejected_turns=RejectedTurns.KEEP)
    table = pq.read_table(out)
    assert table.schema.equals(parquet_schema(weights=True))
    assert pq.read_table(kept).schema.equals(parquet_schema())
    for record, row in zip(sorted_records(mistakes_data, task_data), table.to_pylist(), strict=True):
        expected = expected_rejected(record)
        weights = [m["weight"] for m in row["messages"]]
        assert weights == [
            (0 if i in expected else 1) if m.role == "assistant" else None for i, m in enumerate(record.messages)
        ]


def test_anthropic_leaves_out_what_it_cannot_mask(
    scripted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It has no field to mark a message with: by default its dialogues with a rejected turn are
    left out and counted; asked to mask, it refuses before any work, never skips silently."""
    out = tmp_path / "a.jsonl"
    with pytest.raises(ConfigError) as raised:
        export(scripted, "anthropic", out, rejected_turns=RejectedTurns.MASK)
    assert raised.value.field == "--rejected-turns" and not out.exists()
    assert main(["export", str(scripted), "--format", "anthropic", "--out", str(out), "--rejected-turns", "mask"]) == 2
    assert "--rejected-turns drop-dialogue" in capsys.readouterr().err and not out.exists()

    assert main(["export", str(scripted), "--format", "anthropic", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "4 dialogues" in err and "2 left out (rejected turns)" in err and len(read_jsonl(out)) == 4
    result = export(scripted, "anthropic", out, rejected_turns=RejectedTurns.KEEP, force=True)
    assert result.written == 6 and not result.masking


def test_native_is_not_masked(scripted: Path, tmp_path: Path) -> None:
    out = tmp_path / "n.jsonl"
    result = export(scripted, "native", out)
    assert (result.written, result.masking, result.masked_messages) == (6, False, 0)
    assert sorted(out.read_bytes().splitlines()) == sorted((scripted / DATASET_FILE).read_bytes().splitlines())


def test_cli_says_how_many_messages_were_masked(
    mistakes_data: Path, task_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = sorted_records(mistakes_data, task_data)
    messages = sum(len(expected_rejected(r)) for r in records)
    dialogues = sum(1 for r in records if expected_rejected(r))
    out = tmp_path / "o.jsonl"
    assert main(["export", str(mistakes_data), str(task_data), "--format", "openai", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{messages} agent messages the user rejected masked, in {dialogues} dialogues" in err

    drop = ["--rejected-turns", "drop-dialogue", "--force"]
    assert main(["export", str(mistakes_data), str(task_data), "--format", "openai", "--out", str(out), *drop]) == 0
    err = capsys.readouterr().err
    assert f"wrote {len(records) - dialogues} dialogues" in err and f"{dialogues} left out (rejected turns)" in err
    assert "masked" not in err


def test_user_messages_that_do_not_match_the_events_leave_the_dialogue_out(scripted: Path, tmp_path: Path) -> None:
    lines = (scripted / DATASET_FILE).read_bytes().splitlines(keepends=True)
    broken = msgspec.json.decode(lines[0], type=DialogueRecord)
    broken.messages = [m for m in broken.messages if not (m.role == "user" and m.content == "And her tier?")]
    lines[0] = msgspec.json.encode(broken) + b"\n"
    (scripted / DATASET_FILE).write_bytes(b"".join(lines))
    result = export(scripted, "openai", tmp_path / "x.jsonl")
    assert (result.written, result.invalid_ids) == (5, (broken.id,))
    assert export(scripted, "openai", tmp_path / "y.jsonl", rejected_turns=RejectedTurns.KEEP).written == 6
