"""Shared fixtures: a small hand-written environment with reads, writes and an output schema."""

from __future__ import annotations

import pytest

from schemas import DatabaseSpec, Effect, Environment, ResultShape, SqlImplementation, ToolSpec

SHOP_DDL = """
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    tier TEXT NOT NULL CHECK (tier IN ('basic', 'gold'))
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
    status TEXT NOT NULL,
    total REAL NOT NULL,
    placed_on TEXT NOT NULL
);
"""


def shop_environment() -> Environment:
    row_schema = {
        "type": "object",
        "properties": {
            "customer_id": {"type": "integer"},
            "name": {"type": "string"},
            "email": {"type": "string"},
            "tier": {"type": "string"},
        },
        "required": ["customer_id", "name", "email", "tier"],
    }
    return Environment(
        id="shop",
        domain="shop",
        description="A tiny shop",
        policy="Be helpful.",
        database=DatabaseSpec(
            ddl=SHOP_DDL,
            seed={
                "customers": [
                    {"customer_id": 1, "name": "Ada Lovelace", "email": "ada@example.com", "tier": "gold"},
                    {"customer_id": 2, "name": "Alan Turing", "email": "alan@example.com", "tier": "basic"},
                ],
                "orders": [
                    {
                        "order_id": 10,
                        "customer_id": 1,
                        "status": "placed",
                        "total": 25.5,
                        "placed_on": "2026-01-03",
                    },
                    {
                        "order_id": 11,
                        "customer_id": 2,
                        "status": "shipped",
                        "total": 9.0,
                        "placed_on": "2026-02-14",
                    },
                ],
            },
        ),
        tools=[
            ToolSpec(
                name="get_customer",
                description="Get one customer by id.",
                input_schema={
                    "type": "object",
                    "properties": {"customer_id": {"type": "integer", "description": "The customer's id"}},
                    "required": ["customer_id"],
                    "additionalProperties": False,
                },
                output_schema=row_schema,
                implementation=SqlImplementation(
                    statements=["SELECT * FROM customers WHERE customer_id = :customer_id"],
                    result=ResultShape.ROW,
                ),
                table="customers",
                category="get",
            ),
            ToolSpec(
                name="search_customers",
                description="Find customers by name (substring) and tier.",
                input_schema={
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "Part of the name"},
                        "tier": {"type": "string", "enum": ["basic", "gold"]},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                    "additionalProperties": False,
                },
                implementation=SqlImplementation(
                    statements=[
                        "SELECT * FROM customers WHERE (:name IS NULL OR name LIKE '%' || :name || '%')"
                        " AND (:tier IS NULL OR tier = :tier) ORDER BY customer_id LIMIT :limit"
                    ]
                ),
                table="customers",
                category="search",
            ),
            ToolSpec(
                name="create_customer",
                description="Create a customer.",
                effect=Effect.WRITE,
                input_schema={
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "email": {"type": "string"},
                        "tier": {"type": "string", "enum": ["basic", "gold"]},
                    },
                    "required": ["name", "email", "tier"],
                    "additionalProperties": False,
                },
                output_schema=row_schema,
                implementation=SqlImplementation(
                    statements=["INSERT INTO customers (name, email, tier) VALUES (:name, :email, :tier) RETURNING *"],
                    result=ResultShape.ROW,
                ),
                table="customers",
                category="create",
            ),
            ToolSpec(
                name="update_order_status",
                description="Set the status of an order.",
                effect=Effect.WRITE,
                input_schema={
                    "type": "object",
                    "properties": {
                        "order_id": {"type": "integer"},
                        "status": {"type": "string", "enum": ["placed", "shipped", "cancelled"]},
                    },
                    "required": ["order_id", "status"],
                    "additionalProperties": False,
                },
                implementation=SqlImplementation(
                    statements=["UPDATE orders SET status = :status WHERE order_id = :order_id RETURNING *"],
                    result=ResultShape.ROW,
                ),
                table="orders",
                category="update",
            ),
        ],
    )


@pytest.fixture
def shop_env() -> Environment:
    return shop_environment()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
