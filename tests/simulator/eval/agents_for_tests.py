"""Python agents the evaluation tests run through the ``python:`` way in.

Loaded by file path (``python:<this file>:make_idle``); they reuse the example policy.
"""

from __future__ import annotations

import json
import os
from typing import Any

from examples.python_agent import ExampleAgent
from simulator.eval import AgentReply


class IdleAgent:
    """Answers politely and does nothing."""

    async def reply(self, conversation: list[Any], session: Any) -> str:
        return "OK, noted."


def make_idle(info: Any) -> IdleAgent:
    return IdleAgent()


class CorruptingAgent(ExampleAgent):
    """Does every task right, then, as the user leaves, cancels order 10 of the shop."""

    async def reply(self, conversation: list[Any], session: Any) -> str:
        if any(act.get("act") == "bye" for act in conversation[-1].acts):
            await session.call_tool("update_order_status", {"order_id": 10, "status": "cancelled"})
        return await super().reply(conversation, session)


class CollateralAgent(ExampleAgent):
    """Does every task right, and as the user leaves, also cancels order 11, which no task is about."""

    async def reply(self, conversation: list[Any], session: Any) -> str:
        if any(act.get("act") == "bye" for act in conversation[-1].acts):
            await session.call_tool("update_order_status", {"order_id": 11, "status": "cancelled"})
        return await super().reply(conversation, session)


def make_collateral(info: Any) -> CollateralAgent:
    return CollateralAgent(info.tools)


class ExtraInsertAgent(ExampleAgent):
    """Does every task right, and as the user leaves, adds a customer nobody asked for."""

    async def reply(self, conversation: list[Any], session: Any) -> str:
        if any(act.get("act") == "bye" for act in conversation[-1].acts):
            extra = {"name": "Nobody Asked", "email": "nobody@example.com", "tier": "basic"}
            await session.call_tool("create_customer", extra)
        return await super().reply(conversation, session)


def make_extra_insert(info: Any) -> ExtraInsertAgent:
    return ExtraInsertAgent(info.tools)


class CostlyIdleAgent:
    """Does nothing, and says what each reply cost."""

    async def reply(self, conversation: list[Any], session: Any) -> AgentReply:
        return AgentReply("OK.", model="fake-1", input_tokens=10, output_tokens=2, cost_usd=0.5)


def make_costly_idle(info: Any) -> CostlyIdleAgent:
    return CostlyIdleAgent()


def make_corrupting(info: Any) -> CorruptingAgent:
    return CorruptingAgent(info.tools)


def make_flaky(info: Any) -> ExampleAgent | IdleAgent:
    """Correct, except in every trial 2 (dialogue ids ending in ``~t2``), where it does nothing."""
    return IdleAgent() if info.dialogue_id.endswith("~t2") else ExampleAgent(info.tools)


class RaisingAgent:
    async def reply(self, conversation: list[Any], session: Any) -> str:
        raise RuntimeError("the agent's own bug")


def make_raising(info: Any) -> RaisingAgent:
    return RaisingAgent()


def not_an_agent(info: Any) -> str:
    return "no reply method here"


class EnvReportingAgent:
    """Answers with its whole environment, as JSON (what an agent could read and leak)."""

    async def reply(self, conversation: list[Any], session: Any) -> str:
        return json.dumps(dict(os.environ))


def make_env_reporting(info: Any) -> EnvReportingAgent:
    return EnvReportingAgent()


#: About a megabyte of one comma-separated list with no full stop, exclamation or question mark.
MEGABYTE = ", ".join(f"item {i}" for i in range(130_000))


class FloodingAgent:
    """Answers every message with a megabyte (the hostile reply the user must read)."""

    async def reply(self, conversation: list[Any], session: Any) -> str:
        return MEGABYTE


def make_flooding(info: Any) -> FloodingAgent:
    return FloodingAgent()


class InventingAgent:
    """Calls a tool the server does not have, once, then answers."""

    async def reply(self, conversation: list[Any], session: Any) -> str:
        try:
            await session.call_tool("teleport_order", {"order_id": 1})
        except Exception as exc:  # the server answers with a JSON-RPC error
            return f"I could not do that: {type(exc).__name__}"
        return "That worked?"


def make_inventing(info: Any) -> InventingAgent:
    return InventingAgent()
