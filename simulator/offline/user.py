"""The offline user simulator: agenda-based, grounded in the database, template language.

It follows the user-oriented rules: it opens naturally, asks for one or two things per
turn, keeps facts to itself until the agent asks for them, checks every answer against
the real database state and the values it expects, says so when something is wrong or
missing, sometimes narrows a search, changes its mind or asks for a double check, and
ends, with an explicit completion flag, only when every task checks out. In
task-oriented mode it states everything in its first message instead.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schemas import (
    ChainStep,
    FeedbackKind,
    Mode,
    Scenario,
    SqlAssertion,
    SubRequest,
    Task,
    UserFeedback,
)
from schemas.errors import ConfigError
from simulator.dialogue.grounding import mentions
from simulator.dialogue.roles import UserContext, UserFactory, UserTurn
from simulator.dialogue.verify import check_assertion
from simulator.offline.acts import (
    Act,
    Affirm,
    Ask,
    Bye,
    Change,
    Correct,
    Greet,
    Inform,
    Refine,
    Report,
    Request,
    Verify,
)
from simulator.offline.language import Phrasing, format_value, label

__all__ = ["OfflineUser", "offline_user_brain"]

Query = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

_MAX_ATTEMPTS = 3


@dataclass(slots=True)
class _Item:
    task: Task
    sub: SubRequest
    attempts: int = 0


@dataclass(slots=True)
class _Pending:
    """What the user is waiting for: the item's result, a refinement, a change, a check."""

    kind: str  # result | refine | change | verify | final
    item: _Item
    step: str | None = None
    #: What the agent has said since the request (an answer may span several messages).
    texts: list[str] = field(default_factory=list)
    #: Values the agent reported per step, when it speaks in acts.
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Steps whose answer was already right: not judged again after a correction of another.
    settled: set[str] = field(default_factory=set)


class OfflineUser:
    """The agenda-based user of one scenario.

    ``query`` reads the dialogue's live database (read-only) so feedback is grounded in
    what the tools really did.
    """

    brain = "offline-template"

    def __init__(self, scenario: Scenario, query: Query, *, rng: random.Random, get_tools: dict[str, str]) -> None:
        self.scenario = scenario
        self.query = query
        self.rng = rng
        self.say = Phrasing(rng, scenario.persona)
        # table -> name of its get tool, for double checks
        self.get_tools = get_tools
        self.agenda = [_Item(task, sub) for task in scenario.tasks for sub in task.sub_requests]
        self.steps: dict[str, ChainStep] = {s.id: s for t in scenario.tasks for s in t.chain}
        # Facts are per task: two tasks may each know a different order number.
        self.facts: dict[str, dict[str, Any]] = {t.id: {f.name: f.value for f in t.facts} for t in scenario.tasks}
        self.told: set[tuple[str, str]] = set()
        self.pending: _Pending | None = None
        self.done_refine: set[str] = set()
        self.done_change: set[str] = set()
        self.verified: set[str] = set()
        self.started: set[str] = set()
        self.final_attempts = 0
        self.final_tried: set[str] = set()
        #: Tasks with a request the user gave up on: they do not check out, whatever the database says.
        self.abandoned: set[str] = set()
        unsure = {"polite": 0.25, "neutral": 0.35, "impatient": 0.15}
        self.unsure_rate = unsure.get(scenario.persona.temperament, 0.3)

    # ------------------------------------------------------------------ turns
    async def opening(self) -> UserTurn:
        """The first message of the dialogue."""
        return self.open()

    async def respond(self, text: str, acts: list[Act]) -> UserTurn:
        """React to the agent's message."""
        return self.react(text, acts)

    def open(self) -> UserTurn:
        if self.scenario.mode is Mode.TASK_ORIENTED:
            return self._everything_up_front()
        if self.scenario.initial_state.history:  # a continued conversation: no second hello
            greeting = self.say.pick(["I have another request.", "Something else:", "One more thing,"])
        else:
            greeting = self.say.greeting()
        turn = UserTurn(text=greeting + " ", acts=[Greet()])
        self._ask_next(turn, first=True, lowercase=greeting.endswith(","))
        return turn

    def react(self, text: str, acts: list[Act]) -> UserTurn:
        """React to the agent's message (synchronously: the offline user never waits)."""
        turn = UserTurn(text="", acts=[])
        if self.pending is not None:
            self.pending.texts.append(text)
            for act in acts:
                if isinstance(act, Report) and act.ok:
                    self.pending.reports[act.step] = act.values
        asks = [a for a in acts if isinstance(a, Ask)]
        # An agent that speaks in acts asks with an Ask act; one that sends none (an outside
        # agent) is read from its text.
        wanted = [s for a in asks for s in a.slots] if acts else self._slots_asked_in(text)
        if wanted and self.pending is not None and self.pending.kind != "final":
            self._inform(turn, wanted)
            return turn
        if self.pending is None:
            return self._finish(turn, text)
        pending = self.pending
        if self.scenario.mode is Mode.TASK_ORIENTED:
            return self._check_everything(turn, text, acts)
        problem, failing = self._judge(pending, " ".join(pending.texts), acts)
        item = pending.item
        if problem:
            item.attempts += 1
            if item.attempts > _MAX_ATTEMPTS:
                self.abandoned.add(item.task.id)
                turn.text = self.say.pick(["Never mind that part.", "Let's leave that for now.", "Forget it."]) + " "
                self._advance(turn)
                return turn
            self._complain(turn, pending, problem, failing)
            return turn
        self._feedback(turn, FeedbackKind.CONFIRM, item, pending.step, "the answer matches")
        turn.text = self.say.thanks() + " "
        step = item.sub.steps[-1]
        task = item.task
        if pending.kind in {"result", "change"} and task.refinement and task.refinement.step == step:
            if step not in self.done_refine:
                self.done_refine.add(step)
                self.pending = _Pending("refine", item, step)
                turn.acts.append(Refine(step=step, args=task.refinement.arguments))
                turn.text += self.say.please(f"Can you show them {task.refinement.description}")
                self._feedback(turn, FeedbackKind.REFINE, item, step, task.refinement.description)
                return turn
        if task.change_of_mind and task.change_of_mind.step == step and step not in self.done_change:
            self.done_change.add(step)
            com = task.change_of_mind
            final = self.steps[step].arguments[com.argument]
            self.pending = _Pending("change", item, step)
            turn.acts.append(Change(step=step, args={com.argument: final}))
            turn.text += (
                f"{self.say.change_mind()} please make the {label(com.argument)} {format_value(final)} instead "
                f"of {format_value(com.first)}."
            )
            self._feedback(turn, FeedbackKind.CHANGE_OF_MIND, item, step, f"{com.argument}: {com.first} -> {final}")
            return turn
        if pending.kind in {"result", "change"} and step not in self.verified and self._writes(step):
            verify = self._verify_act(step)
            if verify is not None and self.rng.random() < self.unsure_rate:
                self.verified.add(step)
                self.pending = _Pending("verify", item, step)
                turn.acts.append(verify)
                turn.text += self.say.unsure()
                self._feedback(turn, FeedbackKind.CONFIRMATION_REQUEST, item, step, "asks to double-check")
                return turn
        turn.acts.append(Affirm())
        self._advance(turn)
        return turn

    # ------------------------------------------------------------------ agenda
    def _advance(self, turn: UserTurn) -> None:
        if self.pending is not None:
            done = self.pending.item
            if done in self.agenda:
                self.agenda.remove(done)
        self.pending = None
        if not self.agenda:
            self._final_check(turn)
            return
        marker = self.say.next_marker()
        turn.text += marker + " "
        self._ask_next(turn, first=False, lowercase=marker.endswith(","))

    def _ask_next(self, turn: UserTurn, *, first: bool, lowercase: bool = False) -> None:
        item = self.agenda[0]
        self._start(turn, item.task)
        self._request(turn, item, first=first, lead=not lowercase)
        self.pending = _Pending("result", item, item.sub.steps[-1])
        # One or two sub-requests per turn: pair a second one of the same task now and then,
        # when neither needs a withheld fact and it reads naturally.
        if len(self.agenda) > 1 and self.rng.random() < 0.25:
            nxt = self.agenda[1]
            if nxt.task is item.task and not self._withheld(item) and not self._withheld(nxt):
                self.agenda.remove(nxt)
                merged = SubRequest(
                    id=item.sub.id,
                    steps=[*item.sub.steps, *nxt.sub.steps],
                    intent=item.sub.intent,
                    text=item.sub.text,
                    stated=item.sub.stated,
                )
                item.sub = merged
                turn.text += " " + self.say.pick(["And then", "After that,", "Also"]) + " "
                self._request(turn, nxt, first=False, acts_only=False, lead=False)
                self.pending = _Pending("result", item, merged.steps[-1])

    def _request(self, turn: UserTurn, item: _Item, *, first: bool, acts_only: bool = False, lead: bool = True) -> None:
        sub = item.sub
        context = ""
        if first and item.task.follows is None:
            context = self.say.context(
                self.say.pick(["I've got a couple of things to sort out.", "It's about my account."])
            )
        text = sub.text
        facts = self.facts[item.task.id]
        again: list[tuple[str, Any]] = []
        other: list[tuple[str, Any]] = []
        for sid in sub.steps:
            step = self.steps[sid]
            args = {k: v for k, v in step.arguments.items() if k not in facts or k in sub.stated}
            com = item.task.change_of_mind
            if com is not None and com.step == sid and sid not in self.done_change:
                args[com.argument] = com.first
            withheld = [k for k in step.arguments if k in facts and k not in sub.stated]
            # A fact already told earlier in the dialogue is said again, not withheld; so is
            # one whose name was told with another value (the agent would reuse the old one).
            for k in list(withheld):
                if _key(k, facts[k]) in self.told:
                    withheld.remove(k)
                    args[k] = facts[k]
                    again.append((k, facts[k]))
                elif any(name == k for name, _ in self.told):
                    withheld.remove(k)
                    args[k] = facts[k]
                    other.append((k, facts[k]))
                    self.told.add(_key(k, facts[k]))
            turn.acts.append(
                Request(step=sid, tool=step.tool, args=args, refs=step.refs, withheld=withheld, report=step.report)
            )
        if not acts_only:
            if context or lead:
                body = self.say.please(text)
            else:
                body = text[:1].lower() + text[1:]
            turn.text += context + body
            if again:
                turn.text += (
                    " " + "; ".join(f"the {label(k)} is still {format_value(v)}" for k, v in again).capitalize()
                )
                turn.text += "."

    def _withheld(self, item: _Item) -> bool:
        facts = self.facts[item.task.id]
        return any(
            k in facts and k not in item.sub.stated and _key(k, facts[k]) not in self.told
            for sid in item.sub.steps
            for k in self.steps[sid].arguments
        )

    def _start(self, turn: UserTurn, task: Task) -> None:
        if task.id not in self.started:
            self.started.add(task.id)
            turn.started_tasks.append(task.id)

    def _inform(self, turn: UserTurn, wanted: list[str]) -> None:
        facts = self._current_facts()
        known = [(s, facts[s]) for s in wanted if s in facts]
        if not known and self.pending is not None:
            # The agent asked for something the user only knows as the current step's argument.
            for sid in self.pending.item.sub.steps:
                step = self.steps[sid]
                known += [(s, step.resolved[s]) for s in wanted if s in step.resolved and s not in step.refs]
        if known:
            self.told.update(_key(k, v) for k, v in known)
            turn.acts.append(Inform(args=dict(known)))
            turn.text = self.say.inform(known)
        else:
            turn.text = self.say.dont_know()
            turn.acts.append(Inform(args={}))

    # ------------------------------------------------------------------ judging
    def _judge(self, pending: _Pending, text: str, acts: list[Act]) -> tuple[str, list[str]]:
        """What is wrong with the answer ("" when nothing) and which steps need redoing.

        Problems: ``error`` (the agent reported a failure), ``missing`` (the database does
        not show a write), ``wrong`` (a value the user expects was not said).
        """
        item = pending.item
        task = item.task
        steps = item.sub.steps if pending.kind == "result" else [pending.step or item.sub.steps[-1]]
        failed = [a.step for a in acts if isinstance(a, Report) and not a.ok and a.step in steps]
        if failed:
            return "error", failed
        if pending.kind == "refine" and task.refinement is not None:
            unsaid = [v.name for v in task.refinement.values if not _said(v.value, text)]
            return ("wrong", [task.refinement.step]) if unsaid else ("", [])
        unwritten = {
            c.step
            for c in task.expected.step_checks
            if c.step in steps and not check_assertion(self.query, self._phase_check(task, c))
        }
        if pending.kind == "verify":
            return ("missing", [s for s in steps if s in unwritten]) if unwritten else ("", [])
        superseded = task.change_of_mind.argument if pending.kind == "result" and task.change_of_mind else None
        wrong = {
            v.step
            for v in task.expected.values
            if v.step in steps
            and v.step not in pending.settled
            and v.name != superseded
            and not self._told_value(pending, v.step, v.name, v.value, text)
        }
        # Everything that went wrong is redone together: a wrong lookup and the write that
        # used it are corrected in one go, in chain order.
        failing = [s for s in steps if s in unwritten or s in wrong]
        if unwritten:
            return "missing", failing
        return ("wrong", failing) if wrong else ("", [])

    def _told_value(self, pending: _Pending, step: str, name: str, value: Any, text: str) -> bool:
        """Whether the agent gave ``value``: in its report of the step when it sent one, else in its words."""
        reported = pending.reports.get(step)
        if reported is not None and name in reported:
            return _same_value(reported[name], value)
        return _said(value, text)

    def _phase_check(self, task: Task, check: SqlAssertion) -> SqlAssertion:
        com = task.change_of_mind
        if com is None or com.step != check.step or com.step in self.done_change:
            return check
        return SqlAssertion(
            description=check.description,
            sql=check.sql,
            params=check.params,
            expected=[[com.first]],
            step=check.step,
        )

    def _complain(self, turn: UserTurn, pending: _Pending, problem: str, failing: list[str]) -> None:
        item = pending.item
        if pending.kind == "refine" and item.task.refinement is not None:
            ref = item.task.refinement
            turn.acts.append(
                Correct(
                    step=ref.step,
                    tool=self.steps[ref.step].tool,
                    args={**self.steps[ref.step].resolved, **ref.arguments},
                )
            )
            turn.text = f"{self.say.wrong()} I asked for them {ref.description}."
            self._feedback(turn, FeedbackKind.CORRECTION, item, ref.step, "refinement not applied")
            pending.texts.clear()
            pending.reports.clear()
            return
        # Redo only the steps that went wrong, with the complete arguments the user has in
        # mind; a write that already took effect is not repeated, a right answer not re-judged.
        if pending.kind == "result":
            pending.settled.update(s for s in item.sub.steps if s not in failing)
        for sid in failing:
            args = dict(self.steps[sid].resolved)
            com = item.task.change_of_mind
            if com is not None and com.step == sid and sid not in self.done_change:
                args[com.argument] = com.first
            turn.acts.append(Correct(step=sid, tool=self.steps[sid].tool, args=args))
        step = self.steps[failing[-1]]
        hint = _hint(step, args)
        if problem == "missing":
            turn.text = f"{self.say.missing()} Could you try again?" + (f" It's the one with {hint}." if hint else "")
            self._feedback(turn, FeedbackKind.MISSING, item, step.id, "the database does not show the change")
        elif problem == "error":
            turn.text = self.say.pick(["That gave an error.", "Something went wrong there."]) + (
                f" Please try again — it's the one with {hint}." if hint else " Please try again."
            )
            self._feedback(turn, FeedbackKind.MISSING, item, step.id, "the agent reported an error")
        else:
            turn.text = self.say.wrong() + (f" I meant the one with {hint}." if hint else " Can you check again?")
            self._feedback(turn, FeedbackKind.CORRECTION, item, step.id, "expected values not in the answer")
        pending.texts.clear()
        pending.reports.clear()

    def _final_check(self, turn: UserTurn) -> None:
        failing = self._failing()
        # A write that does not show gets one more try; a request given up on does not.
        retry = [t for t in failing if t.id not in self.final_tried and not self._assertions_hold(t)]
        if retry:
            task = retry[0]
            self.final_tried.add(task.id)
            writes = [a for a in task.expected.step_checks if a.step is not None and not check_assertion(self.query, a)]
            for check in writes:
                if check.step is not None:
                    step = self.steps[check.step]
                    turn.acts.append(Correct(step=step.id, tool=step.tool, args=step.resolved))
            turn.text += f"Before we finish — {self.say.missing().lower()} Could you redo it?"
            fake = _Item(task, task.sub_requests[-1], attempts=_MAX_ATTEMPTS - 1)
            self._feedback(turn, FeedbackKind.MISSING, fake, writes[0].step if writes else None, "final state check")
            self.pending = _Pending("final", fake, writes[-1].step if writes else None)
            return
        self._goodbye(turn, done=not failing)

    def _failing(self) -> list[Task]:
        """The tasks that do not check out by what the user can observe: a final-state
        assertion fails, or a request was given up on (a value never given, a write never done)."""
        return [t for t in self.scenario.tasks if t.id in self.abandoned or not self._assertions_hold(t)]

    def _assertions_hold(self, task: Task) -> bool:
        return all(check_assertion(self.query, a) for a in task.expected.assertions)

    def _goodbye(self, turn: UserTurn, *, done: bool) -> None:
        """The last message: the completion flag and thanks only when every task checked out."""
        turn.acts.append(Bye())
        if done:
            turn.text += self.say.bye()
            turn.complete = True
        else:
            turn.text += self.say.pick(_GIVE_UP)
            turn.gave_up = True
        self.pending = None

    def _finish(self, turn: UserTurn, text: str) -> UserTurn:
        self._goodbye(turn, done=not self._failing())
        return turn

    # ------------------------------------------------------------------ task-oriented
    def _everything_up_front(self) -> UserTurn:
        turn = UserTurn(text=self.say.greeting() + " I need the following done: ", acts=[Greet()])
        parts = []
        for task in self.scenario.tasks:
            self._start(turn, task)
            for sub in task.sub_requests:
                for sid in sub.steps:
                    step = self.steps[sid]
                    args = dict(step.arguments)
                    if task.refinement is not None and task.refinement.step == sid:
                        args.update(task.refinement.arguments)
                    turn.acts.append(Request(step=sid, tool=step.tool, args=args, refs=step.refs, report=step.report))
                parts.append(sub.text)
            if task.refinement is not None:
                parts.append(f"Show the results {task.refinement.description}.")
        facts = [f for t in self.scenario.tasks for f in t.facts]
        if facts:
            parts.append(
                "For reference: " + "; ".join(f"{f.description} is {format_value(f.value)}" for f in facts) + "."
            )
        self.told.update(_key(f.name, f.value) for f in facts)
        turn.text += " ".join(parts)
        self.pending = _Pending("result", self.agenda[0]) if self.agenda else None
        return turn

    def _check_everything(self, turn: UserTurn, text: str, acts: list[Act]) -> UserTurn:
        said_so_far = " ".join(self.pending.texts) if self.pending is not None else text
        unfinished = [t for t in self.scenario.tasks if not self._task_checks_out(t, said_so_far)]
        if unfinished and self.final_attempts < 1:
            self.final_attempts += 1
            for task in unfinished:
                for step in task.chain:
                    if any(c.step == step.id and check_assertion(self.query, c) for c in task.expected.step_checks):
                        continue
                    args = dict(step.resolved)
                    if task.refinement is not None and task.refinement.step == step.id:
                        args.update(task.refinement.arguments)
                    turn.acts.append(Correct(step=step.id, tool=step.tool, args=args))
            what = _sentence_list([t.sub_requests[-1].intent.replace("_", " ") for t in unfinished])
            turn.text = f"{self.say.wrong()} Please check the {what} again."
            for task in unfinished:
                self._feedback(
                    turn, FeedbackKind.CORRECTION, _Item(task, task.sub_requests[-1]), None, "whole-task check"
                )
            return turn
        turn.text = ""
        self._goodbye(turn, done=not unfinished)
        return turn

    def _task_checks_out(self, task: Task, text: str) -> bool:
        values = [*task.expected.values, *(task.refinement.values if task.refinement else [])]
        return all(check_assertion(self.query, a) for a in task.expected.assertions) and all(
            _said(v.value, text) for v in values
        )

    # ------------------------------------------------------------------ helpers
    def _writes(self, step: str) -> bool:
        return any(c.step == step for t in self.scenario.tasks for c in t.expected.step_checks)

    def _verify_act(self, step: str) -> Verify | None:
        for task in self.scenario.tasks:
            for check in task.expected.step_checks:
                if check.step == step and "pk" in check.params:
                    table = check.sql.split('FROM "', 1)[1].split('"', 1)[0]
                    tool = self.get_tools.get(table)
                    pk_name = check.sql.rsplit('"', 2)[-2]
                    if tool is not None and "COUNT(" not in check.sql:
                        return Verify(step=step, tool=tool, args={pk_name: check.params["pk"]})
        return None

    def _slots_asked_in(self, text: str) -> list[str]:
        """Facts of the task in progress that the agent's questions (sentences ending in '?') name."""
        if self.pending is None:
            return []
        questions = _questions(text)
        if not questions:
            return []
        facts = self.facts[self.pending.item.task.id]
        return [n for n, v in facts.items() if _key(n, v) not in self.told and label(n).lower() in questions]

    def _current_facts(self) -> dict[str, Any]:
        """The facts of the task in progress, then those of the others."""
        merged: dict[str, Any] = {}
        current = self.pending.item.task.id if self.pending is not None else None
        for task_id, facts in self.facts.items():
            if task_id != current:
                merged.update(facts)
        if current is not None:
            merged.update(self.facts[current])
        return merged

    def _feedback(self, turn: UserTurn, kind: FeedbackKind, item: _Item, step: str | None, detail: str) -> None:
        turn.feedback.append(UserFeedback(feedback=kind, task_id=item.task.id, step_id=step, detail=detail))


#: How the user ends when not everything was done: no thanks, no completion flag.
_GIVE_UP = [
    "I'll sort the rest out another time.",
    "Let's stop here; not everything got done.",
    "I'll have to take this up elsewhere.",
]


def _questions(text: str) -> str:
    """The sentences of ``text`` that end in '?', lower-cased: one pass, linear in ``len(text)``.

    (``re.findall(r"[^.!?]*\\?", text)`` backtracks quadratically over a long run with no
    '.', '!' or '?', such as a long comma-separated list.)
    """
    found: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        if end.group() == "?":
            found.append(text[start : end.end()].lower())
        start = end.end()
    return " ".join(found)


_SENTENCE_END = re.compile(r"[.!?]")


def _said(value: Any, text: str) -> bool:
    """Whether ``text`` says ``value``, by the verifier's rules for saying a value."""
    return mentions(text, value) is not None


def _hint(step: ChainStep, args: dict[str, Any]) -> str:
    """How the user identifies what they mean: the step's own arguments, as now intended."""
    shown = [(k, args.get(k, v)) for k, v in step.arguments.items() if k not in {"limit", "descending", "order_by"}]
    return ", ".join(f"{label(k)} {format_value(v)}" for k, v in shown[:2])


def _sentence_list(parts: list[str]) -> str:
    unique = list(dict.fromkeys(parts))
    return unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " and " + unique[-1]


def _key(name: str, value: Any) -> tuple[str, str]:
    return (name, repr(value))


def offline_user_brain(argument: str) -> UserFactory:
    """The ``offline`` user spec: takes no argument."""
    if argument:
        raise ConfigError(f"the offline user takes no argument, got {argument!r}")

    async def factory(ctx: UserContext) -> OfflineUser:
        env = ctx.environment
        get_tools = {t.table: t.name for t in env.tools if t.category == "get" and t.table}
        return OfflineUser(ctx.scenario, ctx.query, rng=ctx.rng, get_tools=get_tools)

    return factory


def _same_value(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return format_value(a) == format_value(b)
