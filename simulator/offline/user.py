"""The offline user simulator: agenda-based, grounded in the database, template language.

It follows the user-oriented rules: it opens naturally, asks for one or two things per
turn, says who it is and what it means the way people do (an email, an order number,
"my most recent loan"), keeps facts to itself until the agent asks, answers a restated
change with a yes (or corrects it, or changes its mind), accepts a refusal the rules
call for, gives a better value when the tool refused the first, checks every answer
against the real database state and the values it expects, says so when something is
wrong or missing, sometimes narrows a search or asks for a double check, and ends, with
an explicit completion flag, only when every task checks out. In task-oriented mode it
states everything in its first message instead.

Its dialogue acts are a faithful parse of its words: an argument goes into an act's
``args`` only when its value is in the user's words so far; what it has in mind but has
not said is only named (``withheld``). It reads the agent's words alone, never the agent's
acts (:mod:`simulator.dialogue.reading`): what it is asked, whether it is asked leave to
write, whether the agent refused or a tool failed, and whether the answer says what it
expects, it takes from what a person would see.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types

from schemas import (
    ChainStep,
    Effect,
    Environment,
    ExpectedValue,
    FeedbackKind,
    Mode,
    Scenario,
    SubRequest,
    Task,
    UserFeedback,
)
from schemas.errors import ConfigError
from simulator.dialogue.grounding import mentions
from simulator.dialogue.reading import asks_to_go_ahead, failure, refusal, requests
from simulator.dialogue.roles import UserContext, UserFactory, UserTurn
from simulator.dialogue.verify import check_assertion, expected_values, refused
from simulator.offline.acts import (
    Act,
    Affirm,
    Bye,
    Change,
    Confirm,
    Correct,
    Greet,
    Inform,
    Refine,
    Request,
    Verify,
)
from simulator.offline.language import (
    Phrasing,
    attach,
    dash_case,
    field_name,
    field_words,
    format_value,
    label,
    value_forms,
)

__all__ = ["OfflineUser", "offline_user_brain", "write_tools_of"]

Query = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

_MAX_ATTEMPTS = 3
#: Words with which an agent asks how to find the user ("your email", "the patient ID").
_IDENTITY_WORDS = ("email", "phone", "id", "number", "name", "account", "details", "reference", "who")
_WORD = re.compile(r"[a-z]+")
_CONTROL = frozenset({"limit", "order_by", "descending", "group_by", "include_cancelled", "only_free"})
_AFTERTHOUGHTS = (
    "I hope that's not too complicated.",
    "Thanks in advance for looking into it.",
    "I appreciate your help with this.",
    "It would really help me out.",
    "No rush, but I'd like to get it sorted today.",
    "Let me know if you need anything from me.",
    "I'd be grateful if we could get it done today.",
    "Sorry if I'm explaining it badly.",
    "Tell me if anything's unclear.",
    "I think that's all the details you need.",
    "That would be a big help.",
    "I've been going back and forth about it.",
    "Hopefully it's a quick one.",
    "I'm sure it's straightforward for you.",
)


@dataclass(slots=True)
class _Item:
    task: Task
    sub: SubRequest
    attempts: int = 0


@dataclass(slots=True)
class _Pending:
    """What the user is waiting for: the item's result, a refinement, a check."""

    kind: str  # result | refine | verify | final
    item: _Item
    step: str | None = None
    #: What the agent has said since the request (an answer may span several messages).
    texts: list[str] = field(default_factory=list)
    #: Steps whose answer was already right: not judged again after a correction of another.
    settled: set[str] = field(default_factory=set)


class OfflineUser:
    """The agenda-based user of one scenario.

    ``query`` reads the dialogue's live database (read-only) so feedback is grounded in
    what the tools really did.
    """

    brain = "offline-template"

    def __init__(
        self,
        scenario: Scenario,
        query: Query,
        *,
        rng: random.Random,
        get_tools: dict[str, str],
        currency: str = "",
        write_tools: frozenset[str] = frozenset(),
    ) -> None:
        self.scenario = scenario
        #: The tools that change something: the user knows which of its requests are changes.
        self.write_tools = write_tools
        self.query = query
        self.rng = rng
        self.say = Phrasing(rng, scenario.persona, currency=currency)
        self.get_tools = get_tools
        self.agenda = [_Item(task, sub) for task in scenario.tasks for sub in task.sub_requests]
        self.steps: dict[str, ChainStep] = {s.id: s for t in scenario.tasks for s in t.chain}
        self.task_of: dict[str, Task] = {s.id: t for t in scenario.tasks for s in t.chain}
        self.facts: dict[str, dict[str, Any]] = {t.id: {f.name: f.value for f in t.facts} for t in scenario.tasks}
        #: Everything the user has said, lower case: what may go into an act's ``args``.
        self.said = ""
        self.told: set[tuple[str, str]] = set()
        self.pending: _Pending | None = None
        self.done_refine: set[str] = set()
        self.done_change: set[str] = set()
        self.done_detour: set[str] = set()
        self.verified: set[str] = set()
        self.started: set[str] = set()
        self.final_tried: set[str] = set()
        self.final_attempts = 0
        #: Tasks with a request the user gave up on: they do not check out, whatever the database says.
        self.abandoned: set[str] = set()
        unsure = {"polite": 0.2, "neutral": 0.25, "impatient": 0.1}
        self.unsure_rate = unsure.get(scenario.persona.temperament, 0.3)

    # ------------------------------------------------------------------ turns
    async def opening(self) -> UserTurn:
        """The first message of the dialogue."""
        return self._said(self.open())

    async def respond(self, text: str, acts: list[Act]) -> UserTurn:
        """React to the agent's message."""
        return self._said(self.react(text, acts))

    def _said(self, turn: UserTurn) -> UserTurn:
        turn.text = dash_case(" ".join(turn.text.split()))
        self.said += " " + turn.text.lower()
        return turn

    def open(self) -> UserTurn:
        if self.scenario.mode is Mode.TASK_ORIENTED:
            return self._everything_up_front()
        if self.scenario.initial_state.history:  # a continued conversation: no second hello
            greeting = self.say.pick(["I have another request.", "Something else, please.", "One more thing."])
        else:
            greeting = self.say.greeting(name=self.scenario.persona.name)
        turn = UserTurn(text="", acts=[Greet()])
        self._ask_next(turn)
        if greeting:
            joint = self.rng.choice([" — ", ", "])
            turn.text = (
                attach(greeting, turn.text, joint=joint) if self.rng.random() < 0.7 else f"{greeting} {turn.text}"
            )
        return turn

    def react(self, text: str, acts: list[Act] | None = None) -> UserTurn:
        """React to the agent's message by its words alone (synchronously: the offline user never
        waits). ``acts``, what the offline agent meant to say, are not read: a person sees only
        the words, and an agent under evaluation speaks none."""
        del acts
        turn = UserTurn(text="", acts=[])
        if self.pending is not None:
            self.pending.texts.append(text)
        asked = requests(text)
        wanted, asked_steps = self._slots_asked_in(asked), list[str]()
        if not wanted:
            wanted, asked_steps = self._identity_asked(asked)
        if wanted and self.pending is not None and self.pending.kind != "final":
            self._inform(turn, wanted, asked_steps)
            return turn
        if self.pending is None:
            return self._finish(turn)
        if self.scenario.mode is Mode.TASK_ORIENTED:
            return self._check_everything(turn, text)
        return self._read_words(turn, text)

    def _read_words(self, turn: UserTurn, text: str) -> UserTurn:
        """What the words do: say a tool refused a value, ask leave to write, refuse, or answer."""
        pending = self.pending
        assert pending is not None
        failed = failure(text) is not None
        if failed:
            # Its words say the tool refused the first values (the detour the task plans).
            detours = [s for s in pending.item.sub.steps if self._detour_pending(s)]
            if detours:
                return self._after_detour(turn, detours[0])
        if not failed and pending.kind == "result" and asks_to_go_ahead(text):
            writes = self._changes_of(pending.item)
            if writes:
                return self._answer_confirm(turn, [Confirm(step=s, tool=self.steps[s].tool) for s in writes], text)
        if refusal(text) is not None:
            return self._answer_refusal(turn)
        return self._judge_answer(turn)

    # ------------------------------------------------------------------ answering the agent
    def _judge_answer(self, turn: UserTurn) -> UserTurn:
        pending = self.pending
        assert pending is not None
        item = pending.item
        problem, failing = self._judge(pending, " ".join(pending.texts))
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
        turn.text = self.say.thanks(echo=self._echo(pending, " ".join(pending.texts))) + " "
        step = item.sub.steps[-1]
        task = item.task
        if (
            pending.kind == "result"
            and task.refinement
            and task.refinement.step == step
            and step not in self.done_refine
        ):
            self.done_refine.add(step)
            self.pending = _Pending("refine", item, step)
            turn.acts.append(Refine(step=step, args=task.refinement.arguments))
            turn.text += self.say.polite(
                self.say.pick(
                    [
                        f"Can you show them {task.refinement.description}?",
                        f"Could you sort those {task.refinement.description.removeprefix('sorted ')}?",
                        f"Now please list them {task.refinement.description}.",
                        f"Would you put them in order, {task.refinement.description}?",
                    ]
                )
            )
            self._feedback(turn, FeedbackKind.REFINE, item, step, task.refinement.description)
            return turn
        writes = self._writes_of(item)
        if pending.kind == "result" and writes and self.rng.random() < self.unsure_rate:
            target = writes[-1]
            if target not in self.verified and self.steps[target].report:
                self.verified.add(target)
                fields = self.steps[target].report[:1]
                expected = self._expected(task, target, fields[0])
                self.pending = _Pending("verify", item, target)
                turn.acts.append(Verify(step=target, fields=fields))
                turn.text += self.say.unsure(
                    field_words(fields[0], expected), format_value(expected, fields[0], currency=self.say.currency)
                )
                self._feedback(turn, FeedbackKind.CONFIRMATION_REQUEST, item, target, "asks to double-check")
                return turn
        turn.acts.append(Affirm())
        self._advance(turn)
        return turn

    def _answer_confirm(self, turn: UserTurn, confirms: list[Confirm], text: str) -> UserTurn:
        pending = self.pending
        assert pending is not None
        item = pending.item
        for confirm in confirms:
            step = self.steps.get(confirm.step)
            task = self.task_of.get(confirm.step)
            if step is None or task is None:
                continue
            com = task.change_of_mind
            if com is not None and com.step == step.id and step.id not in self.done_change:
                self.done_change.add(step.id)
                final = step.arguments[com.argument]
                new = format_value(final, com.argument, currency=self.say.currency)
                old = format_value(com.first, com.argument, currency=self.say.currency)
                turn.acts.append(Change(step=step.id, args={com.argument: final}))
                turn.text = self.say.change_mind(new, old)
                self._feedback(
                    turn, FeedbackKind.CHANGE_OF_MIND, item, step.id, f"{com.argument}: {com.first} -> {final}"
                )
                return turn
            wrong = self._mismatch(step, confirm.args, text) if confirm.args or not confirms else {}
            if wrong:
                turn.acts.append(Change(step=step.id, args=wrong))
                turn.text = (
                    self.say.wrong()
                    + " "
                    + "; ".join(
                        f"the {field_name(k)} should be {format_value(v, k, currency=self.say.currency)}"
                        for k, v in wrong.items()
                    ).capitalize()
                    + "."
                )
                self._feedback(
                    turn, FeedbackKind.CORRECTION, item, step.id, "the restated change is not what was asked"
                )
                return turn
        turn.acts.append(Affirm())
        echo, field = "", ""
        for confirm in confirms:
            for k, v in confirm.args.items():
                if (
                    k not in _CONTROL
                    and not k.endswith("_id")
                    and isinstance(v, str | int | float)
                    and not isinstance(v, bool)
                ):
                    if _said_in(v, self.said):
                        echo = format_value(v, k, currency=self.say.currency)
                        field = field_words(k, v)
                        break
        turn.text = self.say.yes_to(echo, field)
        return turn

    def _echo(self, pending: _Pending, text: str) -> str:
        """One value the answer said that the user expected, as they would repeat it back ("" when none fits)."""
        steps = set(pending.item.sub.steps)
        for v in self._answer_values(pending.item.task):
            k, value = v.name, v.value
            if v.step not in steps or k in _CONTROL or k.endswith("_id") or isinstance(value, bool):
                continue
            if isinstance(value, str | int | float) and _reported(value, text, k):
                said = format_value(value, k, currency=self.say.currency)
                if len(said.split()) <= 5 and "@" not in said:
                    return said
        return ""

    def _mismatch(self, step: ChainStep, args: dict[str, Any], text: str) -> dict[str, Any]:
        """Values of the restated call that differ from what the user wants now."""
        want = self._intended(step)
        out = {}
        for name in self._stated_names(step):
            if name in want and name in args and not _same_value(args[name], want[name]):
                out[name] = want[name]
        return out

    def _intended(self, step: ChainStep) -> dict[str, Any]:
        task = self.task_of[step.id]
        want = dict(step.arguments)
        detour = task.detour
        if detour is not None and detour.step == step.id and step.id not in self.done_detour:
            want.update(detour.arguments)
        return want

    def _stated_names(self, step: ChainStep) -> list[str]:
        return [k for k in step.arguments if k not in _CONTROL]

    def _answer_refusal(self, turn: UserTurn) -> UserTurn:
        pending = self.pending
        assert pending is not None
        item = pending.item
        if item.task.expected.refusal:
            turn.text = self.say.accept_refusal() + " "
            self._feedback(turn, FeedbackKind.CONFIRM, item, pending.step, "the agent refused, as the rules require")
            turn.acts.append(Affirm())
            self._advance(turn)
            return turn
        item.attempts += 1
        if item.attempts > _MAX_ATTEMPTS:
            self.abandoned.add(item.task.id)
            turn.text = self.say.pick(["Never mind that part.", "Let's leave that for now."]) + " "
            self._advance(turn)
            return turn
        for sid in item.sub.steps:
            step = self.steps[sid]
            turn.acts.append(Correct(step=sid, tool=step.tool, args=self._grounded(step.arguments)))
        turn.text = self.say.pick(
            ["I think that should be possible — could you try again?", "That should be allowed. Please check again."]
        )
        self._feedback(turn, FeedbackKind.CORRECTION, item, pending.step, "the agent refused an allowed request")
        return turn

    def _detour_pending(self, step: str) -> bool:
        task = self.task_of.get(step)
        return (
            task is not None and task.detour is not None and task.detour.step == step and step not in self.done_detour
        )

    def _after_detour(self, turn: UserTurn, step_id: str) -> UserTurn:
        task = self.task_of[step_id]
        assert task.detour is not None and self.pending is not None
        self.done_detour.add(step_id)
        step = self.steps[step_id]
        fixed = {k: step.arguments[k] for k in task.detour.arguments}
        words = " and ".join(f"{format_value(v, k, currency=self.say.currency)}" for k, v in fixed.items())
        turn.acts.append(Change(step=step_id, args=fixed))
        turn.text = self.say.pick(
            [
                f"Oh, I see. Then {words}, please.",
                f"Ah, OK — let's go with {words} instead.",
                f"Fair enough. Could you do {words} then?",
                f"Hmm, right. {words.capitalize()} will have to do.",
                f"I didn't know that. Make it {words}, then.",
                f"OK, in that case {words}.",
                f"Right — {words} instead, please.",
                f"That's a shame. {words.capitalize()} is fine, then.",
                f"No problem, let's say {words}.",
                f"Oh well. Can we do {words} instead?",
                f"I see — then I'll take {words}.",
                f"Ah, I didn't realise. {words.capitalize()}, please.",
                f"Fine, {words} it is.",
                f"Understood. Let's go for {words}.",
                f"Oh, OK. Would {words} work?",
                f"Then {words} — that should be all right.",
            ]
        )
        # The user's own values were refused, and the agent was right to say so: the user changes
        # them, which is no correction of the agent.
        self._feedback(
            turn,
            FeedbackKind.CHANGE_OF_MIND,
            self.pending.item,
            step_id,
            f"new values after the tool refused {task.detour.arguments}",
        )
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
        before = turn.text
        turn.text = ""
        if marker:
            turn.text += marker + " "
        self._ask_next(turn, lowercase=marker.endswith((",", " and")))
        turn.text = _ONE_QUICK.sub(r"\1: ", turn.text)  # "Also, quickly: quick one: what's ..." says it once
        if before.strip() and self.rng.random() < 0.6:
            turn.text = attach(before.strip(), turn.text.strip())
        else:
            turn.text = before + turn.text

    def _ask_next(self, turn: UserTurn, *, lowercase: bool = False) -> None:
        item = self.agenda[0]
        self._start(turn, item.task)
        self._request(turn, item, lead=not lowercase)
        self.pending = _Pending("result", item, item.sub.steps[-1])

    def _request(self, turn: UserTurn, item: _Item, *, lead: bool = True) -> None:
        sub = item.sub
        text = self.say.reword(sub.text)
        facts = self.facts[item.task.id]
        body = text if lead else text[:1].lower() + text[1:] if not text[:2].isupper() else text
        if self.say.verbose and self.rng.random() < 0.4:
            body = attach(body, self.say.pick(_AFTERTHOUGHTS), joint="; ")
        # Facts already told earlier (an email) are said again rather than left to guess.
        again = [
            (k, v)
            for sid in sub.steps
            for k, v in self.steps[sid].arguments.items()
            if k in facts and _key(k, v) in self.told and format_value(v, k).lower() not in (self.said + body.lower())
        ]
        if again:
            body += (
                " " + "; ".join(f"the {label(k)} is still {format_value(v, k)}" for k, v in again).capitalize() + "."
            )
        turn.text += body
        said = self.said + " " + turn.text.lower()
        for sid in sub.steps:
            step = self.steps[sid]
            turn.acts.append(self._request_act(step, item, said))
        task = item.task
        if task.forbidden is not None and sub is task.sub_requests[-1]:
            turn.acts.append(self._request_act(task.forbidden, item, said))

    def _request_act(self, step: ChainStep, item: _Item, said: str) -> Request:
        want = dict(step.arguments)
        task = item.task
        com = task.change_of_mind
        if com is not None and com.step == step.id and step.id not in self.done_change:
            want[com.argument] = com.first
        if task.detour is not None and task.detour.step == step.id and step.id not in self.done_detour:
            want.update(task.detour.arguments)
        args: dict[str, Any] = {}
        withheld: list[str] = []
        for name, value in want.items():
            if name in _CONTROL or _said_in(value, said):
                args[name] = value
            else:
                withheld.append(name)
        return Request(step=step.id, tool=step.tool, args=args, refs=step.refs, withheld=withheld, report=step.report)

    def _grounded(self, args: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in args.items() if k in _CONTROL or _said_in(v, self.said)}

    def _start(self, turn: UserTurn, task: Task) -> None:
        if task.id not in self.started:
            self.started.add(task.id)
            turn.started_tasks.append(task.id)

    def _inform(self, turn: UserTurn, wanted: list[str], steps: list[str] | None = None) -> None:
        facts = self._current_facts()
        known = [(s, facts[s]) for s in wanted if s in facts]
        identity = self.scenario.user.facts if self.scenario.user else {}
        instead = False
        if not known:
            # Asked for one way of identifying; give the one the user knows.
            known = [(k, v) for k, v in identity.items() if any(_close(k, w) for w in wanted)][:1]
        if not known:
            # Asked, to find their account, for a detail they do not have: they offer the one they
            # know (a lookup by what the user knows alone: no earlier result goes into it).
            for sid in steps or []:
                step = self.steps.get(sid)
                if step is None or step.refs:
                    continue
                mine = [(k, facts[k]) for k in step.arguments if k in facts and k not in _CONTROL]
                if mine and len(mine) == len(step.arguments):
                    known, instead = mine[:1], True
                    break
        if self.pending is not None and not instead:
            # What the request means that no fact names (a repository path): said when asked.
            items = self.agenda if self.scenario.mode is Mode.TASK_ORIENTED else [self.pending.item]
            sids = [sid for it in items for sid in it.sub.steps]
            for sid in sids:
                intended = self._intended(self.steps[sid])
                have = {k for k, _ in known}
                known += [
                    (s, intended[s])
                    for s in wanted
                    if s in intended and s not in self.steps[sid].refs and s not in have
                ]
        if known:
            self.told.update(_key(k, v) for k, v in known)
            turn.acts.append(Inform(args=dict(known)))
            if instead:
                turn.text = self.say.inform_instead(wanted, known)
            else:
                turn.text = self.say.inform(known, identity=all(k in identity for k, _ in known))
        else:
            turn.text = self.say.dont_know()
            turn.acts.append(Inform(args={}))

    # ------------------------------------------------------------------ judging
    def _judge(self, pending: _Pending, text: str) -> tuple[str, list[str]]:
        """What is wrong with the answer ("" when nothing) and which steps need redoing."""
        item = pending.item
        task = item.task
        steps = item.sub.steps if pending.kind == "result" else [pending.step or item.sub.steps[-1]]
        if task.expected.refusal and pending.kind == "result":
            # The rules forbid it: it checks out only as a refusal (an answer without one is not).
            return "unrefused", list(steps)
        if pending.kind == "refine" and task.refinement is not None:
            unsaid = [v.name for v in task.refinement.values if not _reported(v.value, text, v.name)]
            return ("wrong", [task.refinement.step]) if unsaid else ("", [])
        unwritten = {
            c.step for c in task.expected.step_checks if c.step in steps and not check_assertion(self.query, c)
        }
        if pending.kind == "verify":
            field_ = self.steps[pending.step].report[:1] if pending.step else []
            last = pending.texts[-1] if pending.texts else ""
            if unwritten:
                return "missing", [s for s in steps if s in unwritten]
            if field_ and not _reported(self._expected(task, pending.step or "", field_[0]), last, field_[0]):
                return "unshown", [pending.step or ""]
            return "", []
        wrong = {
            v.step
            for v in self._answer_values(task)
            if v.step in steps and v.step not in pending.settled and not self._told_value(v.value, text, v.name)
        }
        failing = [s for s in steps if s in unwritten or s in wrong]
        if failing and failure(text) is not None:
            return "error", failing  # its words say a call failed
        if unwritten:
            return "missing", failing
        return ("wrong", failing) if wrong else ("", [])

    def _answer_values(self, task: Task) -> list[ExpectedValue]:
        """The values an answer to the task's requests must hold. In task-oriented mode the
        refinement was asked for with them, so its step is judged on the refined values
        (``expected_values``); a refinement asked for later has its own turn ("refine")."""
        if self.scenario.mode is Mode.TASK_ORIENTED:
            return expected_values(task, self.scenario.mode)
        return task.expected.values

    def _expected(self, task: Task, step: str, name: str) -> Any:
        for v in task.expected.values:
            if v.step == step and v.name == name:
                return v.value
        return self.steps[step].arguments.get(name)

    def _told_value(self, value: Any, text: str, name: str) -> bool:
        """Whether the agent's words told ``value``: judged by what it said, never by its acts
        (a list with the same names in another order is the same answer)."""
        return _reported(value, text, name)

    def _complain(self, turn: UserTurn, pending: _Pending, problem: str, failing: list[str]) -> None:
        item = pending.item
        if pending.kind == "refine" and item.task.refinement is not None:
            ref = item.task.refinement
            turn.acts.append(Refine(step=ref.step, args=ref.arguments))
            turn.text = f"{self.say.wrong()} I asked for them {ref.description}."
            self._feedback(turn, FeedbackKind.CORRECTION, item, ref.step, "refinement not applied")
            pending.texts.clear()
            return
        if pending.kind == "result":
            pending.settled.update(s for s in item.sub.steps if s not in failing)
        if problem == "unrefused":
            turn.text = self.say.pick(
                [
                    "Sorry, is that done, or can it not be done?",
                    "I'm not sure what that means — can you do it or not?",
                    "So is that possible or not?",
                ]
            )
            self._feedback(turn, FeedbackKind.MISSING, item, failing[-1], "neither done nor refused")
            pending.texts.clear()
            return
        if problem == "unshown":
            step = failing[-1]
            fields = self.steps[step].report[:1]
            turn.acts.append(Verify(step=step, fields=fields))
            turn.text = self.say.pick(
                [
                    f"You didn't actually tell me the {label(fields[0])} — what does it say now?",
                    f"Sorry, but what is the {label(fields[0])} now? I didn't see it.",
                    f"Could you read me the {label(fields[0])} itself?",
                ]
            )
            self._feedback(turn, FeedbackKind.MISSING, item, step, "the double check did not show the value")
            pending.texts.clear()
            return
        # A wrong value may come from a wrong row of an earlier step it was read from: redo those too.
        needed = set(failing)
        for sid in reversed(item.sub.steps):
            if sid in needed:
                needed.update(r.step for r in self.steps[sid].refs.values() if r.step in item.sub.steps)
        failing = [s for s in item.sub.steps if s in needed]
        for sid in failing:
            chain_step = self.steps[sid]
            turn.acts.append(
                Correct(
                    step=sid,
                    tool=chain_step.tool,
                    args=self._grounded(self._intended(chain_step)),
                    refs=chain_step.refs,
                )
            )
        if problem == "missing":
            again = self.say.pick(
                ["Could you try again?", "Can you have another go?", "Would you try once more?", "Please try again."]
            )
            turn.text = f"{self.say.missing()} {again}"
            self._feedback(turn, FeedbackKind.MISSING, item, failing[-1], "the database does not show the change")
        elif problem == "error":
            turn.text = self.say.pick(
                [
                    "That gave an error. Please try again.",
                    "Something went wrong there. Please try again.",
                    "Hmm, that errored. Could you try again?",
                    "That didn't work — can you give it another go?",
                ]
            )
            self._feedback(turn, FeedbackKind.MISSING, item, failing[-1], "the agent reported an error")
        else:
            turn.text = (
                self.say.wrong()
                + " "
                + self.say.pick(
                    [
                        "Can you check again?",
                        "Could you look at it once more?",
                        "Please check that again.",
                        "Try again, please.",
                        "Would you mind having another look?",
                        "Can you take a second look?",
                        "Could you check it properly?",
                        "Please look it up again.",
                        "Can you double-check it for me?",
                        "Mind checking again?",
                        "Could you go over it again?",
                        "Would you look again, please?",
                    ]
                )
            )
            self._feedback(turn, FeedbackKind.CORRECTION, item, failing[-1], "expected values not in the answer")
        pending.texts.clear()

    def _final_check(self, turn: UserTurn) -> None:
        failing = self._failing()
        # A write that does not show gets one more try; a request given up on does not.
        retry = [
            t
            for t in failing
            if t.id not in self.final_tried and t.expected.step_checks and not self._assertions_hold(t)
        ]
        if retry:
            task = retry[0]
            self.final_tried.add(task.id)
            writes = [c for c in task.expected.step_checks if c.step is not None and not check_assertion(self.query, c)]
            if writes:
                fake = _Item(task, task.sub_requests[-1], attempts=_MAX_ATTEMPTS - 1)
                for check in writes:
                    assert check.step is not None
                    step = self.steps[check.step]
                    turn.acts.append(Correct(step=step.id, tool=step.tool, args=self._grounded(step.arguments)))
                missing = self.say.missing()
                if not missing.startswith("I "):
                    missing = missing[:1].lower() + missing[1:]
                turn.text += f"Before we finish — {missing} Could you redo it?"
                self._feedback(turn, FeedbackKind.MISSING, fake, writes[0].step, "final state check")
                self.pending = _Pending("final", fake, writes[-1].step)
                return
        self._goodbye(turn, done=not failing)

    def _failing(self) -> list[Task]:
        """The tasks that do not check out by what the user can observe: a final-state
        assertion fails, or a request was given up on (a value never given, a write never done)."""
        return [t for t in self.scenario.tasks if t.id in self.abandoned or not self._assertions_hold(t)]

    def _assertions_hold(self, task: Task) -> bool:
        return all(check_assertion(self.query, a) for a in task.expected.assertions)

    def _goodbye(self, turn: UserTurn, *, done: bool) -> None:
        """The last message: the completion flag and thanks only when every task checked out;
        otherwise the user gives up, without thanking for a job not done."""
        turn.acts.append(Bye())
        if done:
            bye = self.say.bye()
            turn.text = attach(turn.text.strip(), bye) if turn.text.strip() else bye
            turn.complete = True
        else:
            give_up = self.say.give_up()
            turn.text = attach(turn.text.strip(), give_up) if turn.text.strip() else give_up
            turn.gave_up = True
        self.pending = None

    def _finish(self, turn: UserTurn) -> UserTurn:
        turn.text = ""
        self._goodbye(turn, done=not self._failing())
        return turn

    # ------------------------------------------------------------------ task-oriented
    def _everything_up_front(self) -> UserTurn:
        intro = self.say.greeting(name=self.scenario.persona.name)
        turn = UserTurn(
            text=(intro + " " if intro else "")
            + self.say.pick(
                ["I need the following done:", "Here's what I need:", "A few things, please:", "Please do all of this:"]
            )
            + " ",
            acts=[Greet()],
        )
        parts: list[str] = []
        for task in self.scenario.tasks:
            self._start(turn, task)
            parts.extend(self._final_words(task, sub.text) for sub in task.sub_requests)
            if task.refinement is not None:
                parts.append(f"Show the results {task.refinement.description}.")
        facts = [f for t in self.scenario.tasks for f in t.facts]
        if facts:
            parts.append(
                "For reference: "
                + "; ".join(f"{f.description} is {format_value(f.value, f.name)}" for f in facts)
                + "."
            )
        self.told.update(_key(f.name, f.value) for f in facts)
        turn.text += " ".join(parts)
        said = self.said + " " + turn.text.lower()
        for task in self.scenario.tasks:
            for sub in task.sub_requests:
                for sid in sub.steps:
                    step = self.steps[sid]
                    args = {k: v for k, v in step.arguments.items() if k in _CONTROL or _said_in(v, said)}
                    report = step.report
                    if task.refinement is not None and task.refinement.step == sid:
                        args.update(task.refinement.arguments)
                        # "sorted by arrival date": the order is told with the dates
                        report = list(dict.fromkeys([*report, *(v.name for v in task.refinement.values)]))
                    turn.acts.append(Request(step=sid, tool=step.tool, args=args, refs=step.refs, report=report))
            if task.forbidden is not None:
                f = task.forbidden
                turn.acts.append(
                    Request(
                        step=f.id, tool=f.tool, args=self._grounded_in(f.arguments, said), refs=f.refs, report=f.report
                    )
                )
            if task.change_of_mind is not None:
                self.done_change.add(task.change_of_mind.step)
            if task.detour is not None:
                self.done_detour.add(task.detour.step)
        self.pending = _Pending("result", self.agenda[0]) if self.agenda else None
        return turn

    def _final_words(self, task: Task, text: str) -> str:
        """The request with the values the user ends up wanting (task-oriented: no detour, no change of mind)."""
        changes: list[tuple[Any, Any, str]] = []
        if task.detour is not None:
            step = self.steps[task.detour.step]
            changes += [(v, step.arguments.get(k), k) for k, v in task.detour.arguments.items()]
        if task.change_of_mind is not None:
            com = task.change_of_mind
            changes.append((com.first, self.steps[com.step].arguments.get(com.argument), com.argument))
        for first, final, name in changes:
            if final is None:
                continue
            old = format_value(first, name, currency=self.say.currency)
            new = format_value(final, name, currency=self.say.currency)
            text = text.replace(f" {old}", f" {new}") if f" {old}" in text else text.replace(old, new)
        return text

    def _grounded_in(self, args: dict[str, Any], said: str) -> dict[str, Any]:
        return {k: v for k, v in args.items() if k in _CONTROL or _said_in(v, said)}

    def _check_everything(self, turn: UserTurn, text: str) -> UserTurn:
        if asks_to_go_ahead(text) and failure(text) is None:
            turn.acts.append(Affirm())
            turn.text = self.say.yes()
            return turn
        said_so_far = " ".join(self.pending.texts) if self.pending is not None else text
        unfinished = [t for t in self.scenario.tasks if not self._task_checks_out(t, said_so_far)]
        if unfinished and self.final_attempts < 1:
            self.final_attempts += 1
            for task in unfinished:
                for step in task.chain:
                    if any(c.step == step.id and check_assertion(self.query, c) for c in task.expected.step_checks):
                        continue
                    args = self._grounded(step.arguments)
                    if task.refinement is not None and task.refinement.step == step.id:
                        args.update(task.refinement.arguments)
                    turn.acts.append(Correct(step=step.id, tool=step.tool, args=args, refs=step.refs))
            what = " and ".join(dict.fromkeys(t.sub_requests[-1].intent.replace("_", " ") for t in unfinished))
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
        values = expected_values(task, self.scenario.mode)
        if task.expected.refusal and refused(text) is None:
            return False  # the rules forbid it: it checks out only as a refusal
        return all(check_assertion(self.query, a) for a in task.expected.assertions) and all(
            _reported(v.value, text, v.name) for v in values
        )

    # ------------------------------------------------------------------ helpers
    def _writes_of(self, item: _Item) -> list[str]:
        """The item's writes the user can check in the database (what a double check asks about)."""
        checks = {c.step for c in item.task.expected.step_checks}
        return [s for s in item.sub.steps if s in checks]

    def _changes_of(self, item: _Item) -> list[str]:
        """The item's steps that change something, checkable or not (what leave to write is asked for)."""
        checks = {c.step for c in item.task.expected.step_checks}
        return [s for s in item.sub.steps if s in checks or self.steps[s].tool in self.write_tools]

    def _slots_asked_in(self, asked: str) -> list[str]:
        """What the agent's requests (``asked``: :func:`requests` of its words) ask for, by name:
        facts of the task in progress, and the values its current request means (a repository
        path, a revision)."""
        if self.pending is None or not asked:
            return []
        facts = {**(self.scenario.user.facts if self.scenario.user else {}), **self.facts[self.pending.item.task.id]}
        for sid in self.pending.item.sub.steps:
            step = self.steps[sid]
            for k, v in self._intended(step).items():
                if k not in _CONTROL and k not in step.refs:
                    facts.setdefault(k, v)
        return [n for n, v in facts.items() if _key(n, v) not in self.told and label(n).lower() in asked]

    def _identity_asked(self, asked: str) -> tuple[list[str], list[str]]:
        """Asked in words (``asked``: :func:`requests` of them) for a way of identifying them the
        user does not have ("your email, please?" of a user who knows only their phone): what was
        asked, and the lookups of the request in progress the user could answer instead (no
        earlier result goes into them)."""
        if self.pending is None or self.pending.kind == "final":
            return [], []
        said = set(_WORD.findall(asked))
        words = [w for w in _IDENTITY_WORDS if w in said]
        if not words:
            return [], []
        facts = self._current_facts()
        lookups = [
            sid
            for sid in self.pending.item.sub.steps
            if not self.steps[sid].refs
            and (mine := [k for k in self.steps[sid].arguments if k not in _CONTROL])
            and all(k in facts and _key(k, facts[k]) not in self.told for k in mine)
        ]
        return (words[:1], lookups) if lookups else ([], [])

    def _current_facts(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        current = self.pending.item.task.id if self.pending is not None else None
        for task_id, facts in self.facts.items():
            if task_id != current:
                merged.update(facts)
        if current is not None:
            merged.update(self.facts[current])
        if self.scenario.user is not None:
            for k, v in self.scenario.user.facts.items():
                merged.setdefault(k, v)
        return merged

    def _feedback(self, turn: UserTurn, kind: FeedbackKind, item: _Item, step: str | None, detail: str) -> None:
        turn.feedback.append(UserFeedback(feedback=kind, task_id=item.task.id, step_id=step, detail=detail))


_ONE_QUICK = re.compile(r"(?i)\b(quick(?:ly| one)?): quick one: ")


def _said_in(value: Any, low_text: str) -> bool:
    """Whether the user's own (lower-cased) words carry ``value`` in one of its usual forms."""
    return any(form.lower() in low_text for form in value_forms(value))


def _reported(value: Any, text: str, name: str | None = None) -> bool:
    """Whether the agent's ``text`` says ``value`` (of the field ``name``), by the verifier's rules."""
    return mentions(text, value, name) is not None


def _close(fact: str, slot: str) -> bool:
    a, b = fact.lower(), slot.lower()
    return a == b or a in b or b in a


def _key(name: str, value: Any) -> tuple[str, str]:
    return (name, repr(value))


def offline_user_brain(argument: str) -> UserFactory:
    """The ``offline`` user spec: takes no argument."""
    if argument:
        raise ConfigError(f"the offline user takes no argument, got {argument!r}")

    async def factory(ctx: UserContext) -> OfflineUser:
        env = ctx.environment
        get_tools = {t.table: t.name for t in env.tools if t.category == "get" and t.table}
        from simulator.offline.planner.planner import currency_of

        return OfflineUser(
            ctx.scenario,
            ctx.query,
            rng=ctx.rng,
            get_tools=get_tools,
            currency=currency_of(env),
            write_tools=write_tools_of(env),
        )

    return factory


def write_tools_of(env: Environment) -> frozenset[str]:
    """The environment's tools that change something: its write tools, or, over an outside
    server, the tools that are not reads (``readOnlyHint``, else their names)."""
    if env.server is not None and not env.tools:
        from simulator.external.planner import is_read_tool

        listed = [types.Tool.model_validate(t) for t in env.server.tools]
        return frozenset(t.name for t in listed if not is_read_tool(t))
    return frozenset(t.name for t in env.tools if t.effect is not Effect.READ)


def _same_value(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) != isinstance(b, bool) and a in (0, 1) and b in (0, 1):  # a 0/1 flag, a yes/no
        return bool(a) == bool(b)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return format_value(a) == format_value(b)
