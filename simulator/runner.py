"""Run one dialogue: database copy, MCP server, user and agent coroutines, verification, record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from schemas import DialogueRecord, Environment, Event, Scenario

__all__ = ["DialogueConfig", "EventSink", "run_dialogue"]

EventSink = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DialogueConfig:
    """Per-dialogue settings of a run."""

    transport: str = "inprocess"  # inprocess | stdio | http
    max_turns: int = 120
    max_tool_errors: int = 10
    timeout_s: float = 300.0
    agent_mistake_rate: float = 0.1


async def run_dialogue(
    scenario: Scenario,
    environment: Environment,
    config: DialogueConfig,
    *,
    on_event: EventSink | None = None,
) -> DialogueRecord:
    """Run ``scenario`` to its end and return its record.

    Never raises for a failure of the dialogue itself: that is recorded as the record's
    termination reason and error. ``on_event`` sees every event as it is published.
    """
    raise NotImplementedError
