"""Built-in domain packs: deterministic rows that load with intact foreign keys, tools that
build, and composite tools with the right effects through a real in-process MCP server."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from mcp import Client

from schemas import Environment, ToolEvent, ToolResult
from schemas.errors import ConfigError
from simulator.domains import DOMAINS as PACKS
from simulator.domains import domain_names, load_domain, register_domain
from simulator.domains._common import TODAY, TODAY_DATE
from simulator.domains._people import ascii_fold
from simulator.domains.clinic.generator import sqlite_weekday
from simulator.domains.retail.generator import order_number
from simulator.domains.travel.generator import booking_reference
from toolservers import Database, build_tool_server, open_database

DOMAINS = ["clinic", "retail", "travel"]
COMPOSITES = {
    "clinic": {"book_appointment", "reschedule_appointment", "doctor_schedule", "refill_prescription"},
    "retail": {"place_order", "cancel_order", "order_summary", "request_return"},
    "travel": {"find_flights", "book_flight", "cancel_booking", "itinerary_for_traveler"},
}
MAIN_TABLES = {
    "clinic": ["patients", "appointments", "prescriptions"],
    "retail": ["customers", "products", "orders"],
    "travel": ["flights", "travelers", "bookings", "payments"],
}
PEOPLE = {"clinic": ["patients"], "retail": ["customers"], "travel": ["travelers"]}


@pytest.fixture(scope="module")
def envs() -> dict[str, Environment]:
    return {name: load_domain(name) for name in DOMAINS}


def composites_only(env: Environment) -> Environment:
    """The domain's database with only its hand-written tools: a quick server to build."""
    return msgspec.structs.replace(env, tools=[t for t in env.tools if t.category == "composite"])


@dataclass
class Harness:
    client: Client
    db: Database
    events: list[ToolEvent] = field(default_factory=list)

    async def ok(self, tool: str, **args: Any) -> Any:
        result = await self.client.call_tool(tool, args)
        text = result.content[0].text  # type: ignore[union-attr]
        assert not result.is_error, text
        return json.loads(text)

    async def refused(self, tool: str, **args: Any) -> str:
        """Call a tool that must fail; return its error code after checking nothing changed."""
        before = self.db.snapshot()
        result = await self.client.call_tool(tool, args)
        assert result.is_error
        assert self.db.snapshot() == before
        last = self.events[-1]
        assert isinstance(last, ToolResult) and last.is_error
        assert last.error_code is not None
        return last.error_code

    def one(self, sql: str, **params: Any) -> Any:
        rows = self.db.query(sql, params)
        assert rows, sql
        return rows[0][0] if len(rows[0]) == 1 else rows[0]


@asynccontextmanager
async def serve(env: Environment) -> AsyncIterator[Harness]:
    events: list[ToolEvent] = []

    async def record(event: ToolEvent) -> None:
        events.append(event)

    server = build_tool_server(env, on_event=record)
    try:
        async with Client(server.server) as client:
            yield Harness(client, server.db, events)
    finally:
        server.close()


def raw_connection(env: Environment) -> sqlite3.Connection:
    """A plain connection with the rows inserted unchecked, so foreign_key_check reports."""
    conn = sqlite3.connect(":memory:")
    assert env.database.ddl is not None
    conn.executescript(env.database.ddl)
    for table, rows in env.database.seed.items():
        for row in rows:
            cols = ", ".join(row)
            conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join(':' + c for c in row)})", row)
    conn.commit()
    return conn


# -- registry -----------------------------------------------------------------------------


def test_domain_names_are_the_three_built_ins() -> None:
    assert domain_names() == ["clinic", "retail", "travel"]
    assert all(PACKS.get(name)().description() for name in domain_names())


def test_unknown_domain_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_domain("bakery")
    assert "clinic, retail, travel" in str(info.value)


def test_registering_a_name_twice_is_an_error(envs: dict[str, Environment]) -> None:
    from simulator.domains.retail import retail_pack

    register_domain("retail")(retail_pack)  # the same factory again is harmless (a re-import)
    with pytest.raises(ConfigError):
        register_domain("retail")(lambda: retail_pack())


# -- environments and rows --------------------------------------------------------------------


@pytest.mark.parametrize("name", DOMAINS)
def test_environment_identity_policy_and_tools(name: str, envs: dict[str, Environment]) -> None:
    env = envs[name]
    assert (env.id, env.domain, env.description) == (name, name, PACKS.get(name)().description())
    assert env.policy is not None and TODAY in env.policy
    composite = {t.name for t in env.tools if t.category == "composite"}
    assert composite == COMPOSITES[name]
    assert any(t.name.startswith("get_") for t in env.tools)


@pytest.mark.parametrize("name", DOMAINS)
def test_same_seed_gives_the_same_environment(name: str) -> None:
    first = load_domain(name, seed=11)
    assert msgspec.json.encode(first) == msgspec.json.encode(load_domain(name, seed=11))
    assert first.database.seed != load_domain(name, seed=12).database.seed


@pytest.mark.parametrize("name", DOMAINS)
def test_seed_rows_are_plain_json_values(name: str, envs: dict[str, Environment]) -> None:
    seed = envs[name].database.seed
    for rows in seed.values():
        for row in rows:
            for value in row.values():
                assert value is None or type(value) in (str, int, float), (row, value)
    assert msgspec.json.decode(msgspec.json.encode(seed)) == seed


@pytest.mark.parametrize("name", DOMAINS)
def test_rows_load_and_foreign_keys_hold(name: str, envs: dict[str, Environment]) -> None:
    env = envs[name]
    db = open_database(env.database)
    try:
        counts = {table: len(rows) for table, rows in db.snapshot().items()}
    finally:
        db.close()
    assert counts == {table: len(rows) for table, rows in env.database.seed.items()}
    assert all(counts.values())
    for table in MAIN_TABLES[name]:
        assert 40 <= counts[table] <= 100, (table, counts[table])
    conn = raw_connection(env)
    try:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


@pytest.mark.parametrize("name", DOMAINS)
def test_people_have_unique_emails_made_from_their_names(name: str, envs: dict[str, Environment]) -> None:
    for table in PEOPLE[name]:
        rows = envs[name].database.seed[table]
        emails = [r["email"] for r in rows if r["email"] is not None]
        assert len(set(emails)) == len(emails)
        for r in rows:
            if r["email"] is None:
                continue
            full = r["name"] if "name" in r else f"{r['first_name']} {r['last_name']}"
            last = "".join(ch for ch in ascii_fold(full.split()[-1]).lower() if ch.isalnum())
            assert last in r["email"], (full, r["email"])
        assert len({r.get("name") or (r["first_name"], r["last_name"]) for r in rows}) > len(rows) // 2


def test_retail_rows_are_consistent(envs: dict[str, Environment]) -> None:
    seed = envs["retail"].database.seed
    lines: dict[int, float] = {}
    for item in seed["order_items"]:
        lines[item["order_id"]] = lines.get(item["order_id"], 0.0) + item["quantity"] * item["unit_price"]
    for order in seed["orders"]:
        assert order["order_number"] == order_number(order["order_id"])
        assert order["total"] == pytest.approx(lines[order["order_id"]])
        assert order["placed_on"] <= TODAY
        assert (order["shipped_on"] is not None) == (order["status"] in ("shipped", "delivered"))
    statuses = {o["status"] for o in seed["orders"]}
    assert {"pending", "delivered"} <= statuses
    assert any(p["stock"] == 0 for p in seed["products"])


def test_clinic_appointments_sit_in_their_doctors_hours(envs: dict[str, Environment]) -> None:
    conn = raw_connection(envs["clinic"])
    try:
        outside = conn.execute(
            "SELECT a.appointment_id FROM appointments AS a WHERE NOT EXISTS ("
            " SELECT 1 FROM doctor_hours AS h WHERE h.doctor_id = a.doctor_id"
            " AND h.weekday = CAST(strftime('%w', a.date) AS INTEGER)"
            " AND a.time >= h.start_time AND a.time < h.end_time)"
        ).fetchall()
    finally:
        conn.close()
    assert outside == []
    appointments = envs["clinic"].database.seed["appointments"]
    assert {a["status"] for a in appointments if a["date"] > TODAY} <= {"scheduled", "confirmed", "cancelled"}
    assert {a["status"] for a in appointments if a["date"] < TODAY} <= {"completed", "cancelled", "no_show"}


def test_travel_seats_cover_live_bookings(envs: dict[str, Environment]) -> None:
    seed = envs["travel"].database.seed
    held: dict[int, int] = {}
    for b in seed["bookings"]:
        assert b["reference"] == booking_reference(b["booking_id"])
        if b["kind"] == "flight" and b["status"] != "cancelled":
            held[b["flight_id"]] = held.get(b["flight_id"], 0) + b["seats"]
    for f in seed["flights"]:
        assert 0 <= f["seats_available"] <= f["seats_total"] - held.get(f["flight_id"], 0)
    assert any(f["seats_available"] == 0 and f["status"] == "scheduled" for f in seed["flights"]) or any(
        0 < f["seats_available"] < 5 for f in seed["flights"]
    )


# -- tools over MCP ---------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "tool", "key"),
    [
        ("retail", "get_customer", "customer_id"),
        ("clinic", "get_patient", "patient_id"),
        ("travel", "get_traveler", "traveler_id"),
    ],
)
async def test_every_tool_builds_and_a_get_tool_works(
    name: str, tool: str, key: str, envs: dict[str, Environment]
) -> None:
    env = envs[name]
    async with serve(env) as h:
        listed = await h.client.list_tools()
        assert {t.name for t in listed.tools} == {t.name for t in env.tools}
        row = await h.ok(tool, **{key: 3})
    table = {"get_customer": "customers", "get_patient": "patients", "get_traveler": "travelers"}[tool]
    assert row == env.database.seed[table][2]


@pytest.mark.anyio
async def test_retail_place_and_cancel_order(envs: dict[str, Environment]) -> None:
    async with serve(composites_only(envs["retail"])) as h:
        product_id, stock, price = h.one(
            "SELECT product_id, stock, price FROM products WHERE active = 1 AND stock >= 5 ORDER BY product_id"
        )
        customer_id = h.one("SELECT customer_id FROM customers ORDER BY customer_id")
        default_address = h.one(
            "SELECT address_id FROM addresses WHERE customer_id = :c AND is_default = 1", c=customer_id
        )
        next_id = h.one("SELECT MAX(order_id) + 1 FROM orders")

        placed = await h.ok("place_order", customer_id=customer_id, product_id=product_id, quantity=2)
        assert placed["order_id"] == next_id
        assert placed["order_number"] == order_number(next_id)
        assert (placed["status"], placed["placed_on"]) == ("pending", TODAY)
        assert placed["shipping_address_id"] == default_address
        assert placed["total"] == pytest.approx(2 * price)
        assert placed["stock_left"] == stock - 2
        assert h.one("SELECT stock FROM products WHERE product_id = :p", p=product_id) == stock - 2
        assert h.one("SELECT COUNT(*) FROM order_items WHERE order_id = :o", o=next_id) == 1

        cancelled = await h.ok("cancel_order", order_number=placed["order_number"])
        assert cancelled["status"] == "cancelled"
        assert h.one("SELECT stock FROM products WHERE product_id = :p", p=product_id) == stock
        assert await h.refused("cancel_order", order_number=placed["order_number"]) == "not_found"


@pytest.mark.anyio
async def test_retail_place_order_refusals_change_nothing(envs: dict[str, Environment]) -> None:
    async with serve(composites_only(envs["retail"])) as h:
        product_id, stock = h.one(
            "SELECT product_id, stock FROM products WHERE active = 1 AND stock BETWEEN 1 AND 19 ORDER BY product_id"
        )
        inactive = h.one("SELECT product_id FROM products WHERE active = 0 ORDER BY product_id")
        other_address = h.one("SELECT address_id FROM addresses WHERE customer_id <> 1 ORDER BY address_id")
        code = await h.refused("place_order", customer_id=1, product_id=product_id, quantity=stock + 1)
        assert code == "execution_failed"  # the not_enough_stock CHECK
        assert await h.refused("place_order", customer_id=1, product_id=inactive, quantity=1) == "not_found"
        assert await h.refused("place_order", customer_id=999, product_id=product_id, quantity=1) == "not_found"
        assert (
            await h.refused("place_order", customer_id=1, product_id=product_id, quantity=1, address_id=other_address)
            == "not_found"
        )
        assert await h.refused("place_order", customer_id=1, product_id=product_id, quantity=0) == "invalid_arguments"


@pytest.mark.anyio
async def test_retail_cancel_refuses_shipped_orders(envs: dict[str, Environment]) -> None:
    async with serve(composites_only(envs["retail"])) as h:
        shipped = h.one("SELECT order_number FROM orders WHERE status IN ('shipped', 'delivered') LIMIT 1")
        assert await h.refused("cancel_order", order_number=shipped) == "not_found"
        paid, items = h.one(
            "SELECT o.order_number, COUNT(*) FROM orders AS o JOIN order_items AS i USING (order_id)"
            " WHERE o.status IN ('pending', 'paid') GROUP BY o.order_id ORDER BY COUNT(*) DESC LIMIT 1"
        )
        before = dict(h.db.query("SELECT product_id, stock FROM products"))
        back = dict(
            h.db.query(
                "SELECT i.product_id, SUM(i.quantity) FROM order_items AS i JOIN orders AS o USING (order_id)"
                " WHERE o.order_number = :n GROUP BY i.product_id",
                {"n": paid},
            )
        )
        assert len(back) == items
        await h.ok("cancel_order", order_number=paid)
        after = dict(h.db.query("SELECT product_id, stock FROM products"))
        assert after == {p: s + back.get(p, 0) for p, s in before.items()}


@pytest.mark.anyio
async def test_retail_order_summary_and_returns(envs: dict[str, Environment]) -> None:
    seed = envs["retail"].database.seed
    async with serve(composites_only(envs["retail"])) as h:
        customer_id = max(
            {o["customer_id"] for o in seed["orders"]},
            key=lambda c: sum(o["customer_id"] == c for o in seed["orders"]),
        )
        summary = await h.ok("order_summary", customer_id=customer_id)
        mine = [o for o in seed["orders"] if o["customer_id"] == customer_id]
        assert summary["count"] == len(mine)
        assert {r["order_number"] for r in summary["rows"]} == {o["order_number"] for o in mine}
        dates = [r["placed_on"] for r in summary["rows"]]
        assert dates == sorted(dates, reverse=True)

        number, product_id = h.one(
            "SELECT o.order_number, i.product_id FROM orders AS o JOIN order_items AS i USING (order_id)"
            f" WHERE o.status = 'delivered' AND o.delivered_on >= date('{TODAY}', '-30 days')"
            " AND i.item_id NOT IN (SELECT item_id FROM returns) ORDER BY o.order_id"
        )
        opened = await h.ok("request_return", order_number=number, product_id=product_id, reason="damaged")
        assert (opened["status"], opened["requested_on"]) == ("requested", TODAY)
        again = await h.refused("request_return", order_number=number, product_id=product_id, reason="damaged")
        assert again == "execution_failed"  # one return per item (UNIQUE)
        old = h.one(
            "SELECT o.order_number, i.product_id FROM orders AS o JOIN order_items AS i USING (order_id)"
            f" WHERE o.status = 'delivered' AND o.delivered_on < date('{TODAY}', '-30 days')"
            " AND i.item_id NOT IN (SELECT item_id FROM returns)"
        )
        assert (
            await h.refused("request_return", order_number=old[0], product_id=old[1], reason="wrong_item")
            == "not_found"
        )


def _next(weekday: int) -> str:
    """The first day after today that falls on ``weekday`` (SQLite numbering)."""
    day = TODAY_DATE + dt.timedelta(days=1)
    while sqlite_weekday(day) != weekday:
        day += dt.timedelta(days=1)
    return day.isoformat()


@pytest.mark.anyio
async def test_clinic_booking_fills_a_free_slot_and_refuses_a_taken_one(envs: dict[str, Environment]) -> None:
    async with serve(composites_only(envs["clinic"])) as h:
        doctor_id, weekday, start, end = h.one(
            "SELECT doctor_id, weekday, start_time, end_time FROM doctor_hours ORDER BY hours_id"
        )
        date = _next(weekday)
        schedule = await h.ok("doctor_schedule", doctor_id=doctor_id, date=date)
        assert schedule["count"] > 0
        assert schedule["rows"][0]["time"] == start and schedule["rows"][-1]["time"] < end
        free = await h.ok("doctor_schedule", doctor_id=doctor_id, date=date, only_free=True)
        assert free["rows"] and {r["slot"] for r in free["rows"]} == {"free"}
        slot = free["rows"][0]["time"]

        booked = await h.ok(
            "book_appointment", patient_id=1, doctor_id=doctor_id, date=date, time=slot, reason="Check-up"
        )
        assert (booked["status"], booked["date"], booked["time"], booked["booked_on"]) == (
            "scheduled",
            date,
            slot,
            TODAY,
        )
        after = await h.ok("doctor_schedule", doctor_id=doctor_id, date=date)
        row = next(r for r in after["rows"] if r["time"] == slot)
        assert (row["slot"], row["appointment_id"], row["patient_id"]) == ("booked", booked["appointment_id"], 1)

        code = await h.refused(
            "book_appointment", patient_id=2, doctor_id=doctor_id, date=date, time=slot, reason="Rash"
        )
        assert code == "execution_failed"  # the doctor_slot_taken unique index
        # Outside the doctor's hours, on a day they do not work, in the past: not found.
        assert (
            await h.refused("book_appointment", patient_id=2, doctor_id=doctor_id, date=date, time="23:30", reason="x")
            == "not_found"
        )
        off = next(
            d
            for d in range(7)
            if not h.db.query(
                "SELECT 1 FROM doctor_hours WHERE doctor_id = :d AND weekday = :w", {"d": doctor_id, "w": d}
            )
        )
        assert (
            await h.refused(
                "book_appointment", patient_id=2, doctor_id=doctor_id, date=_next(off), time=start, reason="x"
            )
            == "not_found"
        )
        assert (
            await h.refused(
                "book_appointment", patient_id=2, doctor_id=doctor_id, date="2026-06-31", time=start, reason="x"
            )
            == "not_found"
        )
        past = (TODAY_DATE - dt.timedelta(days=7)).isoformat()
        assert (
            await h.refused("book_appointment", patient_id=2, doctor_id=doctor_id, date=past, time=start, reason="x")
            == "not_found"
        )


@pytest.mark.anyio
async def test_clinic_seeded_appointments_hold_their_slots(envs: dict[str, Environment]) -> None:
    async with serve(composites_only(envs["clinic"])) as h:
        doctor_id, date, time, patient_id = h.one(
            "SELECT doctor_id, date, time, patient_id FROM appointments"
            f" WHERE date > '{TODAY}' AND status <> 'cancelled' ORDER BY appointment_id"
        )
        other = h.one("SELECT patient_id FROM patients WHERE patient_id <> :p ORDER BY patient_id", p=patient_id)
        code = await h.refused(
            "book_appointment", patient_id=other, doctor_id=doctor_id, date=date, time=time, reason="Follow-up"
        )
        assert code == "execution_failed"


@pytest.mark.anyio
async def test_clinic_reschedule(envs: dict[str, Environment]) -> None:
    async with serve(composites_only(envs["clinic"])) as h:
        appointment_id, doctor_id = h.one(
            f"SELECT appointment_id, doctor_id FROM appointments WHERE date > '{TODAY}'"
            " AND status IN ('scheduled', 'confirmed') ORDER BY appointment_id"
        )
        weekday = h.one("SELECT weekday FROM doctor_hours WHERE doctor_id = :d ORDER BY weekday", d=doctor_id)
        date = _next(weekday)
        schedule = await h.ok("doctor_schedule", doctor_id=doctor_id, date=date, only_free=True)
        new_time = schedule["rows"][-1]["time"]
        moved = await h.ok("reschedule_appointment", appointment_id=appointment_id, date=date, time=new_time)
        assert (moved["date"], moved["time"], moved["status"]) == (date, new_time, "scheduled")

        # Another live appointment of the same doctor cannot move into that slot now.
        second = await h.ok(
            "book_appointment",
            patient_id=2,
            doctor_id=doctor_id,
            date=date,
            time=schedule["rows"][0]["time"],
            reason="Follow-up",
        )
        code = await h.refused(
            "reschedule_appointment", appointment_id=second["appointment_id"], date=date, time=new_time
        )
        assert code == "execution_failed"
        done = h.one("SELECT appointment_id FROM appointments WHERE status = 'completed' ORDER BY appointment_id")
        assert await h.refused("reschedule_appointment", appointment_id=done, date=date, time=new_time) == "not_found"


@pytest.mark.anyio
async def test_clinic_refills(envs: dict[str, Environment]) -> None:
    async with serve(composites_only(envs["clinic"])) as h:
        prescription_id, refills = h.one(
            "SELECT prescription_id, refills_remaining FROM prescriptions"
            " WHERE status = 'active' AND refills_remaining > 0 ORDER BY prescription_id"
        )
        for left in range(refills - 1, -1, -1):
            used = await h.ok("refill_prescription", prescription_id=prescription_id)
            assert used["refills_remaining"] == left
        code = await h.refused("refill_prescription", prescription_id=prescription_id)
        assert code == "execution_failed"  # the no_refills_left CHECK
        stopped = h.one("SELECT prescription_id FROM prescriptions WHERE status <> 'active' ORDER BY 1")
        assert await h.refused("refill_prescription", prescription_id=stopped) == "not_found"


@pytest.mark.anyio
async def test_travel_book_and_cancel_flight(envs: dict[str, Environment]) -> None:
    async with serve(composites_only(envs["travel"])) as h:
        origin, destination = h.one(
            "SELECT o.city, d.city FROM flights AS f JOIN airports AS o ON o.code = f.origin"
            " JOIN airports AS d ON d.code = f.destination"
            f" WHERE f.status = 'scheduled' AND f.departure_date > '{TODAY}' AND f.seats_available >= 3"
            " ORDER BY f.flight_id"
        )
        found = await h.ok("find_flights", origin_city=origin.upper(), destination_city=destination, min_seats=3)
        assert found["rows"] and all(r["seats_available"] >= 3 for r in found["rows"])
        assert all(r["departure_date"] > TODAY for r in found["rows"])
        flight = found["rows"][0]
        next_id = h.one("SELECT MAX(booking_id) + 1 FROM bookings")

        booked = await h.ok(
            "book_flight",
            traveler_id=5,
            flight_id=flight["flight_id"],
            seats=3,
            payment_method="card",
            card_last4="4242",
        )
        assert booked["reference"] == booking_reference(next_id)
        assert (booked["status"], booked["payment_status"]) == ("confirmed", "captured")
        assert booked["total_price"] == pytest.approx(3 * flight["price"])
        assert booked["seats_left"] == flight["seats_available"] - 3
        assert h.one("SELECT amount FROM payments WHERE payment_id = :p", p=booked["payment_id"]) == pytest.approx(
            booked["total_price"]
        )
        trips = await h.ok("itinerary_for_traveler", traveler_id=5)
        assert booked["reference"] in {r["reference"] for r in trips["rows"]}

        cancelled = await h.ok("cancel_booking", reference=booked["reference"])
        assert cancelled["status"] == "cancelled"
        assert (
            h.one("SELECT seats_available FROM flights WHERE flight_id = :f", f=flight["flight_id"])
            == flight["seats_available"]
        )
        assert h.one("SELECT status FROM payments WHERE payment_id = :p", p=booked["payment_id"]) == "refunded"
        assert await h.refused("cancel_booking", reference=booked["reference"]) == "not_found"
        trips = await h.ok("itinerary_for_traveler", traveler_id=5)
        assert booked["reference"] not in {r["reference"] for r in trips["rows"]}
        trips = await h.ok("itinerary_for_traveler", traveler_id=5, include_cancelled=True)
        assert booked["reference"] in {r["reference"] for r in trips["rows"]}


@pytest.mark.anyio
async def test_travel_seats_never_go_negative(envs: dict[str, Environment]) -> None:
    async with serve(composites_only(envs["travel"])) as h:
        flight_id, free = h.one(
            "SELECT flight_id, seats_available FROM flights"
            f" WHERE status = 'scheduled' AND departure_date > '{TODAY}' AND seats_available BETWEEN 1 AND 8"
            " ORDER BY seats_available DESC, flight_id"
        )
        code = await h.refused(
            "book_flight", traveler_id=1, flight_id=flight_id, seats=free + 1, payment_method="paypal"
        )
        assert code == "execution_failed"  # the no_seats_left CHECK
        while free > 0:
            seats = min(free, 4)
            await h.ok("book_flight", traveler_id=1, flight_id=flight_id, seats=seats, payment_method="paypal")
            free -= seats
            assert h.one("SELECT seats_available FROM flights WHERE flight_id = :f", f=flight_id) == free
        code = await h.refused("book_flight", traveler_id=1, flight_id=flight_id, payment_method="voucher")
        assert code == "execution_failed"
        assert h.one("SELECT MIN(seats_available) FROM flights") >= 0


@pytest.mark.anyio
async def test_travel_booking_refusals(envs: dict[str, Environment]) -> None:
    async with serve(composites_only(envs["travel"])) as h:
        bookable = h.one(
            f"SELECT flight_id FROM flights WHERE status = 'scheduled' AND departure_date > '{TODAY}'"
            " AND seats_available > 0 ORDER BY flight_id"
        )
        departed = h.one("SELECT flight_id FROM flights WHERE status = 'departed' ORDER BY flight_id")
        assert await h.refused("book_flight", traveler_id=1, flight_id=departed, payment_method="paypal") == (
            "not_found"
        )
        assert await h.refused("book_flight", traveler_id=999, flight_id=bookable, payment_method="paypal") == (
            "not_found"
        )
        # A card payment needs the card's last four digits.
        assert await h.refused("book_flight", traveler_id=1, flight_id=bookable, payment_method="card") == (
            "execution_failed"
        )
        completed = h.one("SELECT reference FROM bookings WHERE status = 'completed' ORDER BY booking_id")
        assert await h.refused("cancel_booking", reference=completed) == "not_found"
        assert await h.refused("cancel_booking", reference="BK-00000") == "not_found"
        assert await h.refused("cancel_booking", reference="nope") == "invalid_arguments"
