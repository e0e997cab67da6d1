"""Hand-written travel tools: finding flights by city, booking seats with payment,
cancelling with refund and seat release, and a traveler's itinerary."""

from __future__ import annotations

from schemas import Effect, ResultShape, ToolSpec
from simulator.domains._common import TODAY, boolean, composite_tool, date_param, integer, string

__all__ = ["composite_tools"]

_REFERENCE = string("The booking reference, e.g. BK-4F2A9", pattern=r"^BK-[0-9A-F]{5}$")


def _bookable(flight: str) -> str:
    return f"{flight}.status IN ('scheduled', 'delayed') AND {flight}.departure_date > '{TODAY}'"


# A booking can be cancelled while it is live and has not started yet.
_CANCELLABLE = (
    "reference = :reference AND status IN ('held', 'confirmed') AND ("
    f" (kind = 'flight' AND (SELECT departure_date FROM flights AS f WHERE f.flight_id = bookings.flight_id)"
    f"  > '{TODAY}')"
    f" OR (kind = 'hotel' AND check_in > '{TODAY}'))"
)


def composite_tools() -> list[ToolSpec]:
    return [_find_flights(), _book_flight(), _cancel_booking(), _itinerary_for_traveler()]


def _find_flights() -> ToolSpec:
    return composite_tool(
        "find_flights",
        "Bookable flights between two cities (English city names, e.g. 'London', 'New York'), "
        "after today, optionally on one date, with at least min_seats free seats; cheapest "
        "first within each day.",
        table="flights",
        params={
            "origin_city": string("City of departure"),
            "destination_city": string("City of arrival"),
            "date": date_param("Only flights leaving on this day"),
            "min_seats": integer("Seats needed", maximum=9) | {"default": 1},
        },
        required=["origin_city", "destination_city"],
        statements=[
            "SELECT f.flight_id, f.flight_number, f.airline, f.origin, o.city AS origin_city,"
            " f.destination, d.city AS destination_city, f.departure_date, f.departure_time,"
            " f.arrival_date, f.arrival_time, f.price, f.seats_available, f.status"
            " FROM flights AS f JOIN airports AS o ON o.code = f.origin"
            " JOIN airports AS d ON d.code = f.destination"
            " WHERE o.city = :origin_city COLLATE NOCASE AND d.city = :destination_city COLLATE NOCASE"
            f" AND {_bookable('f')}"
            " AND (:date IS NULL OR f.departure_date = :date)"
            " AND f.seats_available >= :min_seats"
            " ORDER BY f.departure_date, f.price, f.departure_time"
        ],
        result=ResultShape.ROWS,
        effect=Effect.READ,
        output={
            "flight_id": "integer",
            "flight_number": "string",
            "airline": "string",
            "origin": "string",
            "origin_city": "string",
            "destination": "string",
            "destination_city": "string",
            "departure_date": "string",
            "departure_time": "string",
            "arrival_date": "string",
            "arrival_time": "string",
            "price": "number",
            "seats_available": "integer",
            "status": "string",
        },
    )


def _book_flight() -> ToolSpec:
    # Seats first: too few trips the no_seats_left CHECK; a flight that is not bookable
    # or an unknown traveler changes no row, and every later statement then does
    # nothing (changes() = 1 guards), so the final SELECT is empty: not_found, rolled back.
    return composite_tool(
        "book_flight",
        "Book seats on a flight for a traveler and take the payment: the seats leave the "
        "flight's availability, a 'confirmed' booking with a new reference is created and "
        "the full price is captured. Fails with not_found when the traveler is unknown or "
        "the flight is not bookable (cancelled, departed, today or earlier), with "
        "'CHECK constraint failed: no_seats_left' when too few seats are free, and with "
        "'CHECK constraint failed: card_needs_last4' for a card payment without card_last4 "
        "(or card_last4 given for another method). Nothing changes on failure.",
        table="bookings",
        params={
            "traveler_id": integer("The traveler"),
            "flight_id": integer("The flight"),
            "seats": integer("Number of seats", maximum=9) | {"default": 1},
            "payment_method": string("How the traveler pays", enum=["card", "paypal", "bank_transfer", "voucher"]),
            "card_last4": string("Last four digits of the card, for card payments", pattern=r"^\d{4}$"),
        },
        required=["traveler_id", "flight_id", "payment_method"],
        statements=[
            "UPDATE flights SET seats_available = seats_available - :seats"
            f" WHERE flight_id = :flight_id AND {_bookable('flights')}"
            " AND EXISTS (SELECT 1 FROM travelers WHERE traveler_id = :traveler_id)",
            "INSERT INTO bookings (booking_id, reference, traveler_id, kind, flight_id, seats, status,"
            " booked_on, total_price)"
            " SELECT n.id, printf('BK-%05X', (n.id * 104729 + 48271) % 1048576), :traveler_id, 'flight',"
            f" f.flight_id, :seats, 'confirmed', '{TODAY}', round(f.price * :seats, 2)"
            " FROM (SELECT COALESCE(MAX(booking_id), 0) + 1 AS id FROM bookings) AS n"
            " JOIN flights AS f ON f.flight_id = :flight_id"
            " WHERE changes() = 1",
            "INSERT INTO payments (booking_id, amount, method, status, paid_on, card_last4)"
            f" SELECT b.booking_id, b.total_price, :payment_method, 'captured', '{TODAY}', :card_last4"
            " FROM bookings AS b WHERE b.booking_id = last_insert_rowid() AND changes() = 1",
            "SELECT b.booking_id, b.reference, b.traveler_id, b.status, b.seats, b.total_price,"
            " f.flight_id, f.flight_number, f.origin, f.destination, f.departure_date, f.departure_time,"
            " f.seats_available AS seats_left, p.payment_id, p.method AS payment_method,"
            " p.status AS payment_status"
            " FROM payments AS p JOIN bookings AS b ON b.booking_id = p.booking_id"
            " JOIN flights AS f ON f.flight_id = b.flight_id"
            " WHERE p.payment_id = last_insert_rowid() AND changes() = 1",
        ],
        result=ResultShape.ROW,
        effect=Effect.WRITE,
        output={
            "booking_id": "integer",
            "reference": "string",
            "traveler_id": "integer",
            "status": "string",
            "seats": "integer",
            "total_price": "number",
            "flight_id": "integer",
            "flight_number": "string",
            "origin": "string",
            "destination": "string",
            "departure_date": "string",
            "departure_time": "string",
            "seats_left": "integer",
            "payment_id": "integer",
            "payment_method": "string",
            "payment_status": "string",
        },
    )


def _cancel_booking() -> ToolSpec:
    cancellable_id = f"SELECT booking_id FROM bookings WHERE {_CANCELLABLE}"
    return composite_tool(
        "cancel_booking",
        "Cancel a held or confirmed booking that has not started yet (flight not departed, "
        "hotel check-in after today): captured payments are refunded and a flight "
        "booking's seats go back on sale. Fails with not_found for an unknown reference or "
        "a booking that cannot be cancelled any more; nothing changes then.",
        table="bookings",
        params={"reference": _REFERENCE},
        required=["reference"],
        statements=[
            f"UPDATE payments SET status = 'refunded' WHERE status = 'captured' AND booking_id IN ({cancellable_id})",
            "UPDATE flights SET seats_available = seats_available"
            f" + (SELECT seats FROM bookings WHERE {_CANCELLABLE})"
            f" WHERE flight_id = (SELECT flight_id FROM bookings WHERE {_CANCELLABLE})",
            f"UPDATE bookings SET status = 'cancelled' WHERE {_CANCELLABLE}"
            " RETURNING booking_id, reference, traveler_id, kind, status, total_price",
        ],
        result=ResultShape.ROW,
        effect=Effect.WRITE,
        output={
            "booking_id": "integer",
            "reference": "string",
            "traveler_id": "integer",
            "kind": "string",
            "status": "string",
            "total_price": "number",
        },
    )


def _itinerary_for_traveler() -> ToolSpec:
    return composite_tool(
        "itinerary_for_traveler",
        "A traveler's trips in date order: every flight and hotel booking with its "
        "reference, status, flight times and cities or hotel and stay dates. Cancelled "
        "bookings are left out unless include_cancelled is true.",
        table="bookings",
        params={
            "traveler_id": integer("The traveler"),
            "include_cancelled": boolean("Also list cancelled bookings", default=False),
        },
        required=["traveler_id"],
        statements=[
            "SELECT b.reference, b.kind, b.status, COALESCE(f.departure_date, b.check_in) AS starts_on,"
            " f.flight_number, f.origin, o.city AS origin_city, f.destination, d.city AS destination_city,"
            " f.departure_time, f.arrival_date, f.arrival_time, b.seats,"
            " h.name AS hotel_name, h.city AS hotel_city, b.check_in, b.check_out, b.rooms, b.total_price"
            " FROM bookings AS b"
            " LEFT JOIN flights AS f ON f.flight_id = b.flight_id"
            " LEFT JOIN airports AS o ON o.code = f.origin"
            " LEFT JOIN airports AS d ON d.code = f.destination"
            " LEFT JOIN hotels AS h ON h.hotel_id = b.hotel_id"
            " WHERE b.traveler_id = :traveler_id AND (:include_cancelled OR b.status <> 'cancelled')"
            " ORDER BY starts_on, b.booking_id"
        ],
        result=ResultShape.ROWS,
        effect=Effect.READ,
        output={
            "reference": "string",
            "kind": "string",
            "status": "string",
            "starts_on": "string",
            "flight_number": ["string", "null"],
            "origin": ["string", "null"],
            "origin_city": ["string", "null"],
            "destination": ["string", "null"],
            "destination_city": ["string", "null"],
            "departure_time": ["string", "null"],
            "arrival_date": ["string", "null"],
            "arrival_time": ["string", "null"],
            "seats": ["integer", "null"],
            "hotel_name": ["string", "null"],
            "hotel_city": ["string", "null"],
            "check_in": ["string", "null"],
            "check_out": ["string", "null"],
            "rooms": ["integer", "null"],
            "total_price": "number",
        },
    )
