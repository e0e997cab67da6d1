"""``dialogsim schema NAME``: print the JSON Schema of a top-level object."""

from __future__ import annotations

import argparse
import json

from schemas import SCHEMAS, json_schema


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of a file format",
        description="Print the JSON Schema (draft 2020-12, root inlined) of one of dialogsim's formats.",
    )
    p.add_argument("name", choices=sorted(SCHEMAS), help="which schema to print")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(SCHEMAS[args.name]), indent=2))
    return 0
