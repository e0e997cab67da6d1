"""The roles of a dialogue as small protocols, and what each brain is given to play one.

A brain is one implementation of a role: the offline agenda-based user and rule-based
agent, LLM brains, or an agent under evaluation. The runner builds one of each per
dialogue from a factory (see ``simulator.dialogue.brains``) and drives them over the bus.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import mcp
import mcp_types as types

from schemas import Environment, Event, Scenario, UserFeedback
from schemas.policy import Policy
from simulator.offline.acts import Act

__all__ = [
    "Agent",
    "AgentContext",
    "AgentFactory",
    "AgentTurn",
    "Query",
    "User",
    "UserContext",
    "UserFactory",
    "UserTurn",
]

#: Runs a read-only SQL query on the dialogue's live database.
Query = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]


@dataclass(slots=True)
class UserTurn:
    """One user message: its text and acts, the feedback it carries, whether the user is done."""

    text: str
    acts: list[Act]
    feedback: list[UserFeedback] = field(default_factory=list)
    started_tasks: list[str] = field(default_factory=list)
    complete: bool = False
    gave_up: bool = False


@dataclass(slots=True)
class AgentTurn:
    """One agent reply: text, and the acts it realises (offline agents only)."""

    text: str
    acts: list[Act] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UserContext:
    """What a user brain may know: its scenario (with the hidden goal), the live database, its own tools."""

    scenario: Scenario
    environment: Environment
    query: Query
    rng: random.Random
    publish: Callable[[Event], Awaitable[Any]]
    #: The user's own tools (``--user-server``, "dual control"), and how to call one; every call
    #: is recorded as the user's (UserToolCall / UserToolResult). Empty for most environments.
    tools: list[types.Tool] = field(default_factory=list)
    call_tool: Callable[[str, dict[str, Any]], Awaitable[types.CallToolResult]] | None = None


@dataclass(frozen=True, slots=True)
class AgentContext:
    """What an agent brain may know: the tools of its MCP server, never the user's goal.

    ``client`` is connected to the dialogue's MCP server; ``tools`` is what it listed.
    ``endpoint`` is set when the server is reachable over HTTP (URL and bearer token) for
    agents that connect themselves.
    """

    dialogue_id: str
    client: mcp.Client
    tools: list[types.Tool]
    policy: str | None
    description: str
    rng: random.Random
    mistake_rate: float
    history: list[Event]
    publish: Callable[[Event], Awaitable[Any]]
    call_timeout_s: float = 120.0
    endpoint: Any = None
    #: The environment's rules as data (``policy`` is the same in words), when it has them.
    rules: Policy | None = None


class User(Protocol):
    brain: str

    async def opening(self) -> UserTurn: ...

    async def respond(self, text: str, acts: list[Act]) -> UserTurn: ...


class Agent(Protocol):
    brain: str

    async def respond(self, text: str, acts: list[Act]) -> AgentTurn: ...

    async def aclose(self) -> None: ...


UserFactory = Callable[[UserContext], Awaitable[User]]
AgentFactory = Callable[[AgentContext], Awaitable[Agent]]
