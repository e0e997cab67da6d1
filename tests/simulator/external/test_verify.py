"""The comparisons behind external verification: results that vary between runs, state trees."""

from __future__ import annotations

from schemas import (
    AgentMessage,
    ChainStep,
    CheckKind,
    Event,
    ExpectedOutcome,
    ExpectedValue,
    FileChange,
    Persona,
    Scenario,
    SubRequest,
    Task,
    TaskOutcome,
    TaskStarted,
    ToolResult,
    UserMessage,
    Verdict,
)
from simulator.external.spec import bind_state, display_path, unbind_state
from simulator.external.tree import diff
from simulator.external.verify import Replay, compare, compare_result, compare_trees


def test_only_what_planning_and_replay_agree_on_is_compared() -> None:
    planned = {"timezone": "UTC", "datetime": "2026-01-01T10:00:00", "day_of_week": "Thursday"}
    replayed = {"timezone": "UTC", "datetime": "2026-01-01T10:00:07", "day_of_week": "Thursday"}
    live_ok = {"timezone": "UTC", "datetime": "2026-01-01T10:00:03", "day_of_week": "Thursday"}
    problems, varying = compare_result(planned, replayed, live_ok)
    assert problems == [] and varying == 1
    problems, _ = compare_result(planned, replayed, {**live_ok, "timezone": "Europe/Paris"})
    assert problems and "timezone" in problems[0]
    problems, _ = compare_result(planned, replayed, {"timezone": "UTC"})
    assert problems  # a field the replay has is missing


def test_text_results_are_compared_line_by_line() -> None:
    planned = "Commit: aaa111\nDate: 10:00\nMessage: Add the app"
    replayed = "Commit: bbb222\nDate: 10:05\nMessage: Add the app"
    assert compare_result(planned, replayed, "Commit: ccc333\nDate: 10:01\nMessage: Add the app") == ([], 2)
    problems, _ = compare_result(planned, replayed, "Commit: ccc333\nDate: 10:01\nMessage: Something else")
    assert problems and "Add the app" in problems[0]
    problems, _ = compare_result(planned, replayed, replayed + "\nCommit: ddd444")
    assert any("lines instead of" in p for p in problems)


def test_state_trees_by_content_by_kind_and_collateral_changes() -> None:
    template = {"README.md": "r1", ".git/HEAD": "h1"}
    gold = {"README.md": "r1", ".git/HEAD": "h1", ".git/refs/heads/topic": "c1", ".git/objects/ab/x": "o1"}
    planned_state = diff(template, {**template, ".git/refs/heads/topic": "c1", ".git/objects/cd/y": "o0"})
    # Same branch ref; the commit object's name varies between runs: matched by kind only.
    live = {**template, ".git/refs/heads/topic": "c1", ".git/objects/ef/z": "o9"}
    problems, unchecked = compare_trees(template, live, gold, planned_state, ignore=[])
    assert problems == [] and len(unchecked) == 1
    # The ref is missing: a failure. A file nobody asked to change: collateral, a failure.
    problems, _ = compare_trees(template, {**template, ".git/objects/ef/z": "o9"}, gold, planned_state, ignore=[])
    assert any("refs/heads/topic was not added" in p for p in problems)
    collateral = {**live, "README.md": "changed"}
    problems, _ = compare_trees(template, collateral, gold, planned_state, ignore=[])
    assert problems == ["state: README.md was changed, which no task asked for"]
    # Files read calls change (an index) are left out when named.
    noisy = {**live, ".git/index": "i2"}
    assert compare_trees(template, noisy, gold, planned_state, ignore=[".git/index"])[0] == []


def test_the_display_path_is_bound_and_unbound_everywhere() -> None:
    from pathlib import Path

    state = Path("/tmp/dialogsim-x/state")
    shown = display_path(Path("/srv/templates/repo/"))
    assert shown == "/workspace/repo"
    args = {"repo_path": shown, "files": [f"{shown}/a.txt"], "other": "/workspace/repository", "n": 3}
    bound = bind_state(args, state, shown)
    assert bound == {
        "repo_path": "/tmp/dialogsim-x/state",
        "files": ["/tmp/dialogsim-x/state/a.txt"],
        "other": "/workspace/repository",  # another name that starts the same is not the state
        "n": 3,
    }
    assert unbind_state(bound, state, shown) == args
    # The placeholder of the command line means nothing in a dialogue: it is not bound.
    assert bind_state({"repo_path": "{state}"}, state, shown) == {"repo_path": "{state}"}
    assert FileChange(path="a", change="removed").digest is None


# --------------------------------------------------------------------------- writes made, values said


def _notes_scenario() -> Scenario:
    add = ChainStep(id="s0", tool="add_note", arguments={"title": "milk"}, resolved={"title": "milk"})
    count = ChainStep(id="s0", tool="count_notes", report=["count"])
    tasks = [
        Task(id="t0", goal="add a note", chain=[add], sub_requests=[SubRequest(id="r0", steps=["s0"], intent="add",
             text="Add a note 'milk'.")]),
        Task(id="t1", goal="count the notes", chain=[count], sub_requests=[SubRequest(id="r1", steps=["s0"],
             intent="count", text="How many notes?")],
             expected=ExpectedOutcome(values=[ExpectedValue(step="s0", name="count", value=2)])),
    ]  # fmt: skip
    return Scenario(id="n", environment_id="notes", domain="notes", tasks=tasks, persona=Persona(name="Ada"))


def _outcomes(*events: Event) -> dict[str, TaskOutcome]:
    numbered = [
        e.__class__(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "seq": i}) for i, e in enumerate(events)
    ]
    outcomes = compare(_notes_scenario(), numbered, live_checks={}, gold=Replay(), gold_checks={}, trees=None,
                       write_tools=frozenset({"add_note"}))  # fmt: skip
    return {o.task_id: o for o in outcomes}


def _result(tool: str, structured: dict[str, object], call: str) -> ToolResult:
    return ToolResult(call_id=call, tool=tool, is_error=False, text=str(structured), structured=structured)


def test_a_write_only_task_needs_its_write_made_in_its_part() -> None:
    silent = _outcomes(TaskStarted(task_id="t0"), UserMessage(text="Add a note 'milk'."), AgentMessage(text="OK."))
    assert not silent["t0"].success and "no successful call of add_note" in silent["t0"].failed_assertions[0]
    made = _outcomes(
        TaskStarted(task_id="t0"),
        UserMessage(text="Add a note 'milk'."),
        _result("add_note", {"id": 3}, "c1"),
        AgentMessage(text="Added."),
    )
    assert made["t0"].success, made["t0"]


def test_a_value_counts_as_a_number_after_its_steps_result_in_its_part() -> None:
    def said(text: str, *, tool: str = "count_notes", started: bool = True) -> TaskOutcome:
        head = [TaskStarted(task_id="t1")] if started else [TaskStarted(task_id="t0")]
        return _outcomes(*head, UserMessage(text="How many notes?"), _result(tool, {"count": 2}, "c1"),
                         AgentMessage(text=text))["t1"]  # fmt: skip

    assert said("You have 2 notes.").success
    assert not said("You have 12 notes, created 2026-01-02.").success  # digits inside other numbers do not count
    assert not said("You have 2 notes.", tool="add_note").success  # a result of another step's tool
    assert not said("You have 2 notes.", started=False).success  # said in another task's part


def test_every_check_of_a_task_over_a_server_is_recorded_with_its_verdict() -> None:
    """As over the built-in databases, ``checks`` says what was checked, passed or not; before,
    it was empty and a failure showed only as a string."""
    outcomes = _outcomes(
        TaskStarted(task_id="t0"),
        UserMessage(text="Add a note 'milk'."),
        _result("add_note", {"id": 3}, "c1"),
        AgentMessage(text="Added."),
        TaskStarted(task_id="t1"),
        UserMessage(text="How many notes?"),
        AgentMessage(text="You have 2 notes."),  # said before any result held it
    )
    (write,) = outcomes["t0"].checks
    assert (write.kind, write.name, write.verdict) == (CheckKind.CALL, "s0:add_note", Verdict.PASS)
    (value,) = outcomes["t1"].checks
    assert (value.kind, value.name, value.verdict) == (CheckKind.VALUE, "s0:count=2", Verdict.FAIL)
    assert outcomes["t1"].missing_values == ["s0:count=2"] and not outcomes["t1"].success


def test_a_task_over_a_server_with_nothing_to_check_fails() -> None:
    idle = Task(id="t0", goal="chat", chain=[], sub_requests=[SubRequest(id="r0", steps=[], intent="x", text="hi")])
    scenario = Scenario(id="n", environment_id="notes", domain="notes", tasks=[idle], persona=Persona(name="Ada"))
    (outcome,) = compare(scenario, [], live_checks={}, gold=Replay(), gold_checks={}, trees=None)
    assert not outcome.success and [c.name for c in outcome.checks] == ["checkable outcome"]
