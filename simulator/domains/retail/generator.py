"""Seeded rows for the retail pack: customers, their addresses, a catalogue, orders and returns.

Orders follow a plausible life cycle by age (recent ones pending or paid, older ones
shipped, then delivered, a few cancelled), order totals equal the sum of their lines,
and some products are out of stock or discontinued so that tasks can run into both.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from simulator.domains._common import TODAY_DATE
from simulator.domains._people import date_between, email_for, iso, phone_for, pick_person

__all__ = ["generate", "order_number"]

Rows = dict[str, list[dict[str, Any]]]

_CATALOGUE: dict[str, tuple[tuple[str, ...], tuple[float, float]]] = {
    "kitchen": (
        (
            "Chef's Knife",
            "Cast Iron Skillet",
            "French Press",
            "Mixing Bowl Set",
            "Pour-Over Kettle",
            "Cutting Board",
            "Spice Grinder",
            "Salad Spinner",
        ),
        (9.0, 140.0),
    ),
    "home": (
        (
            "Throw Blanket",
            "Table Lamp",
            "Linen Duvet Cover",
            "Ceramic Vase",
            "Wall Clock",
            "Scented Candle",
            "Bath Towel Set",
            "Cushion Cover",
        ),
        (12.0, 160.0),
    ),
    "electronics": (
        (
            "Wireless Earbuds",
            "Bluetooth Speaker",
            "USB-C Charger",
            "Mechanical Keyboard",
            "HD Webcam",
            "Power Bank",
            "Smart Plug",
            "Noise-Cancelling Headphones",
        ),
        (15.0, 320.0),
    ),
    "outdoors": (
        (
            "Trail Backpack",
            "Camping Lantern",
            "Insulated Bottle",
            "Travel Hammock",
            "Trekking Poles",
            "Rain Jacket",
            "Sleeping Bag",
            "Picnic Blanket",
        ),
        (14.0, 210.0),
    ),
    "apparel": (
        (
            "Merino Sweater",
            "Canvas Sneakers",
            "Wool Beanie",
            "Denim Jacket",
            "Running Shorts",
            "Leather Belt",
            "Linen Shirt",
            "Rain Boots",
        ),
        (15.0, 180.0),
    ),
    "office": (
        (
            "Dotted Notebook",
            "Fountain Pen",
            "Desk Organizer",
            "Monitor Stand",
            "Desk Lamp",
            "Ergonomic Mouse",
            "Document Wallet",
            "Whiteboard",
        ),
        (6.0, 130.0),
    ),
}
_ADJECTIVES = (
    "Classic",
    "Compact",
    "Deluxe",
    "Everyday",
    "Nordic",
    "Urban",
    "Eco",
    "Premium",
    "Vintage",
    "Ultralight",
    "Pro",
    "Essential",
    "Heritage",
    "Modern",
)
_COLOURS = ("Slate", "Sage", "Charcoal", "Sand", "Ocean Blue", "Terracotta", "Ivory", "Forest Green")
_STREETS = (
    "Oak",
    "Mill",
    "Station",
    "Harbour",
    "Church",
    "Market",
    "Garden",
    "Park",
    "River",
    "Hill",
    "Castle",
    "Orchard",
    "Bridge",
    "Meadow",
)
_STREET_KINDS = ("Street", "Road", "Lane", "Avenue", "Way")
_REASONS = {
    False: ("damaged", "wrong_item", "not_as_described", "no_longer_needed"),
    True: ("damaged", "wrong_item", "too_small", "too_large", "no_longer_needed"),
}
_N_CUSTOMERS = 60
_N_PRODUCTS = 48
_N_ORDERS = 72
_FIRST_DAY = dt.date(2026, 1, 5)


def order_number(order_id: int) -> str:
    """The customer-facing number of an order; ``place_order`` computes it the same way in SQL."""
    return f"ORD-{10000 + order_id:05d}"


def generate(seed: int) -> Rows:
    """Rows for every table of ``schema.sql``, in foreign-key-safe order."""
    rng = random.Random(f"retail:{seed}")
    customers, addresses = _customers(rng)
    products = _products(rng)
    orders, items = _orders(rng, customers, addresses, products)
    returns = _returns(rng, orders, items, products)
    return {
        "customers": customers,
        "addresses": addresses,
        "products": products,
        "orders": orders,
        "order_items": items,
        "returns": returns,
    }


def _customers(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    emails: set[str] = set()
    phones: set[str] = set()
    customers: list[dict[str, Any]] = []
    addresses: list[dict[str, Any]] = []
    for customer_id in range(1, _N_CUSTOMERS + 1):
        person = pick_person(rng)
        culture = person.culture
        city = rng.choice(culture.cities)
        customers.append(
            {
                "customer_id": customer_id,
                "name": person.full_name,
                "email": email_for(rng, person, emails),
                "phone": phone_for(rng, culture.phone_prefix, phones) if rng.random() < 0.8 else None,
                "city": city,
                "country": culture.country,
                "loyalty_tier": rng.choices(("standard", "silver", "gold"), (70, 20, 10))[0],
                "joined_on": iso(date_between(rng, dt.date(2026, 1, 2), dt.date(2026, 3, 31))),
            }
        )
        labels = ["home"] + (["work"] if rng.random() < 0.35 else []) + (["other"] if rng.random() < 0.1 else [])
        for i, label in enumerate(labels):
            addresses.append(
                {
                    "address_id": len(addresses) + 1,
                    "customer_id": customer_id,
                    "label": label,
                    "street": f"{rng.randint(1, 240)} {rng.choice(_STREETS)} {rng.choice(_STREET_KINDS)}",
                    "city": city if label == "home" or rng.random() < 0.7 else rng.choice(culture.cities),
                    "postal_code": f"{rng.randint(10000, 99999)}",
                    "country": culture.country,
                    "is_default": 1 if i == 0 else 0,
                }
            )
    return customers, addresses


def _products(rng: random.Random) -> list[dict[str, Any]]:
    products: list[dict[str, Any]] = []
    names: set[str] = set()
    skus: set[str] = set()
    categories = list(_CATALOGUE)
    while len(products) < _N_PRODUCTS:
        category = categories[len(products) % len(categories)]
        nouns, (low, high) = _CATALOGUE[category]
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(nouns)}"
        if rng.random() < 0.3:
            name += f" - {rng.choice(_COLOURS)}"
        if name in names:
            continue
        names.add(name)
        sku = f"{category[:3].upper()}-{rng.randint(1000, 9999)}"
        while sku in skus:
            sku = f"{category[:3].upper()}-{rng.randint(1000, 9999)}"
        skus.add(sku)
        # Shop prices end in .99 or .50 or .00, skewed towards the cheap end of the range.
        base = low + (high - low) * rng.random() ** 1.7
        price = round(int(base) + rng.choice((0.99, 0.99, 0.5, 0.0)), 2)
        roll = rng.random()
        stock = 0 if roll < 0.08 else rng.randint(1, 3) if roll < 0.18 else rng.randint(8, 140)
        products.append(
            {
                "product_id": len(products) + 1,
                "sku": sku,
                "name": name,
                "category": category,
                "price": price,
                "stock": stock,
                "active": 0 if rng.random() < 0.06 else 1,
            }
        )
    return products


def _orders(
    rng: random.Random,
    customers: list[dict[str, Any]],
    addresses: list[dict[str, Any]],
    products: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    by_customer: dict[int, list[int]] = {}
    for a in addresses:
        by_customer.setdefault(a["customer_id"], []).append(a["address_id"])
    # Some customers order often, most once or twice.
    weights = [rng.choice((1, 1, 1, 2, 2, 4)) for _ in customers]
    # Half the orders spread over the year so far, half recent: open orders to act on.
    span = (TODAY_DATE - _FIRST_DAY).days
    ages = [
        rng.randint(0, span) if rng.random() < 0.5 else min(int(rng.expovariate(0.1)), span) for _ in range(_N_ORDERS)
    ]
    placed = sorted(TODAY_DATE - dt.timedelta(days=age) for age in ages)
    orders: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for order_id, day in enumerate(placed, start=1):
        customer = rng.choices(customers, weights)[0]
        status, shipped, delivered = _life_cycle(rng, day)
        lines = rng.sample(products, rng.choices((1, 2, 3, 4), (45, 30, 17, 8))[0])
        total = 0.0
        for product in lines:
            quantity = rng.choices((1, 2, 3), (75, 20, 5))[0]
            items.append(
                {
                    "item_id": len(items) + 1,
                    "order_id": order_id,
                    "product_id": product["product_id"],
                    "quantity": quantity,
                    "unit_price": product["price"],
                }
            )
            total += quantity * product["price"]
        addresses_of = by_customer[customer["customer_id"]]
        orders.append(
            {
                "order_id": order_id,
                "order_number": order_number(order_id),
                "customer_id": customer["customer_id"],
                "shipping_address_id": rng.choice(addresses_of) if rng.random() < 0.95 else None,
                "status": status,
                "placed_on": iso(day),
                "shipped_on": iso(shipped) if shipped else None,
                "delivered_on": iso(delivered) if delivered else None,
                "total": round(total, 2),
            }
        )
    return orders, items


def _life_cycle(rng: random.Random, placed: dt.date) -> tuple[str, dt.date | None, dt.date | None]:
    age = (TODAY_DATE - placed).days
    if rng.random() < 0.07:
        return "cancelled", None, None
    if age <= 1:
        return rng.choices(("pending", "paid"), (60, 40))[0], None, None
    if age <= 3:
        status = rng.choices(("pending", "paid", "shipped"), (10, 45, 45))[0]
        if status == "pending":
            return status, None, None
    elif age <= 8:
        status = rng.choices(("paid", "shipped", "delivered"), (10, 45, 45))[0]
    else:
        status = rng.choices(("shipped", "delivered"), (4, 96))[0]
    if status == "paid":
        return status, None, None
    shipped = placed + dt.timedelta(days=rng.randint(1, min(3, age)))
    if status == "shipped":
        return status, shipped, None
    delivered = min(shipped + dt.timedelta(days=rng.randint(2, 6)), TODAY_DATE)
    return status, shipped, delivered


def _returns(
    rng: random.Random,
    orders: list[dict[str, Any]],
    items: list[dict[str, Any]],
    products: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    delivered = {o["order_id"]: o for o in orders if o["status"] == "delivered"}
    candidates = [i for i in items if i["order_id"] in delivered]
    returns: list[dict[str, Any]] = []
    for item in rng.sample(candidates, min(len(candidates), 12)):
        received = dt.date.fromisoformat(delivered[item["order_id"]]["delivered_on"])
        requested = min(received + dt.timedelta(days=rng.randint(1, 20)), TODAY_DATE)
        status = rng.choices(("requested", "approved", "rejected", "refunded"), (30, 20, 10, 40))[0]
        resolved = None
        if status != "requested":
            resolved = min(requested + dt.timedelta(days=rng.randint(1, 6)), TODAY_DATE)
        amount = round(item["quantity"] * item["unit_price"], 2) if status == "refunded" else None
        returns.append(
            {
                "return_id": len(returns) + 1,
                "item_id": item["item_id"],
                "reason": rng.choice(_REASONS[products[item["product_id"] - 1]["category"] == "apparel"]),
                "status": status,
                "requested_on": iso(requested),
                "resolved_on": iso(resolved) if resolved else None,
                "refund_amount": amount,
            }
        )
    returns.sort(key=lambda r: (r["requested_on"], r["item_id"]))
    for i, r in enumerate(returns, start=1):
        r["return_id"] = i
    return returns
