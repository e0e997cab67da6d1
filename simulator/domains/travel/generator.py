"""Seeded rows for the travel pack: airports, dated flights, hotels, travelers, bookings
and payments.

Flights run on fixed routes under one flight number per direction, with local
departure and arrival times; past flights have departed. Every flight keeps at least
as many seats taken as its live bookings hold, and some are sold out or nearly so.
Half of the hotel stays follow a flight into its destination city. Payments match the
booking's status (captured, pending while held, refunded after a cancellation), with
the occasional failed attempt first.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from simulator.domains._common import TODAY, TODAY_DATE
from simulator.domains._people import date_between, email_for, iso, phone_for, pick_person

__all__ = ["booking_reference", "generate"]

Rows = dict[str, list[dict[str, Any]]]

# code, name, city, country, UTC offset in minutes, phone prefix
_AIRPORTS: tuple[tuple[str, str, str, str, int, str], ...] = (
    ("LHR", "London Heathrow", "London", "United Kingdom", 60, "+44"),
    ("CDG", "Paris Charles de Gaulle", "Paris", "France", 120, "+33"),
    ("FRA", "Frankfurt am Main", "Frankfurt", "Germany", 120, "+49"),
    ("MAD", "Adolfo Suárez Madrid-Barajas", "Madrid", "Spain", 120, "+34"),
    ("LIS", "Lisbon Humberto Delgado", "Lisbon", "Portugal", 60, "+351"),
    ("FCO", "Rome Fiumicino", "Rome", "Italy", 120, "+39"),
    ("AMS", "Amsterdam Schiphol", "Amsterdam", "Netherlands", 120, "+31"),
    ("ARN", "Stockholm Arlanda", "Stockholm", "Sweden", 120, "+46"),
    ("IST", "Istanbul Airport", "Istanbul", "Turkey", 180, "+90"),
    ("JFK", "New York John F. Kennedy", "New York", "United States", -240, "+1"),
    ("ORD", "Chicago O'Hare", "Chicago", "United States", -300, "+1"),
    ("NRT", "Tokyo Narita", "Tokyo", "Japan", 540, "+81"),
    ("DXB", "Dubai International", "Dubai", "United Arab Emirates", 240, "+971"),
    ("BOM", "Mumbai Chhatrapati Shivaji Maharaj", "Mumbai", "India", 330, "+91"),
    ("NBO", "Nairobi Jomo Kenyatta", "Nairobi", "Kenya", 180, "+254"),
    ("GRU", "São Paulo Guarulhos", "São Paulo", "Brazil", -180, "+55"),
)
# origin, destination, block time in minutes, airline
_ROUTES: tuple[tuple[str, str, int, str], ...] = (
    ("LHR", "CDG", 75, "AU"),
    ("LHR", "MAD", 140, "MR"),
    ("LHR", "JFK", 470, "AU"),
    ("CDG", "FCO", 125, "CJ"),
    ("AMS", "ARN", 120, "CJ"),
    ("FRA", "LIS", 185, "MR"),
    ("MAD", "LIS", 75, "SI"),
    ("FRA", "IST", 190, "SI"),
    ("FRA", "ORD", 560, "MR"),
    ("AMS", "NRT", 730, "CJ"),
    ("LHR", "DXB", 420, "SI"),
    ("DXB", "BOM", 185, "SI"),
    ("AMS", "NBO", 500, "AU"),
    ("LIS", "GRU", 590, "MR"),
)
_AIRLINES = {"AU": "Aurora Air", "MR": "Meridian Airways", "CJ": "Cobalt Jet", "SI": "Sirocco Airlines"}
_HOTEL_FIRST = (
    "Grand",
    "Harbour",
    "Garden",
    "Central",
    "Old Town",
    "Skyline",
    "Riverside",
    "Royal",
    "Park",
    "Station",
    "Lantern",
    "Meridian",
)
_HOTEL_KIND = ("Hotel", "Suites", "Inn", "Residence", "Lodge", "Palace", "House")
_RATES = {2: (55, 90), 3: (80, 140), 4: (130, 240), 5: (250, 520)}
_N_FLIGHTS = 72
_N_TRAVELERS = 60
_N_FLIGHT_BOOKINGS = 56
_N_HOTEL_ONLY = 14
_LIVE = ("held", "confirmed", "completed")


def booking_reference(booking_id: int) -> str:
    """``BK-`` and five hex digits, one-to-one with the id below 2**20.

    ``book_flight`` computes it the same way in SQL, so new references never collide
    with seeded ones.
    """
    return f"BK-{(booking_id * 104729 + 48271) % 1048576:05X}"


def generate(seed: int) -> Rows:
    """Rows for every table of ``schema.sql``, in foreign-key-safe order."""
    rng = random.Random(f"travel:{seed}")
    airports = [{"code": c, "name": n, "city": city, "country": co} for c, n, city, co, _o, _p in _AIRPORTS]
    flights = _flights(rng)
    hotels = _hotels(rng)
    travelers = _travelers(rng)
    bookings = _bookings(rng, flights, hotels, travelers)
    payments = _payments(rng, bookings)
    _fill_seats(rng, flights, bookings)
    return {
        "airports": airports,
        "flights": flights,
        "hotels": hotels,
        "travelers": travelers,
        "bookings": bookings,
        "payments": payments,
    }


def _flights(rng: random.Random) -> list[dict[str, Any]]:
    offsets = {a[0]: a[4] for a in _AIRPORTS}
    directions: list[tuple[str, str, int, str, str]] = []
    numbers: set[str] = set()
    for origin, destination, minutes, airline in _ROUTES:
        for a, b in ((origin, destination), (destination, origin)):
            number = f"{airline}{rng.randint(100, 989)}"
            while number in numbers:
                number = f"{airline}{rng.randint(100, 989)}"
            numbers.add(number)
            directions.append((a, b, minutes, airline, number))
    drafts: list[tuple[str, str, tuple[str, str, int, str, str]]] = []
    used: set[tuple[str, str]] = set()
    while len(drafts) < _N_FLIGHTS:
        direction = rng.choice(directions)
        if rng.random() < 0.25:
            day = date_between(rng, dt.date(2026, 1, 5), TODAY_DATE - dt.timedelta(days=1))
        else:
            day = date_between(rng, TODAY_DATE + dt.timedelta(days=1), dt.date(2026, 9, 30))
        if (direction[4], iso(day)) in used:
            continue
        used.add((direction[4], iso(day)))
        departure = f"{rng.randint(6, 22):02d}:{rng.choice(range(0, 60, 5)):02d}"
        drafts.append((iso(day), departure, direction))
    drafts.sort()
    flights: list[dict[str, Any]] = []
    for flight_id, (date, departure, (origin, destination, minutes, airline, number)) in enumerate(drafts, 1):
        leaves = dt.datetime.fromisoformat(f"{date}T{departure}")
        arrives = leaves + dt.timedelta(minutes=minutes - offsets[origin] + offsets[destination])
        long_haul = minutes > 300
        fare = (45 + minutes * (0.55 if long_haul else 0.9)) * rng.uniform(0.75, 1.45)
        if date < TODAY:
            status = "cancelled" if rng.random() < 0.04 else "departed"
        else:
            status = rng.choices(("scheduled", "delayed", "cancelled"), (88, 5, 7))[0]
        total = rng.choice((280, 300, 350) if long_haul else (150, 174, 180, 189, 220))
        flights.append(
            {
                "flight_id": flight_id,
                "flight_number": number,
                "airline": _AIRLINES[airline],
                "origin": origin,
                "destination": destination,
                "departure_date": date,
                "departure_time": departure,
                "arrival_date": arrives.date().isoformat(),
                "arrival_time": arrives.strftime("%H:%M"),
                "price": float(round(fare)),
                "seats_total": total,
                "seats_available": total,  # set by _fill_seats once bookings exist
                "status": status,
            }
        )
    return flights


def _hotels(rng: random.Random) -> list[dict[str, Any]]:
    hotels: list[dict[str, Any]] = []
    for _code, _name, city, country, _offset, prefix in _AIRPORTS:
        names: set[str] = set()
        while len(names) < 2:
            names.add(f"{rng.choice(_HOTEL_FIRST)} {rng.choice(_HOTEL_KIND)} {city}")
        for name in sorted(names):
            stars = rng.choices((2, 3, 4, 5), (10, 35, 40, 15))[0]
            low, high = _RATES[stars]
            hotels.append(
                {
                    "hotel_id": len(hotels) + 1,
                    "name": name,
                    "city": city,
                    "country": country,
                    "stars": stars,
                    "nightly_rate": float(rng.randint(low, high)),
                    "phone": f"{prefix} {rng.randint(20, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
                    if rng.random() < 0.9
                    else None,
                }
            )
    return hotels


def _travelers(rng: random.Random) -> list[dict[str, Any]]:
    emails: set[str] = set()
    phones: set[str] = set()
    passports: set[str] = set()
    travelers: list[dict[str, Any]] = []
    for traveler_id in range(1, _N_TRAVELERS + 1):
        person = pick_person(rng)
        passport = None
        if rng.random() < 0.8:
            passport = f"{person.culture.code.upper()}{rng.randint(1000000, 9999999)}"
            while passport in passports:
                passport = f"{person.culture.code.upper()}{rng.randint(1000000, 9999999)}"
            passports.add(passport)
        travelers.append(
            {
                "traveler_id": traveler_id,
                "first_name": person.first_name,
                "last_name": person.last_name,
                "email": email_for(rng, person, emails),
                "phone": phone_for(rng, person.culture.phone_prefix, phones) if rng.random() < 0.85 else None,
                "date_of_birth": iso(date_between(rng, dt.date(1950, 1, 1), dt.date(2006, 12, 31))),
                "nationality": person.culture.nationality,
                "passport_number": passport,
                "loyalty_tier": rng.choices(("none", "silver", "gold", "platinum"), (55, 25, 15, 5))[0],
            }
        )
    return travelers


def _booking_status(rng: random.Random, starts: dt.date, cancelled_by_airline: bool = False) -> str:
    if cancelled_by_airline:
        return "cancelled"
    if starts < TODAY_DATE:
        return rng.choices(("completed", "cancelled"), (90, 10))[0]
    return rng.choices(("confirmed", "held", "cancelled"), (80, 10, 10))[0]


def _booked_on(rng: random.Random, starts: dt.date) -> str:
    day = starts - dt.timedelta(days=rng.randint(3, 60))
    return iso(min(max(day, dt.date(2026, 1, 2)), TODAY_DATE))


def _bookings(
    rng: random.Random,
    flights: list[dict[str, Any]],
    hotels: list[dict[str, Any]],
    travelers: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    cities = {a[0]: a[2] for a in _AIRPORTS}
    by_city: dict[str, list[dict[str, Any]]] = {}
    for h in hotels:
        by_city.setdefault(h["city"], []).append(h)
    drafts: list[dict[str, Any]] = []

    def stay(traveler_id: int, hotel: dict[str, Any], check_in: dt.date) -> dict[str, Any]:
        nights = rng.choices((1, 2, 3, 4, 5, 7), (15, 25, 25, 15, 10, 10))[0]
        rooms = 1 if rng.random() < 0.85 else 2
        return {
            "traveler_id": traveler_id,
            "kind": "hotel",
            "flight_id": None,
            "seats": None,
            "hotel_id": hotel["hotel_id"],
            "check_in": iso(check_in),
            "check_out": iso(check_in + dt.timedelta(days=nights)),
            "rooms": rooms,
            "status": _booking_status(rng, check_in),
            "booked_on": _booked_on(rng, check_in),
            "total_price": round(hotel["nightly_rate"] * nights * rooms, 2),
        }

    for _ in range(_N_FLIGHT_BOOKINGS):
        traveler = rng.choice(travelers)
        flight = rng.choice(flights)
        departs = dt.date.fromisoformat(flight["departure_date"])
        seats = rng.choices((1, 2, 3, 4), (70, 20, 6, 4))[0]
        status = _booking_status(rng, departs, flight["status"] == "cancelled")
        drafts.append(
            {
                "traveler_id": traveler["traveler_id"],
                "kind": "flight",
                "flight_id": flight["flight_id"],
                "seats": seats,
                "hotel_id": None,
                "check_in": None,
                "check_out": None,
                "rooms": None,
                "status": status,
                "booked_on": _booked_on(rng, departs),
                "total_price": round(flight["price"] * seats, 2),
            }
        )
        if status != "cancelled" and rng.random() < 0.4:
            hotel = rng.choice(by_city[cities[flight["destination"]]])
            drafts.append(stay(traveler["traveler_id"], hotel, dt.date.fromisoformat(flight["arrival_date"])))
    for _ in range(_N_HOTEL_ONLY):
        check_in = date_between(rng, dt.date(2026, 1, 10), dt.date(2026, 9, 30))
        drafts.append(stay(rng.choice(travelers)["traveler_id"], rng.choice(hotels), check_in))
    drafts.sort(key=lambda b: b["booked_on"])
    bookings: list[dict[str, Any]] = []
    for booking_id, draft in enumerate(drafts, start=1):
        bookings.append({"booking_id": booking_id, "reference": booking_reference(booking_id), **draft})
    return bookings


def _payments(rng: random.Random, bookings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    payments: list[dict[str, Any]] = []

    def pay(booking: dict[str, Any], status: str, method: str) -> None:
        payments.append(
            {
                "payment_id": len(payments) + 1,
                "booking_id": booking["booking_id"],
                "amount": booking["total_price"],
                "method": method,
                "status": status,
                "paid_on": None if status == "pending" else booking["booked_on"],
                "card_last4": f"{rng.randint(0, 9999):04d}" if method == "card" else None,
            }
        )

    for booking in bookings:
        method = rng.choices(("card", "paypal", "bank_transfer", "voucher"), (65, 20, 10, 5))[0]
        if rng.random() < 0.06:
            pay(booking, "failed", "card")
        status = booking["status"]
        if status == "held":
            pay(booking, "pending", method)
        elif status == "cancelled":
            pay(booking, "refunded" if rng.random() < 0.8 else "failed", method)
        else:
            pay(booking, "captured", method)
    return payments


def _fill_seats(rng: random.Random, flights: list[dict[str, Any]], bookings: list[dict[str, Any]]) -> None:
    """Free seats: what the live bookings leave, minus passengers booked elsewhere."""
    held: dict[int, int] = {}
    for b in bookings:
        if b["kind"] == "flight" and b["status"] in _LIVE:
            held[b["flight_id"]] = held.get(b["flight_id"], 0) + b["seats"]
    for flight in flights:
        room = flight["seats_total"] - held.get(flight["flight_id"], 0)
        roll = rng.random()
        if flight["status"] == "departed" or roll < 0.08:
            free = 0 if roll < 0.5 else rng.randint(0, min(room, 12))
        elif roll < 0.2:
            free = rng.randint(1, min(room, 4))
        else:
            free = rng.randint(5, min(room, 80))
        flight["seats_available"] = free
