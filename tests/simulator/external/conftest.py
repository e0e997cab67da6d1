"""Real third-party MCP servers for the external-environment tests.

``mcp-server-time`` and ``mcp-server-git`` are installed from PyPI with the dev extras
(``make test`` does it); their console scripts sit next to this interpreter. The git
repository and the notes database are made here, locally: no test touches the network.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
NOTES_SERVER = Path(__file__).with_name("notes_server.py")


def server_program(name: str) -> str:
    """The path of an installed server's console script; skips (saying how to install it) when absent."""
    program = BIN / name
    if not program.exists():
        pytest.skip(f"{name} is not installed next to {sys.executable}: run `make test` (pip install -e '.[dev]')")
    return str(program)


def time_command() -> str:
    return f"{shlex.quote(server_program('mcp-server-time'))} --local-timezone UTC"


def git_command() -> str:
    return f"{shlex.quote(server_program('mcp-server-git'))} --repository {{state}}"


def notes_command(*extra: str) -> str:
    words = [sys.executable, str(NOTES_SERVER), "{state}", *extra]
    return " ".join(shlex.quote(w) if w != "{state}" else w for w in words)


_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada Lovelace",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Lovelace",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_AUTHOR_DATE": "2024-03-01T10:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-03-01T10:00:00+00:00",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, **_GIT_ENV}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A small local repository: two commits on ``main``, a ``feature`` branch, an uncommitted file."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# Demo\n\nA tiny project.\n")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "Add the README")
    (repo / "app.py").write_text("print('hello')\n")
    _git(repo, "add", "app.py")
    _git(repo, "commit", "-q", "-m", "Add the app")
    _git(repo, "branch", "feature")
    (repo / "notes.txt").write_text("to do: tests\n")
    return repo


@pytest.fixture
def notes_db(tmp_path: Path) -> Path:
    db = tmp_path / "notes.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (note_id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL)")
    conn.executemany(
        "INSERT INTO notes (title, body) VALUES (?, ?)",
        [("Groceries", "eggs, flour, milk"), ("Ideas", "a bike repair shop"), ("Travel", "Lisbon in May")],
    )
    conn.commit()
    conn.close()
    return db
