"""Tools derived from an SQLite file: names, schemas, and every tool called over MCP on real rows."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp import Client

from schemas import Effect, Environment, ToolSpec
from schemas.errors import DatabaseFileError
from simulator.cli import main
from tests.conftest import SHOP_DDL, shop_environment
from toolservers import build_tool_server, load_environment, save_environment
from toolservers.derive import derive_environment, derive_environment_from_ddl, derive_tools
from toolservers.naming import param_name, plural, singular, snake

DDL = """
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    tier TEXT NOT NULL DEFAULT 'basic' CHECK (tier IN ('basic', 'silver', 'gold')),
    phone TEXT,
    joined_on TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT 1
);
CREATE TABLE products (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    unit_price REAL NOT NULL,
    stock INTEGER NOT NULL DEFAULT 0,
    notes TEXT
);
CREATE TABLE product_tags (
    sku TEXT NOT NULL REFERENCES products(sku),
    tag TEXT NOT NULL,
    PRIMARY KEY (sku, tag)
) WITHOUT ROWID;
CREATE TABLE employees (
    employee_id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    reports_to INTEGER REFERENCES employees(employee_id),
    hired_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    salary NUMERIC
);
CREATE TABLE invoices (
    invoice_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
    support_rep_id INTEGER REFERENCES employees(employee_id),
    status TEXT NOT NULL,
    amount REAL NOT NULL,
    issued_on DATE NOT NULL,
    due_date TEXT,
    "order" TEXT
);
CREATE TABLE invoice_lines (
    invoice_line_id INTEGER PRIMARY KEY,
    invoice_id INTEGER NOT NULL REFERENCES invoices(invoice_id),
    sku TEXT NOT NULL REFERENCES products(sku),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    "unit price" REAL NOT NULL
);
CREATE TABLE attachments (
    attachment_id INTEGER PRIMARY KEY,
    invoice_id INTEGER NOT NULL REFERENCES invoices(invoice_id),
    filename TEXT NOT NULL,
    data BLOB
);
CREATE TABLE warehouses (warehouse_id INTEGER PRIMARY KEY, city TEXT NOT NULL);
CREATE TABLE transfers (
    transfer_id INTEGER PRIMARY KEY,
    from_warehouse_id INTEGER NOT NULL REFERENCES warehouses(warehouse_id),
    to_warehouse_id INTEGER NOT NULL REFERENCES warehouses(warehouse_id),
    quantity INTEGER NOT NULL,
    sent_at TEXT
);
CREATE TABLE audit_log (happened_at TEXT NOT NULL, message TEXT NOT NULL);
"""

NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth"]
STATUSES = ["paid", "open", "paid", "void", "paid", "open", "paid", "open", "paid", "paid"]


def build_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # a test file: no need to wait for the disk
        conn.executescript(DDL)
        for i, name in enumerate(NAMES, 1):
            conn.execute(
                "INSERT INTO customers (name, email, tier, phone, joined_on, is_active) VALUES (?,?,?,?,?,?)",
                (
                    name,
                    name.split()[0].lower() + "@example.com",
                    ["basic", "silver", "gold"][i % 3],
                    None if i % 2 else f"555-010{i}",
                    f"2024-0{i}-1{i}",
                    i != 4,
                ),
            )
        conn.executemany(
            "INSERT INTO products VALUES (?,?,?,?,?,?)",
            [
                ("SKU-1", "Widget 50% off", "tools", 9.5, 10, None),
                ("SKU-2", "Gadget_X", "tools", 19.99, 5, "fragile"),
                ("SKU-3", "Doohickey", "toys", 3.25, 0, None),
                ("SKU-4", "Thingamajig", "toys", 7.0, 3, None),
            ],
        )
        conn.executemany(
            "INSERT INTO product_tags VALUES (?,?)", [("SKU-1", "sale"), ("SKU-1", "new"), ("SKU-3", "kids")]
        )
        conn.executemany(
            "INSERT INTO employees VALUES (?,?,?,?,?,?)",
            [
                (1, "Nancy", "Edwards", None, "2020-01-01 09:00:00", 9000),
                (2, "Jane", "Peacock", 1, "2021-03-05 09:30:00", 7000),
                (3, "Steve", "Johnson", 1, "2022-07-10 10:00:00", 6500),
            ],
        )
        for i in range(1, 11):
            conn.execute(
                "INSERT INTO invoices VALUES (?,?,?,?,?,?,?,?)",
                (
                    100 + i,
                    i % 6 + 1,
                    [2, 3, None][i % 3],
                    STATUSES[i - 1],
                    round(10.5 * i, 2),
                    f"2025-{i:02d}-01",
                    None if i % 4 == 0 else f"2025-{i:02d}-28",
                    f"ref-{i}",
                ),
            )
        line = 1
        for invoice in range(101, 111):
            for k in range(1, invoice % 3 + 2):
                conn.execute("INSERT INTO invoice_lines VALUES (?,?,?,?,?)", (line, invoice, f"SKU-{k}", k, 9.5))
                line += 1
        conn.execute("INSERT INTO attachments VALUES (1, 101, 'scan.pdf', x'00ff')")
        conn.executemany("INSERT INTO warehouses VALUES (?,?)", [(1, "Lyon"), (2, "Porto"), (3, "Graz")])
        conn.executemany(
            "INSERT INTO transfers VALUES (?,?,?,?,?)",
            [(1, 1, 2, 5, "2025-02-01 08:00:00"), (2, 2, 3, 7, None), (3, 1, 3, 2, "2025-03-01 10:15:00")],
        )
        conn.execute("INSERT INTO audit_log VALUES ('2025-01-01 00:00:00', 'hello')")
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite"
    build_database(path)
    return path


@pytest.fixture
def env(db_path: Path) -> Environment:
    return derive_environment(db_path)


def rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    try:
        cur = conn.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def call(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, args)
    assert not result.is_error, (name, args, result.content)
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, name: str, args: dict[str, Any]) -> str:
    result = await client.call_tool(name, args)
    assert result.is_error, (name, args, result.structured_content)
    text = result.content[0]
    assert text.type == "text"
    return text.text


# -- names and schemas ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "one", "many"),
    [
        ("customers", "customer", "customers"),
        ("invoice_lines", "invoice_line", "invoice_lines"),
        ("categories", "category", "categories"),
        ("addresses", "address", "addresses"),
        ("boxes", "box", "boxes"),
        ("batches", "batch", "batches"),
        ("club", "club", "clubs"),
        ("status", "status", "statuses"),
        ("InvoiceLine", "invoice_line", "invoice_lines"),
    ],
)
def test_singular_and_plural(name: str, one: str, many: str) -> None:
    assert singular(snake(name)) == one
    assert plural(snake(name)) == many


def test_parameter_names_are_identifiers() -> None:
    assert param_name("unit price") == "unit_price"
    assert param_name("2nd-line") == "p_2nd_line"
    assert param_name("CustomerId") == "CustomerId"


def test_derives_the_tools_a_person_would_write(env: Environment) -> None:
    names = {t.name for t in env.tools}
    for table, one in [("customers", "customer"), ("invoices", "invoice"), ("products", "product")]:
        for verb in ("get", "create", "update", "delete"):
            assert f"{verb}_{one}" in names
        assert f"search_{table}" in names
        assert f"count_{table}" in names
    assert {
        "list_invoice_lines_for_invoice",
        "list_invoice_lines_for_product",
        "list_invoices_for_customer",
        "list_invoices_for_employee",
        "list_employees_for_employee",
        "list_product_tags_for_product",
        "list_transfers_for_from_warehouse",
        "list_transfers_for_to_warehouse",
        "get_product_tag",
    } <= names
    # No primary key: nothing to get, update or delete by.
    assert {"search_audit_logs", "count_audit_logs", "create_audit_log"} <= names
    assert not {"get_audit_log", "update_audit_log", "delete_audit_log"} & names
    for tool in env.tools:
        assert tool.table is not None
        assert (tool.effect is Effect.WRITE) == (tool.category in {"create", "update", "delete"})


def test_schemas_are_valid_and_precise(env: Environment) -> None:
    for tool in env.tools:
        assert tool.output_schema is not None
        Draft202012Validator.check_schema(tool.input_schema)
        Draft202012Validator.check_schema(tool.output_schema)
        assert tool.input_schema["additionalProperties"] is False, tool.name
        for name, prop in tool.input_schema["properties"].items():
            assert name.isidentifier() and name.isascii(), (tool.name, name)
            assert "type" in prop and prop.get("description"), (tool.name, name)


def test_types_enums_and_formats(env: Environment) -> None:
    search = env.tool("search_invoices").input_schema["properties"]
    assert search["status"]["enum"] == ["open", "paid", "void"]
    assert search["min_amount"]["type"] == search["max_amount"]["type"] == "number"
    assert search["min_issued_on"]["format"] == "date"
    assert "YYYY-MM-DD" in search["min_issued_on"]["description"]
    assert search["customer_id"]["type"] == "integer"
    assert "order" in search and search["order_by"]["default"] == "invoice_id"
    assert "amount" in search["order_by"]["enum"]
    customers = env.tool("create_customer").input_schema
    # The CHECK constraint's values, in its order; names and emails never become enums.
    assert customers["properties"]["tier"]["enum"] == ["basic", "silver", "gold"]
    assert "enum" not in customers["properties"]["name"]
    assert "enum" not in customers["properties"]["email"]
    assert customers["properties"]["phone"]["type"] == ["string", "null"]
    assert customers["properties"]["is_active"]["type"] == "boolean"
    assert "customer_id" not in customers["properties"]  # the rowid alias is assigned by SQLite
    assert sorted(customers["required"]) == ["email", "joined_on", "name"]
    assert (
        env.tool("get_customer")
        .input_schema["properties"]["customer_id"]["description"]
        .startswith("The customer's id")
    )
    assert env.tool("create_product").input_schema["required"][0] == "sku"  # a TEXT key is given
    hired = env.tool("create_employee").input_schema["properties"]["hired_at"]
    assert hired["format"] == "date-time"
    assert "hired_at" not in env.tool("create_employee").input_schema.get("required", [])
    assert "enum" not in env.tool("search_warehouses").input_schema["properties"]["city"]
    update = env.tool("update_customer").input_schema
    assert update["required"] == ["customer_id"] and update["minProperties"] == 2
    row = env.tool("get_customer").output_schema
    assert row is not None
    assert row["properties"]["phone"]["type"] == ["string", "null"]
    assert row["properties"]["is_active"]["type"] == "integer"
    # BLOBs are not something to talk about: hidden from every tool.
    assert "data" not in env.tool("get_attachment").input_schema["properties"]
    attachment = env.tool("get_attachment").output_schema
    assert attachment is not None and "data" not in attachment["properties"]
    group_by = env.tool("count_invoices").input_schema["properties"]["group_by"]
    assert group_by["enum"] == ["status"]


# -- every tool, over MCP, on real rows -------------------------------------------------


def _foreign_keys(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out = {}
        for t in tables:
            for fk in conn.execute(f'PRAGMA foreign_key_list("{t}")'):
                out[(t, fk[3])] = (fk[2], fk[4])
        return out
    finally:
        conn.close()


def _fk(path: Path) -> set[tuple[str, str]]:
    return set(_foreign_keys(path))


def _new_value(path: Path, tool: ToolSpec, column: str, prop: dict[str, Any], n: int) -> Any:
    parent = _foreign_keys(path).get((tool.table or "", column))
    if parent is not None:
        return rows(path, f'SELECT "{parent[1]}" AS v FROM "{parent[0]}" ORDER BY 1 LIMIT 1')[0]["v"]
    if "enum" in prop:
        return next(v for v in prop["enum"] if v is not None)
    kind = prop["type"][0] if isinstance(prop["type"], list) else prop["type"]
    if prop.get("format") == "date":
        return "2025-06-15"
    if prop.get("format") == "date-time":
        return "2025-06-15 12:30:00"
    return {"integer": 7000 + n, "number": 12.5, "boolean": True}.get(kind, f"new {column} {n}")


def _columns(tool: ToolSpec) -> dict[str, str]:
    """Parameter name -> column name, for the parameters that stand for a column."""
    assert tool.output_schema is not None
    schema = tool.output_schema
    row = schema["properties"]["rows"]["items"] if "rows" in schema["properties"] else schema
    return {param_name(c): c for c in row["properties"]}


def _filters_from(tool: ToolSpec, row: dict[str, Any]) -> dict[str, Any]:
    """Search arguments that all hold for ``row``: exact values, substrings, min = max = value."""
    args: dict[str, Any] = {}
    cols = _columns(tool)
    for param, prop in tool.input_schema["properties"].items():
        bound, _, rest = param.partition("_")
        column = cols.get(param) or (cols.get(rest) if bound in {"min", "max"} else None)
        if column is None or row[column] is None:
            continue
        value = row[column]
        if prop["type"] == "boolean":
            value = bool(value)
        elif prop["description"].startswith("Part of"):
            value = str(value)[1:-1] or str(value)  # a substring, in another case
            value = value.swapcase() if value.isascii() else value
        args[param] = value
    return args


@pytest.mark.anyio
async def test_every_derived_tool_works_on_real_rows(db_path: Path, env: Environment) -> None:
    before = digest(db_path)
    called: set[str] = set()
    ts = build_tool_server(env)
    try:
        async with Client(ts.server) as client:
            for table in sorted({t.table for t in env.tools if t.table}):
                tools = {t.category: t for t in env.tools if t.table == table and t.category != "list_related"}
                source = rows(db_path, f'SELECT * FROM "{table}"')
                visible = set(_columns(tools["search"]).values())
                sample = {k: v for k, v in source[-1].items() if k in visible}

                found = await call(client, tools["search"].name, _filters_from(tools["search"], sample))
                assert sample in found["rows"], (table, found)
                called.add(tools["search"].name)

                for tool in (t for t in env.tools if t.table == table and t.category == "list_related"):
                    (param,) = tool.input_schema["required"]
                    column = _columns(tool)[param]
                    value = next(r[column] for r in source if r[column] is not None)
                    listed = await call(client, tool.name, {param: value})
                    expected = [r for r in source if r[column] == value]
                    assert listed["count"] == len(expected) >= 1, tool.name
                    assert all(r[column] == value for r in listed["rows"])
                    called.add(tool.name)

                counted = await call(client, tools["count"].name, {})
                assert counted["rows"][0]["count"] == len(source)
                called.add(tools["count"].name)

                create = tools["create"]
                args = {
                    p: _new_value(db_path, create, _columns(create)[p], prop, i)
                    for i, (p, prop) in enumerate(create.input_schema["properties"].items())
                }
                created = await call(client, create.name, args)
                for param, value in args.items():
                    column = _columns(create)[param]
                    assert created[column] == (int(value) if isinstance(value, bool) else value), column
                called.add(create.name)
                if "get" not in tools:
                    continue

                key = {p: created[_columns(tools["get"])[p]] for p in tools["get"].input_schema["required"]}
                last = created
                assert await call(client, tools["get"].name, key) == created
                called.add(tools["get"].name)

                if "update" in tools:
                    update = tools["update"]
                    field = next(
                        p
                        for p, prop in update.input_schema["properties"].items()
                        if p not in key and "enum" not in prop and (table, _columns(update)[p]) not in _fk(db_path)
                    )
                    prop = update.input_schema["properties"][field]
                    value = _new_value(db_path, update, _columns(update)[field], prop, 99)
                    last = await call(client, update.name, {**key, field: value})
                    column = _columns(update)[field]
                    assert last == {**created, column: int(value) if isinstance(value, bool) else value}
                    called.add(update.name)

                deleted = await call(client, tools["delete"].name, key)
                assert deleted == last
                await call_error(client, tools["get"].name, key)
                called.add(tools["delete"].name)
    finally:
        ts.close()
    assert called == {t.name for t in env.tools}
    assert digest(db_path) == before


@pytest.mark.anyio
async def test_search_filters_sort_and_escape(db_path: Path, env: Environment) -> None:
    ts = build_tool_server(env)
    try:
        async with Client(ts.server) as client:
            # % and _ in the user's text are literal, and matching ignores case.
            found = await call(client, "search_products", {"name": "%"})
            assert [r["sku"] for r in found["rows"]] == ["SKU-1"]
            found = await call(client, "search_products", {"name": "_"})
            assert [r["sku"] for r in found["rows"]] == ["SKU-2"]
            found = await call(client, "search_products", {"name": "GADGET"})
            assert [r["sku"] for r in found["rows"]] == ["SKU-2"]

            found = await call(client, "search_invoices", {"min_amount": 30, "max_amount": 60})
            expected = rows(db_path, "SELECT invoice_id FROM invoices WHERE amount BETWEEN 30 AND 60")
            assert [r["invoice_id"] for r in found["rows"]] == [r["invoice_id"] for r in expected]

            found = await call(
                client, "search_invoices", {"min_issued_on": "2025-03-01", "max_issued_on": "2025-05-01"}
            )
            assert [r["issued_on"] for r in found["rows"]] == ["2025-03-01", "2025-04-01", "2025-05-01"]

            found = await call(client, "search_invoices", {"status": "open", "order_by": "amount", "descending": True})
            amounts = [r["amount"] for r in found["rows"]]
            assert amounts == sorted(amounts, reverse=True) and len(amounts) == STATUSES.count("open")

            found = await call(client, "search_customers", {"order_by": "name", "limit": 2})
            assert [r["name"] for r in found["rows"]] == sorted(NAMES)[:2]

            found = await call(client, "search_customers", {"is_active": False})
            assert [r["name"] for r in found["rows"]] == ["Edsger Dijkstra"]

            lines = await call(client, "list_invoice_lines_for_invoice", {"invoice_id": 102})
            assert [r["invoice_line_id"] for r in lines["rows"]] == [
                r["invoice_line_id"] for r in rows(db_path, "SELECT * FROM invoice_lines WHERE invoice_id = 102")
            ]
            assert set(lines["rows"][0]) == {"invoice_line_id", "invoice_id", "sku", "quantity", "unit price"}

            text = await call_error(client, "search_invoices", {"status": "lost"})
            assert "invalid_arguments" in text
    finally:
        ts.close()


@pytest.mark.anyio
async def test_count_groups_filters_and_totals(db_path: Path, env: Environment) -> None:
    ts = build_tool_server(env)
    try:
        async with Client(ts.server) as client:
            grouped = await call(client, "count_invoices", {"group_by": "status"})
            expected = rows(
                db_path,
                'SELECT status AS "group", COUNT(*) AS "count", SUM(amount) AS total_amount '
                "FROM invoices GROUP BY status ORDER BY 2 DESC, 1",
            )
            assert grouped["rows"] == expected

            one = await call(client, "count_invoices", {"customer_id": 2})
            assert one["rows"] == [
                {
                    "group": None,
                    "count": len(rows(db_path, "SELECT 1 FROM invoices WHERE customer_id = 2")),
                    "total_amount": rows(db_path, "SELECT SUM(amount) AS s FROM invoices WHERE customer_id = 2")[0][
                        "s"
                    ],
                }
            ]
            none = await call(client, "count_invoices", {"customer_id": 999})
            assert none["rows"] == [{"group": None, "count": 0, "total_amount": None}]
    finally:
        ts.close()


@pytest.mark.anyio
async def test_writes_respect_defaults_keys_and_references(db_path: Path, env: Environment) -> None:
    before = digest(db_path)
    ts = build_tool_server(env)
    try:
        async with Client(ts.server) as client:
            new = await call(
                client,
                "create_customer",
                {"name": "Kathleen Booth", "email": "kb@example.com", "joined_on": "2025-07-01"},
            )
            assert new["tier"] == "basic" and new["is_active"] == 1 and new["phone"] is None
            assert new["customer_id"] == len(NAMES) + 1

            changed = await call(client, "update_customer", {"customer_id": new["customer_id"], "phone": "555-0199"})
            assert changed == {**new, "phone": "555-0199"}
            # Null keeps the value; an update must change something; a missing row is not_found.
            assert await call(client, "update_customer", {"customer_id": new["customer_id"], "name": None}) == changed
            await call_error(client, "update_customer", {"customer_id": new["customer_id"]})
            missing = await call_error(client, "update_customer", {"customer_id": 999, "name": "x"})
            assert "not_found" in missing

            # A customer with invoices cannot go; the refusal changes nothing.
            await call_error(client, "delete_customer", {"customer_id": 1})
            assert (
                await call(client, "get_customer", {"customer_id": 1})
                == rows(db_path, "SELECT * FROM customers WHERE customer_id = 1")[0]
            )
            await call_error(
                client, "create_customer", {"name": "Dup", "email": "ada@example.com", "joined_on": "2025-01-01"}
            )

            tag = await call(client, "get_product_tag", {"sku": "SKU-1", "tag": "sale"})
            assert tag == {"sku": "SKU-1", "tag": "sale"}
            await call(client, "delete_product_tag", {"sku": "SKU-1", "tag": "sale"})
            await call_error(client, "get_product_tag", {"sku": "SKU-1", "tag": "sale"})
    finally:
        ts.close()
    assert digest(db_path) == before


# -- other entry points -----------------------------------------------------------------


def test_derive_tools_on_a_plain_connection(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        tools = derive_tools(conn)
    finally:
        conn.close()
    assert [t.name for t in tools] == [t.name for t in derive_environment(db_path).tools]


def test_environment_defaults_and_options(db_path: Path) -> None:
    env = derive_environment(db_path)
    assert env.id == env.domain == "store"
    assert env.database.path == str(db_path.resolve())
    named = derive_environment(db_path, env_id="shop-1", domain="retail", description="A shop")
    assert (named.id, named.domain, named.description) == ("shop-1", "retail", "A shop")


def test_bad_database_files(tmp_path: Path) -> None:
    with pytest.raises(DatabaseFileError):
        derive_environment(tmp_path / "missing.sqlite")
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    with pytest.raises(DatabaseFileError):
        derive_environment(empty)
    text = tmp_path / "notes.sqlite"
    text.write_text("just some notes, not a database\n")
    with pytest.raises(DatabaseFileError):
        derive_environment(text)
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    with pytest.raises(DatabaseFileError):
        derive_environment(corrupt)
    no_tables = tmp_path / "no_tables.sqlite"
    conn = sqlite3.connect(no_tables)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(DatabaseFileError) as info:
        derive_environment(no_tables)
    assert info.value.path == str(no_tables)


@pytest.mark.anyio
async def test_environment_from_ddl_with_extra_tools() -> None:
    shop = shop_environment()
    hand_written = shop.tool("get_customer")
    env = derive_environment_from_ddl(
        SHOP_DDL,
        shop.database.seed,
        env_id="shop",
        domain="shop",
        policy="Be kind.",
        extra_tools=[hand_written, shop.tool("update_order_status")],
    )
    assert env.database.ddl == SHOP_DDL and env.database.path is None and env.policy == "Be kind."
    assert env.tool("get_customer") is hand_written  # replaced, not duplicated
    assert env.tools[-1].name == "update_order_status"
    assert {"search_orders", "list_orders_for_customer", "count_orders", "create_order"} <= {t.name for t in env.tools}
    assert env.tool("search_customers").input_schema["properties"]["tier"]["enum"] == ["basic", "gold"]
    ts = build_tool_server(env)
    try:
        async with Client(ts.server) as client:
            orders = await call(client, "list_orders_for_customer", {"customer_id": 1})
            assert [r["order_id"] for r in orders["rows"]] == [10]
            changed = await client.call_tool("update_order_status", {"order_id": 10, "status": "shipped"})
            assert not changed.is_error
            assert (await call(client, "get_order", {"order_id": 10}))["status"] == "shipped"
    finally:
        ts.close()
    with pytest.raises(DatabaseFileError):
        derive_environment_from_ddl("", {}, env_id="x", domain="x")


def test_cli_writes_an_environment(db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "env.json"
    assert main(["tools", "derive", "--database", str(db_path), "--out", str(out), "--id", "store-env"]) == 0
    env = load_environment(out)
    assert env.id == "store-env"
    assert [t.name for t in env.tools] == [t.name for t in derive_environment(db_path).tools]
    printed = capsys.readouterr().out
    assert "customers" in printed and "get" in printed


def test_cli_rejects_a_bad_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not sqlite")
    out = tmp_path / "env.json"
    assert main(["tools", "derive", "--database", str(bad), "--out", str(out)]) == 2
    assert not out.exists()


def test_cli_out_naming_a_directory_is_a_clear_error(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "envs"
    target.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["tools", "derive", "--database", str(db_path), "--out", str(target)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "is a directory" in error[0] and str(target) in error[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no .tmp file left behind
    assert list(target.iterdir()) == []


def test_saving_over_a_directory_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "envs"
    target.mkdir()
    with pytest.raises(IsADirectoryError):
        save_environment(
            derive_environment_from_ddl("CREATE TABLE t (id INTEGER PRIMARY KEY);", {}, env_id="t", domain="t"), target
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["envs"]


CASCADE_DDL = """
CREATE TABLE authors (author_id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE books (book_id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES authors(author_id) ON DELETE CASCADE);
CREATE TABLE quotes (quote_id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES authors(author_id) ON DELETE SET NULL);
CREATE TABLE awards (award_id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES authors(author_id));
CREATE TABLE blurbs (blurb_id INTEGER PRIMARY KEY, book_id INTEGER REFERENCES books(book_id) ON DELETE SET NULL);
INSERT INTO authors VALUES (1, 'Le Guin'), (2, 'Lem');
INSERT INTO books VALUES (10, 1), (11, 2);
INSERT INTO quotes VALUES (20, 1);
INSERT INTO awards VALUES (30, 2);
INSERT INTO blurbs VALUES (40, 10);
"""


@pytest.mark.anyio
async def test_delete_descriptions_follow_each_on_delete_action() -> None:
    env = derive_environment_from_ddl(CASCADE_DDL, {}, env_id="books", domain="books")
    author = env.tool("delete_author").description
    assert "fails while awards rows still refer to it" in author
    assert "Also deletes the books rows that refer to it" in author
    assert "Clears quotes.author_id in rows that refer to it" in author
    assert "fails while" not in env.tool("delete_book").description
    assert "Clears blurbs.book_id in rows that refer to it" in env.tool("delete_book").description
    assert env.tool("delete_award").description.endswith("fails while other rows still refer to it.")
    ts = build_tool_server(env)
    try:
        async with Client(ts.server) as client:
            await call(client, "delete_author", {"author_id": 1})  # what the description says happens
            await call_error(client, "delete_author", {"author_id": 2})
        assert ts.db.query("SELECT book_id FROM books") == [(11,)]
        assert ts.db.query("SELECT quote_id, author_id FROM quotes") == [(20, None)]
        assert ts.db.query("SELECT blurb_id, book_id FROM blurbs") == [(40, None)]
    finally:
        ts.close()
