"""The state of an external environment on disk: a snapshot of files by content, and diffs.

A snapshot maps each file's path (relative, with ``/``) to the sha256 of its content; a
symbolic link maps to ``link:`` and its target. For a single state file the one path is
its name. A diff lists the paths added, removed and changed from one snapshot to another.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from schemas import FileChange

__all__ = ["Snapshot", "apply_changes", "diff", "snapshot"]

Snapshot = dict[str, str]


def snapshot(path: Path | None) -> Snapshot:
    """Every file under ``path`` (or ``path`` itself when it is a file) by content digest."""
    if path is None or not path.exists():
        return {}
    if path.is_file():
        return {path.name: _digest(path)}
    out: Snapshot = {}
    for root, dirs, files in os.walk(path):
        base = Path(root)
        for name in [*files, *[d for d in dirs if (base / d).is_symlink()]]:
            full = base / name
            rel = full.relative_to(path).as_posix()
            out[rel] = f"link:{os.readlink(full)}" if full.is_symlink() else _digest(full)
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
    return out


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def diff(before: Snapshot, after: Snapshot, *, ignore: Iterable[str] = ()) -> list[FileChange]:
    """What changed from ``before`` to ``after``, sorted by path; ``ignore`` paths left out."""
    skip = set(ignore)
    changes: list[FileChange] = []
    for path in sorted(set(before) | set(after)):
        if path in skip:
            continue
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if old is None:
            changes.append(FileChange(path=path, change="added", digest=new))
        elif new is None:
            changes.append(FileChange(path=path, change="removed"))
        else:
            changes.append(FileChange(path=path, change="changed", digest=new))
    return changes


def apply_changes(base: Snapshot, changes: Iterable[FileChange]) -> Snapshot:
    """``base`` with ``changes`` applied in order."""
    out = dict(base)
    for change in changes:
        if change.change == "removed":
            out.pop(change.path, None)
        elif change.digest is not None:
            out[change.path] = change.digest
    return out
