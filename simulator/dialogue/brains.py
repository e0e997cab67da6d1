"""Brains by name: ``--agent offline``, ``--user offline``, ``--agent anthropic:claude-…``.

A brain spec is ``SCHEME`` or ``SCHEME:ARGUMENT``. Each scheme names a builder that
turns the argument into a factory; builders live in their own modules and are imported
only when a spec uses them. Third parties add schemes through the entry-point groups
``dialogsim.agents`` and ``dialogsim.users`` (``name = "package.module:builder"``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from schemas.errors import ConfigError
from simulator.dialogue.roles import AgentFactory, UserFactory

__all__ = ["agent_schemes", "register_agent", "register_user", "resolve_agent", "resolve_user", "user_schemes"]

Builder = Callable[[str], Any]

# scheme -> "module:builder"; a builder takes the spec's argument and returns a factory.
_AGENTS: dict[str, str] = {
    "offline": "simulator.offline.agent:offline_agent_brain",
    "python": "simulator.eval.agents:python_agent_brain",
    "cmd": "simulator.eval.agents:cmd_agent_brain",
    "anthropic": "simulator.llm.brains:anthropic_agent",
    "openai": "simulator.llm.brains:openai_agent",
}
_USERS: dict[str, str] = {
    "offline": "simulator.offline.user:offline_user_brain",
    "anthropic": "simulator.llm.brains:anthropic_user",
    "openai": "simulator.llm.brains:openai_user",
}


def _register(table: dict[str, str], kind: str, scheme: str, target: str) -> None:
    if scheme in table and table[scheme] != target:
        raise ValueError(f"{kind} scheme {scheme!r} is already registered to {table[scheme]}")
    table[scheme] = target


def register_agent(scheme: str, target: str) -> None:
    """Register ``"module:builder"`` for agent specs ``scheme[:argument]``; duplicates are an error."""
    _register(_AGENTS, "agent", scheme, target)


def register_user(scheme: str, target: str) -> None:
    """Register ``"module:builder"`` for user specs ``scheme[:argument]``; duplicates are an error."""
    _register(_USERS, "user", scheme, target)


def agent_schemes() -> list[str]:
    _load_entry_points()
    return sorted(_AGENTS)


def user_schemes() -> list[str]:
    _load_entry_points()
    return sorted(_USERS)


def resolve_agent(spec: str) -> AgentFactory:
    """The agent factory for ``spec``; raises ConfigError for an unknown scheme or a bad argument."""
    factory: AgentFactory = _resolve(_AGENTS, "agent", spec)
    return factory


def resolve_user(spec: str) -> UserFactory:
    """The user factory for ``spec``; raises ConfigError for an unknown scheme or a bad argument."""
    factory: UserFactory = _resolve(_USERS, "user", spec)
    return factory


_loaded = False


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for group, table, kind in (("dialogsim.agents", _AGENTS, "agent"), ("dialogsim.users", _USERS, "user")):
        for ep in entry_points(group=group):
            _register(table, kind, ep.name, ep.value)


def _resolve(table: dict[str, str], kind: str, spec: str) -> Any:
    _load_entry_points()
    scheme, _, argument = spec.partition(":")
    target = table.get(scheme)
    if target is None:
        raise ConfigError(
            f"unknown {kind} {spec!r}; expected one of: {', '.join(sorted(table))} (as SCHEME[:ARGUMENT])"
        )
    module_name, _, attr = target.partition(":")
    builder: Builder = getattr(importlib.import_module(module_name), attr)
    return builder(argument)
