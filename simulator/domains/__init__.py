"""Built-in domain packs: a schema, seeded rows, hand-written tools and a policy per domain.

Each pack is one folder that holds everything about it (``description.md``, ``schema.sql``,
``generator.py``, ``composite.py``, ``policy.md``) and registers itself with
``@register_domain(name)`` when its module is imported. Built-in packs are imported
lazily by :func:`load_domain`; third-party packs can be listed under the
``dialogsim.domains`` entry-point group (the entry point names the domain and points at
a module that registers it)::

    env = load_domain("retail", seed=7)   # derived per-table tools + the pack's composites
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from schemas import Environment, ToolSpec
from simulator.registry import Registry
from toolservers.derive import derive_environment_from_ddl

__all__ = [
    "DOMAINS",
    "ENTRY_POINT_GROUP",
    "DomainPack",
    "domain_names",
    "load_domain",
    "pack_policy_path",
    "register_domain",
]

ENTRY_POINT_GROUP = "dialogsim.domains"

Rows = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class DomainPack:
    """What a domain contributes; ``package`` holds its ``description.md``, ``schema.sql`` and ``policy.md``.

    ``generate(seed)`` returns seed rows per table in foreign-key-safe order, as plain
    JSON values; ``composite_tools()`` the hand-written tools added to the derived ones.
    """

    name: str
    package: str
    generate: Callable[[int], Rows]
    composite_tools: Callable[[], list[ToolSpec]]

    def description(self) -> str:
        return resources.files(self.package).joinpath("description.md").read_text(encoding="utf-8").strip()

    def schema_sql(self) -> str:
        return resources.files(self.package).joinpath("schema.sql").read_text(encoding="utf-8")

    def policy(self) -> str:
        return resources.files(self.package).joinpath("policy.md").read_text(encoding="utf-8")

    def rules_toml(self) -> str:
        """The pack's rules as data (``policy.toml``; see schemas.policy)."""
        return resources.files(self.package).joinpath("policy.toml").read_text(encoding="utf-8")


PackFactory = Callable[[], DomainPack]

DOMAINS: Registry[PackFactory] = Registry(
    "domain",
    builtin={
        "clinic": "simulator.domains.clinic",
        "retail": "simulator.domains.retail",
        "travel": "simulator.domains.travel",
    },
    group=ENTRY_POINT_GROUP,
)


def register_domain(name: str) -> Callable[[PackFactory], PackFactory]:
    """Register a factory of the domain pack called ``name``.

    Raises ConfigError when another factory is registered under that name.
    """
    return DOMAINS.register(name)


def domain_names() -> list[str]:
    """Every domain :func:`load_domain` accepts, sorted."""
    return DOMAINS.names()


def load_domain(name: str, *, seed: int = 0) -> Environment:
    """Build the environment of domain ``name``: schema, rows generated from ``seed``, tools.

    The same name and seed always give the same environment. Raises ConfigError for an
    unknown name.
    """
    import msgspec

    from simulator.policy import complete_policy, parse_policy, render_rules
    from toolservers.database import open_database

    pack = _pack(name)
    env = derive_environment_from_ddl(
        pack.schema_sql(),
        pack.generate(seed),
        env_id=name,
        domain=name,
        description=pack.description(),
        policy=pack.policy(),
        extra_tools=pack.composite_tools(),
    )
    source = f"domain {name}: policy.toml"
    db = open_database(env.database)
    try:
        rules = complete_policy(parse_policy(pack.rules_toml(), source=source), db.query, source=source)
    finally:
        db.close()
    text = pack.policy().rstrip() + "\n\n## Rules\n\n" + render_rules(rules) + "\n"
    return msgspec.structs.replace(env, policy=text, rules=rules)


def pack_policy_path(name: str) -> Path:
    """The ``policy.toml`` of built-in pack ``name`` (its rules as data)."""
    return Path(str(resources.files(_pack(name).package).joinpath("policy.toml")))


def _pack(name: str) -> DomainPack:
    return DOMAINS.get(name)()
