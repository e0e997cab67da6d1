"""Scenarios for a run: tasks sampled over real rows, personas, modes; deterministic by seed."""

from __future__ import annotations

from collections.abc import Sequence

from schemas import Environment, Mode, Scenario

__all__ = ["build_scenarios"]


def build_scenarios(
    environments: Sequence[Environment],
    *,
    count: int,
    seed: int,
    mode: Mode = Mode.USER_ORIENTED,
) -> list[Scenario]:
    """Return ``count`` scenarios spread over ``environments``; the same seed gives the same list.

    Scenario ids are stable (``{environment_id}-{seed}-{index}``) so a resumed run can
    tell which dialogues it already has.
    """
    raise NotImplementedError
