"""Hand-written tasks over an external server, carried out for real to get their expected outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas import Environment, Mode, Persona, Scenario
from simulator.external.execute import build_environment
from simulator.external.instance import list_all_tools, open_instance
from simulator.external.spec import ExternalSpec
from simulator.external.tasks import carry_out
from simulator.llm.tasks import CallPlan, SubRequestPlan, TaskPlan


def plan(goal: str, text: str, *calls: tuple[str, dict[str, Any], list[str]]) -> TaskPlan:
    return TaskPlan(
        goal=goal,
        sub_requests=[SubRequestPlan(text=text, calls=list(range(len(calls))))],
        calls=[CallPlan(tool=tool, arguments=args, report=report) for tool, args, report in calls],
    )


async def scenario_over(
    spec: ExternalSpec, plans: list[TaskPlan], work: Path, *, scenario_id: str
) -> tuple[Environment, Scenario]:
    """The environment of ``spec`` and one scenario whose tasks were carried out on a fresh instance."""
    async with open_instance(spec, work / "inspect") as instance:
        tools = await list_all_tools(instance.client, 30)
        name = instance.client.server_info.name if instance.client.server_info else ""
    env = build_environment(spec, tools, name)
    tasks = await carry_out(spec, plans, {t.name: t for t in tools}, work / "carry", ignore=[])
    scenario = Scenario(
        id=scenario_id,
        environment_id=env.id,
        domain=env.domain,
        tasks=tasks,
        persona=Persona(name="Ada Lovelace"),
        mode=Mode.USER_ORIENTED,
        seed=1,
    )
    return env, scenario
