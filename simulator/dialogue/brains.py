"""Brains by name: ``--agent offline``, ``--user offline``, ``--agent anthropic:claude-…``.

A brain spec is ``SCHEME`` or ``SCHEME:ARGUMENT``. Each scheme names a builder that
turns the argument into a factory; builders live in their own modules and are imported
only when a spec uses them. Third parties add schemes through the entry-point groups
``dialogsim.agents`` and ``dialogsim.users`` (``name = "package.module:builder"``), or
with :func:`register_agent` / :func:`register_user`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.errors import ConfigError
from simulator.dialogue.roles import AgentFactory, UserFactory
from simulator.registry import Registry

__all__ = [
    "AGENTS",
    "USERS",
    "agent_schemes",
    "register_agent",
    "register_user",
    "resolve_agent",
    "resolve_user",
    "user_schemes",
]

#: Turns the argument of a spec (after ``SCHEME:``) into a factory; raises ConfigError for a bad one.
Builder = Callable[[str], Any]

AGENTS: Registry[Builder] = Registry(
    "agent",
    builtin={
        "offline": "simulator.offline.agent:offline_agent_brain",
        "python": "simulator.eval.agents:python_agent_brain",
        "cmd": "simulator.eval.agents:cmd_agent_brain",
        "baseline": "simulator.eval.baselines:baseline_agent_brain",
        "anthropic": "simulator.llm.brains:anthropic_agent",
        "openai": "simulator.llm.brains:openai_agent",
    },
    group="dialogsim.agents",
)
USERS: Registry[Builder] = Registry(
    "user",
    builtin={
        "offline": "simulator.offline.user:offline_user_brain",
        "anthropic": "simulator.llm.brains:anthropic_user",
        "openai": "simulator.llm.brains:openai_user",
    },
    group="dialogsim.users",
)


def register_agent(scheme: str, target: str) -> None:
    """Register ``"module:builder"`` for agent specs ``scheme[:argument]``; a taken scheme is an error."""
    AGENTS.declare(scheme, target)


def register_user(scheme: str, target: str) -> None:
    """Register ``"module:builder"`` for user specs ``scheme[:argument]``; a taken scheme is an error."""
    USERS.declare(scheme, target)


def agent_schemes() -> list[str]:
    return AGENTS.names()


def user_schemes() -> list[str]:
    return USERS.names()


def resolve_agent(spec: str) -> AgentFactory:
    """The agent factory for ``spec``; raises ConfigError for an unknown scheme or a bad argument."""
    factory: AgentFactory = _resolve(AGENTS, spec)
    return factory


def resolve_user(spec: str) -> UserFactory:
    """The user factory for ``spec``; raises ConfigError for an unknown scheme or a bad argument."""
    factory: UserFactory = _resolve(USERS, spec)
    return factory


def _resolve(registry: Registry[Builder], spec: str) -> Any:
    scheme, _, argument = spec.partition(":")
    if scheme not in registry:
        raise ConfigError(
            f"unknown {registry.kind} {spec!r}; expected one of: {', '.join(registry.names())} (as SCHEME[:ARGUMENT])"
        )
    return registry.get(scheme)(argument)
