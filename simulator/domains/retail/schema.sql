-- retail: an online shop. Customers place orders of line items; stock goes down when an
-- order is placed and back up when it is cancelled; delivered items can be returned.
-- Dates are TEXT 'YYYY-MM-DD'; money is REAL in euros.

CREATE TABLE customers (
    customer_id   INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    phone         TEXT UNIQUE,
    city          TEXT NOT NULL,
    country       TEXT NOT NULL,
    loyalty_tier  TEXT NOT NULL DEFAULT 'standard' CHECK (loyalty_tier IN ('standard', 'silver', 'gold')),
    joined_on     TEXT NOT NULL CHECK (joined_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]')
);

CREATE TABLE addresses (
    address_id    INTEGER PRIMARY KEY,
    customer_id   INTEGER NOT NULL REFERENCES customers (customer_id),
    label         TEXT NOT NULL CHECK (label IN ('home', 'work', 'other')),
    street        TEXT NOT NULL,
    city          TEXT NOT NULL,
    postal_code   TEXT NOT NULL,
    country       TEXT NOT NULL,
    is_default    INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1))
);

CREATE TABLE products (
    product_id    INTEGER PRIMARY KEY,
    sku           TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL UNIQUE,
    category      TEXT NOT NULL CHECK (category IN ('kitchen', 'home', 'electronics', 'outdoors', 'apparel', 'office')),
    price         REAL NOT NULL CHECK (price > 0),
    stock         INTEGER NOT NULL DEFAULT 0,
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    CONSTRAINT not_enough_stock CHECK (stock >= 0)
);

CREATE TABLE orders (
    order_id             INTEGER PRIMARY KEY,
    order_number         TEXT NOT NULL UNIQUE,
    customer_id          INTEGER NOT NULL REFERENCES customers (customer_id),
    shipping_address_id  INTEGER REFERENCES addresses (address_id),
    status               TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    placed_on            TEXT NOT NULL CHECK (placed_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    shipped_on           TEXT CHECK (shipped_on IS NULL OR shipped_on >= placed_on),
    delivered_on         TEXT CHECK (delivered_on IS NULL OR delivered_on >= shipped_on),
    total                REAL NOT NULL CHECK (total >= 0)
);

CREATE TABLE order_items (
    item_id       INTEGER PRIMARY KEY,
    order_id      INTEGER NOT NULL REFERENCES orders (order_id),
    product_id    INTEGER NOT NULL REFERENCES products (product_id),
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    unit_price    REAL NOT NULL CHECK (unit_price > 0),
    UNIQUE (order_id, product_id)
);

CREATE TABLE returns (
    return_id      INTEGER PRIMARY KEY,
    item_id        INTEGER NOT NULL UNIQUE REFERENCES order_items (item_id),
    reason         TEXT NOT NULL CHECK (reason IN ('damaged', 'wrong_item', 'not_as_described', 'no_longer_needed', 'too_small', 'too_large')),
    status         TEXT NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'approved', 'rejected', 'refunded')),
    requested_on   TEXT NOT NULL CHECK (requested_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    resolved_on    TEXT CHECK (resolved_on IS NULL OR resolved_on >= requested_on),
    refund_amount  REAL CHECK (refund_amount IS NULL OR refund_amount >= 0)
);

CREATE INDEX orders_by_customer ON orders (customer_id);
CREATE INDEX items_by_order ON order_items (order_id);
