"""Hand-written retail tools: what the derived per-table tools cannot do in one call."""

from __future__ import annotations

from schemas import Effect, ResultShape, ToolSpec
from simulator.domains._common import TODAY, composite_tool, integer, string

__all__ = ["composite_tools"]

_ORDER_NUMBER = string("The order number, e.g. ORD-10042", pattern=r"^ORD-\d{5}$")
_CANCELLABLE = "('pending', 'paid')"
_RETURN_WINDOW_DAYS = 30


def composite_tools() -> list[ToolSpec]:
    return [_place_order(), _cancel_order(), _order_summary(), _request_return()]


def _place_order() -> ToolSpec:
    # Each statement runs only when the one before changed a row (changes() = 1), so a
    # missing customer, product or address leaves nothing behind and the final SELECT
    # finds no row: a not_found error, rolled back. Too little stock trips the
    # not_enough_stock CHECK on products instead.
    return composite_tool(
        "place_order",
        "Place a new order of one product for a customer and take the quantity out of stock. "
        "The order is created as 'pending', shipped to the given address or else the "
        "customer's default address. Fails with not_found when the customer, an active "
        "product or the customer's address does not exist, and with "
        "'CHECK constraint failed: not_enough_stock' when fewer units are in stock.",
        table="orders",
        params={
            "customer_id": integer("The customer placing the order"),
            "product_id": integer("The product to order"),
            "quantity": integer("How many units", maximum=20),
            "address_id": integer("One of the customer's addresses; default: their default address"),
        },
        required=["customer_id", "product_id", "quantity"],
        statements=[
            "UPDATE products SET stock = stock - :quantity"
            " WHERE product_id = :product_id AND active = 1"
            " AND EXISTS (SELECT 1 FROM customers WHERE customer_id = :customer_id)"
            " AND (:address_id IS NULL OR EXISTS (SELECT 1 FROM addresses"
            "      WHERE address_id = :address_id AND customer_id = :customer_id))",
            "INSERT INTO orders (order_id, order_number, customer_id, shipping_address_id, status,"
            " placed_on, total)"
            " SELECT n.id, printf('ORD-%05d', 10000 + n.id), :customer_id,"
            " COALESCE(:address_id, (SELECT address_id FROM addresses"
            "   WHERE customer_id = :customer_id AND is_default = 1 ORDER BY address_id LIMIT 1)),"
            f" 'pending', '{TODAY}', round(p.price * :quantity, 2)"
            " FROM (SELECT COALESCE(MAX(order_id), 0) + 1 AS id FROM orders) AS n"
            " JOIN products AS p ON p.product_id = :product_id"
            " WHERE changes() = 1",
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price)"
            " SELECT last_insert_rowid(), p.product_id, :quantity, p.price"
            " FROM products AS p WHERE p.product_id = :product_id AND changes() = 1",
            "SELECT o.order_id, o.order_number, o.customer_id, o.shipping_address_id, o.status,"
            " o.placed_on, o.total, i.product_id, p.name AS product_name, i.quantity, i.unit_price,"
            " p.stock AS stock_left"
            " FROM order_items AS i JOIN orders AS o ON o.order_id = i.order_id"
            " JOIN products AS p ON p.product_id = i.product_id"
            " WHERE i.item_id = last_insert_rowid() AND changes() = 1",
        ],
        result=ResultShape.ROW,
        effect=Effect.WRITE,
        output={
            "order_id": "integer",
            "order_number": "string",
            "customer_id": "integer",
            "shipping_address_id": ["integer", "null"],
            "status": "string",
            "placed_on": "string",
            "total": "number",
            "product_id": "integer",
            "product_name": "string",
            "quantity": "integer",
            "unit_price": "number",
            "stock_left": "integer",
        },
    )


def _cancel_order() -> ToolSpec:
    in_cancellable_order = (
        "SELECT i.product_id FROM order_items AS i JOIN orders AS o ON o.order_id = i.order_id"
        f" WHERE o.order_number = :order_number AND o.status IN {_CANCELLABLE}"
    )
    return composite_tool(
        "cancel_order",
        "Cancel an order that has not shipped yet and put its items back in stock. Only "
        "'pending' or 'paid' orders can be cancelled; for any other order (shipped, "
        "delivered, already cancelled) or an unknown number it fails with not_found and "
        "changes nothing.",
        table="orders",
        params={"order_number": _ORDER_NUMBER},
        required=["order_number"],
        statements=[
            "UPDATE products SET stock = stock + ("
            " SELECT SUM(i.quantity) FROM order_items AS i JOIN orders AS o ON o.order_id = i.order_id"
            f" WHERE o.order_number = :order_number AND o.status IN {_CANCELLABLE}"
            " AND i.product_id = products.product_id)"
            f" WHERE product_id IN ({in_cancellable_order})",
            "UPDATE orders SET status = 'cancelled'"
            f" WHERE order_number = :order_number AND status IN {_CANCELLABLE}"
            " RETURNING order_id, order_number, customer_id, status, placed_on, total",
        ],
        result=ResultShape.ROW,
        effect=Effect.WRITE,
        output={
            "order_id": "integer",
            "order_number": "string",
            "customer_id": "integer",
            "status": "string",
            "placed_on": "string",
            "total": "number",
        },
    )


def _order_summary() -> ToolSpec:
    return composite_tool(
        "order_summary",
        "A customer's orders, newest first, one row per order with its number of lines, "
        "units, total and product names. Optionally only orders with one status.",
        table="orders",
        params={
            "customer_id": integer("The customer"),
            "status": string(
                "Only orders with this status",
                enum=["pending", "paid", "shipped", "delivered", "cancelled"],
            ),
        },
        required=["customer_id"],
        statements=[
            "SELECT o.order_id, o.order_number, o.status, o.placed_on, o.shipped_on, o.delivered_on,"
            " COUNT(i.item_id) AS lines, SUM(i.quantity) AS units, o.total,"
            " group_concat(p.name, ', ') AS products"
            " FROM orders AS o JOIN order_items AS i ON i.order_id = o.order_id"
            " JOIN products AS p ON p.product_id = i.product_id"
            " WHERE o.customer_id = :customer_id AND (:status IS NULL OR o.status = :status)"
            " GROUP BY o.order_id ORDER BY o.placed_on DESC, o.order_id DESC"
        ],
        result=ResultShape.ROWS,
        effect=Effect.READ,
        output={
            "order_id": "integer",
            "order_number": "string",
            "status": "string",
            "placed_on": "string",
            "shipped_on": ["string", "null"],
            "delivered_on": ["string", "null"],
            "lines": "integer",
            "units": "integer",
            "total": "number",
            "products": "string",
        },
    )


def _request_return() -> ToolSpec:
    return composite_tool(
        "request_return",
        f"Open a return for one product of a delivered order, within {_RETURN_WINDOW_DAYS} days "
        "of delivery. Fails with not_found when the order is not delivered, is past the "
        "return window or does not contain the product, and with a UNIQUE constraint "
        "error when that item already has a return.",
        table="returns",
        params={
            "order_number": _ORDER_NUMBER,
            "product_id": integer("The product to return"),
            "reason": string(
                "Why it goes back",
                enum=["damaged", "wrong_item", "not_as_described", "no_longer_needed", "too_small", "too_large"],
            ),
        },
        required=["order_number", "product_id", "reason"],
        statements=[
            "INSERT INTO returns (item_id, reason, status, requested_on)"
            f" SELECT i.item_id, :reason, 'requested', '{TODAY}'"
            " FROM order_items AS i JOIN orders AS o ON o.order_id = i.order_id"
            " WHERE o.order_number = :order_number AND i.product_id = :product_id"
            " AND o.status = 'delivered'"
            f" AND o.delivered_on >= date('{TODAY}', '-{_RETURN_WINDOW_DAYS} days')"
            " RETURNING return_id, item_id, reason, status, requested_on"
        ],
        result=ResultShape.ROW,
        effect=Effect.WRITE,
        output={
            "return_id": "integer",
            "item_id": "integer",
            "reason": "string",
            "status": "string",
            "requested_on": "string",
        },
    )
