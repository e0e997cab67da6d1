"""The rubric judge: a model's valid/invalid verdict per task, critical rubric items enforced.

The database checks still decide first: a task whose assertions fail is not rescued by
the judge. A task that passes them is successful only when the judge also finds it
valid, so the judge catches what assertions cannot (an agent that did the right thing
but misled the user, ignored an error, or broke policy).
"""

from __future__ import annotations

import enum

import msgspec

from schemas import (
    AgentMessage,
    CheckKind,
    Event,
    ProviderCall,
    Scenario,
    Task,
    TaskOutcome,
    ToolCall,
    ToolResult,
    UserMessage,
)
from schemas import Verdict as CheckVerdict
from simulator.llm.setup import current_setup
from simulator.offline.language import format_value
from simulator.providers import ChatMessage, Request, complete_structured, parse_model

__all__ = ["Judgment", "Verdict", "judge_outcomes"]


class Verdict(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"


class Judgment(msgspec.Struct, forbid_unknown_fields=True):
    judgment: Verdict
    reasoning: str


async def judge_outcomes(
    model: str,
    scenario: Scenario,
    events: list[Event],
    outcomes: list[TaskOutcome],
    publish: object,
) -> list[TaskOutcome]:
    """Ask ``model`` to judge every task; returns the outcomes with the verdicts applied."""
    setup = current_setup()

    async def on_call(event: ProviderCall) -> object:
        return await publish(event)  # type: ignore[operator]

    client = setup.client(parse_model(model)).bind(role="judge", on_call=on_call, meter=setup.meter)
    template = setup.prompt("judge")
    transcript = _transcript(events)
    judged = []
    for task, outcome in zip(scenario.tasks, outcomes, strict=True):
        checks = _check_lines(task, outcome)
        rubric = "\n".join(f"- [{r.kind}] {r.text}" for r in task.rubric) or "- (none)"
        prompt = template.format(
            goal=task.goal, rubric=rubric, checks="\n".join(checks) or "- (none)", transcript=transcript
        )
        verdict = await complete_structured(
            client, Request(messages=[ChatMessage.user(prompt)]), Judgment, name="judgment"
        )
        judged.append(
            msgspec.structs.replace(
                outcome,
                success=outcome.success and verdict.judgment is Verdict.VALID,
                judgment=verdict.judgment.value,
                reasoning=verdict.reasoning,
            )
        )
    return judged


def _check_lines(task: Task, outcome: TaskOutcome) -> list[str]:
    """What the checks found, for the judge: the verdicts stay; the judge adds its own on top."""
    if outcome.checks:
        lines = []
        for c in outcome.checks:
            if c.kind is CheckKind.STATE:
                diff = "; ".join(d.text for d in c.diff[:5])
                lines.append(
                    f"- the whole final database matches the gold replay: {_word(c.verdict)}"
                    + (f" ({diff})" if diff else "")
                )
            elif c.kind is CheckKind.VALUE:
                lines.append(f"- the agent told the user {c.name}, grounded in a tool result: {_word(c.verdict)}")
            elif c.kind is CheckKind.ASSERTION:
                lines.append(f"- {c.name}: {'holds' if c.verdict is CheckVerdict.PASS else 'FAILS'}")
        return lines
    lines = [
        f"- {a.description}: {'holds' if a.description not in outcome.failed_assertions else 'FAILS'}"
        for a in task.expected.assertions
    ]
    lines += [
        f"- the agent said {v.name} = {format_value(v.value)}: "
        f"{'yes' if f'{v.step}:{v.name}={v.value!r}' not in outcome.missing_values else 'NO'}"
        for v in task.expected.values
    ]
    return lines


def _word(verdict: CheckVerdict) -> str:
    return "yes" if verdict is CheckVerdict.PASS else "NO"


def _transcript(events: list[Event]) -> str:
    lines = []
    for e in events:
        if isinstance(e, UserMessage):
            lines.append(f"USER: {e.text}")
        elif isinstance(e, AgentMessage):
            lines.append(f"ASSISTANT: {e.text}")
        elif isinstance(e, ToolCall):
            lines.append(f"TOOL CALL {e.tool}({msgspec.json.encode(e.arguments).decode()})")
        elif isinstance(e, ToolResult):
            lines.append(f"TOOL {'ERROR' if e.is_error else 'RESULT'}: {e.text[:2000]}")
    return "\n".join(lines)
