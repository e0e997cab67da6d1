"""Sanity floors: built-in agents that should fail (``--agent baseline:NAME``).

A verifier is only worth something if an agent that does nothing useful fails it. Each
floor plays the agent with no skill at all, in its own way:

- ``baseline:silent`` answers "OK." to everything and never calls a tool;
- ``baseline:guess`` never calls a tool and answers with plausible values it can know
  without looking anything up: numbers, names and dates taken from the tools' schemas
  (enums, defaults, bounds), the environment's description and policy text, and small
  counts — the way an agent that makes things up would;
- ``baseline:random`` makes one schema-valid random tool call per user message (a random
  tool, random values of the right types, enum values from the schema) and reports what
  it got, verbatim;
- ``baseline:refuse`` politely refuses everything and never calls a tool — the floor of
  the forbidden requests, which pass only as a refusal made after looking.

None of them reads the user's dialogue acts. ``dialogsim eval --floors`` runs all four
beside the agent under test on the same scenarios and trials; each should pass (far)
fewer than 1% of the tasks of the built-in domains.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from typing import Any

import anyio
import mcp_types as types

from schemas.errors import ConfigError
from simulator.dialogue.roles import AgentContext, AgentFactory, AgentTurn
from simulator.offline.acts import Act

__all__ = ["FLOORS", "GuessingAgent", "RandomAgent", "RefusingAgent", "SilentAgent", "baseline_agent_brain"]

#: The floors, by the name after ``baseline:``.
FLOORS = ("silent", "guess", "random", "refuse")

_WORDS = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*\b")
_NUMBERS = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")
_DATES = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


class SilentAgent:
    """Says "OK." and nothing else."""

    brain = "baseline:silent"

    async def respond(self, text: str, acts: list[Act]) -> AgentTurn:
        return AgentTurn(text="OK.")

    async def aclose(self) -> None:
        """Nothing to release."""


class RefusingAgent:
    """Refuses every request, politely, without looking anything up."""

    brain = "baseline:refuse"

    async def respond(self, text: str, acts: list[Act]) -> AgentTurn:
        return AgentTurn(text="I'm sorry, I can't do that: it is not something I'm allowed to change.")

    async def aclose(self) -> None:
        """Nothing to release."""


class GuessingAgent:
    """Answers every message with plausible values it made up (see the module docstring)."""

    brain = "baseline:guess"

    def __init__(self, tools: list[types.Tool], texts: list[str], rng: random.Random) -> None:
        self.rng = rng
        numbers: set[str] = {str(n) for n in range(0, 21)}
        names: set[str] = set()
        dates: set[str] = set()
        for tool in tools:
            for prop in (tool.input_schema or {}).get("properties", {}).values():
                if not isinstance(prop, dict):
                    continue
                for value in prop.get("enum", []) or []:
                    (numbers if isinstance(value, int | float) else names).add(str(value))
                for key in ("default", "minimum", "maximum"):
                    if isinstance(prop.get(key), int | float) and not isinstance(prop.get(key), bool):
                        numbers.add(str(prop[key]))
        for text in texts:
            names.update(_WORDS.findall(text))
            numbers.update(_NUMBERS.findall(text))
            dates.update(_DATES.findall(text))
        today = dt.date(2026, 1, 1)
        dates.update((today + dt.timedelta(days=30 * i)).isoformat() for i in range(12))
        self.numbers = sorted(numbers, key=lambda n: (len(n), n))
        self.names = sorted(names)
        self.dates = sorted(dates)

    async def respond(self, text: str, acts: list[Act]) -> AgentTurn:
        names = self.rng.sample(self.names, min(len(self.names), 40))
        return AgentTurn(
            text=(
                "Here is what I have: "
                + ", ".join(names)
                + ". The numbers are "
                + ", ".join(self.numbers[:120])
                + ". Dates: "
                + ", ".join(self.dates[:24])
                + ". It's all done."
            )
        )

    async def aclose(self) -> None:
        """Nothing to release."""


class RandomAgent:
    """One random schema-valid call per message; says what came back."""

    brain = "baseline:random"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.rng = ctx.rng
        self.tools = [t for t in ctx.tools if isinstance(t.input_schema, dict)]

    async def respond(self, text: str, acts: list[Act]) -> AgentTurn:
        if not self.tools:
            return AgentTurn(text="I cannot do anything here.")
        tool = self.rng.choice(self.tools)
        arguments = _random_object(tool.input_schema, self.rng)
        with anyio.fail_after(self.ctx.call_timeout_s):
            result = await self.ctx.client.call_tool(tool.name, arguments)
        got = "".join(c.text for c in result.content if isinstance(c, types.TextContent))
        if len(got) > 1500:
            got = got[:1500] + " ..."
        return AgentTurn(text=f"I called {tool.name} with {json.dumps(arguments)} and got: {got}")

    async def aclose(self) -> None:
        """Nothing to release: the runner owns the MCP client."""


def _random_object(schema: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    props: dict[str, Any] = schema.get("properties", {}) or {}
    required = set(schema.get("required", []) or [])
    out: dict[str, Any] = {}
    for name, prop in props.items():
        if not isinstance(prop, dict) or (name not in required and rng.random() < 0.6):
            continue
        out[name] = _random_value(prop, rng)
    return out


def _random_value(prop: dict[str, Any], rng: random.Random) -> Any:
    if prop.get("enum"):
        return rng.choice(prop["enum"])
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer":
        low = int(prop.get("minimum", 1))
        high = int(prop.get("maximum", low + 99))
        return rng.randint(low, max(low, min(high, low + 99)))
    if kind == "number":
        floor = float(prop.get("minimum", 0))
        ceiling = float(prop.get("maximum", floor + 500))
        return round(rng.uniform(floor, ceiling), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "object":
        return _random_object(prop, rng)
    if kind == "array":
        item = prop.get("items", {"type": "string"})
        return [_random_value(item, rng) for _ in range(rng.randint(1, 2))] if isinstance(item, dict) else []
    if prop.get("format") == "date":
        return (dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(730))).isoformat()
    low = int(prop.get("minLength", 1))
    high = max(low, min(int(prop.get("maxLength", 12)), 12))
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join(rng.choice(letters) for _ in range(rng.randint(low, high)))


def baseline_agent_brain(argument: str) -> AgentFactory:
    """The ``baseline:NAME`` agent spec; NAME is one of :data:`FLOORS`. Raises ConfigError otherwise."""
    if argument not in FLOORS:
        raise ConfigError(f"baseline agent {argument!r}: expected one of {', '.join(FLOORS)} (as baseline:NAME)")

    async def factory(ctx: AgentContext) -> SilentAgent | RefusingAgent | GuessingAgent | RandomAgent:
        if argument == "silent":
            return SilentAgent()
        if argument == "refuse":
            return RefusingAgent()
        if argument == "guess":
            return GuessingAgent(ctx.tools, [ctx.description, ctx.policy or ""], ctx.rng)
        return RandomAgent(ctx)

    return factory
