"""``dialogsim tools derive``: an environment file with the tools derived from an SQLite database."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from schemas.errors import ConfigError

_CATEGORIES = ("get", "search", "list_related", "count", "create", "update", "delete")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "derive",
        help="derive get/search/list/count/create/update/delete tools from an SQLite database",
        description=(
            "Read an SQLite database (read-only; it is never changed) and write an environment file "
            "whose tools are the ones a person would write by hand for each table: get, search, "
            "count, create, update, delete, and a list tool per foreign key."
        ),
    )
    p.add_argument("--database", type=Path, required=True, metavar="FILE", help="the SQLite database")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the environment JSON to write")
    p.add_argument("--id", dest="env_id", metavar="ID", help="the environment id (default: the file's stem)")
    p.add_argument("--domain", metavar="NAME", help="the domain name (default: the file's stem)")
    p.add_argument("--description", default="", help="a one-line description of the environment")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from toolservers import save_environment
    from toolservers.derive import derive_environment

    out: Path = args.out
    if out.is_dir():
        example = out / "env.json"
        raise ConfigError(f"--out {out}: is a directory; expected the environment file to write, e.g. {example}")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the directory {out.parent} does not exist")
    env = derive_environment(args.database, env_id=args.env_id, domain=args.domain, description=args.description)
    save_environment(env, out)
    tables = sorted({t.table for t in env.tools if t.table})
    per_category = Counter(t.category for t in env.tools)
    order = {c: i for i, c in enumerate(_CATEGORIES)}
    print(f"Derived {len(env.tools)} tools for {len(tables)} tables of {args.database} -> {out}")
    print(f"  tables: {', '.join(tables)}")
    counts = sorted(per_category.items(), key=lambda kv: order.get(kv[0], len(order)))
    print("  tools:  " + ", ".join(f"{n} {category}" for category, n in counts))
    return 0
