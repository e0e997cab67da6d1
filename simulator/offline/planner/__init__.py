"""Offline task generation: chains of tool calls sampled over real rows.

A ``Planner`` works on a private copy of the environment's database, for one user (a row
of the rules' user table). It samples a kind of task (``kinds``: look something up,
follow relations, count, browse a catalogue, change a field, add a row, remove one, or
ask for something the rules forbid), picks real rows, and executes each step as it
plans it, so later steps can use earlier results and the expected outcome is what
really happened: values the agent must say, checks right after each write, and
assertions on the final state once every task of the scenario has run. Tasks can follow
up on an earlier task's rows (``anchor``), which is how related and follow-up tasks
chain in one dialogue.
"""

from __future__ import annotations

from simulator.offline.planner._base import Anchor, final_assertion, rows_of
from simulator.offline.planner.planner import Planner, task_count

__all__ = ["Anchor", "Planner", "final_assertion", "rows_of", "task_count"]
