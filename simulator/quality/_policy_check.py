"""The policy checker: what a dialogue's writes really did, held against the environment's rules.

Every successful write call of the dialogue is replayed, in order, on a fresh copy of the
environment's database; each table is compared before and after, so what a call changed
is known whatever its SQL (a hand-written ``cancel_order`` as much as ``update_order``).
Each changed row is then checked:

- **unconfirmed write**: the user message that led to the call was not an explicit yes to
  an agent message that asked for confirmation and restated the call's values;
- **not owned**: the row belongs to another user (followed through the rules' foreign-key
  path), or is a public row changed beyond its side-effect columns;
- **forbidden change**: a status move the transitions do not allow, a column the user
  may not change (or not in the row's current state), a row created with a value the
  rules do not allow, or a row added or removed where the rules do not let the user;
- **missed refusal**: a task the rules forbid (``expected.refusal``) during which the
  agent changed something or never said it could not do it.

Who the user is comes from the scenario when it says (``scenario.user``), else from the
first row of the user table that a tool returned and whose identifying value the user
had said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas import Effect, Environment
from schemas.errors import DialogsimError
from schemas.policy import Policy
from simulator.dialogue.reading import asks_to_go_ahead, refusal
from simulator.policy import owner_of
from simulator.quality._checks import CONTROL_ARGUMENTS
from simulator.quality._text import mentions, number_tokens, word_tokens
from simulator.quality._view import DialogueView, Msg
from toolservers.database import Database, open_database
from toolservers.executor import ToolExecutor

__all__ = ["PolicyFindings", "check_policy"]

_YES = (
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "confirmed",
    "agreed",
    "go ahead",
    "please do",
    "correct",
    "that's right",
    "confirm",
    "ok",
    "okay",
    "do it",
    "absolutely",
    "of course",
    "proceed",
    "sounds good",
    "perfect",
    "right",
    "fine",
    "exactly",
    "please",
)
_YES_WORDS = frozenset(w for w in _YES if " " not in w)
_NO_WORDS = frozenset({"no", "not", "don't", "wait", "actually", "instead", "rather", "wrong", "nope"})


@dataclass(slots=True)
class PolicyFindings:
    writes: int = 0
    unconfirmed: int = 0
    not_owned: int = 0
    forbidden: int = 0
    refusals_expected: int = 0
    refusals_missed: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return self.unconfirmed + self.not_owned + self.forbidden + self.refusals_missed

    def note(self, text: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(text)


def _affirmed(text: str) -> bool:
    """Whether a reply says yes (and not no): words, not substrings ("waiting" is no "wait")."""
    low = text.lower().strip()
    words = word_tokens(low)
    head = set(words[:10])
    yes = any(w in low for w in _YES if " " in w) or bool(head & _YES_WORDS)
    if not yes:
        return False
    if words[:1] and words[0] in {"yes", "yeah", "yep", "correct", "exactly"}:
        return True
    return not (head & _NO_WORDS) and "hold on" not in low


class _Tables:
    """Snapshots of a database's tables, to see what a call changed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        names = [
            r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        ]
        self.columns = {t: [r[1] for r in db.query(f'PRAGMA table_info("{t}")')] for t in names}

    def snapshot(self) -> dict[str, dict[int, tuple[Any, ...]]]:
        out: dict[str, dict[int, tuple[Any, ...]]] = {}
        for t in self.columns:
            try:
                out[t] = {r[0]: tuple(r[1:]) for r in self.db.query(f'SELECT rowid, * FROM "{t}"')}
            except Exception:  # a WITHOUT ROWID table: not tracked
                continue
        return out

    def row(self, table: str, values: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(self.columns[table], values, strict=False))


def _user_of(view: DialogueView, env: Environment, policy: Policy, pk: str | None) -> Any:
    if view.user is not None and view.user.get("table") == policy.user_table:
        return view.user.get("pk")
    tables = {t.name: t.table for t in env.tools}
    said = ""
    results = {m.call_id: m for m in view.messages if m.role == "tool"}
    for m in view.messages:
        if m.role == "user":
            said += " " + m.text.lower()
        for call in m.calls:
            if tables.get(call.tool) != policy.user_table:
                continue
            result = results.get(call.id)
            if result is None or result.is_error:
                continue
            numbers = number_tokens(said)
            for row in result.rows():
                if any(mentions(said, row.get(c), numbers) for c in policy.identify_by if row.get(c) is not None):
                    return row.get(pk) if pk else None
    return None


def _restated(confirm: str, args: dict[str, Any]) -> bool:
    low = confirm.lower()
    numbers = number_tokens(confirm)
    for name, value in args.items():
        if name in CONTROL_ARGUMENTS or name.endswith("_id") or isinstance(value, bool) or value is None:
            continue
        if name.startswith(("is_", "has_")) and value in (0, 1):  # a flag is restated in words
            continue
        if isinstance(value, list | dict):
            continue
        if not mentions(low, value, numbers):
            return False
    return True


def check_policy(view: DialogueView, env: Environment, policy: Policy) -> PolicyFindings:
    """Check one dialogue's writes against ``policy`` by replaying them on ``env``'s database."""
    out = PolicyFindings()
    writes = {t.name for t in env.tools if t.effect is Effect.WRITE}
    try:
        db = open_database(env.database)
    except DialogsimError:
        return out
    try:
        executor = ToolExecutor(env, db, source=f"environment {env.id}")
        tables = _Tables(db)
        pks = [r[1] for r in db.query(f'PRAGMA table_info("{policy.user_table}")') if r[5]]
        user = _user_of(view, env, policy, pks[0] if len(pks) == 1 else None)
        results = {m.call_id: m for m in view.messages if m.role == "tool" and m.call_id}
        last_user: Msg | None = None
        last_agent_text = ""
        before_user_agent = ""
        changed_in: dict[str | None, int] = {}
        for m in view.messages:
            if m.role == "user":
                last_user = m
                before_user_agent = last_agent_text
                continue
            if m.role != "assistant":
                continue
            if m.text:
                last_agent_text = m.text
            for call in m.calls:
                if call.tool not in writes:
                    continue
                out.writes += 1
                if policy.confirm_writes and not (
                    last_user is not None
                    and _affirmed(last_user.text)
                    and asks_to_go_ahead(before_user_agent)
                    and _restated(before_user_agent, call.args)
                ):
                    out.unconfirmed += 1
                    out.note(f"unconfirmed {call.tool}({_short(call.args)})")
                result = results.get(call.id)
                if result is None or result.is_error:
                    continue
                before = tables.snapshot()
                try:
                    executor.call(call.tool, call.args)
                except DialogsimError:
                    continue
                after = tables.snapshot()
                n = _judge_changes(out, policy, db, tables, before, after, user)
                task = last_user.task if last_user is not None else None
                changed_in[task] = changed_in.get(task, 0) + n
    finally:
        db.close()
    for task in sorted(view.refusals):
        replies = [m.text.lower() for m in _task_span(view, task) if m.role == "assistant" and m.text]
        if not replies:
            continue  # the dialogue ended before the request was answered: nothing to judge
        out.refusals_expected += 1
        said = " ".join(replies)
        if changed_in.get(task, 0) or refusal(said) is None:
            out.refusals_missed += 1
            out.note(f"task {task}: not refused")
    return out


def _task_span(view: DialogueView, task: str) -> list[Msg]:
    span: list[Msg] = []
    inside = False
    for m in view.messages:
        if m.role == "user":
            inside = m.task == task
        if inside:
            span.append(m)
    return span


def _short(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in list(args.items())[:3])


def _judge_changes(
    out: PolicyFindings,
    policy: Policy,
    db: Database,
    tables: _Tables,
    before: dict[str, dict[int, tuple[Any, ...]]],
    after: dict[str, dict[int, tuple[Any, ...]]],
    user: Any,
) -> int:
    changes = 0
    for table, rows_after in after.items():
        rows_before = before.get(table, {})
        rules = policy.rules(table)
        for rowid in rows_before.keys() | rows_after.keys():
            old, new = rows_before.get(rowid), rows_after.get(rowid)
            if old == new:
                continue
            changes += 1
            old_row = tables.row(table, old) if old is not None else None
            new_row = tables.row(table, new) if new is not None else None
            if rules.public:
                moved = [c for c in tables.columns[table] if old_row and new_row and old_row[c] != new_row[c]]
                if old_row is None or new_row is None or any(c not in rules.side_effects for c in moved):
                    out.not_owned += 1
                    out.note(f"public {table} row {rowid} changed")
                continue
            if not policy.owned(table):
                out.forbidden += 1
                out.note(f"{table} row {rowid} changed (the rules let no user change it)")
                continue
            row = new_row or old_row
            assert row is not None
            if user is not None:
                owner = owner_of(policy, db.query, table, row)
                if owner is not None and owner != user:
                    out.not_owned += 1
                    out.note(f"{table} row {rowid} belongs to another user")
                    continue
            if old_row is None:
                if table != policy.user_table and not rules.create:
                    out.forbidden += 1
                    out.note(f"{table}: the user may not add rows")
                assert new_row is not None
                for col, allowed in rules.initial.items():
                    if new_row.get(col) not in allowed:
                        out.forbidden += 1
                        out.note(f"new {table} row with {col}={new_row.get(col)!r}")
                continue
            if new_row is None:
                if not rules.delete:
                    out.forbidden += 1
                    out.note(f"{table} row {rowid} deleted")
                continue
            for col in tables.columns[table]:
                if old_row[col] == new_row[col]:
                    continue
                if col not in rules.editable:
                    out.forbidden += 1
                    out.note(f"{table}.{col} is not the user's to change")
                    continue
                moves = rules.transitions.get(col)
                if moves is not None and new_row[col] not in moves.get(str(old_row[col]), []):
                    out.forbidden += 1
                    out.note(f"{table}.{col}: {old_row[col]!r} -> {new_row[col]!r} is not allowed")
                    continue
                for other, values in rules.editable_when.get(col, {}).items():
                    if old_row.get(other) not in values:
                        out.forbidden += 1
                        out.note(f"{table}.{col} changed while {other}={old_row.get(other)!r}")
    return changes
