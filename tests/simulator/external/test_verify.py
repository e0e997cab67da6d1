"""The comparisons behind external verification: results that vary between runs, state trees."""

from __future__ import annotations

from schemas import FileChange
from simulator.external.spec import bind_state, unbind_state
from simulator.external.tree import diff
from simulator.external.verify import compare_result, compare_trees


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


def test_the_state_token_is_bound_and_unbound_everywhere() -> None:
    from pathlib import Path

    state = Path("/tmp/dialogsim-x/state")
    args = {"repo_path": "{state}", "files": ["{state}/a.txt"], "n": 3}
    bound = bind_state(args, state)
    assert bound == {"repo_path": "/tmp/dialogsim-x/state", "files": ["/tmp/dialogsim-x/state/a.txt"], "n": 3}
    assert unbind_state(bound, state) == args
    assert FileChange(path="a", change="removed").digest is None
