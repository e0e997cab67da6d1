"""The planner: plans the tasks of one scenario for one user, one kind of task at a time.

Every task is about the scenario's user (a row of the rules' user table) and their own
rows, or about public rows (a catalogue, a timetable). The user identifies themselves
the way people do (an email, a phone number) in the first task that needs it, and names
their rows by what they know (an order number, "my most recent loan", "my address on
Mill Road"), never by internal ids. Each step is executed as it is planned, on a private
copy of the database, so later steps use earlier results and the expected outcome is
what really happened. A share of the requests are ones the rules forbid: those tasks
have no write step, and their checks say that nothing changed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import msgspec

from schemas import (
    ChainStep,
    Difficulty,
    Environment,
    ExpectedOutcome,
    ExpectedValue,
    Fact,
    Persona,
    RubricItem,
    RubricKind,
    SqlAssertion,
    SubRequest,
    Task,
    ToolSpec,
    UserIdentity,
    ValueRef,
)
from schemas.errors import ToolError
from schemas.policy import Policy
from simulator.offline.language import Phrasing, a, entity, format_value, is_flag, label
from simulator.offline.planner._base import Anchor, Draft, Skip, final_assertion, rows_of
from simulator.offline.schema_view import Schema, Table
from toolservers.executor import ToolExecutor
from toolservers.sql import quote_ident

__all__ = ["Kind", "Planner", "task_count", "turn_cost"]

#: One kind of task: adds its steps, sub-requests and checks to the draft, or raises Skip.
Kind = Callable[["Planner", Draft, Anchor | None], None]


#: Turns a dialogue takes besides its tasks (the greeting, the goodbye).
_OPENING_TURNS = 4
#: The share of the turn limit the planned tasks may fill: what ``turn_cost`` cannot foresee
#: (the agent's slips and their corrections, double checks, extra look-ups before a write)
#: adds up to about 10% on long dialogues.
_TURN_SHARE = 0.85


def turn_cost(d: Draft) -> int:
    """The turns ``d`` takes in a dialogue, as planned: each request and its answer, two per
    tool call, the restatement and yes before each write (and the look-ups and read-back
    around it), and the extra exchanges of a detour, a change of mind, a refinement or a refusal."""
    cost = 4
    for sub in d.subs:
        cost += 2 + 2 * len(sub.steps)
        if sub.intent in {"create", "update", "delete"}:
            cost += 8
    cost += 10 if d.detour is not None else 0
    cost += 6 if d.change_of_mind is not None else 0
    cost += 6 if d.refinement is not None else 0
    cost += 4 if d.forbidden is not None else 0
    return cost


def task_count(rng: random.Random) -> int:
    """How many tasks a dialogue has: 1 to 12, most often 1 to 3 (mean about 2.9)."""
    return rng.choices(range(1, 13), [25, 28, 20, 9.5, 6, 4, 3, 1.8, 1.2, 0.8, 0.4, 0.3])[0]


class Planner:
    """Plans the tasks of one scenario on ``executor``'s database (a private copy).

    ``user`` keeps the scenario's user (a branch continues with the same one); without
    it one is picked. ``persona`` shapes how the requests are worded.

    ``rng`` decides what is planned (tables, rows, values, kinds); ``wording`` only how the
    requests are worded, so that changing a phrase bank never changes a plan. Without
    ``wording`` one is seeded from ``rng``'s state (without drawing from it).
    ``max_turns`` (the dialogue's turn limit, default DialogueConfig's) bounds the plan:
    tasks are added only while the dialogue can still finish within it.
    """

    def __init__(
        self,
        environment: Environment,
        executor: ToolExecutor,
        schema: Schema,
        rng: random.Random,
        *,
        persona: Persona | None = None,
        user: UserIdentity | None = None,
        wording: random.Random | None = None,
        max_turns: int | None = None,
    ) -> None:
        from simulator.offline.planner.kinds import KINDS

        self.environment = environment
        self.executor = executor
        self.schema = schema
        self.rng = rng
        self.words = wording if wording is not None else random.Random(f"wording:{rng.getstate()[1][:8]}")
        if max_turns is None:
            from simulator.dialogue.runner import DialogueConfig

            max_turns = DialogueConfig().max_turns
        self.max_turns = max_turns
        #: The turns the tasks planned so far may take (see ``turn_cost``).
        self.turns_planned = _OPENING_TURNS
        self.persona = persona or Persona(name="User")
        self.say = Phrasing(self.words, self.persona, currency=currency_of(environment))
        self.policy: Policy | None = environment.rules
        if self.policy is None:
            from simulator.policy import derive_policy

            # Read from the schema alone: derived once per schema (see Schema.memo).
            if "derived_policy" not in schema.memo:
                schema.memo["derived_policy"] = derive_policy(executor.db.query)
            self.policy = schema.memo["derived_policy"]
        from simulator.offline.planner.create import today_of

        self.say.speak_dates(today_of(self).year)
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.user: UserIdentity | None = user
        self.me_row: dict[str, Any] | None = None
        self.me_step: str | None = None
        self._kinds = KINDS
        #: What each task planned so far does (its calls and their arguments), to plan none twice.
        self._planned: set[tuple[tuple[str, str], ...]] = set()
        if self.policy is not None:
            self._pick_user()
        if self.user is None or not self._can_identify():
            # Nobody to be: rows are found by name and nothing is owned.
            from simulator.offline.planner.anonymous import ANONYMOUS_KINDS

            self._kinds = ANONYMOUS_KINDS
            self.user = None

    # ------------------------------------------------------------------ planning
    def plan(self, count: int, *, follow_up_rate: float = 0.5) -> list[Task]:
        """Plan ``count`` tasks, executing them in order, then add final-state assertions."""
        drafts: list[Draft] = []
        anchors: list[Anchor] = []
        attempts = 0
        while len(drafts) < count and attempts < count * 10:
            attempts += 1
            task_id = f"t{len(drafts)}"
            anchor = self.rng.choice(anchors[-3:]) if anchors and self.rng.random() < follow_up_rate else None
            draft = self._try_kinds(task_id, anchor)
            if draft is None:
                continue
            drafts.append(draft)
            anchors.extend(draft.anchors)
        return [self._finish(draft) for draft in drafts]

    def _try_kinds(self, task_id: str, anchor: Anchor | None) -> Draft | None:
        kinds = list(self._kinds)
        me_step, me_row = self.me_step, self.me_row
        while kinds:
            weights = [k[2] for k in kinds]
            index = self.rng.choices(range(len(kinds)), weights)[0]
            name, fn, _ = kinds.pop(index)
            draft = Draft(task_id=task_id, follows=anchor.step.split(".")[0] if anchor else None)
            keys = list(self.results)
            self.executor.db.conn.execute("SAVEPOINT plan")
            try:
                fn(self, draft, anchor)
                if draft.loose:
                    raise Skip
                signature = _signature(draft, self.me_step)
                if signature in self._planned:
                    raise Skip  # the same question twice in one conversation: nobody asks that
                if (
                    self.turns_planned > _OPENING_TURNS
                    and self.turns_planned + turn_cost(draft) > self.max_turns * _TURN_SHARE
                ):
                    # The dialogue could not finish within its turn limit (its first task is
                    # always planned: a dialogue needs one, however low the limit).
                    raise Skip
            except Skip:
                self.executor.db.conn.execute("ROLLBACK TO plan")
                self.executor.db.conn.execute("RELEASE plan")
                for key in list(self.results):
                    if key not in keys:
                        del self.results[key]
                self.me_step, self.me_row = me_step, me_row
                continue
            self.executor.db.conn.execute("RELEASE plan")
            self._planned.add(signature)
            self.turns_planned += turn_cost(draft)
            if anchor is None or not any(anchor.step in str(s.refs) for s in draft.steps):
                draft.follows = None
            return draft
        return None

    # ------------------------------------------------------------------ the user
    def _pick_user(self) -> None:
        policy = self.policy
        assert policy is not None
        users = self.schema.tables.get(policy.user_table)
        if users is None or users.pk is None:
            self.policy = None
            return
        if self.user is not None:
            rows = self.query_rows(f"SELECT * FROM {quote_ident(users.name)} ORDER BY rowid")
            match = [r for r in rows if r.get(self.user.column) == self.user.pk]
            if match:
                self.me_row = match[0]
                return
        scored = self._scored_users(policy, users)
        if not scored:
            self.policy = None
            return
        scored.sort(key=lambda x: -x[0])
        top = scored[: max(1, len(scored) // 3)]
        self.me_row = self.rng.choice(top)[1]
        # People know different things about their account (an email, a phone number, a card
        # number): the user remembers one of the ways the rules identify them.
        search = self.schema.tools.get("search", users.name)
        props = search.input_schema.get("properties", {}) if search is not None else {}
        keys = [c for c in policy.identify_by if self.me_row.get(c) and c in props]
        key = self.rng.choice(keys) if keys else next(c for c in policy.identify_by if self.me_row.get(c))
        self.user = UserIdentity(
            table=users.name,
            column=users.pk,
            pk=self.me_row[users.pk],
            name=person_name(self.me_row),
            facts={key: self.me_row[key]},
        )

    def _scored_users(self, policy: Policy, users: Table) -> list[tuple[int, dict[str, Any]]]:
        """Every user who can be identified, with how much they own, in the users table's order.

        The same for every scenario planned on a fresh copy of the same database: kept
        with the schema (``Schema.memo``) and shared; the rows are copied for each use.
        """
        hit = self.schema.memo.get("scored_users")
        if hit is None or hit[0] is not policy:
            pk = users.pk
            assert pk is not None  # _pick_user gives up on a users table without one
            rows = self.query_rows(f"SELECT * FROM {quote_ident(users.name)} ORDER BY rowid")
            owned = [(t, rules.owner[0]) for t, rules in policy.tables.items() if len(rules.owner) == 1]
            scored = []
            for row in rows:
                if not any(row.get(c) for c in policy.identify_by):
                    continue
                score = 0
                for table, fk in owned:
                    n = self.executor.db.query(
                        f"SELECT COUNT(*) FROM {quote_ident(table)} WHERE {quote_ident(fk)} = :v", {"v": row[pk]}
                    )
                    score += min(int(n[0][0]), 3) + (1 if n[0][0] else 0)
                scored.append((score, row))
            hit = (policy, scored)
            self.schema.memo["scored_users"] = hit
        return [(score, dict(row)) for score, row in hit[1]]

    def _can_identify(self) -> bool:
        if self.user is None:
            return False
        key, _ = self.me_key
        search = self.schema.tools.get("search", self.user.table)
        return search is not None and key in search.input_schema.get("properties", {})

    @property
    def me_key(self) -> tuple[str, Any]:
        assert self.user is not None
        ((key, value),) = list(self.user.facts.items())[:1]
        return key, value

    def identify(self, d: Draft) -> ValueRef:
        """The user's own row: found once per scenario, in the first task that needs it."""
        if self.policy is None or self.user is None or self.me_row is None:
            raise Skip
        table = self.schema.tables[self.user.table]
        if self.me_step is None:
            key, value = self.me_key
            search = self.schema.tools.get("search", table.name)
            if search is None or key not in search.input_schema.get("properties", {}):
                raise Skip
            sid = d.step_id()
            step = ChainStep(id=sid, tool=search.name, arguments={key: value})
            rows = self.run(step, {})
            if len(rows) != 1 or rows[0].get(table.pk or "") != self.user.pk:
                raise Skip
            d.steps.append(step)
            d.loose.append(sid)
            d.facts[key] = Fact(name=key, value=value, description=f"the {label(key)} on your account")
            self.me_step = sid
        return ValueRef(step=self.me_step, field=self.user.column)

    # ------------------------------------------------------------------ running
    def run(self, step: ChainStep, resolved: dict[str, Any]) -> list[dict[str, Any]]:
        args = dict(step.arguments)
        for name, ref in step.refs.items():
            args[name] = resolved[name] if name in resolved else self.value(ref)
        try:
            outcome = self.executor.call(step.tool, args)
        except ToolError as exc:
            raise Skip from exc
        rows = rows_of(outcome.structured)
        step.resolved = args
        self.results[step.id] = rows
        return rows

    def fails(self, tool: str, args: dict[str, Any]) -> str | None:
        """The error code ``tool`` gives for ``args`` (the database is left as it was), or None."""
        self.executor.db.conn.execute("SAVEPOINT probe")
        try:
            self.executor.call(tool, args)
        except ToolError as exc:
            return str(getattr(exc, "code", "error"))
        finally:
            self.executor.db.conn.execute("ROLLBACK TO probe")
            self.executor.db.conn.execute("RELEASE probe")
        return None

    def value(self, ref: ValueRef) -> Any:
        rows = self.results.get(ref.step, [])
        if len(rows) <= ref.row:
            raise Skip
        return rows[ref.row].get(ref.field)

    def query_rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        cur = self.executor.db.conn.execute(sql, params or {})
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    # ------------------------------------------------------------------ drafting
    def ask(self, d: Draft, steps: list[str], intent: str, text: str, *, stated: list[str] | None = None) -> None:
        """Add the sub-request that asks for ``steps`` (after any waiting identification step)."""
        sid = [*d.loose, *steps]
        d.loose.clear()
        d.subs.append(
            SubRequest(id=f"{steps[-1]}.r", steps=sid, intent=intent, stated=stated or [], text=self.say.polite(text))
        )

    def tool(self, category: str, table: str) -> ToolSpec | None:
        return self.schema.tools.get(category, table)

    def params(self, tool: ToolSpec) -> dict[str, Any]:
        props: dict[str, Any] = tool.input_schema.get("properties", {})
        return props

    def pick_table(self, fits: Callable[[Table], bool]) -> Table:
        options = [t for t in self.schema.tables.values() if fits(t)]
        if not options:
            raise Skip
        return self.rng.choice(options)

    def expect(self, d: Draft, step: str, row: dict[str, Any], fields: list[str]) -> None:
        d.values.extend(ExpectedValue(step=step, name=f, value=row.get(f)) for f in fields if row.get(f) is not None)

    def field_check(self, step: str, table: Table, column: str, pk: Any, value: Any) -> SqlAssertion:
        return SqlAssertion(
            description=f"{entity(table.name)} {pk} has {label(column)} {format_value(value)}",
            sql=f"SELECT {quote_ident(column)} FROM {quote_ident(table.name)} "
            f"WHERE {quote_ident(table.pk or 'rowid')} = :pk",
            params={"pk": pk},
            expected=[[value]],
            step=step,
        )

    def row_exists(self, step: str, table: str, values: dict[str, Any], description: str) -> SqlAssertion:
        """Whether a row with exactly these column values exists (1) or not (0)."""
        names = {c: f"v{i}" for i, c in enumerate(values)}
        where = " AND ".join(f"{quote_ident(c)} IS :{names[c]}" for c in values)
        return SqlAssertion(
            description=f"{description} exists",
            sql=f"SELECT EXISTS (SELECT 1 FROM {quote_ident(table)} WHERE {where})",
            params={names[c]: v for c, v in values.items()},
            expected=[[1]],
            step=step,
        )

    def unchanged(self, table: Table, row: dict[str, Any], columns: list[str]) -> SqlAssertion:
        """A final-state check that ``row``'s ``columns`` still hold what they hold now."""
        cols = [c for c in columns if c in row]
        return SqlAssertion(
            description=f"{entity(table.name)} {row.get(table.pk or '')} is unchanged ({', '.join(cols)})",
            sql=f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM {quote_ident(table.name)} "
            f"WHERE {quote_ident(table.pk or 'rowid')} = :pk",
            params={"pk": row.get(table.pk or "rowid")},
            expected=[[row[c] for c in cols]],
        )

    # ------------------------------------------------------------------ finishing
    def _finish(self, d: Draft) -> Task:
        assertions = []
        for i, check in enumerate(d.checks):
            if i in d.finals:
                assertions.append(d.finals[i]())
            elif check.step is None:
                assertions.append(check)
            else:
                assertions.append(final_assertion(self.executor.db, check))
        step_checks = [c for c in d.checks if c.step is not None]
        n = len(d.steps)
        difficulty = Difficulty.EASY if n <= 2 else Difficulty.MEDIUM if n <= 4 else Difficulty.HARD
        rubric = [RubricItem(RubricKind.CRITICAL, x.description) for x in assertions]
        rubric += [
            RubricItem(RubricKind.CRITICAL, f"tells the user the {label(v.name)} ({format_value(v.value, v.name)})")
            for v in d.values
        ]
        if d.refusal:
            rubric.append(RubricItem(RubricKind.CRITICAL, f"refuses the request and changes nothing: {d.refusal}"))
        rubric.append(
            RubricItem(RubricKind.STRUCTURAL, "identifies the user and asks for missing details instead of guessing")
        )
        rubric.append(RubricItem(RubricKind.STRUCTURAL, "restates every change and waits for the user's yes"))
        rubric.append(RubricItem(RubricKind.NON_CRITICAL, "reports only what was asked, in plain language"))
        facts = "; ".join(f"{f.description} is {format_value(f.value, f.name)}" for f in d.facts.values())
        purposes = [re.sub(r"\bme\b", "you", re.sub(r"\bmy\b", "your", x)) for x in d.purposes]
        goal = "You want to " + "; then ".join(purposes) + "."
        if facts:
            goal += f" You know that {facts}."
        goal += " Say yes when the assistant restates a change correctly."
        if d.refinement is not None:
            goal += f" Once you see the results, you want them {d.refinement.description}."
        if d.change_of_mind is not None:
            com = d.change_of_mind
            first = format_value(com.first, com.argument)
            goal += f" You will first ask for {label(com.argument)} {first}, then change your mind."
        if d.detour is not None:
            goal += f" You first ask for {d.detour.description}; when that fails, you accept what is possible."
        if d.refusal is not None:
            goal += " (The rules do not allow this; accept the assistant's refusal.)"
        return Task(
            id=d.task_id,
            goal=goal,
            chain=d.steps,
            sub_requests=d.subs,
            facts=list(d.facts.values()),
            difficulty=difficulty,
            rubric=rubric,
            expected=ExpectedOutcome(
                assertions=assertions, step_checks=step_checks, values=_as_told(d.values), refusal=d.refusal
            ),
            follows=d.follows,
            change_of_mind=d.change_of_mind,
            refinement=(
                None
                if d.refinement is None
                else msgspec.structs.replace(d.refinement, values=_as_told(d.refinement.values))
            ),
            detour=d.detour,
            forbidden=d.forbidden,
        )


def _signature(d: Draft, me_step: str | None) -> tuple[tuple[str, str], ...]:
    """What a task does: its calls with their arguments (finding the user aside)."""
    return tuple(
        (s.tool, msgspec.json.encode(s.resolved or s.arguments, order="sorted").decode())
        for s in d.steps
        if s.id != me_step
    )


def _as_told(values: list[ExpectedValue]) -> list[ExpectedValue]:
    """The values as the user is told them: a 0/1 flag is a yes or a no (the verifier then
    accepts "yes"/"no" for it, and the tool result's 1/0)."""
    return [msgspec.structs.replace(v, value=bool(v.value)) if is_flag(v.name, v.value) else v for v in values]


def currency_of(environment: Environment) -> str:
    text = f"{environment.description} {environment.policy or ''}".lower()
    if "euro" in text:
        return "€"
    if "pound" in text or "gbp" in text:
        return "£"
    if "dollar" in text or "usd" in text:
        return "$"
    return ""


def person_name(row: dict[str, Any]) -> str:
    first, last = row.get("first_name"), row.get("last_name")
    if first and last:
        return f"{first} {last}"
    name = row.get("name") or row.get("full_name")
    return str(name) if name else ""


def described(thing: str) -> str:
    """``a(thing)``, for goals: "an order"."""
    return a(thing)
