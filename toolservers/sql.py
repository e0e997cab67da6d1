"""Small SQL text helpers shared by everything that builds or inspects SQL.

``quote_ident`` is the one way dialogsim writes an identifier into SQL: every table or
column name, whatever it contains (double quotes, semicolons, spaces, unicode, keywords),
comes out as one quoted identifier. ``leading_keyword`` reads what kind of statement a
tool's SQL is without running it, for the checks the SQLite authorizer cannot make at
load time (``VACUUM`` asks the authorizer nothing until it runs).
"""

from __future__ import annotations

import re

__all__ = ["REFUSED_KEYWORDS", "TRANSACTION_KEYWORDS", "leading_keyword", "quote_ident", "quote_literal"]

#: Statements that open, end or nest transactions.
TRANSACTION_KEYWORDS = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})
#: Statements a tool may never run, told by their first keyword: transaction control, and
#: the maintenance statements that can ask the authorizer nothing when compiled (VACUUM
#: always, REINDEX when there is nothing to reindex). ATTACH, pragma writes, schema
#: changes and the like are refused by the authorizer when the statement is compiled.
REFUSED_KEYWORDS = TRANSACTION_KEYWORDS | frozenset({"VACUUM", "REINDEX", "ANALYZE"})

_SKIP = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_]+")


def quote_ident(name: str) -> str:
    """``name`` as one SQL identifier: always double-quoted, inner double quotes doubled.

    >>> quote_ident('x"; DROP TABLE t;--')
    '"x""; DROP TABLE t;--"'
    """
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """``value`` as one SQL string literal, inner single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def leading_keyword(sql: str) -> str:
    """The first keyword of a statement, upper-cased, after whitespace and comments ("" if none)."""
    start = _SKIP.match(sql)
    at = start.end() if start else 0
    word = _WORD.match(sql, at)
    return word.group(0).upper() if word else ""
