"""Built-in domain packs: a schema, seeded rows, hand-written tools and a policy per domain.

Each pack lives in its own folder (``schema.sql``, ``generator.py``, ``composite.py``,
``policy.md``) and registers itself with ``@register_domain(name)`` when its module is
imported. Built-in packs are imported lazily by :func:`load_domain`; third-party packs
can be listed under the ``dialogsim.domains`` entry-point group (the entry point names
the domain and points at a module that registers it)::

    env = load_domain("retail", seed=7)   # derived per-table tools + the pack's composites
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from schemas import Environment, ToolSpec
from schemas.errors import ConfigError
from toolservers.derive import derive_environment_from_ddl

__all__ = [
    "DOMAIN_DESCRIPTIONS",
    "ENTRY_POINT_GROUP",
    "DomainPack",
    "domain_names",
    "load_domain",
    "register_domain",
]

ENTRY_POINT_GROUP = "dialogsim.domains"

DOMAIN_DESCRIPTIONS: dict[str, str] = {
    "clinic": (
        "An outpatient clinic: patients, doctors in departments with weekly working hours, "
        "appointments in 30-minute slots with a status life cycle, and prescriptions with refills."
    ),
    "retail": (
        "An online shop: customers with addresses, a product catalogue with stock, orders made "
        "of line items (placed, paid, shipped, delivered or cancelled) and returns."
    ),
    "travel": (
        "A travel agency: travelers, airports, dated flights with seat availability, hotels, "
        "flight and hotel bookings with references and status, and their payments."
    ),
}

Rows = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class DomainPack:
    """What a domain contributes; ``package`` holds its ``schema.sql`` and ``policy.md``.

    ``generate(seed)`` returns seed rows per table in foreign-key-safe order, as plain
    JSON values; ``composite_tools()`` the hand-written tools added to the derived ones.
    """

    name: str
    description: str
    package: str
    generate: Callable[[int], Rows]
    composite_tools: Callable[[], list[ToolSpec]]

    def schema_sql(self) -> str:
        return resources.files(self.package).joinpath("schema.sql").read_text(encoding="utf-8")

    def policy(self) -> str:
        return resources.files(self.package).joinpath("policy.md").read_text(encoding="utf-8")


PackFactory = Callable[[], DomainPack]

_BUILTIN = {
    "clinic": "simulator.domains.clinic",
    "retail": "simulator.domains.retail",
    "travel": "simulator.domains.travel",
}
_REGISTRY: dict[str, PackFactory] = {}


def register_domain(name: str) -> Callable[[PackFactory], PackFactory]:
    """Register a factory of the domain pack called ``name``.

    Raises ValueError when a pack of that name is already registered.
    """

    def decorate(factory: PackFactory) -> PackFactory:
        if name in _REGISTRY:
            raise ValueError(f"domain {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def domain_names() -> list[str]:
    """Every domain :func:`load_domain` accepts, sorted."""
    return sorted({*_BUILTIN, *_REGISTRY, *_entry_points()})


def load_domain(name: str, *, seed: int = 0) -> Environment:
    """Build the environment of domain ``name``: schema, rows generated from ``seed``, tools.

    The same name and seed always give the same environment. Raises ConfigError for an
    unknown name.
    """
    pack = _pack(name)
    return derive_environment_from_ddl(
        pack.schema_sql(),
        pack.generate(seed),
        env_id=name,
        domain=name,
        description=pack.description,
        policy=pack.policy(),
        extra_tools=pack.composite_tools(),
    )


def _pack(name: str) -> DomainPack:
    if name not in _REGISTRY:
        if name in _BUILTIN:
            importlib.import_module(_BUILTIN[name])
        elif name in _entry_points():
            _entry_points()[name].load()
        else:
            raise ConfigError(f"unknown domain {name!r}; expected one of: {', '.join(domain_names())}")
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(f"domain {name!r}: its module was imported but registered no pack of that name")
    return factory()


@functools.cache
def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
