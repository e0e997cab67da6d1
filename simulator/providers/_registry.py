"""Providers by name: a decorator registry that imports lazily, plus entry points.

Built-in providers are modules imported the first time their name is looked up, so an
OpenAI-only run never imports the Anthropic SDK. Third parties add providers through
the ``dialogsim.providers`` entry point group: the entry point's name is the provider
name and its value a module that registers with :func:`provider` (or a factory, which
is registered with the default metadata). Registering a name twice is an error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Protocol, TypeVar

from schemas.errors import ConfigError

if TYPE_CHECKING:
    from simulator.providers._types import Request, Response
    from simulator.providers.settings import ProviderSettings

__all__ = [
    "ENTRY_POINT_GROUP",
    "Provider",
    "ProviderFactory",
    "ProviderInfo",
    "is_known",
    "known_providers",
    "provider",
    "provider_info",
]

ENTRY_POINT_GROUP = "dialogsim.providers"

_BUILTIN: dict[str, str] = {
    "anthropic": "simulator.providers.anthropic",
    "openai": "simulator.providers.openai",
}


class Provider(Protocol):
    """One provider bound to its settings: sends one request, one HTTP attempt, no retries.

    ``send`` raises :class:`~simulator.providers.ProviderError` subclasses only; the
    client around it owns limits, retries, timeouts, the cache and accounting.
    """

    name: str

    async def send(self, request: Request) -> Response: ...

    async def aclose(self) -> None: ...


ProviderFactory = Callable[["ProviderSettings"], Provider]
F = TypeVar("F", bound=ProviderFactory)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What the command line needs to know about a provider before any call.

    ``key_env`` / ``base_url_env`` are the environment variables read at the CLI edge;
    ``keyless_base_url`` means a custom base URL (a local server) needs no key.
    """

    name: str
    factory: ProviderFactory
    key_env: str | None = None
    base_url_env: str | None = None
    default_base_url: str | None = None
    keyless_base_url: bool = False


_registered: dict[str, ProviderInfo] = {}


def provider(
    name: str,
    *,
    key_env: str | None = None,
    base_url_env: str | None = None,
    default_base_url: str | None = None,
    keyless_base_url: bool = False,
) -> Callable[[F], F]:
    """Register a provider factory under ``name``.

    Raises ConfigError when the name is taken by another factory (a built-in name can
    only be registered by its own module).
    """

    def decorate(factory: F) -> F:
        builtin_module = _BUILTIN.get(name)
        module = getattr(factory, "__module__", None)
        if builtin_module is not None and module != builtin_module:
            raise ConfigError(f"provider {name!r} is built in ({builtin_module}); {module} cannot register it again")
        existing = _registered.get(name)
        if existing is not None and existing.factory is not factory:
            raise ConfigError(
                f"provider {name!r} registered twice: by {getattr(existing.factory, '__module__', '?')} and {module}"
            )
        _registered[name] = ProviderInfo(
            name=name,
            factory=factory,
            key_env=key_env,
            base_url_env=base_url_env,
            default_base_url=default_base_url,
            keyless_base_url=keyless_base_url,
        )
        return factory

    return decorate


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _BUILTIN:
            raise ConfigError(f"entry point {ep.value!r} ({ENTRY_POINT_GROUP}) reuses the built-in name {ep.name!r}")
        if ep.name in found and found[ep.name].value != ep.value:
            raise ConfigError(
                f"provider {ep.name!r} is offered by two entry points: {found[ep.name].value} and {ep.value}"
            )
        found[ep.name] = ep
    return found


def is_known(name: str) -> bool:
    """Whether ``name`` can be used; built-in and registered names are answered without a scan."""
    return name in _BUILTIN or name in _registered or name in _entry_points()


def known_providers() -> list[str]:
    """Every provider name that can be used, sorted (built-in, registered and from entry points)."""
    return sorted(set(_BUILTIN) | set(_registered) | set(_entry_points()))


def provider_info(name: str) -> ProviderInfo:
    """Look a provider up by name, importing its module on first use.

    Raises ConfigError for an unknown name (listing the known ones) or a broken plugin.
    """
    info = _registered.get(name)
    if info is not None:
        return info
    if name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    else:
        ep = _entry_points().get(name)
        if ep is None:
            raise ConfigError(f"unknown provider {name!r}; known providers: {', '.join(known_providers())}")
        loaded = ep.load()
        if name not in _registered and callable(loaded):
            provider(name)(loaded)
    info = _registered.get(name)
    if info is None:
        raise ConfigError(f"provider {name!r}: its module was imported but did not register a provider")
    return info
