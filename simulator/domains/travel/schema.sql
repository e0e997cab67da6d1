-- travel: a travel agency. Flights are dated departures between airports with a limited
-- number of free seats; a booking holds seats on one flight or rooms at one hotel, has a
-- reference like 'BK-4F2A9' and a status, and is paid by one or more payments.
-- Dates are TEXT 'YYYY-MM-DD', times TEXT 'HH:MM' (local); money is REAL in euros.

CREATE TABLE airports (
    code     TEXT PRIMARY KEY CHECK (length(code) = 3 AND code = upper(code)),
    name     TEXT NOT NULL,
    city     TEXT NOT NULL,
    country  TEXT NOT NULL
);

CREATE TABLE flights (
    flight_id        INTEGER PRIMARY KEY,
    flight_number    TEXT NOT NULL,
    airline          TEXT NOT NULL,
    origin           TEXT NOT NULL REFERENCES airports (code),
    destination      TEXT NOT NULL REFERENCES airports (code),
    departure_date   TEXT NOT NULL CHECK (departure_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    departure_time   TEXT NOT NULL CHECK (departure_time GLOB '[0-2][0-9]:[0-5][0-9]'),
    arrival_date     TEXT NOT NULL CHECK (arrival_date >= departure_date),
    arrival_time     TEXT NOT NULL CHECK (arrival_time GLOB '[0-2][0-9]:[0-5][0-9]'),
    price            REAL NOT NULL CHECK (price > 0),
    seats_total      INTEGER NOT NULL CHECK (seats_total > 0),
    seats_available  INTEGER NOT NULL,
    status           TEXT NOT NULL DEFAULT 'scheduled'
                     CHECK (status IN ('scheduled', 'delayed', 'cancelled', 'departed')),
    UNIQUE (flight_number, departure_date),
    CHECK (origin <> destination),
    CONSTRAINT no_seats_left CHECK (seats_available >= 0),
    CONSTRAINT seats_over_capacity CHECK (seats_available <= seats_total)
);

CREATE TABLE hotels (
    hotel_id      INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    city          TEXT NOT NULL,
    country       TEXT NOT NULL,
    stars         INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
    nightly_rate  REAL NOT NULL CHECK (nightly_rate > 0),
    phone         TEXT,
    UNIQUE (name, city)
);

CREATE TABLE travelers (
    traveler_id      INTEGER PRIMARY KEY,
    first_name       TEXT NOT NULL,
    last_name        TEXT NOT NULL,
    email            TEXT NOT NULL UNIQUE,
    phone            TEXT UNIQUE,
    date_of_birth    TEXT NOT NULL CHECK (date_of_birth GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    nationality      TEXT NOT NULL,
    passport_number  TEXT UNIQUE,
    loyalty_tier     TEXT NOT NULL DEFAULT 'none' CHECK (loyalty_tier IN ('none', 'silver', 'gold', 'platinum'))
);

CREATE TABLE bookings (
    booking_id   INTEGER PRIMARY KEY,
    reference    TEXT NOT NULL UNIQUE CHECK (reference GLOB 'BK-[0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F]'),
    traveler_id  INTEGER NOT NULL REFERENCES travelers (traveler_id),
    kind         TEXT NOT NULL CHECK (kind IN ('flight', 'hotel')),
    flight_id    INTEGER REFERENCES flights (flight_id),
    seats        INTEGER CHECK (seats IS NULL OR seats BETWEEN 1 AND 9),
    hotel_id     INTEGER REFERENCES hotels (hotel_id),
    check_in     TEXT,
    check_out    TEXT,
    rooms        INTEGER CHECK (rooms IS NULL OR rooms BETWEEN 1 AND 5),
    status       TEXT NOT NULL DEFAULT 'confirmed' CHECK (status IN ('held', 'confirmed', 'cancelled', 'completed')),
    booked_on    TEXT NOT NULL CHECK (booked_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    total_price  REAL NOT NULL CHECK (total_price >= 0),
    CONSTRAINT flight_or_hotel CHECK (
        (kind = 'flight' AND flight_id IS NOT NULL AND seats IS NOT NULL
            AND hotel_id IS NULL AND check_in IS NULL AND check_out IS NULL AND rooms IS NULL)
        OR (kind = 'hotel' AND hotel_id IS NOT NULL AND rooms IS NOT NULL
            AND check_in IS NOT NULL AND check_out > check_in AND flight_id IS NULL AND seats IS NULL)
    )
);

CREATE TABLE payments (
    payment_id  INTEGER PRIMARY KEY,
    booking_id  INTEGER NOT NULL REFERENCES bookings (booking_id),
    amount      REAL NOT NULL CHECK (amount >= 0),
    method      TEXT NOT NULL CHECK (method IN ('card', 'paypal', 'bank_transfer', 'voucher')),
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'captured', 'refunded', 'failed')),
    paid_on     TEXT CHECK (paid_on IS NULL OR paid_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    card_last4  TEXT CHECK (card_last4 IS NULL OR card_last4 GLOB '[0-9][0-9][0-9][0-9]'),
    CONSTRAINT card_needs_last4 CHECK ((method = 'card') = (card_last4 IS NOT NULL))
);

CREATE INDEX flights_by_route ON flights (origin, destination, departure_date);
CREATE INDEX bookings_by_traveler ON bookings (traveler_id);
CREATE INDEX payments_by_booking ON payments (booking_id);
