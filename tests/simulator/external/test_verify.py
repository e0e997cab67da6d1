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
    ToolCall,
    ToolResult,
    UserMessage,
    ValueRef,
    Verdict,
)
from simulator.external.proxy import Answer
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


def _numbered(events: tuple[Event, ...]) -> list[Event]:
    return [e.__class__(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "seq": i}) for i, e in enumerate(events)]


def _outcomes(*events: Event) -> dict[str, TaskOutcome]:
    outcomes = compare(_notes_scenario(), _numbered(events), live_checks={}, gold=Replay(), gold_checks={},
                       trees=None, write_tools=frozenset({"add_note"}))  # fmt: skip
    return {o.task_id: o for o in outcomes}


def _result(tool: str, structured: dict[str, object], call: str) -> ToolResult:
    return ToolResult(call_id=call, tool=tool, is_error=False, text=str(structured), structured=structured)


def _call(tool: str, arguments: dict[str, object], call: str, structured: dict[str, object]) -> tuple[Event, Event]:
    """A call as the proxy records it: the call with its arguments, then its result."""
    return ToolCall(call_id=call, tool=tool, arguments=arguments), _result(tool, structured, call)


def test_a_write_only_task_needs_its_write_made_in_its_part() -> None:
    silent = _outcomes(TaskStarted(task_id="t0"), UserMessage(text="Add a note 'milk'."), AgentMessage(text="OK."))
    assert not silent["t0"].success and "no successful call of add_note" in silent["t0"].failed_assertions[0]
    made = _outcomes(
        TaskStarted(task_id="t0"),
        UserMessage(text="Add a note 'milk'."),
        *_call("add_note", {"title": "milk"}, "c1", {"id": 3}),
        AgentMessage(text="Added."),
    )
    assert made["t0"].success, made["t0"]


def test_a_write_made_with_other_arguments_fails_naming_the_argument() -> None:
    """Before, any successful call of the step's tool passed, whatever its arguments: an agent
    that guessed the tool earned the write."""
    guessed = _outcomes(
        TaskStarted(task_id="t0"),
        UserMessage(text="Add a note 'milk'."),
        *_call("add_note", {"title": "bread"}, "c1", {"id": 3}),
        AgentMessage(text="Added."),
    )["t0"]
    assert not guessed.success
    (write,) = guessed.checks
    assert (write.kind, write.verdict, write.expected) == (CheckKind.CALL, Verdict.FAIL, {"title": "milk"})
    assert "title='bread'" in write.detail and "'milk'" in write.detail
    missing = _outcomes(
        TaskStarted(task_id="t0"), UserMessage(text="Add a note 'milk'."), *_call("add_note", {}, "c1", {"id": 3})
    )["t0"]
    assert not missing.success and "without title" in missing.checks[0].detail
    # A later call with the step's arguments is the write; case and spacing do not matter,
    # and an argument the step does not set (body) is not compared.
    fixed = _outcomes(
        TaskStarted(task_id="t0"),
        UserMessage(text="Add a note 'milk'."),
        *_call("add_note", {"title": "bread"}, "c1", {"id": 3}),
        *_call("add_note", {"title": "  Milk ", "body": "2 litres"}, "c2", {"id": 4}),
    )["t0"]
    assert fixed.success, fixed
    assert fixed.checks[0].evidence[0].result == 5  # the second call's result


def test_write_arguments_compare_numbers_as_numbers_and_need_one_call_per_step() -> None:
    steps = [ChainStep(id=f"s{k}", tool="rate_note", arguments={"note_id": 2, "stars": 4.0}) for k in range(2)]
    task = Task(id="t0", goal="rate", chain=steps, sub_requests=[SubRequest(id="r0", steps=["s0", "s1"],
                intent="rate", text="Rate note 2 twice.")])  # fmt: skip
    scenario = Scenario(id="n", environment_id="notes", domain="notes", tasks=[task], persona=Persona(name="Ada"))

    def checked(*calls: Event) -> list[Verdict]:
        events = (TaskStarted(task_id="t0"), UserMessage(text="Rate note 2 twice."), *calls)
        (outcome,) = compare(scenario, _numbered(events), live_checks={}, gold=Replay(), gold_checks={}, trees=None,
                             write_tools=frozenset({"rate_note"}))  # fmt: skip
        return [c.verdict for c in outcome.checks]

    once = _call("rate_note", {"note_id": "2", "stars": 4}, "c1", {"ok": True})
    assert checked(*once) == [Verdict.PASS, Verdict.FAIL]
    twice = _call("rate_note", {"note_id": 2.0, "stars": "4"}, "c2", {"ok": True})
    assert checked(*once, *twice) == [Verdict.PASS, Verdict.PASS]
    assert checked(*_call("rate_note", {"note_id": 2, "stars": True}, "c3", {})) == [
        Verdict.FAIL,
        Verdict.FAIL,
    ]


def test_a_referenced_write_argument_is_resolved_as_the_replay_resolved_it() -> None:
    """``s1`` renames the note ``s0`` created, by the id ``s0`` returned: on the replay that id
    is 4, as when the task was planned; an id that varies between runs counts as the
    dialogue's own result of ``s0`` gave it."""
    create = ChainStep(id="t0.s0", tool="add_note", arguments={"title": "milk"}, resolved={"title": "milk"})
    rename = ChainStep(id="t0.s1", tool="rename_note", arguments={"title": "oat milk"},
                       refs={"note_id": ValueRef(step="t0.s0", field="note_id")},
                       resolved={"note_id": 4, "title": "oat milk"})  # fmt: skip
    request = SubRequest(id="r0", steps=["t0.s0", "t0.s1"], intent="add", text="Add milk, then call it oat milk.")
    task = Task(id="t0", goal="add and rename", chain=[create, rename], sub_requests=[request])
    scenario = Scenario(id="n", environment_id="notes", domain="notes", tasks=[task], persona=Persona(name="Ada"))
    writes = frozenset({"add_note", "rename_note"})

    def verdicts(created: int, renamed: int, replayed: int) -> list[Verdict]:
        events = _numbered((
            TaskStarted(task_id="t0"),
            UserMessage(text=request.text),
            *_call("add_note", {"title": "milk"}, "c1", {"note_id": created}),
            *_call("rename_note", {"note_id": renamed, "title": "oat milk"}, "c2", {"ok": True}),
        ))  # fmt: skip
        gold = Replay(answers={"t0.s0": Answer("", is_error=False, structured={"note_id": replayed})})
        (outcome,) = compare(scenario, events, live_checks={}, gold=gold, gold_checks={}, trees=None,
                             write_tools=writes)  # fmt: skip
        return [c.verdict for c in outcome.checks]

    assert verdicts(created=4, renamed=4, replayed=4) == [Verdict.PASS, Verdict.PASS]
    assert verdicts(created=4, renamed=3, replayed=4) == [Verdict.PASS, Verdict.FAIL]  # another note renamed
    # The replay gave another id than planning did: the id varies, the dialogue's own one counts.
    assert verdicts(created=9, renamed=9, replayed=7) == [Verdict.PASS, Verdict.PASS]
    assert verdicts(created=9, renamed=4, replayed=7) == [Verdict.PASS, Verdict.FAIL]


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
        *_call("add_note", {"title": "milk"}, "c1", {"id": 3}),
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
