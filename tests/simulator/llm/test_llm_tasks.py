"""The LLM task generator and environment designer, against a scripted OpenAI-compatible loopback server.

The "model" answers by the structured-output schema it is asked for (``tasks``,
``task``, ``environment``, ``tool_repairs``): whatever it writes is checked by really
running it, so the tests show what survives, what is repaired and what is dropped.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from schemas import DialogueRecord, Environment, Task, ValueRef
from simulator.dialogue.verify import check_assertion
from simulator.llm import LLMSetup, use_setup
from simulator.llm.environment import design_environment, dry_run, sample_arguments
from simulator.llm.setup import current_setup
from simulator.llm.tasks import generate_tasks
from simulator.offline.planner import rows_of
from simulator.providers import LLMClient, parse_model, settings_from_env
from simulator.providers.loopback import Received, Reply, openai_completion, serve_loopback
from tests.conftest import SHOP_DDL, shop_environment
from toolservers.database import open_database
from toolservers.executor import ToolExecutor
from toolservers.transports import connect_tool_server

KEY = "sk-test-secret-key-0123456789"
MODEL = "openai:planner-model"


def _tasks() -> list[dict[str, Any]]:
    """A valid batch over the shop: a lookup, a chained lookup, two writes."""
    return [
        {
            "goal": "You want to check the tier of your account (customer 1).",
            "difficulty": "easy",
            "sub_requests": [{"text": "Can you look up my account?", "calls": [0]}],
            "facts": [{"name": "customer_id", "value": 1, "description": "your customer number"}],
            "calls": [{"tool": "get_customer", "arguments": {"customer_id": 1}, "report": ["name", "tier"]}],
            "rubric": [{"kind": "critical", "text": "says the tier"}],
        },
        {
            "goal": "You want Alan's email, found by his name.",
            "difficulty": "medium",
            "sub_requests": [{"text": "Find Alan and tell me his email.", "calls": [0, 1]}],
            "calls": [
                {"tool": "search_customers", "arguments": {"name": "Alan"}},
                {
                    "tool": "get_customer",
                    "arguments": {"customer_id": {"$from": 0, "field": "customer_id"}},
                    "report": ["email"],
                },
            ],
        },
        {
            "goal": "You want order 10 cancelled and a new gold customer Grace added.",
            "difficulty": "hard",
            "sub_requests": [
                {"text": "Please cancel order 10.", "calls": [0]},
                {"text": "And add Grace Hopper as a gold customer.", "calls": [1]},
            ],
            "facts": [{"name": "email", "value": "grace@example.com", "description": "Grace's email"}],
            "calls": [
                {"tool": "update_order_status", "arguments": {"order_id": 10, "status": "cancelled"}},
                {
                    "tool": "create_customer",
                    "arguments": {"name": "Grace Hopper", "email": "grace@example.com", "tier": "gold"},
                    "report": ["customer_id"],
                },
            ],
            "follows": 0,
        },
    ]


class Scripted:
    """Answers structured requests by schema name; records every request body."""

    def __init__(self, answers: dict[str, list[Any]]) -> None:
        self.answers = answers
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: Received) -> Reply:
        body = request.json()
        self.bodies.append(body)
        name = body.get("response_format", {}).get("json_schema", {}).get("name")
        queue = self.answers.get(str(name))
        if not queue:
            return Reply(status=400, body={"error": {"message": f"unscripted {name}", "type": "invalid_request"}})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return Reply(body=openai_completion(json.dumps(answer)))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies if b.get("response_format", {}).get("json_schema", {}).get("name") == name]


async def _with_client(model: Scripted, work: Callable[[LLMClient], Any]) -> Any:
    async def handler(request: Received) -> Reply:
        return model(request)

    async with serve_loopback(handler) as server:
        spec = parse_model(MODEL)
        setup = LLMSetup(
            settings={str(spec): settings_from_env(spec, {}, api_key=KEY, base_url=server.openai_base_url)}
        )
        with use_setup(setup):
            try:
                return await work(current_setup().client(spec))
            finally:
                await setup.pool.aclose()


def _replay(env: Environment, tasks: list[Task]) -> Any:
    """A fresh copy of the database with every task's chain run in order (refs resolved from results)."""
    db = open_database(env.database)
    executor = ToolExecutor(env, db)
    results: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        for step in task.chain:
            args = dict(step.arguments)
            for name, ref in step.refs.items():
                args[name] = results[ref.step][ref.row][ref.field]
            assert args == step.resolved
            results[step.id] = rows_of(executor.call(step.tool, args).structured)
    return db


# --------------------------------------------------------------------------- task generator


@pytest.mark.anyio
async def test_the_task_generator_turns_a_valid_answer_into_checkable_tasks() -> None:
    env = shop_environment()
    model = Scripted({"tasks": [{"tasks": _tasks()}]})

    async def work(client: LLMClient) -> list[Task]:
        template = current_setup().prompt("task_generator")
        return await generate_tasks(client, template, env, count=3, rng=random.Random(1))

    tasks: list[Task] = await _with_client(model, work)
    assert [t.id for t in tasks] == ["t0", "t1", "t2"]
    # The prompt showed the schema, real rows and the tools.
    prompt = model.bodies[0]["messages"][0]["content"]
    assert "CREATE TABLE customers" in prompt and "Ada Lovelace" in prompt and "update_order_status" in prompt
    first, chained, writes = tasks
    assert {(v.name, v.value) for v in first.expected.values} == {("name", "Ada Lovelace"), ("tier", "gold")}
    assert [f.name for f in first.facts] == ["customer_id"]
    assert chained.chain[1].refs == {"customer_id": ValueRef(step="t1.s0", field="customer_id")}
    assert chained.chain[1].resolved == {"customer_id": 2}
    assert [(v.step, v.value) for v in chained.expected.values] == [("t1.s1", "alan@example.com")]
    assert [s.steps for s in writes.sub_requests] == [["t2.s0"], ["t2.s1"]]
    assert [s.intent for s in writes.sub_requests] == ["update", "create"]
    assert writes.follows == "t0" and writes.difficulty == "hard"
    assert len(writes.expected.assertions) == 2 and len(writes.expected.step_checks) == 2

    fresh = open_database(env.database)
    try:
        assert not any(check_assertion(fresh.query, a) for a in writes.expected.assertions)  # fail before
    finally:
        fresh.close()
    replayed = _replay(env, tasks)
    try:
        assert all(check_assertion(replayed.query, a) for t in tasks for a in t.expected.assertions)
    finally:
        replayed.close()


@pytest.mark.anyio
@pytest.mark.parametrize("repair_works", [True, False])
async def test_a_task_whose_call_fails_is_repaired_once_then_dropped(repair_works: bool) -> None:
    env = shop_environment()
    broken = dict(_tasks()[0], calls=[{"tool": "get_pet", "arguments": {"pet_id": 1}}])
    fixed = (
        _tasks()[0]
        if repair_works
        else dict(_tasks()[0], calls=[{"tool": "get_customer", "arguments": {"customer_id": 99}}])
    )
    model = Scripted({"tasks": [{"tasks": [broken, _tasks()[1]]}], "task": [fixed]})

    async def work(client: LLMClient) -> list[Task]:
        return await generate_tasks(
            client, current_setup().prompt("task_generator"), env, count=2, rng=random.Random(2)
        )

    tasks: list[Task] = await _with_client(model, work)
    repairs = model.named("task")
    assert len(repairs) == 1  # sent back once, with the error
    assert (
        "get_pet" in repairs[0]["messages"][-1]["content"] and "does not exist" in repairs[0]["messages"][-1]["content"]
    )
    if repair_works:
        assert [t.goal for t in tasks] == [_tasks()[0]["goal"], _tasks()[1]["goal"]]
    else:
        assert [t.goal for t in tasks] == [_tasks()[1]["goal"]]
        assert tasks[0].id == "t0" and tasks[0].chain[0].id == "t0.s0"


# --------------------------------------------------------------------------- environment designer

SALON_DDL = """
CREATE TABLE pets (
    pet_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    species TEXT NOT NULL CHECK (species IN ('dog', 'cat')),
    owner_email TEXT NOT NULL UNIQUE
);
CREATE TABLE appointments (
    appointment_id INTEGER PRIMARY KEY,
    pet_id INTEGER NOT NULL REFERENCES pets(pet_id),
    day TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('booked', 'done', 'cancelled'))
);
"""
SALON_SEED = {
    "pets": [
        {"pet_id": 1, "name": "Biscuit", "species": "dog", "owner_email": "ann@example.com"},
        {"pet_id": 2, "name": "Miso", "species": "cat", "owner_email": "bo@example.com"},
    ],
    "appointments": [{"appointment_id": 1, "pet_id": 1, "day": "2026-03-01", "status": "booked"}],
}


def _tool(name: str, sql: str, params: dict[str, Any], *, effect: str = "read", result: str = "rows") -> dict[str, Any]:
    return {
        "name": name,
        "description": name.replace("_", " "),
        "effect": effect,
        "parameters": {"type": "object", "properties": params, "required": list(params)},
        "sql": [sql],
        "result": result,
    }


FIND = _tool(
    "find_pets_by_species",
    "SELECT * FROM pets WHERE species = :species",
    {"species": {"type": "string", "enum": ["dog", "cat"]}},
)
BOOK = _tool(
    "book_appointment",
    "INSERT INTO appointments (pet_id, day, status) VALUES (:pet_id, :day, 'booked') RETURNING *",
    {"pet_id": {"type": "integer"}, "day": {"type": "string"}},
    effect="write",
    result="row",
)
PET = {"pet_id": {"type": "integer"}}
BROKEN = _tool("pet_details", "SELECT * FROM pet WHERE pet_id = :pet_id", PET, result="row")
FIXED = _tool("pet_details", "SELECT * FROM pets WHERE pet_id = :pet_id", PET, result="row")
# Compiles, but the dry run hits the CHECK constraint.
BAD_WRITE = _tool(
    "lose_appointment",
    "UPDATE appointments SET status = 'lost' WHERE appointment_id = :appointment_id",
    {"appointment_id": {"type": "integer"}},
    effect="write",
    result="affected",
)


def _design(ddl: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {"description": "A pet grooming salon", "policy": "Be kind.", "ddl": ddl, "seed": SALON_SEED, "tools": tools}


@pytest.mark.anyio
async def test_the_designer_builds_a_working_environment_and_repairs_or_drops_bad_tools() -> None:
    model = Scripted(
        {
            "environment": [
                _design("CREATE TABLE pets (pet_id INTEGER PRIMARY KEY, name TEXT", [FIND]),  # broken DDL
                _design(SALON_DDL, [FIND, BOOK, BROKEN, BAD_WRITE]),
            ],
            "tool_repairs": [{"tools": [FIXED, BAD_WRITE]}],
        }
    )

    async def work(client: LLMClient) -> Environment:
        template = current_setup().prompt("environment_designer")
        return await design_environment(client, template, "a pet grooming salon", env_id="salon")

    env: Environment = await _with_client(model, work)
    assert len(model.named("environment")) == 2 and "SQLite refused the DDL" in json.dumps(
        model.bodies[1]["messages"][-1]
    )
    repair = model.named("tool_repairs")
    assert len(repair) == 1
    asked = repair[0]["messages"][-1]["content"]
    assert "pet_details" in asked and "no such table" in asked and "lose_appointment" in asked and "CHECK" in asked
    names = {t.name for t in env.tools}
    assert {"find_pets_by_species", "book_appointment", "pet_details"} <= names
    assert "lose_appointment" not in names
    assert any(t.category == "get" for t in env.tools)  # the derived tools are there too
    assert env.id == "salon" and env.description == "A pet grooming salon" and env.policy == "Be kind."

    async with connect_tool_server(env) as conn:
        booked = await conn.client.call_tool("book_appointment", {"pet_id": 2, "day": "2026-04-02"})
        assert not booked.is_error
        assert json.loads(booked.content[0].text)["status"] == "booked"  # type: ignore[union-attr]
        found = await conn.client.call_tool("pet_details", {"pet_id": 2})
        assert not found.is_error and "Miso" in found.content[0].text  # type: ignore[union-attr]
        dogs = await conn.client.call_tool("find_pets_by_species", {"species": "dog"})
        assert not dogs.is_error and "Biscuit" in dogs.content[0].text  # type: ignore[union-attr]
        # Designed tools answer with structured content too, typed like the derived tools
        # of the same table (the MCP client validated it against the output schema).
        assert dogs.structured_content is not None and dogs.structured_content["count"] >= 1
    designed = {t.name: t for t in env.tools if t.category == "designed"}
    derived_pet = next(t for t in env.tools if t.category == "get" and t.table == "pets")
    assert derived_pet.output_schema is not None
    pets_schema = designed["find_pets_by_species"].output_schema
    assert pets_schema is not None
    assert pets_schema["properties"]["rows"]["items"]["properties"] == derived_pet.output_schema["properties"]


def test_a_dry_run_leaves_the_seeded_database_unchanged() -> None:
    from schemas import DatabaseSpec, Effect, ResultShape, SqlImplementation, ToolSpec

    book = ToolSpec(
        name="book_appointment",
        description="book",
        input_schema=BOOK["parameters"],
        implementation=SqlImplementation(statements=BOOK["sql"], result=ResultShape.ROW),
        effect=Effect.WRITE,
        table="appointments",
    )
    env = Environment(id="salon", domain="salon", database=DatabaseSpec(ddl=SALON_DDL, seed=SALON_SEED), tools=[book])
    db = open_database(env.database)
    try:
        before = db.snapshot()
        args = sample_arguments(book, db)
        assert args == {"pet_id": 1, "day": "2026-03-01"}  # drawn from the seeded rows
        result = dry_run(ToolExecutor(env, db), "book_appointment", args)
        assert result["status"] == "booked" and result["appointment_id"] == 2
        assert db.snapshot() == before
        assert not db.conn.in_transaction
    finally:
        db.close()


# --------------------------------------------------------------------------- command line


def _shop_design() -> dict[str, Any]:
    env = shop_environment()
    tools = [
        {
            "name": t.name,
            "description": t.description,
            "effect": t.effect.value,
            "parameters": t.input_schema,
            "sql": t.implementation.statements,
            "result": t.implementation.result.value,
        }
        for t in env.tools
    ]
    return {"description": "A tiny shop", "ddl": SHOP_DDL, "seed": env.database.seed, "tools": tools}


@pytest.mark.anyio
async def test_generate_designs_and_plans_with_a_model_and_resumes_without_planning_again(tmp_path: Path) -> None:
    model = Scripted({"environment": [_shop_design()], "tasks": [{"tasks": _tasks()}]})
    out = tmp_path / "data"

    async def handler(request: Received) -> Reply:
        return model(request)

    async def generate(server_url: str) -> Any:
        return await anyio.run_process(
            [
                sys.executable,
                "-m",
                "simulator",
                "generate",
                "--design",
                "a tiny shop",
                "--env-model",
                MODEL,
                "--tasks-model",
                MODEL,
                "--base-url",
                server_url,
                "--dialogues",
                "2",
                "--concurrency",
                "1",
                "--seed",
                "4",
                "--out",
                str(out),
                "--no-progress",
            ],
            check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENAI_API_KEY": KEY},
        )

    async with serve_loopback(handler) as server:
        first = await generate(server.openai_base_url)
        assert first.returncode == 0, first.stderr.decode()
        planned = len(model.bodies)
        assert len(model.named("environment")) == 1 and len(model.named("tasks")) == 2 == planned - 1
        lines = (out / "dialogues.jsonl").read_bytes().splitlines()
        records = [msgspec.json.decode(line, type=DialogueRecord) for line in lines]
        assert len(records) == 2
        assert {r.scenario.environment_id for r in records} == {"a-tiny-shop"}
        assert all(r.scenario.tasks[0].goal == _tasks()[0]["goal"] for r in records)
        # The offline user and agent carry out the model's tasks, and the checks confirm it.
        assert all(o.success for r in records for o in r.outcomes)
        assert (out / "plan" / "scenarios.jsonl").is_file() and (out / "environments" / "a-tiny-shop.json").is_file()

        # A killed run: the second record never made it. Running again reuses the plan.
        (out / "dialogues.jsonl").write_bytes(lines[0] + b"\n")
        second = await generate(server.openai_base_url)
        assert second.returncode == 0, second.stderr.decode()
        assert len(model.bodies) == planned  # no new request: nothing was planned again
        assert "resuming" in second.stderr.decode()
        again = [
            msgspec.json.decode(line, type=DialogueRecord)
            for line in (out / "dialogues.jsonl").read_bytes().splitlines()
        ]
        assert [r.scenario for r in again] == [r.scenario for r in records]
    assert KEY not in first.stderr.decode() + second.stderr.decode()
