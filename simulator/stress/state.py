"""State safety: after the probe, the database holds what the valid writes did and nothing else.

The reference is a fresh copy of the environment's initial database with only the probe's
successful write calls replayed on it, in the order the server answered them, through
the same executor the server uses. Any difference in any table means an invalid,
refused or read call changed data (or a write did something other than it reported).

The server's own connection must also be out of any transaction: a tool that opened one
(``BEGIN``, ``SAVEPOINT x`` left open) makes every later write provisional, so the live
state the check reads would be lost when the connection closes, or undone by a later
``ROLLBACK``; that fails the check even when the rows match.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from schemas.errors import QueryTimeoutError, ToolError
from simulator.stress.report import CheckStatus, Finding, Severity, StateCheck
from simulator.stress.target import Target
from toolservers import ToolExecutor

__all__ = ["check_state"]

_MAX_DIFFERENCES = 20
_MAX_ROW_CHARS = 200


def check_state(
    target: Target,
    successful_writes: Sequence[tuple[str, dict[str, Any]]],
    *,
    uncertain: str | None = None,
) -> tuple[StateCheck, list[Finding]]:
    """Compare the live database with the replay; the check and its finding (if it failed)."""
    if target.database is None or target.environment is None:
        return StateCheck(
            status=CheckStatus.SKIPPED,
            detail="the server's database is not reachable (only environments can be checked)",
        ), []
    if uncertain is not None:
        return StateCheck(status=CheckStatus.INCONCLUSIVE, detail=f"not checked: {uncertain}"), []
    open_transaction = target.database.conn.in_transaction
    try:
        live = target.database.snapshot()
        reference = target.fresh_database()
        refused: list[str] = []
        try:
            executor = ToolExecutor(target.environment, reference, source="stress replay")
            for name, arguments in successful_writes:
                try:
                    executor.call(name, arguments)
                except ToolError as exc:
                    refused.append(f"replaying {name} {_show(arguments)} failed: {exc}")
            expected = reference.snapshot()
        finally:
            reference.close()
    except QueryTimeoutError as exc:
        return StateCheck(status=CheckStatus.INCONCLUSIVE, detail=f"not checked: {exc}"), []
    differences = [*refused, *_diff(live, expected)]
    if open_transaction:
        differences.insert(
            0,
            "the server's connection is left inside a transaction a tool opened: every write since is "
            "uncommitted, lost when the connection closes and undone by a later ROLLBACK",
        )
    n = len(successful_writes)
    if not differences:
        return StateCheck(
            status=CheckStatus.PASSED,
            detail=f"the database holds exactly what the {n} successful write calls did (replayed on a fresh copy)",
            replayed_writes=n,
        ), []
    finding = Finding(
        check="state.changed",
        severity=Severity.CRITICAL,
        tool=None,
        message=(
            "a tool left the server's connection inside a transaction: the writes are not committed"
            if open_transaction
            else f"the database differs from a fresh copy with only the {n} successful write calls replayed: "
            "a refused, invalid or read call changed data, or a write that reported success did not persist"
        ),
        fix="run each call in a transaction that is committed on success and rolled back on any error "
        "(every exception, not only database errors), validate before writing, and let no tool run "
        "BEGIN, COMMIT, ROLLBACK, SAVEPOINT or RELEASE itself",
        evidence="; ".join(differences[:3]),
        count=len(differences),
    )
    return StateCheck(
        status=CheckStatus.FAILED,
        detail=f"{len(differences)} differences from the replay of {n} successful write calls",
        replayed_writes=n,
        differences=differences[:_MAX_DIFFERENCES],
    ), [finding]


def _diff(live: dict[str, list[tuple[Any, ...]]], expected: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    out: list[str] = []
    for table in sorted(set(live) | set(expected)):
        if table not in expected:
            out.append(f"table {table} exists only in the server's database")
            continue
        if table not in live:
            out.append(f"table {table} is missing from the server's database")
            continue
        have, want = Counter(map(repr, live[table])), Counter(map(repr, expected[table]))
        extra = list((have - want).elements())
        missing = list((want - have).elements())
        out.extend(f"{table}: row only in the server's database: {_clip(row)}" for row in extra[:5])
        out.extend(f"{table}: row only in the replay: {_clip(row)}" for row in missing[:5])
        if len(extra) > 5 or len(missing) > 5:
            out.append(f"{table}: {len(extra)} rows only in the server's database, {len(missing)} only in the replay")
    return out


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ROW_CHARS else text[: _MAX_ROW_CHARS - 3] + "..."


def _show(arguments: dict[str, Any]) -> str:
    text = json.dumps(arguments, ensure_ascii=False, default=str)
    return text if len(text) <= 120 else text[:117] + "..."
