"""Bad environment files, databases and tool definitions are refused at load time.

Each is refused with its ConfigError subclass naming the file and the place inside it,
and by the command line with exit code 2 and one readable line on stderr. A source
database file is never modified unless ``--in-place`` asks for it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas import DatabaseSpec, SqlImplementation, ToolSpec
from schemas.errors import DatabaseFileError, EnvironmentFileError, ToolDefinitionError
from simulator.cli import main
from tests.conftest import shop_environment
from toolservers import build_tool_server, load_environment, save_environment, stdio_tool_server


def shop_json() -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(shop_environment())
    return data


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def make_shop_db(path: Path) -> Path:
    tool_server = build_tool_server(shop_environment())
    try:
        target = sqlite3.connect(path)
        tool_server.db.conn.backup(target)
        target.close()
    finally:
        tool_server.close()
    return path


def file_environment(tmp_path: Path, db_name: str = "shop.sqlite") -> Path:
    """The shop environment with its database as a file next to it (relative path)."""
    env = shop_environment()
    env = msgspec.structs.replace(env, database=DatabaseSpec(path=db_name))
    env_file = tmp_path / "shop.json"
    save_environment(env, env_file)
    return env_file


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def serve(*args: str) -> list[str]:
    return ["tools", "serve", *args]


def assert_cli_refuses(argv: list[str], capsys: pytest.CaptureFixture[str], *mentions: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("dialogsim: error: ")
    for mention in mentions:
        assert mention in lines[0]


# --- environment files -----------------------------------------------------------------


def _wrong_type(data: dict[str, Any]) -> None:
    data["tools"][0]["name"] = 5


def _missing_field(data: dict[str, Any]) -> None:
    del data["domain"]


def _unknown_version(data: dict[str, Any]) -> None:
    data["version"] = 99


def _unknown_field(data: dict[str, Any]) -> None:
    data["tools"][1]["implementation"]["sql"] = "SELECT 1"


def _bad_database_spec(data: dict[str, Any]) -> None:
    data["database"]["path"] = "also.sqlite"  # both ddl and path


SCHEMA_PROBLEMS: list[Any] = [
    pytest.param(_wrong_type, "$.tools[0].name", id="wrong-type"),
    pytest.param(_missing_field, "$", id="missing-field"),
    pytest.param(_unknown_version, "$.version", id="unknown-version"),
    pytest.param(_unknown_field, "$.tools[1].implementation", id="unknown-field"),
    pytest.param(_bad_database_spec, "$.database", id="ddl-and-path"),
]


@pytest.mark.parametrize(("spoil", "where"), SCHEMA_PROBLEMS)
def test_environment_not_matching_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spoil: Callable[[dict[str, Any]], None], where: str
) -> None:
    data = shop_json()
    spoil(data)
    env_file = write_json(tmp_path / "shop.json", data)
    with pytest.raises(EnvironmentFileError) as info:
        load_environment(env_file)
    assert info.value.path == str(env_file)
    assert info.value.where == where
    assert_cli_refuses(serve("--environment", str(env_file)), capsys, str(env_file), where)


@pytest.mark.parametrize(
    "content",
    [pytest.param(b"", id="empty"), pytest.param(b"  \n", id="blank"), pytest.param(b"{not json", id="not-json")],
)
def test_environment_that_is_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    env_file = tmp_path / "shop.json"
    env_file.write_bytes(content)
    with pytest.raises(EnvironmentFileError) as info:
        load_environment(env_file)
    assert info.value.path == str(env_file)
    assert info.value.where == "$"
    assert_cli_refuses(serve("--environment", str(env_file)), capsys, str(env_file))


def test_environment_file_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = tmp_path / "nowhere.json"
    with pytest.raises(EnvironmentFileError):
        load_environment(env_file)
    assert_cli_refuses(serve("--environment", str(env_file)), capsys, str(env_file))


# --- database files --------------------------------------------------------------------


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\x00\x01\x02" * 100)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _missing(path: Path) -> None:
    pass


def _truncated(path: Path) -> None:
    make_shop_db(path)
    path.write_bytes(path.read_bytes()[:50])  # the header, then nothing usable


BAD_DATABASES: list[Any] = [
    pytest.param(_missing, id="missing"),
    pytest.param(_empty, id="empty"),
    pytest.param(_garbage, id="not-sqlite"),
    pytest.param(_truncated, id="truncated"),
]


@pytest.mark.parametrize("spoil", BAD_DATABASES)
def test_bad_database_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], spoil: Callable[[Path], None]) -> None:
    env_file = file_environment(tmp_path)
    db_file = tmp_path / "shop.sqlite"
    spoil(db_file)
    with pytest.raises(DatabaseFileError) as info:
        build_tool_server(load_environment(env_file), base_dir=env_file.parent, source=str(env_file))
    assert info.value.path == str(db_file)
    assert_cli_refuses(serve("--environment", str(env_file)), capsys, str(db_file))

    # --database names the file to serve instead; the same refusal names that file.
    other = tmp_path / "other.sqlite"
    spoil(other)
    with pytest.raises(DatabaseFileError) as info:
        build_tool_server(shop_environment(), database=other)
    assert info.value.path == str(other)
    good_env = tmp_path / "ddl.json"
    save_environment(shop_environment(), good_env)
    assert_cli_refuses(serve("--environment", str(good_env), "--database", str(other)), capsys, str(other))


# --- tool definitions ------------------------------------------------------------------


def _tool(sql: str, properties: dict[str, Any] | None = None) -> ToolSpec:
    return ToolSpec(
        name="broken",
        description="Does not fit the database.",
        input_schema={"type": "object", "properties": properties or {}},
        implementation=SqlImplementation(statements=["SELECT 1", sql]),
    )


BAD_TOOLS: list[Any] = [
    pytest.param(_tool("SELECT shoe_size FROM customers"), "no such column", id="unknown-column"),
    pytest.param(_tool("SELECT * FROM invoices"), "no such table", id="unknown-table"),
    pytest.param(
        _tool("SELECT * FROM customers WHERE tier = :tier", {"name": {"type": "string"}}),
        ":tier",
        id="undeclared-parameter",
    ),
    pytest.param(
        ToolSpec(
            name="broken",
            description="An input schema that is not JSON Schema.",
            input_schema={"type": "object", "properties": {"x": {"type": "no-such-type"}}},
            implementation=SqlImplementation(statements=["SELECT :x"]),
        ),
        "input_schema",
        id="invalid-input-schema",
    ),
]


@pytest.mark.parametrize(("tool", "mention"), BAD_TOOLS)
def test_tool_that_does_not_fit_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tool: ToolSpec, mention: str
) -> None:
    env = shop_environment()
    env.tools.append(tool)
    env_file = tmp_path / "shop.json"
    save_environment(env, env_file)
    with pytest.raises(ToolDefinitionError) as info:
        build_tool_server(load_environment(env_file), base_dir=tmp_path, source=str(env_file))
    assert info.value.source == str(env_file)
    assert info.value.tool == "broken"
    assert mention in info.value.problem
    assert "statement 1" in info.value.problem or mention == "input_schema"
    assert_cli_refuses(serve("--environment", str(env_file)), capsys, str(env_file), "'broken'")


# --- command-line flags ----------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(["--events", "tcp:127.0.0.1:9"], id="events-not-unix"),
        pytest.param(["--events", "unix:"], id="events-no-path"),
        pytest.param(["--transport", "http", "--events", "unix:/tmp/x.sock"], id="events-with-http"),
        pytest.param(["--transport", "http", "--host", "0.0.0.0"], id="remote-host-without-flag"),
        pytest.param(["--transport", "http", "--port", "70000"], id="port-out-of-range"),
    ],
)
def test_cli_refuses_bad_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]) -> None:
    env_file = tmp_path / "shop.json"
    save_environment(shop_environment(), env_file)
    assert_cli_refuses(serve("--environment", str(env_file), *flags), capsys)


# --- the source database is never modified by default ---------------------------------


def test_source_database_is_not_modified_in_process(tmp_path: Path) -> None:
    env_file = file_environment(tmp_path)
    db_file = make_shop_db(tmp_path / "shop.sqlite")
    before = sha256(db_file)
    tool_server = build_tool_server(load_environment(env_file), base_dir=tmp_path)
    try:
        out = tool_server.executor.call("create_customer", {"name": "G", "email": "g@x", "tier": "gold"})
        assert out.affected == 1
    finally:
        tool_server.close()
    assert sha256(db_file) == before

    tool_server = build_tool_server(load_environment(env_file), base_dir=tmp_path, in_place=True)
    try:
        tool_server.executor.call("create_customer", {"name": "G", "email": "g@x", "tier": "gold"})
    finally:
        tool_server.close()
    assert sha256(db_file) != before
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT count(*) FROM customers WHERE email = 'g@x'").fetchone() == (1,)


@pytest.mark.anyio
@pytest.mark.parametrize("in_place", [False, True], ids=["copy", "in-place"])
async def test_source_database_through_the_stdio_command(tmp_path: Path, in_place: bool) -> None:
    env_file = file_environment(tmp_path, db_name="missing.sqlite")  # --database overrides it
    db_file = make_shop_db(tmp_path / "served.sqlite")
    before = sha256(db_file)
    async with stdio_tool_server(env_file, database=db_file, in_place=in_place) as client:
        result = await client.call_tool("create_customer", {"name": "G", "email": "g@x", "tier": "gold"})
        assert not result.is_error
    assert (sha256(db_file) != before) is in_place
    with sqlite3.connect(db_file) as conn:
        count = conn.execute("SELECT count(*) FROM customers WHERE email = 'g@x'").fetchone()
    assert count == ((1,) if in_place else (0,))


def test_cli_refuses_an_unreachable_events_socket(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = tmp_path / "shop.json"
    save_environment(shop_environment(), env_file)
    nowhere = tmp_path / "nobody-listens.sock"
    assert_cli_refuses(serve("--environment", str(env_file), "--events", f"unix:{nowhere}"), capsys, str(nowhere))
