"""The offline brains: deterministic, seeded simulators that need no model.

Dialogue acts and template language, the planner's view of a database schema, the task
planner (one module per kind of task), scenarios, the agenda-based user and the
rule-based agent.
"""
