"""The verifier on hand-made final states and event streams: the full-state check against the
gold replay (collateral writes, extra inserts, generated keys, clock columns, references),
grounded values (the task's part, after a tool result that showed them), and what the old
checks (the task's own assertions, a value said anywhere) let through."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from schemas import (
    AgentMessage,
    ChainStep,
    CheckKind,
    Effect,
    Environment,
    Event,
    ExpectedOutcome,
    FeedbackKind,
    InitialState,
    Scenario,
    SqlAssertion,
    SubRequest,
    Task,
    TaskStarted,
    ToolCall,
    ToolInvocation,
    ToolResult,
    UserFeedback,
    UserMessage,
    ValueRef,
    Verdict,
)
from simulator.dialogue.grounding import Grounding, mentions, task_parts
from simulator.dialogue.statediff import (
    diff_states,
    gold_calls,
    replay_gold,
    same_image,
    table_rules,
    tables_written,
)
from simulator.dialogue.verify import check_assertion, check_state, verify_dialogue
from tests.conftest import shop_environment
from tests.simulator.conftest import ORDER_STATUS_SQL, shop_scenario, shop_tasks
from toolservers.database import Database, open_database
from toolservers.derive import derive_environment_from_ddl
from toolservers.executor import ToolExecutor

BLOG_DDL = """
CREATE TABLE authors (author_id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE posts (
    post_id INTEGER PRIMARY KEY,
    author_id INTEGER NOT NULL REFERENCES authors(author_id),
    title TEXT NOT NULL,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE tags (post_id INTEGER NOT NULL REFERENCES posts(post_id), tag TEXT NOT NULL);
"""
BLOG_SEED = {
    "authors": [{"author_id": 1, "name": "Ada"}, {"author_id": 2, "name": "Alan"}],
    "posts": [{"post_id": 1, "author_id": 1, "title": "First", "created_at": "2026-01-01 10:00:00"}],
    "tags": [{"post_id": 1, "tag": "intro"}],
}


def blog() -> Environment:
    return derive_environment_from_ddl(BLOG_DDL, BLOG_SEED, env_id="blog", domain="blog")


def step(task: str, i: int, tool: str, **args: Any) -> ChainStep:
    return ChainStep(id=f"{task}.s{i}", tool=tool, arguments=args, resolved=args)


def task_of(task_id: str, *steps: ChainStep, assertions: list[SqlAssertion] | None = None) -> Task:
    return Task(
        id=task_id,
        goal="a goal",
        chain=list(steps),
        sub_requests=[SubRequest(id=f"{task_id}.r", steps=[s.id for s in steps], intent="x", text="please")],
        expected=ExpectedOutcome(assertions=assertions or []),
    )


def scenario_of(env: Environment, *tasks: Task, actions: list[ToolInvocation] | None = None) -> Scenario:
    base = shop_scenario(list(tasks))
    return Scenario(
        id="s",
        environment_id=env.id,
        domain=env.domain,
        tasks=list(tasks),
        persona=base.persona,
        initial_state=InitialState(db_actions=actions or []),
    )


def final_after(env: Environment, calls: list[tuple[str, dict[str, Any]]]) -> Database:
    """The database a dialogue that made ``calls`` (through the executor, as the tool server does) leaves."""
    db = open_database(env.database)
    executor = ToolExecutor(env, db)
    for tool, args in calls:
        executor.call(tool, args)
    return db


def old_verdict(scenario: Scenario, db: Database, said: str) -> bool:
    """What the checks before version 3 decided: the task's own assertions, values said anywhere."""
    from simulator.offline.language import value_forms

    return all(
        all(check_assertion(db.query, a) for a in t.expected.assertions)
        and all(any(f.lower() in said.lower() for f in value_forms(v.value)) for v in t.expected.values)
        for t in scenario.tasks
    )


# --------------------------------------------------------------------------- the full state


def test_a_collateral_write_fails_although_the_tasks_assertion_holds() -> None:
    env = shop_environment()
    scenario = shop_scenario([shop_tasks()[1]])  # order 10 -> shipped
    right = [("update_order_status", {"order_id": 10, "status": "shipped"})]
    assert check_state(scenario, env, final_after(env, right)).verdict is Verdict.PASS

    collateral = final_after(env, [*right, ("update_order_status", {"order_id": 11, "status": "cancelled"})])
    assert old_verdict(scenario, collateral, "status shipped")  # the assertion on order 10 alone passes
    state = check_state(scenario, env, collateral)
    assert state.verdict is Verdict.FAIL and state.gold_calls == 1
    assert [d.text for d in state.diff] == ["orders pk=11: status 'shipped' → 'cancelled'"]
    (change,) = state.diff
    assert (change.kind, change.table, change.key, change.columns) == (
        "changed",
        "orders",
        {"order_id": 11},
        {"status": ["shipped", "cancelled"]},
    )


def test_the_same_bytes_are_the_same_state_and_no_row_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    env = shop_environment()
    scenario = shop_scenario([shop_tasks()[1]])  # order 10 -> shipped
    right = [("update_order_status", {"order_id": 10, "status": "shipped"})]
    final = final_after(env, right)
    gold = replay_gold(scenario, env, called={"update_order_status"})
    try:
        # The replay's write is in its open transaction, and in its bytes.
        assert gold.database.conn.in_transaction and same_image(gold.database, final)
        rules = table_rules(gold.database, env)

        def read(*_args: Any, **_kwargs: Any) -> Any:
            raise AssertionError("a row was read")

        with monkeypatch.context() as patched:
            patched.setattr(Database, "query", read)
            assert diff_states(gold.database, final, rules, gold.keys_before, only=gold.touched) == []
        # One value apart, and the bytes differ: the tables are read and the difference named.
        collateral = final_after(env, [*right, ("update_order_status", {"order_id": 11, "status": "cancelled"})])
        assert not same_image(gold.database, collateral)
        changes = diff_states(gold.database, collateral, rules, gold.keys_before, only=gold.touched)
        assert [c.text for c in changes] == ["orders pk=11: status 'shipped' → 'cancelled'"]
    finally:
        gold.close()


def test_equal_rows_in_other_bytes_are_found_equal_by_reading_them() -> None:
    env = shop_environment()
    scenario = shop_scenario([shop_tasks()[1]])
    final = final_after(env, [("update_order_status", {"order_id": 10, "status": "shipped"})])
    # A row added and taken away again: the same rows, but its bytes stay in the page's free space.
    with final.allowing(Effect.WRITE):
        final.conn.execute("INSERT INTO customers VALUES (99, 'Temp', 'temp@example.com', 'basic')")
        final.conn.execute("DELETE FROM customers WHERE customer_id = 99")
    fresh = final_after(env, [("update_order_status", {"order_id": 10, "status": "shipped"})])
    assert not same_image(fresh, final)
    assert check_state(scenario, env, final).verdict is Verdict.PASS
    # A database larger than the image limit is not copied: its rows are read.
    assert final.image(limit=1024) is None and fresh.image() is not None


def _with_header(db: Database, offset: int, value: bytes) -> Database:
    """A copy of ``db`` whose file header has ``value`` at ``offset``, every page as it was."""
    image = db.image()
    assert image is not None
    changed = sqlite3.connect(":memory:", check_same_thread=False)
    changed.deserialize(image[:offset] + value + image[offset + len(value) :])
    return Database(changed, label="header changed")


@pytest.mark.parametrize(
    ("offset", "value", "same"),
    [
        (24, b"\x00\x00\x7f\x7f", True),  # the file change counter
        (40, b"\x00\x00\x7f\x7f", True),  # the schema cookie
        (44, b"\x00\x00\x00\x01", False),  # the schema format: which record encodings may occur
        (20, b"\x08", False),  # bytes reserved at the end of each page
    ],
)
def test_the_header_counts_where_it_says_how_pages_are_read(offset: int, value: bytes, same: bool) -> None:
    env = shop_environment()
    final = final_after(env, [("update_order_status", {"order_id": 10, "status": "shipped"})])
    changed = _with_header(final, offset, value)
    try:
        image = changed.image()
        assert image is not None and image[offset : offset + len(value)] == value
        assert same_image(final, changed) is same
    finally:
        changed.close()


def test_an_extra_insert_fails_and_the_wanted_one_is_matched_by_content() -> None:
    env = shop_environment()
    create = step("t0", 0, "create_customer", name="Grace Hopper", email="grace@example.com", tier="gold")
    check = SqlAssertion(
        description="Grace exists",
        sql="SELECT COUNT(*) FROM customers WHERE email = :e",
        params={"e": "grace@example.com"},
        expected=[[1]],
    )
    scenario = scenario_of(env, task_of("t0", create, assertions=[check]))
    extra = {"name": "Grace Hopper", "email": "grace2@example.com", "tier": "gold"}
    # The extra row comes first, so the wanted one has another key than in the gold replay.
    final = final_after(env, [("create_customer", extra), ("create_customer", create.resolved)])
    assert old_verdict(scenario, final, "")
    state = check_state(scenario, env, final)
    assert [d.text for d in state.diff] == ["+ customers pk=3"]
    assert state.diff[0].kind == "extra" and state.diff[0].row["email"] == "grace2@example.com"
    missing = check_state(scenario, env, final_after(env, []))
    assert [d.text for d in missing.diff] == ["- customers pk=3"]


def test_inserted_rows_are_matched_by_content_and_references_through_that_matching() -> None:
    env = blog()
    gold = [
        step("t0", 0, "create_post", author_id=1, title="Hello"),
        step("t0", 1, "create_post", author_id=2, title="World"),
        step("t0", 2, "create_tag", post_id=2, tag="hello"),  # the post the gold replay numbers 2
    ]
    scenario = scenario_of(env, task_of("t0", *gold))
    # The dialogue created the posts the other way round: its "Hello" is post 3, and its tag follows it.
    swapped = [
        ("create_post", {"author_id": 2, "title": "World"}),
        ("create_post", {"author_id": 1, "title": "Hello"}),
        ("create_tag", {"post_id": 3, "tag": "hello"}),
    ]
    state = check_state(scenario, env, final_after(env, swapped))
    assert state.verdict is Verdict.PASS, [d.text for d in state.diff]
    # The same rows, but the tag on the wrong new post: a difference, found through the matching.
    wrong = [*swapped[:2], ("create_tag", {"post_id": 2, "tag": "hello"})]
    state = check_state(scenario, env, final_after(env, wrong))
    assert state.verdict is Verdict.FAIL
    assert {d.kind for d in state.diff} == {"extra", "missing"} and {d.table for d in state.diff} == {"tags"}


def test_clock_columns_need_a_value_on_both_sides_but_not_the_same_one() -> None:
    env = blog()
    rules = table_rules(open_database(env.database), env)
    assert rules["posts"].clock == frozenset({"created_at"}) and rules["posts"].generated == "post_id"
    assert rules["tags"].pk == () and rules["tags"].refs == {"post_id": ("posts", "post_id")}
    scenario = scenario_of(env, task_of("t0", step("t0", 0, "create_post", author_id=1, title="Hello")))
    final = final_after(env, [("create_post", {"author_id": 1, "title": "Hello", "created_at": "1999-12-31 23:59:59"})])
    assert check_state(scenario, env, final).verdict is Verdict.PASS
    with final.allowing(Effect.WRITE):
        final.conn.execute("UPDATE posts SET created_at = NULL WHERE title = 'Hello'")
    state = check_state(scenario, env, final)
    (change,) = state.diff
    assert change.kind == "changed" and change.key == {"post_id": 2}
    assert list(change.columns) == ["created_at"] and change.columns["created_at"][1] is None
    assert change.text.startswith("posts pk=2 (inserted): created_at '") and change.text.endswith("' → NULL")


def test_numbers_compare_as_numbers_and_bags_without_a_key_as_multisets() -> None:
    env = blog()
    scenario = scenario_of(env, task_of("t0", step("t0", 0, "create_tag", post_id=1, tag="news")))
    twice = final_after(
        env, [("create_tag", {"post_id": 1, "tag": "news"}), ("create_tag", {"post_id": 1, "tag": "news"})]
    )
    state = check_state(scenario, env, twice)
    assert [d.text for d in state.diff] == ["+ tags (post_id=1, tag='news')"]
    shop = shop_environment()
    scenario = shop_scenario([shop_tasks()[1]])
    final = final_after(shop, [("update_order_status", {"order_id": 10, "status": "shipped"})])
    with final.allowing(Effect.WRITE):
        final.conn.execute("UPDATE orders SET total = 25.500000000000004 WHERE order_id = 10")
    assert check_state(scenario, shop, final).verdict is Verdict.PASS


def test_the_replay_starts_from_the_initial_state_and_replays_a_change_of_mind() -> None:
    from schemas import ChangeOfMind

    env = shop_environment()
    update = shop_tasks()[1]
    update.change_of_mind = ChangeOfMind(step="t1.s0", argument="status", first="cancelled")
    action = ToolInvocation(tool="update_order_status", arguments={"order_id": 11, "status": "placed"})
    scenario = scenario_of(env, update, actions=[action])
    calls = gold_calls(scenario, env)
    assert [(g.role, g.call.arguments["status"]) for g in calls] == [("first", "cancelled"), ("step", "shipped")]
    # The dialogue's database had the initial action replayed first, as the runner does.
    final = final_after(
        env, [("update_order_status", action.arguments), *[(g.call.tool, g.call.arguments) for g in calls]]
    )
    assert check_state(scenario, env, final).verdict is Verdict.PASS
    # Without the initial action on the dialogue's side, the difference shows.
    state = check_state(
        scenario, env, final_after(env, [("update_order_status", {"order_id": 10, "status": "shipped"})])
    )
    assert [d.text for d in state.diff] == ["orders pk=11: status 'placed' → 'shipped'"]


def test_the_replay_runs_only_the_reads_whose_results_are_wanted(monkeypatch: pytest.MonkeyPatch) -> None:
    env = shop_environment()
    read, write = shop_tasks()[0], shop_tasks()[1]  # get_customer; update_order_status
    scenario = scenario_of(env, read, write)
    ran: list[str] = []
    call = ToolExecutor.call

    def counted(self: ToolExecutor, name: str, arguments: dict[str, Any] | None) -> Any:
        ran.append(name)
        return call(self, name, arguments)

    monkeypatch.setattr(ToolExecutor, "call", counted)
    for wanted, reads in ((None, ["get_customer"]), ({"t0.s0"}, ["get_customer"]), (set(), [])):
        ran.clear()
        gold = replay_gold(scenario, env, wanted=wanted)
        try:
            # The write always runs: the state depends on it. A read only when its result is wanted.
            assert ran == [*reads, "update_order_status"]
            assert sorted(gold.results) == sorted(["t0.s0", "t1.s0"] if reads else ["t1.s0"])
        finally:
            gold.close()
    # verify_dialogue asks for the reads its value checks are about: the customer's email.
    final = final_after(env, [("update_order_status", {"order_id": 10, "status": "shipped"})])
    ran.clear()
    verify_dialogue(scenario, env, final, [])
    assert ran == ["get_customer", "update_order_status"]


def test_sqlite_says_which_tables_a_write_tool_can_change() -> None:
    env = blog()
    written = tables_written(open_database(env.database), env)
    assert written["create_tag"] == frozenset({"tags"})
    assert written["update_post"] == frozenset({"posts"})
    assert written["get_post"] == frozenset()


def test_every_replay_starts_from_the_initial_state_of_the_warm_copy() -> None:
    env = shop_environment()
    create = step("t9", 0, "create_customer", name="Grace Hopper", email="grace@example.com", tier="gold")
    scenario = scenario_of(env, shop_tasks()[1], task_of("t9", create))
    start = open_database(env.database).snapshot()
    first = replay_gold(scenario, env)
    changed = first.database.snapshot()
    assert changed != start  # the replay's writes are there while it is open
    first.close()
    second = replay_gold(scenario, env)
    try:
        assert second.database is first.database  # the same warm copy, kept prepared
        assert second.database.snapshot() == changed
        assert (second.results, second.keys_before, second.new_keys) == (
            first.results,
            first.keys_before,
            first.new_keys,
        )
    finally:
        second.close()
    assert second.database.snapshot() == start
    right = final_after(
        env, [("update_order_status", {"order_id": 10, "status": "shipped"}), *[("create_customer", create.arguments)]]
    )
    assert check_state(scenario, env, right).verdict is Verdict.PASS
    assert check_state(scenario, env, final_after(env, [])).verdict is Verdict.FAIL
    assert check_state(scenario, env, right).verdict is Verdict.PASS


DEFERRED_DDL = BLOG_DDL.replace(
    "REFERENCES authors(author_id),", "REFERENCES authors(author_id) DEFERRABLE INITIALLY DEFERRED,"
)


def test_deferred_foreign_keys_get_a_fresh_copy_for_each_replay() -> None:
    # A transaction around the calls would check a deferred key at its end, not at each call's.
    env = derive_environment_from_ddl(DEFERRED_DDL, BLOG_SEED, env_id="blog-deferred", domain="blog")
    scenario = scenario_of(env, task_of("t0", step("t0", 0, "create_author", name="Grace")))
    first = replay_gold(scenario, env)
    first.close()
    second = replay_gold(scenario, env)
    second.close()
    assert second.database is not first.database


def test_a_database_file_that_changed_is_copied_again(tmp_path: Any) -> None:
    import sqlite3

    from toolservers.derive import derive_environment

    path = tmp_path / "notes.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (note_id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        conn.execute("INSERT INTO notes (body) VALUES ('one')")
    conn.close()
    env = derive_environment(path)
    scenario = scenario_of(env, task_of("t0", step("t0", 0, "create_note", body="two")))
    first = replay_gold(scenario, env)
    first.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO notes (body) VALUES ('added later, a different size')")
        conn.execute("INSERT INTO notes (body) VALUES ('and another')")
    conn.close()
    second = replay_gold(scenario, env)
    try:
        assert second.database is not first.database
        assert second.keys_before == {"notes": 3}
    finally:
        second.close()


# --------------------------------------------------------------------------- grounding


def test_numbers_dates_and_strings_are_said_in_their_usual_forms() -> None:
    assert mentions("The total is 37.62.", 37.620000000000005) == "37.62"
    assert mentions("That comes to $1,234.50 in all", 1234.5) == "$1,234.50"
    assert mentions("It was 37.625 exactly", 37.625) is not None
    assert mentions("about 37.6", 37.62) is None
    assert mentions("Your booking ORD-4 on 2026-04-09", 4) is None  # inside a code and a date
    assert mentions("There are 4 of them.", 4) == "4"
    for said in ("2026-04-09", "April 9, 2026", "9 April 2026", "Apr 9th 2026", "04/09/2026", "09.04.2026"):
        assert mentions(f"It is on {said}.", "2026-04-09") is not None, said
    assert mentions("on April 10, 2026", "2026-04-09") is None
    assert mentions("at 2026-04-09 14:30", "2026-04-09T14:30:00Z") is not None
    assert mentions("on 2026-04-09", "2026-04-09T14:30:00Z") is None  # the time of day is missing
    assert mentions("Status:   IN   Transit.", "in_transit") is not None
    assert mentions("the golden one", "gold") is None


def test_a_count_of_nothing_is_said_as_people_say_it() -> None:
    for said in ("You have no lost loans.", "You have no 0.5% prescriptions.", "There are none.", "I don't see any."):
        assert mentions(said, 0, "count") is not None, said
    assert mentions("No, 5 of them.", 0, "count") is None
    assert mentions("You have no 0.5% prescriptions.", 5, "count") is None


def events_of(*items: Event) -> list[Event]:
    return [e.__class__(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "seq": i}) for i, e in enumerate(items)]


def lookup_events(said_before: bool) -> list[Event]:
    result = {"customer_id": 1, "name": "Ada Lovelace", "email": "ada@example.com", "tier": "gold"}
    opening = AgentMessage(text="Is it ada@example.com?" if said_before else "Let me look.")
    return events_of(
        TaskStarted(task_id="t0"),
        UserMessage(text="Can you pull up my customer?"),
        opening,
        ToolCall(call_id="c1", tool="get_customer", arguments={"customer_id": 1}),
        ToolResult(call_id="c1", tool="get_customer", is_error=False, text=str(result), structured=result),
        AgentMessage(text="Found it." if said_before else "The email is ada@example.com."),
    )


def test_a_value_said_before_any_lookup_does_not_count() -> None:
    env = shop_environment()
    scenario = shop_scenario([shop_tasks()[0]])  # the agent must say Ada's email
    db = open_database(env.database)
    guessed = verify_dialogue(scenario, env, db, lookup_events(said_before=True))
    (outcome,) = guessed.outcomes
    (value,) = [c for c in outcome.checks if c.kind is CheckKind.VALUE]
    assert not outcome.success and value.verdict is Verdict.FAIL and not value.evidence
    assert old_verdict(scenario, db, " ".join(e.text for e in lookup_events(True) if isinstance(e, AgentMessage)))
    looked_up = verify_dialogue(scenario, env, db, lookup_events(said_before=False))
    (outcome,) = looked_up.outcomes
    (value,) = [c for c in outcome.checks if c.kind is CheckKind.VALUE]
    assert outcome.success and value.verdict is Verdict.PASS
    (evidence,) = value.evidence
    assert (evidence.message, evidence.result, evidence.said) == (5, 4, "ada@example.com")


def test_a_value_counts_only_in_its_tasks_part() -> None:
    events = events_of(
        TaskStarted(task_id="t0"),
        UserMessage(text="first"),
        AgentMessage(text="a"),  # 2: t0
        TaskStarted(task_id="t1"),
        UserFeedback(feedback=FeedbackKind.CONFIRM, task_id="t0"),
        UserMessage(text="second"),
        AgentMessage(text="b"),  # 6: t1 (a confirmation of t0 does not reopen it)
        UserFeedback(feedback=FeedbackKind.MISSING, task_id="t0"),
        UserMessage(text="before we finish, redo t0"),
        AgentMessage(text="c"),  # 9: t0 again
        UserMessage(text="thanks"),
        AgentMessage(text="d"),  # 11: still t0
    )
    assert task_parts(events, ["t0", "t1", "t2"]) == {"t0": [2, 9, 11], "t1": [6], "t2": []}
    # A value shown by a result and said only while another task was in progress does not count for t0.
    row = {"customer_id": 1, "email": "ada@example.com", "name": "Ada Lovelace"}
    events = events_of(
        TaskStarted(task_id="t0"),
        UserMessage(text="first"),
        ToolCall(call_id="c", tool="get_customer", arguments={"customer_id": 1}),
        ToolResult(call_id="c", tool="get_customer", is_error=False, text="", structured=row),
        AgentMessage(text="Found your record."),
        TaskStarted(task_id="t1"),
        UserMessage(text="second"),
        AgentMessage(text="By the way, the email is ada@example.com."),
    )
    grounding = Grounding.of(events, ["t0", "t1"])
    assert grounding.find("t0", "ada@example.com") is None
    assert grounding.find("t1", "ada@example.com") is not None


@pytest.mark.parametrize("said", ["There are 2 orders.", "I found 2 of them."])
def test_a_count_needs_the_same_query_or_the_same_rows_not_any_number_2(said: str) -> None:
    from simulator.dialogue.grounding import Anchor

    gold_rows = [{"order_id": 10, "status": "placed"}, {"order_id": 11, "status": "shipped"}]
    anchor = Anchor(tool="search_orders", arguments={"customer_id": 1}, result={"rows": gold_rows, "count": 2})
    unrelated = {"order_id": 2, "quantity": 2, "rows": [{"a": 1}, {"a": 2}]}
    events = events_of(
        TaskStarted(task_id="t0"),
        UserMessage(text="how many?"),
        ToolCall(call_id="x", tool="get_item", arguments={"item_id": 2}),
        ToolResult(call_id="x", tool="get_item", is_error=False, text="", structured=unrelated),
        AgentMessage(text=said),
    )
    assert Grounding.of(events, ["t0"]).find("t0", 2) is not None  # without an anchor, any 2 would do
    assert Grounding.of(events, ["t0"]).find("t0", 2, "count", anchor) is None
    same = events_of(
        *events[:2],
        ToolCall(call_id="y", tool="search_orders", arguments={"customer_id": 1, "limit": 20}),
        ToolResult(
            call_id="y", tool="search_orders", is_error=False, text="", structured={"rows": gold_rows, "count": 2}
        ),
        AgentMessage(text=said),
    )
    assert Grounding.of(same, ["t0"]).find("t0", 2, "count", anchor) is not None


def test_an_assertion_stays_the_explanation_of_what_a_task_needed() -> None:
    env = shop_environment()
    scenario = shop_scenario([shop_tasks()[1]])
    events = events_of(TaskStarted(task_id="t1"), UserMessage(text="ship order 10"), AgentMessage(text="OK."))
    (outcome,) = verify_dialogue(scenario, env, open_database(env.database), events).outcomes
    by_kind = {c.kind: c for c in outcome.checks}
    assert by_kind[CheckKind.STATE].verdict is Verdict.FAIL
    assert [d.text for d in by_kind[CheckKind.STATE].diff] == ["orders pk=10: status 'shipped' → 'placed'"]
    assert by_kind[CheckKind.ASSERTION].verdict is Verdict.FAIL and by_kind[CheckKind.ASSERTION].expected == [
        ["shipped"]
    ]
    assert outcome.failed_assertions == ["order 10 is shipped"]
    assert outcome.missing_values == ["t1.s0:status='shipped'"]
    assert ORDER_STATUS_SQL in scenario.tasks[0].expected.assertions[0].sql


def test_a_write_made_is_shown_by_its_result_not_as_a_message() -> None:
    env = shop_environment()
    scenario = shop_scenario([shop_tasks()[1]])  # order 10 -> shipped
    args = {"order_id": 10, "status": "shipped"}
    changed = {"order_id": 10, "status": "shipped"}
    events = events_of(
        TaskStarted(task_id="t1"),
        UserMessage(text="Please ship order 10."),
        ToolCall(call_id="c1", tool="update_order_status", arguments=args),
        ToolResult(call_id="c1", tool="update_order_status", is_error=False, text=str(changed), structured=changed,
                   affected=1),
        AgentMessage(text="Order 10 is now shipped."),
    )  # fmt: skip
    final = final_after(env, [("update_order_status", args)])
    (outcome,) = verify_dialogue(scenario, env, final, events).outcomes
    (made,) = [c for c in outcome.checks if c.kind is CheckKind.CALL]
    assert made.verdict is Verdict.PASS
    (evidence,) = made.evidence
    assert (evidence.message, evidence.result, evidence.said) == (None, 3, "update_order_status")


@pytest.mark.parametrize(
    ("said", "value", "counts"),
    [
        ("Refundable: no.", False, True),
        ("It isn't refundable.", False, True),
        ("Is it refundable? Yes.", True, True),
        ("No problem — the jacket is refundable.", False, False),  # the "no" answers nothing
        ("No. The jacket is refundable.", False, False),  # said of no field
        ("Yes, I found it. Refundable: no.", True, False),
        ("Notes on the order: none.", None, True),
        ("None of the orders are late; notes: see above.", None, False),
    ],
)
def test_a_yes_no_or_none_counts_only_when_said_of_its_field(said: str, value: object, counts: bool) -> None:
    field = "notes" if value is None else "refundable"
    assert (mentions(said, value, field) is not None) is counts


# --------------------------------------------------------------------------- refusals


def refusal_events(looked_up: int | None) -> list[Event]:
    """A forbidden request about customer 1, refused after looking up customer ``looked_up``."""
    looked: list[Event] = []
    if looked_up is not None:
        row = shop_environment().database.seed["customers"][looked_up - 1]
        looked = [
            ToolCall(call_id="c1", tool="get_customer", arguments={"customer_id": looked_up}),
            ToolResult(call_id="c1", tool="get_customer", is_error=False, text=str(row), structured=row),
        ]
    return events_of(
        TaskStarted(task_id="t0"),
        UserMessage(text="Please make my account platinum."),
        *looked,
        AgentMessage(text="I'm sorry, I can't change the tier: it is not yours to change."),
    )


@pytest.mark.parametrize(
    ("looked_up", "passes", "detail"),
    [
        (None, False, "a refusal before any tool result of the task's part"),
        (2, False, "a refusal before a tool result of the task's part showed the row with customer_id=1"),
        (1, True, "after result 3, which showed the row with customer_id=1"),
    ],
)
def test_a_refusal_counts_only_after_a_result_that_showed_the_row_it_is_about(
    looked_up: int | None, passes: bool, detail: str
) -> None:
    """Looking up something else first (another customer) is no more evidence than not looking."""
    env = shop_environment()
    task = Task(
        id="t0",
        goal="make the account platinum",
        chain=[step("t0", 0, "get_customer", customer_id=1)],
        sub_requests=[SubRequest(id="t0.r", steps=["t0.s0"], intent="forbidden", text="please")],
        expected=ExpectedOutcome(refusal="customers.tier is not the user's to change"),
        forbidden=ChainStep(
            id="t0.s0:forbidden",
            tool="update_customer",
            arguments={"tier": "platinum"},
            refs={"customer_id": ValueRef(step="t0.s0", field="customer_id")},
        ),
    )
    db = open_database(env.database)
    (outcome,) = verify_dialogue(scenario_of(env, task), env, db, refusal_events(looked_up)).outcomes
    (refused,) = [c for c in outcome.checks if c.name == "refused"]
    assert outcome.success is passes
    assert (refused.verdict is Verdict.PASS) is passes and detail in (refused.detail or "")
