"""Brain specs per provider: ``anthropic:MODEL`` and ``openai:MODEL`` for the agent and the user."""

from __future__ import annotations

from simulator.dialogue.roles import AgentFactory, UserFactory
from simulator.llm.agent import llm_agent_brain
from simulator.llm.user import llm_user_brain


def anthropic_agent(model: str) -> AgentFactory:
    return llm_agent_brain(f"anthropic:{model}")


def openai_agent(model: str) -> AgentFactory:
    return llm_agent_brain(f"openai:{model}")


def anthropic_user(model: str) -> UserFactory:
    return llm_user_brain(f"anthropic:{model}")


def openai_user(model: str) -> UserFactory:
    return llm_user_brain(f"openai:{model}")
