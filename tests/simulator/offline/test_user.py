"""The offline user follows the user-oriented rules.

Incremental reveal, withholding facts until asked, feedback grounded in the database
state, completion only when every task checks out, and the task-oriented baseline that
states everything at once. The user is driven directly by an agent scripted here (real
tool calls on the same database the user reads, with knobs to lie or to skip writes),
by the real offline agent over an MCP server, and checked on the events of real dialogues.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import mcp
import mcp_types as types
import pytest

from schemas import (
    AgentMessage,
    ChainStep,
    Effect,
    Environment,
    Fact,
    FeedbackKind,
    Mode,
    Scenario,
    SubRequest,
    Task,
    TerminationReason,
    UserFeedback,
    UserMessage,
)
from schemas.errors import ToolError
from simulator.dialogue.roles import UserTurn
from simulator.dialogue.verify import check_assertion
from simulator.offline.acts import Act, Affirm, Ask, Bye, Correct, Inform, Report, Request, decode_acts
from simulator.offline.agent import OfflineAgent
from simulator.offline.language import format_value, label
from simulator.offline.planner import rows_of
from simulator.offline.scenarios import build_scenario
from simulator.offline.user import OfflineUser
from tests.conftest import shop_environment
from tests.simulator.conftest import (
    DOMAINS,
    Dialogue,
    done_as_the_user_sees,
    drive,
    make_user,
    shop_scenario,
    shop_tasks,
)
from toolservers import ToolServer, build_tool_server
from toolservers.database import Database, open_database
from toolservers.executor import ToolExecutor

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- a scripted agent


class ScriptedAgent:
    """Does what the user's acts ask with real tool calls on the user's own database.

    ``writes=False`` claims every write succeeded without running it; ``lie`` maps a step
    id to values to report instead of the real ones (once per step).
    """

    def __init__(
        self, env: Environment, db: Database, *, writes: bool = True, lie: dict[str, Any] | None = None
    ) -> None:
        self.env = env
        self.executor = ToolExecutor(env, db)
        self.writes = writes
        self.lie = dict(lie or {})
        self.known: dict[str, Any] = {}
        self.waiting: list[Request] = []
        self.reports: dict[str, list[str]] = {}

    async def __call__(self, turn: UserTurn) -> tuple[str, list[Act]]:
        acts: list[Act] = []
        lines: list[str] = []
        if any(isinstance(a, Bye) for a in turn.acts):
            return "Goodbye!", [Bye()]
        for act in turn.acts:
            if isinstance(act, Inform):
                self.known.update(act.args)
            elif isinstance(act, Request):
                self.waiting.append(act)
            elif isinstance(act, Correct):
                self._run(act.step, act.tool, act.args, self.reports.get(act.step, []), acts, lines)
        while self.waiting:
            request = self.waiting[0]
            missing = [name for name in request.withheld if name not in self.known]
            if missing:
                acts.append(Ask(step=request.step, slots=missing))
                lines.append(f"Could you tell me the {label(missing[0])}?")
                break
            self.waiting.pop(0)
            args = {**request.args, **{k: self.known[k] for k in request.withheld}}
            self._run(request.step, request.tool, args, request.report, acts, lines)
        return " ".join(lines), acts

    def _run(
        self, step: str, tool: str, args: dict[str, Any], report: list[str], acts: list[Act], lines: list[str]
    ) -> None:
        self.reports[step] = report
        if self.env.tool(tool).effect is Effect.WRITE and not self.writes:
            values = {k: args[k] for k in report if k in args}
        else:
            try:
                rows = rows_of(self.executor.call(tool, args).structured)
            except ToolError:
                acts.append(Report(step=step, tool=tool, ok=False))
                lines.append("That failed.")
                return
            values = {k: rows[0].get(k) for k in report} if rows else {}
        if step in self.lie:
            values = self.lie.pop(step)
        acts.append(Report(step=step, tool=tool, ok=True, values=values))
        lines.append("Here it is: " + ", ".join(f"{label(k)} {format_value(v)}" for k, v in values.items()) + ".")


@pytest.fixture
def shop() -> Environment:
    return shop_environment()


@pytest.fixture
def shop_db(shop: Environment) -> Iterator[Database]:
    db = open_database(shop.database)
    yield db
    db.close()


def kinds(turn: UserTurn) -> list[FeedbackKind]:
    return [f.feedback for f in turn.feedback]


def requests(turn: UserTurn) -> list[Request]:
    return [a for a in turn.acts if isinstance(a, Request)]


def corrects(turn: UserTurn) -> list[Correct]:
    return [a for a in turn.acts if isinstance(a, Correct)]


def informs(turn: UserTurn) -> list[Inform]:
    return [a for a in turn.acts if isinstance(a, Inform)]


def sub_of(scenario: Scenario) -> dict[str, str]:
    """Chain step id -> id of the sub-request that asks for it."""
    out = {sid: sub.id for t in scenario.tasks for sub in t.sub_requests for sid in sub.steps}
    # the call a forbidden request asks for (never made) goes with the task's last sub-request
    out.update({t.forbidden.id: t.sub_requests[-1].id for t in scenario.tasks if t.forbidden is not None})
    return out


# --------------------------------------------------------------------------- incremental reveal


async def test_opening_asks_for_one_or_two_sub_requests_never_all(domain_envs: dict[str, Environment]) -> None:
    checked = 0
    for name in DOMAINS:
        env = domain_envs[name]
        for index in range(4):
            scenario = build_scenario(env, index=index, seed=2)
            subs = sub_of(scenario)
            all_steps = [s.id for t in scenario.tasks for s in t.chain]
            for user_seed in range(5):
                db = open_database(env.database)
                try:
                    opening = await make_user(scenario, env, db.query, seed=user_seed).opening()
                finally:
                    db.close()
                asked = {subs[r.step] for r in requests(opening)}
                assert 1 <= len(asked) <= 2, (scenario.id, user_seed, asked)
                if len(scenario.tasks) > 1:
                    assert len(requests(opening)) < len(all_steps)
                # what is asked first is the first thing on the agenda
                assert requests(opening)[0].step == all_steps[0]
                checked += 1
    assert checked == 60


def test_every_user_turn_asks_for_at_most_two_sub_requests(user_oriented: list[Dialogue]) -> None:
    for d in user_oriented:
        subs = sub_of(d.scenario)
        requested: list[str] = []
        for e in d.record.events:
            if isinstance(e, UserMessage):
                steps = [a.step for a in decode_acts(e.acts) if isinstance(a, Request)]
                assert len({subs[s] for s in steps}) <= 2, (d.scenario.id, e.seq, e.text)
                requested += steps
        # everything is asked for eventually, each step once, in agenda order
        requested = [s for s in requested if not s.endswith(":forbidden")]
        assert requested == [s.id for t in d.scenario.tasks for s in t.chain], d.scenario.id


# --------------------------------------------------------------------------- withholding


async def test_withheld_fact_is_not_said_until_the_agent_asks(shop: Environment, shop_db: Database) -> None:
    user = make_user(shop_scenario(), shop, shop_db.query)
    opening = await user.opening()
    (request,) = requests(opening)
    assert (request.step, request.args, request.withheld) == ("t0.s0", {}, ["customer_id"])
    assert "1" not in opening.text and not informs(opening)

    answer = await user.respond("Could you tell me the customer ID?", [Ask(step="t0.s0", slots=["customer_id"])])
    assert [a.args for a in informs(answer)] == [{"customer_id": 1}]
    assert "1" in answer.text
    assert not requests(answer) and not answer.feedback


@pytest.mark.parametrize(
    ("text", "acts"),
    [
        ("What is the customer ID?", []),  # an outside agent: no acts, a question naming the fact
        ("Could you give me the customer ID, please?", [Ask(step="t0.s0", slots=["customer_id"])]),
        ("Happy to help — tell me your customer ID and I'll pull up the account.", []),  # no question mark
        ("To keep your account safe, I'll need the customer ID first.", []),
    ],
)
async def test_a_question_for_the_fact_is_answered(
    shop: Environment, shop_db: Database, text: str, acts: list[Act]
) -> None:
    user = make_user(shop_scenario(), shop, shop_db.query)
    await user.opening()
    assert [a.args for a in informs(await user.respond(text, acts))] == [{"customer_id": 1}]


async def test_the_acts_of_an_ask_are_not_read_only_its_words(shop: Environment, shop_db: Database) -> None:
    user = make_user(shop_scenario(), shop, shop_db.query)
    await user.opening()
    turn = await user.respond("Let me look into that for you.", [Ask(step="t0.s0", slots=["customer_id"])])
    assert not informs(turn)


@pytest.mark.parametrize(
    "question",
    [
        "I'd set order 10 to shipped — happy for me to go ahead?",
        "Just to confirm: order 10 becomes shipped. Is that right?",
        "Order 10 would be marked shipped. Shall I go ahead?",
    ],
)
async def test_leave_to_write_asked_in_words_gets_a_yes(shop: Environment, shop_db: Database, question: str) -> None:
    user = make_user(shop_scenario(), shop, shop_db.query)
    agent = ScriptedAgent(shop, shop_db)
    turn = await _to_first_result(user, agent)
    turn = await user.respond(*(await agent(turn)))
    assert requests(turn)[0].step == "t1.s0"
    answer = await user.respond(question, [])
    assert any(isinstance(a, Affirm) for a in answer.acts), answer.text
    assert not answer.feedback


async def test_no_question_no_fact(shop: Environment, shop_db: Database) -> None:
    user = make_user(shop_scenario(), shop, shop_db.query)
    await user.opening()
    turn = await user.respond("Let me look into that for you.", [])
    assert not informs(turn)
    # no answer to judge yet either: the user says the expected result did not come
    assert kinds(turn) == [FeedbackKind.CORRECTION]


async def test_a_question_that_does_not_ask_for_a_fact_gets_no_fact(shop: Environment, shop_db: Database) -> None:
    """A later task's fact stays hidden when the agent's text merely mentions its label
    next to an unrelated question (what the offline agent says after every result)."""
    update = shop_tasks()[1]
    later = Task(
        id="t9",
        goal="You want order 11 cancelled.",
        chain=[
            ChainStep(
                id="t9.s0",
                tool="update_order_status",
                arguments={"order_id": 11, "status": "cancelled"},
                report=["status"],
                resolved={"order_id": 11, "status": "cancelled"},
            )
        ],
        sub_requests=[
            SubRequest(
                id="t9.r", steps=["t9.s0"], intent="update", text="Order 11 needs a new status.", stated=["order_id"]
            )
        ],
        facts=[Fact(name="status", value="cancelled", description="the status you want")],
    )
    user = make_user(shop_scenario([update, later]), shop, shop_db.query)
    await user.opening()
    ToolExecutor(shop, shop_db).call("update_order_status", {"order_id": 10, "status": "shipped"})
    turn = await user.respond(
        "Done — status shipped. Anything else?",
        [Report(step="t1.s0", tool="update_order_status", ok=True, values={"status": "shipped"})],
    )
    assert not any(i.args for i in informs(turn)), turn.text
    assert "cancelled" not in turn.text
    assert kinds(turn) == [FeedbackKind.CONFIRM]
    assert [r.step for r in requests(turn)] == ["t9.s0"]


async def test_withheld_facts_of_real_scenarios_stay_out_of_the_opening(domain_envs: dict[str, Environment]) -> None:
    withheld = 0
    for name in DOMAINS:
        env = domain_envs[name]
        for index in range(6):
            scenario = build_scenario(env, index=index, seed=4)
            facts_of = {s.id: {f.name: f.value for f in t.facts} for t in scenario.tasks for s in t.chain}
            facts_of.update({t.forbidden.id: {f.name: f.value for f in t.facts} for t in scenario.tasks if t.forbidden})
            db = open_database(env.database)
            try:
                user = make_user(scenario, env, db.query)
                opening = await user.opening()
                for request in requests(opening):
                    for slot in request.withheld:
                        withheld += 1
                        assert format_value(facts_of[request.step][slot]) not in opening.text, (scenario.id, slot)
                        assert slot not in request.args
                hidden = [s for r in requests(opening) for s in r.withheld]
                if hidden:
                    step = requests(opening)[-1].step
                    facts = facts_of[step]
                    asked = " and ".join(label(s).lower() for s in hidden)
                    answer = await user.respond(f"Could you tell me your {asked}?", [])
                    assert [a.args for a in informs(answer)] == [{s: facts[s] for s in hidden}]
                    assert all(format_value(facts[s]) in answer.text for s in hidden)
            finally:
                db.close()
    assert withheld >= 5


def test_in_real_dialogues_the_user_informs_only_what_the_agent_asked_for(user_oriented: list[Dialogue]) -> None:
    """Only what was asked; asked for a way of identifying them they do not know (an email),
    users offer the one they do (their phone number), and only that."""
    unasked = []
    instead = 0
    for d in user_oriented:
        asked: set[str] = set()
        ways = set(d.environment.rules.identify_by) if d.environment.rules else set()
        mine = set(d.scenario.user.facts) if d.scenario.user else set()
        for e in d.record.events:
            if isinstance(e, AgentMessage):
                asked = {s for a in decode_acts(e.acts) if isinstance(a, Ask) for s in a.slots}
            elif isinstance(e, UserMessage):
                told = {k for a in decode_acts(e.acts) if isinstance(a, Inform) for k in a.args}
                if told - asked and asked and asked <= ways and told <= mine and len(told) == 1:
                    instead += 1
                elif told - asked:
                    unasked.append((d.scenario.id, e.seq, sorted(told - asked), e.text))
                asked = set()
    assert unasked == []
    assert instead > 0


# --------------------------------------------------------------------------- grounded feedback


async def _to_first_result(user: OfflineUser, agent: ScriptedAgent) -> UserTurn:
    """Opening, the agent asks for the customer id, the user tells it."""
    opening = await user.opening()
    text, acts = await agent(opening)
    assert isinstance(acts[0], Ask)
    return await user.respond(text, acts)


async def test_a_wrong_value_gets_a_correction_then_a_right_one_a_confirm(shop: Environment, shop_db: Database) -> None:
    user = make_user(shop_scenario(), shop, shop_db.query)
    agent = ScriptedAgent(shop, shop_db, lie={"t0.s0": {"email": "alan@example.com"}})
    told = await _to_first_result(user, agent)
    text, acts = await agent(told)
    assert "alan@example.com" in text
    turn = await user.respond(text, acts)
    assert kinds(turn) == [FeedbackKind.CORRECTION]
    assert (turn.feedback[0].task_id, turn.feedback[0].step_id) == ("t0", "t0.s0")
    assert [(c.step, c.tool, c.args) for c in corrects(turn)] == [("t0.s0", "get_customer", {"customer_id": 1})]
    assert not requests(turn) and not turn.complete

    text, acts = await agent(turn)  # the agent redoes it and now reports the real email
    assert "ada@example.com" in text
    turn = await user.respond(text, acts)
    assert kinds(turn) == [FeedbackKind.CONFIRM]
    assert any(isinstance(a, Affirm) for a in turn.acts)
    assert [r.step for r in requests(turn)] == ["t1.s0"]


async def test_an_answer_is_judged_by_its_words_never_by_its_acts(shop: Environment) -> None:
    """The acts say what the agent meant; the user sees only the words. Words with the right
    email are right whatever the acts report, and words with another email are wrong even
    when the acts report the right one (as when a list is named in another order)."""
    verdicts = {}
    for said, acted in (("ada@example.com", "alan@example.com"), ("alan@example.com", "ada@example.com")):
        db = open_database(shop.database)
        try:
            user = make_user(shop_scenario(), shop, db.query)
            await _to_first_result(user, ScriptedAgent(shop, db))
            report = [Report(step="t0.s0", tool="get_customer", ok=True, values={"email": acted})]
            verdicts[said] = await user.respond(f"The email on file is {said}.", report)
        finally:
            db.close()
    assert kinds(verdicts["ada@example.com"]) == [FeedbackKind.CONFIRM]
    assert kinds(verdicts["alan@example.com"]) == [FeedbackKind.CORRECTION]


async def test_a_claimed_write_the_database_does_not_show_gets_missing(shop: Environment) -> None:
    """The same answer is judged by the database: MISSING when the write is not there,
    CONFIRM once it is."""
    verdicts = {}
    for really_written in (False, True):
        db = open_database(shop.database)
        try:
            user = make_user(shop_scenario(), shop, db.query)
            agent = ScriptedAgent(shop, db)
            turn = await _to_first_result(user, agent)
            turn = await user.respond(*(await agent(turn)))
            assert kinds(turn) == [FeedbackKind.CONFIRM] and requests(turn)[0].step == "t1.s0"
            if really_written:
                ToolExecutor(shop, db).call("update_order_status", {"order_id": 10, "status": "shipped"})
            claim = [Report(step="t1.s0", tool="update_order_status", ok=True, values={"status": "shipped"})]
            answer = await user.respond("Done — status shipped.", claim)
            verdicts[really_written] = answer
        finally:
            db.close()
    missing = verdicts[False]
    assert kinds(missing) == [FeedbackKind.MISSING]
    assert missing.feedback[0].step_id == "t1.s0"
    assert [(c.step, c.tool, c.args) for c in corrects(missing)] == [
        ("t1.s0", "update_order_status", {"order_id": 10, "status": "shipped"})
    ]
    assert kinds(verdicts[True]) == [FeedbackKind.CONFIRM]
    assert not corrects(verdicts[True])


async def test_a_reported_tool_error_is_sent_back(shop: Environment, shop_db: Database) -> None:
    user = make_user(shop_scenario(), shop, shop_db.query)
    await user.opening()
    await user.respond("Could you tell me the customer ID?", [])
    turn = await user.respond("That failed.", [Report(step="t0.s0", tool="get_customer", ok=False)])
    assert kinds(turn) == [FeedbackKind.MISSING]
    assert [c.step for c in corrects(turn)] == ["t0.s0"]
    assert not turn.complete and not turn.gave_up


# --------------------------------------------------------------------------- completion


async def test_with_an_honest_agent_the_user_completes_at_the_end_only(shop: Environment, shop_db: Database) -> None:
    scenario = shop_scenario()
    user = make_user(scenario, shop, shop_db.query)
    turns = await drive(user, ScriptedAgent(shop, shop_db))
    assert turns[-1].complete and not turns[-1].gave_up
    assert any(isinstance(a, Bye) for a in turns[-1].acts)
    assert not any(t.complete for t in turns[:-1])
    assert [t for turn in turns for t in turn.started_tasks] == ["t0", "t1", "t2"]
    assert all(check_assertion(shop_db.query, a) for t in scenario.tasks for a in t.expected.assertions)
    assert [k for turn in turns for k in kinds(turn)] == [FeedbackKind.CONFIRM] * 3


async def test_an_agent_that_never_writes_never_gets_a_completion(shop: Environment, shop_db: Database) -> None:
    scenario = shop_scenario()
    user = make_user(scenario, shop, shop_db.query)
    agent = ScriptedAgent(shop, shop_db, writes=False)
    turns = await drive(user, agent, limit=60)
    assert turns[-1].gave_up and not turns[-1].complete
    assert not any(t.complete for t in turns)
    assert len(turns) < 20  # bounded retries, not a loop until the turn limit
    redo = [c for t in turns for c in corrects(t) if c.step == "t1.s0"]
    assert 2 <= len(redo) <= 5
    assert FeedbackKind.MISSING in [k for t in turns for k in kinds(t)]
    assert not check_assertion(shop_db.query, scenario.tasks[1].expected.assertions[0])
    # the read tasks around it were still done and confirmed
    assert [t for turn in turns for t in turn.started_tasks] == ["t0", "t1", "t2"]


@asynccontextmanager
async def served(env: Environment) -> AsyncIterator[tuple[ToolServer, mcp.Client]]:
    server = build_tool_server(env)
    try:
        async with mcp.Client(server.server) as client:
            yield server, client
    finally:
        server.close()


async def test_the_real_agent_dropping_every_write_never_gets_a_completion(
    domain_envs: dict[str, Environment],
) -> None:
    """Over real domain scenarios with write tasks, the offline agent's writes are claimed
    but never reach the server: the user never signals completion."""
    runs = 0
    for name in DOMAINS:
        env = domain_envs[name]
        writers = frozenset(t.name for t in env.tools if t.effect is Effect.WRITE)
        scenario = next(
            s
            for s in (build_scenario(env, index=i, seed=1) for i in range(10))
            if any(step.tool in writers for t in s.tasks for step in t.chain)
        )
        async with served(env) as (server, client):

            async def call_tool(
                tool: str, arguments: dict[str, Any], client: mcp.Client = client, writers: frozenset[str] = writers
            ) -> Any:
                if tool in writers:  # claim success, change nothing
                    row = dict(arguments)
                    return types.CallToolResult(
                        content=[types.TextContent(type="text", text=str(row))], structured_content=row
                    )
                return await client.call_tool(tool, arguments)

            listed = (await client.list_tools()).tools
            agent = OfflineAgent(call_tool, listed, rng=random.Random(0))
            user = make_user(scenario, env, server.db.query)

            async def respond(turn: UserTurn, agent: OfflineAgent = agent) -> tuple[str, list[Act]]:
                reply = await agent.respond(turn.text, turn.acts)
                return reply.text, reply.acts

            turns = await drive(user, respond, limit=150)
        assert turns[-1].gave_up and not turns[-1].complete, scenario.id
        assert not any(t.complete for t in turns)
        assert len(turns) < 150
        assert FeedbackKind.MISSING in [k for t in turns for k in kinds(t)]
        runs += 1
    assert runs == 3


def test_real_dialogues_signal_completion_once_at_the_end(user_oriented: list[Dialogue]) -> None:
    for d in user_oriented:
        users = [e for e in d.record.events if isinstance(e, UserMessage)]
        flags = [e.is_task_complete for e in users]
        assert flags[-1] and not any(flags[:-1]), d.scenario.id
        assert all(not o.failed_assertions for o in d.record.outcomes), d.scenario.id


def test_real_dialogues_use_the_common_kinds_of_feedback(user_oriented: list[Dialogue]) -> None:
    # double checks, refinements and changes of mind are rarer (a double check follows a write
    # only sometimes); the 240-dialogue sample checks every kind (test_grounding)
    seen = {e.feedback for d in user_oriented for e in d.record.events if isinstance(e, UserFeedback)}
    assert {FeedbackKind.CONFIRM, FeedbackKind.CORRECTION} <= seen


# --------------------------------------------------------------------------- task-oriented


async def test_task_oriented_opening_states_every_step_and_fact(domain_envs: dict[str, Environment]) -> None:
    for name in DOMAINS:
        env = domain_envs[name]
        for index in range(3):
            to = build_scenario(env, index=index, seed=2, mode=Mode.TASK_ORIENTED)
            db = open_database(env.database)
            try:
                opening = await make_user(to, env, db.query).opening()
                uo_opening = await make_user(build_scenario(env, index=index, seed=2), env, db.query).opening()
            finally:
                db.close()
            steps = [s.id for t in to.tasks for s in [*t.chain, *([t.forbidden] if t.forbidden else [])]]
            assert [r.step for r in requests(opening)] == steps
            assert all(r.withheld == [] for r in requests(opening))
            assert opening.started_tasks == [t.id for t in to.tasks]
            for fact in (f for t in to.tasks for f in t.facts):
                assert format_value(fact.value) in opening.text
            assert len(requests(uo_opening)) < len(requests(opening))


def test_task_oriented_dialogues_are_shorter(user_oriented: list[Dialogue], task_oriented: list[Dialogue]) -> None:
    def user_turns(d: Dialogue) -> int:
        return sum(isinstance(e, UserMessage) for e in d.record.events)

    pairs = list(zip(user_oriented, task_oriented, strict=True))
    assert all(uo.scenario.id == to.scenario.id for uo, to in pairs)
    assert all(done_as_the_user_sees(to.record) for _, to in pairs)
    assert statistics.mean(user_turns(to) for _, to in pairs) * 2 <= statistics.mean(user_turns(uo) for uo, _ in pairs)
    assert sum(user_turns(to) < user_turns(uo) for uo, to in pairs) >= 13


async def test_task_oriented_a_refinement_asked_up_front_is_judged_on_the_refined_result(
    domain_envs: dict[str, Environment],
) -> None:
    """The opening asks for the search already sorted ("Show the results sorted by stock"), so
    the agent runs only the sorted search: the first row of the unsorted one is not expected.
    Before, the user called the right answer wrong ("that doesn't look like mine") and gave up."""
    from simulator.dialogue.runner import DialogueConfig, run_dialogue

    refined = 0
    for name in ("retail", "travel"):
        env = domain_envs[name]
        for index in range(40):
            scenario = build_scenario(env, index=index, seed=5, mode=Mode.TASK_ORIENTED)
            tasks = {t.id for t in scenario.tasks if t.refinement is not None}
            if not tasks:
                continue
            refined += len(tasks)
            record = await run_dialogue(scenario, env, DialogueConfig(agent_mistake_rate=0.0))
            assert record.termination is TerminationReason.USER_DONE, (record.id, record.error)
            assert all(o.success for o in record.outcomes if o.task_id in tasks), record.id
            corrected = [e for e in record.events if isinstance(e, UserFeedback) and e.task_id in tasks]
            assert not [e for e in corrected if e.feedback is FeedbackKind.CORRECTION], record.id
    assert refined >= 3
