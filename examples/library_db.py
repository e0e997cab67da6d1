"""Build a public-library lending database that no built-in domain pack knows.

    python examples/library_db.py library.sqlite            # seed 0
    python examples/library_db.py library.sqlite --seed 5
    dialogsim generate --database library.sqlite --dialogues 100 --seed 11 --out library-data/

Members borrow copies of books held at branches; loans can be renewed up to three times,
late returns give fines, and members place holds on titles. Every status column is a
CHECK list, every link a foreign key, so the offline planner can read the rules from the
schema alone (who owns what, which values a column takes). The data is seeded and
deterministic: the same seed always gives the same file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
from pathlib import Path

__all__ = ["SCHEMA", "build_library"]

SCHEMA = """
CREATE TABLE branches (
    branch_id   INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    city        TEXT NOT NULL,
    phone       TEXT NOT NULL,
    opens_at    TEXT NOT NULL,
    closes_at   TEXT NOT NULL
);
CREATE TABLE members (
    member_id       INTEGER PRIMARY KEY,
    card_number     TEXT NOT NULL UNIQUE,
    first_name      TEXT NOT NULL,
    last_name       TEXT NOT NULL,
    email           TEXT NOT NULL UNIQUE,
    phone           TEXT UNIQUE,
    home_branch_id  INTEGER NOT NULL REFERENCES branches (branch_id),
    membership      TEXT NOT NULL CHECK (membership IN ('standard', 'student', 'senior', 'family')),
    joined_on       TEXT NOT NULL
);
CREATE TABLE books (
    book_id         INTEGER PRIMARY KEY,
    isbn            TEXT NOT NULL UNIQUE,
    title           TEXT NOT NULL,
    author          TEXT NOT NULL,
    genre           TEXT NOT NULL CHECK (genre IN ('fiction', 'mystery', 'science', 'history', 'children', 'travel')),
    published_year  INTEGER NOT NULL,
    pages           INTEGER NOT NULL CHECK (pages > 0)
);
CREATE TABLE copies (
    copy_id     INTEGER PRIMARY KEY,
    book_id     INTEGER NOT NULL REFERENCES books (book_id),
    branch_id   INTEGER NOT NULL REFERENCES branches (branch_id),
    barcode     TEXT NOT NULL UNIQUE,
    condition   TEXT NOT NULL CHECK (condition IN ('new', 'good', 'worn', 'damaged')),
    shelf       TEXT NOT NULL
);
CREATE TABLE loans (
    loan_id      INTEGER PRIMARY KEY,
    copy_id      INTEGER NOT NULL REFERENCES copies (copy_id),
    member_id    INTEGER NOT NULL REFERENCES members (member_id),
    borrowed_on  TEXT NOT NULL,
    due_on       TEXT NOT NULL,
    returned_on  TEXT,
    renewals     INTEGER NOT NULL DEFAULT 0 CHECK (renewals BETWEEN 0 AND 3),
    status       TEXT NOT NULL CHECK (status IN ('active', 'returned', 'overdue', 'lost'))
);
CREATE TABLE holds (
    hold_id           INTEGER PRIMARY KEY,
    member_id         INTEGER NOT NULL REFERENCES members (member_id),
    book_id           INTEGER NOT NULL REFERENCES books (book_id),
    pickup_branch_id  INTEGER NOT NULL REFERENCES branches (branch_id),
    placed_on         TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('waiting', 'ready', 'collected', 'cancelled'))
);
CREATE TABLE fines (
    fine_id    INTEGER PRIMARY KEY,
    loan_id    INTEGER NOT NULL REFERENCES loans (loan_id),
    amount     REAL NOT NULL CHECK (amount > 0),
    reason     TEXT NOT NULL CHECK (reason IN ('late', 'damage', 'lost')),
    status     TEXT NOT NULL CHECK (status IN ('unpaid', 'paid', 'waived')),
    issued_on  TEXT NOT NULL
);
"""

_BRANCHES = [
    ("Central Library", "Hartwell"),
    ("Riverside Branch", "Hartwell"),
    ("Oakfield Branch", "Oakfield"),
    ("Northgate Library", "Northgate"),
    ("Millbrook Community Library", "Millbrook"),
    ("Harbour View Branch", "Port Ellis"),
    ("Elmstead Reading Room", "Elmstead"),
    ("Kingsmead Library", "Kingsmead"),
]
_FIRST = [
    "Amelia",
    "Noah",
    "Priya",
    "Mateo",
    "Hana",
    "Lucas",
    "Zara",
    "Elias",
    "Mei",
    "Tomás",
    "Ingrid",
    "Kofi",
    "Leila",
    "Oscar",
    "Yusuf",
    "Clara",
    "Dmitri",
    "Ayesha",
    "Finn",
    "Rosa",
    "Jonah",
    "Aiko",
    "Samir",
    "Greta",
    "Bea",
    "Ciaran",
    "Ottilie",
    "Rashid",
    "Nadia",
    "Henrik",
    "Esme",
    "Tobias",
    "Imani",
    "Wen",
    "Marta",
    "Idris",
]
_LAST = [
    "Whitaker",
    "Okonkwo",
    "Lindholm",
    "Castillo",
    "Nakamura",
    "Brennan",
    "Haddad",
    "Kowalczyk",
    "Ferreira",
    "Osei",
    "Vasquez",
    "Thorne",
    "Mehta",
    "Dubois",
    "Sato",
    "Adeyemi",
    "Novak",
    "Moreau",
    "Quinn",
    "Larsen",
    "Achterberg",
    "Fitzgerald",
    "Papadopoulos",
    "Iqbal",
    "Runeberg",
    "Delacroix",
    "Mwangi",
    "Carrington",
    "Solberg",
    "Amadi",
]
_TITLES = {
    "fiction": [
        "The Lantern Keeper",
        "Salt and Silver",
        "A House of Small Hours",
        "The Glass Orchard",
        "Winter Harbour",
        "The Cartographer's Daughter",
        "What the River Carried",
        "The Quiet Season",
        "Paper Birds over Lisbon",
        "An Inventory of Clouds",
        "The Weaver's Promise",
        "Tuesdays at the Lighthouse",
    ],
    "mystery": [
        "The Ninth Key",
        "Death at Thornfield Hall",
        "The Silent Witness",
        "Murder on the Night Ferry",
        "The Vanishing Curator",
        "A Body in the Boathouse",
        "The Clockmaker's Alibi",
        "Seven Steps to the Cellar",
        "The Case of the Borrowed Violin",
        "Fog over Marrow Lane",
    ],
    "science": [
        "The Hidden Life of Cells",
        "Stars in Your Pocket",
        "A Short History of Light",
        "The Restless Earth",
        "Thinking in Numbers",
        "The Secret Language of Bees",
        "Oceans Without Maps",
        "How Bridges Stand Up",
        "The Chemistry of Cooking",
        "Weather Makers",
    ],
    "history": [
        "The Silk Roads Revisited",
        "Empires of the Sea",
        "The Year of Revolutions",
        "Letters from the Front",
        "The Lost Cities of Anatolia",
        "Bread and Barricades",
        "The Mapmakers of Venice",
        "A People's History of the Canal",
        "Queens of the Nile",
        "The Long Winter of 1947",
    ],
    "children": [
        "Pip and the Moon Balloon",
        "The Very Brave Hedgehog",
        "Luna Learns to Swim",
        "The Dragon Who Loved Books",
        "Otto's Noisy Orchestra",
        "The Snail Who Raced the Train",
        "Grandma's Magic Umbrella",
        "Ten Sleepy Penguins",
    ],
    "travel": [
        "Walking the Camino",
        "Islands of the North",
        "A Year in Kyoto",
        "Rails Across the Andes",
        "Slow Boats to Zanzibar",
        "The Hidden Valleys of Georgia",
        "Cycling the Danube",
        "Desert Nights in Wadi Rum",
    ],
}
_AUTHORS = [
    "Helen Marsh",
    "Daniel Okafor",
    "Sofia Lindqvist",
    "Arturo Vega",
    "Naomi Clarke",
    "Kenji Watanabe",
    "Fatima Rahman",
    "George Ellison",
    "Ines Carvalho",
    "Peter Holm",
    "Ruth Abara",
    "Marcus Webb",
    "Lena Fischer",
    "Tariq Aziz",
    "Beatrice Lowe",
    "Hugo Marchetti",
    "Olga Petrova",
    "Samuel Adeyemi",
    "Clare Donnelly",
    "Jin-woo Park",
    "Amara Nwosu",
    "Felix Brandt",
    "Maeve O'Connor",
    "Rafael Duarte",
]

TODAY = dt.date(2026, 5, 4)


def build_library(path: Path, *, seed: int = 0) -> Path:
    """Write the library database to ``path`` (replacing it) and return the path."""
    rng = random.Random(seed)
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        for i, (name, city) in enumerate(_BRANCHES, start=1):
            phone = f"+44 20 7{rng.randint(100, 999)} {rng.randint(1000, 9999)}"
            conn.execute(
                "INSERT INTO branches VALUES (?, ?, ?, ?, ?, ?)",
                (
                    i,
                    name,
                    city,
                    phone,
                    rng.choice(["08:30", "09:00", "10:00"]),
                    rng.choice(["17:00", "19:00", "20:00"]),
                ),
            )
        members = []
        used: set[str] = set()
        for i in range(1, 151):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            while f"{first} {last}" in used:
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
            used.add(f"{first} {last}")
            email = f"{first.lower().replace('á', 'a')}.{last.lower()}@example.org"
            joined = TODAY - dt.timedelta(days=rng.randint(60, 3000))
            members.append(i)
            conn.execute(
                "INSERT INTO members VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    i,
                    f"LIB-{rng.randint(10000, 99999)}-{i:02d}",
                    first,
                    last,
                    email,
                    f"+44 7{rng.randint(100, 999)} {rng.randint(100000, 999999)}",
                    rng.randint(1, len(_BRANCHES)),
                    rng.choices(["standard", "student", "senior", "family"], [5, 2, 2, 1])[0],
                    joined.isoformat(),
                ),
            )
        book_id = 0
        for genre, titles in _TITLES.items():
            for title in titles:
                book_id += 1
                conn.execute(
                    "INSERT INTO books VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        book_id,
                        f"978-{rng.randint(0, 1)}-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-{book_id % 10}",
                        title,
                        rng.choice(_AUTHORS),
                        genre,
                        rng.randint(1968, 2025),
                        rng.randint(32, 720) if genre != "children" else rng.randint(24, 64),
                    ),
                )
        copy_id = 0
        for b in range(1, book_id + 1):
            for _ in range(rng.randint(1, 3)):
                copy_id += 1
                conn.execute(
                    "INSERT INTO copies VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        copy_id,
                        b,
                        rng.randint(1, len(_BRANCHES)),
                        f"C{rng.randint(100000, 999999)}{copy_id:03d}",
                        rng.choices(["new", "good", "worn", "damaged"], [2, 5, 3, 1])[0],
                        f"{rng.choice('ABCDEFGH')}{rng.randint(1, 40)}",
                    ),
                )
        loan_id = 0
        fine_id = 0
        for m in members:
            for _ in range(rng.randint(1, 4)):
                loan_id += 1
                borrowed = TODAY - dt.timedelta(days=rng.randint(1, 120))
                due = borrowed + dt.timedelta(days=21)
                renewals = rng.choice([0, 0, 1, 2, 3])
                due += dt.timedelta(days=14 * renewals)
                if due < TODAY:
                    status = rng.choices(["returned", "overdue", "lost"], [6, 3, 1])[0]
                else:
                    status = rng.choices(["active", "returned"], [4, 1])[0]
                returned = None
                if status == "returned":
                    returned = min(TODAY, borrowed + dt.timedelta(days=rng.randint(3, 40))).isoformat()
                conn.execute(
                    "INSERT INTO loans VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        loan_id,
                        rng.randint(1, copy_id),
                        m,
                        borrowed.isoformat(),
                        due.isoformat(),
                        returned,
                        renewals,
                        status,
                    ),
                )
                if status in {"overdue", "lost"} or (returned and rng.random() < 0.2):
                    fine_id += 1
                    conn.execute(
                        "INSERT INTO fines VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            fine_id,
                            loan_id,
                            round(rng.choice([0.5, 1.0, 2.5, 4.0, 12.0, 18.5]), 2),
                            "lost" if status == "lost" else rng.choice(["late", "late", "damage"]),
                            rng.choice(["unpaid", "unpaid", "paid", "waived"]),
                            (due + dt.timedelta(days=rng.randint(1, 10))).isoformat(),
                        ),
                    )
        hold_id = 0
        for m in members:
            for _ in range(rng.randint(0, 2)):
                hold_id += 1
                conn.execute(
                    "INSERT INTO holds VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        hold_id,
                        m,
                        rng.randint(1, book_id),
                        rng.randint(1, len(_BRANCHES)),
                        (TODAY - dt.timedelta(days=rng.randint(0, 60))).isoformat(),
                        rng.choices(["waiting", "ready", "collected", "cancelled"], [4, 2, 2, 1])[0],
                    ),
                )
        conn.commit()
    finally:
        conn.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the example library lending database.")
    parser.add_argument("out", type=Path, help="the SQLite file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    build_library(args.out, seed=args.seed)
    print(f"wrote {args.out}")  # noqa: T201


if __name__ == "__main__":
    main()
