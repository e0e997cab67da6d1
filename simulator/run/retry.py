"""Which failed dialogues ``--retry-failed`` runs again: the infrastructure's failures, never an agent's.

A dialogue's last record is retried when it *failed* (its termination is one of
``FAILURE_REASONS``) for a reason outside the brains being measured:

- ``tool_failure``: the dialogue's tool server or its transport broke (not when the
  scenario's initial state could not be replayed, ``InitialStateError``: that is the same
  next time);
- ``timeout``: the dialogue's deadline (``--dialogue-timeout``) passed — a hanging model
  endpoint, an overloaded machine — unless the agent is an outside agent (``cmd:``,
  ``python:`` or a third-party scheme), which is then the likely cause;
- ``agent_failure`` / ``user_failure`` of a side played by a built-in brain (``offline``,
  or a model: ``provider:model``), when the recorded error is the model endpoint's (a
  provider error: connection refused or dropped, timeout, 5xx, rate limit after the
  retries, a structured reply that did not decode) or the side did not answer within the
  turn timeout (``TurnTimeout``).

Also retried: a dialogue that ran its course but whose rubric judge failed (an error from
the ``judge``: a provider error, or no verdict within the turn timeout), since its
verdicts are missing — the whole dialogue runs again.

Never retried: an outside agent's own failure — it crashed, hung, broke the protocol or
raised, whatever it raised — since that is its result and a retry would give an agent
under test extra tries; a brain that could not start (a setting, the same next time);
and dialogues that ran their course (``user_done``, ``user_gave_up``, ``max_turns``,
``too_many_tool_errors``).

The new record is appended; every reader of a dataset takes the last record of each id.
"""

from __future__ import annotations

from functools import cache

from schemas import TerminationReason
from schemas.errors import InitialStateError, TurnTimeout
from simulator.dialogue.runner import FAILURE_REASONS

__all__ = ["infrastructure_failure", "provider_error_types"]

_SIDE = {TerminationReason.AGENT_FAILURE.value: "agent", TerminationReason.USER_FAILURE.value: "user"}


@cache
def provider_error_types() -> frozenset[str]:
    """The ``error_type`` names that mean the model endpoint failed (the provider error tree)."""
    from simulator.providers import ProviderError, StructuredOutputError

    names: set[str] = set()
    todo: list[type[BaseException]] = [ProviderError, StructuredOutputError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(names)


@cache
def _model_schemes() -> frozenset[str]:
    from simulator.providers import known_providers

    return frozenset(known_providers())


def _built_in(brain: str) -> bool:
    """Whether a brain (a recorded name like ``llm:openai:gpt-4.1``, or a spec) is one dialogsim ships."""
    scheme = brain.partition(":")[0]
    return scheme == "offline" or brain.startswith("offline-") or scheme == "llm" or scheme in _model_schemes()


def infrastructure_failure(termination: str, brains: dict[str, str], errors: list[tuple[str, str]]) -> bool:
    """Whether a recorded dialogue failed on the infrastructure's side (the rule above).

    ``brains`` is the record's ``brains``; ``errors`` the ``(where, error_type)`` of its
    ErrorEvents, in order.
    """
    infrastructure = provider_error_types() | {TurnTimeout.__name__}
    if any(where == "judge" and kind in infrastructure for where, kind in errors):
        return True
    if termination not in FAILURE_REASONS:
        return False
    if termination == TerminationReason.TOOL_FAILURE.value:
        return not any(kind == InitialStateError.__name__ for _, kind in errors)
    if termination == TerminationReason.TIMEOUT.value:
        return _built_in(brains.get("agent", "offline"))
    side = _SIDE.get(termination)
    if side is None or not _built_in(brains.get(side, "")):
        return False
    return any(kind in infrastructure for where, kind in errors if where != "judge")
