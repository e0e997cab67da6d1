"""An environment's rules as data: who the user is, what they own, what may change and how.

The same declaration is read by the offline planner (it plans only what a rule-following
agent can do, plus requests the rules forbid), by the offline agent (it identifies the
user, checks ownership and transitions, asks for an explicit yes before every write,
refuses what is forbidden), by the policy checker of ``dialogsim stats --quality`` and,
rendered as text, by a model agent's prompt.

Ownership is a chain of foreign keys: ``TableRules.owner`` lists the columns to follow
from a row of the table to the user's row (``["item_id", "order_id", "customer_id"]``
for a return: its order item, that item's order, that order's customer). A table with
no ``owner`` is either the user table itself or, when ``public``, a catalogue anyone may
read; the user changes a public row only through the columns listed in ``side_effects``
(stock, free seats), and only as a consequence of an allowed change of their own rows.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Policy", "TableRules", "ToolRule"]


class TableRules(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """What the user may do with the rows of one table."""

    #: Foreign-key columns leading from a row of this table to the user's row; empty for the
    #: user table and for tables the user does not own.
    owner: list[str] = []
    #: The table each ``owner`` column leads to (filled in from the schema's foreign keys).
    owner_tables: list[str] = []
    #: Anyone may read it (a catalogue, a timetable); its rows belong to no user.
    public: bool = False
    #: The user may add rows (with the values of ``initial``, when given).
    create: bool = False
    #: The user may remove their rows.
    delete: bool = False
    #: Columns the user may change on their rows; ``transitions`` limit how.
    editable: list[str] = []
    #: column -> {current value: [values it may become]}. A value missing as a key cannot change.
    transitions: dict[str, dict[str, list[Any]]] = {}
    #: A column may change only while another has one of these values: {column: {other: [values]}}.
    editable_when: dict[str, dict[str, list[Any]]] = {}
    #: The values a new row's column may have: {column: [values]}.
    initial: dict[str, list[Any]] = {}
    #: Columns of a public row that change as a side effect of an allowed write (stock, seats).
    side_effects: list[str] = []


class ToolRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a hand-written tool does to the rows of ``table``, so the agent can check the rules first.

    ``action`` is ``create``, ``update`` or ``delete``; an update sets ``sets`` (column ->
    value) on the row whose ``key`` column equals the argument of the same name.
    """

    table: str
    action: str
    sets: dict[str, Any] = {}
    key: str | None = None


class Policy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The rules of one environment.

    ``user_table`` holds the people the agent serves; ``identify_by`` the columns a user
    identifies themselves with (an email, a phone number), in order of preference.
    ``tables`` has an entry per table the rules speak about; a table without one is
    read-only and unowned. ``confirm_writes``: every change needs the user's explicit yes
    after the agent has restated it. ``notes`` are further rules in plain words (shown
    to model agents with the generated ones).
    """

    user_table: str
    identify_by: list[str]
    tables: dict[str, TableRules] = {}
    #: What hand-written write tools do (derived ``create_``/``update_``/``delete_`` tools say it by name).
    tools: dict[str, ToolRule] = {}
    confirm_writes: bool = True
    #: The simulated today (YYYY-MM-DD) the rules and the tools assume, if any.
    today: str | None = None
    notes: list[str] = []

    def rules(self, table: str) -> TableRules:
        """The rules of ``table`` (an empty, read-only entry when it has none)."""
        return self.tables.get(table) or TableRules()

    def owned(self, table: str) -> bool:
        """Whether rows of ``table`` belong to a user (the user table itself included)."""
        return table == self.user_table or bool(self.rules(table).owner)
