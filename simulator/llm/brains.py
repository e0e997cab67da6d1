"""Brain specs per provider: ``anthropic:MODEL`` and ``openai:MODEL`` for the agent and the user."""

from __future__ import annotations

from simulator.llm.agent import llm_agent_brain
from simulator.llm.user import llm_user_brain
from simulator.roles import AgentFactory, UserFactory


def anthropic_agent(model: str) -> AgentFactory:
    return llm_agent_brain(f"anthropic:{model}")


def openai_agent(model: str) -> AgentFactory:
    return llm_agent_brain(f"openai:{model}")


def anthropic_user(model: str) -> UserFactory:
    return llm_user_brain(f"anthropic:{model}")


def openai_user(model: str) -> UserFactory:
    return llm_user_brain(f"openai:{model}")
